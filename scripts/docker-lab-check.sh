#!/usr/bin/env bash
# Runs the documented container commands (docs/developer.md) against a real Docker engine, with Compose v1
# (docker-compose) and, where installed, v2 (docker compose), and fails unless the demo prints `demo OK` and exits
# 0 in each (with --conformance, also the conformance suite). Minutes, not part of `npm test`; figures: docs/developer.md.
#   bash scripts/docker-lab-check.sh [--conformance] [--cold]     as root; docker.io, docker-compose, debootstrap
# --cold first removes the images this script builds (l4nat-demo:local, the base, their build stages) and the
# engine's BuildKit cache.
# L4NAT_BASE names the base image; unset, scripts/docker-base.sh builds l4nat-base:bookworm from Debian's packages
# (no image registry needed) if it is not there yet. npm inside the build gets this machine's npm settings.
# Without a running engine, starts dockerd itself without touching the host's network (no bridge, no iptables,
# no ip_forward; the build runs on the host's network, the lab needs none) and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

conformance=0 cold=0
for a in "$@"; do
  case "$a" in
    --conformance) conformance=1 ;;
    --cold) cold=1 ;;
    *) echo "docker-lab-check: unknown argument '$a' (expected --conformance, --cold)" >&2; exit 2 ;;
  esac
done
for tool in docker docker-compose npm; do
  command -v "$tool" >/dev/null || { echo "docker-lab-check: $tool not found (apt-get install -y docker.io docker-compose debootstrap)" >&2; exit 1; }
done

project=l4nat
logs=$(mktemp -d /tmp/l4nat-docker-check.XXXXXX)
dockerd_pid=
compose_v1=(docker-compose)
compose_v2=(docker compose)
files=(-f docker/compose.yaml)
results=()

stop_engine() {
  [ -n "$dockerd_pid" ] || return 0
  kill "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
}
cleanup() {
  for c in v1 v2; do
    if [ "$c" = v1 ]; then cmd=("${compose_v1[@]}"); else cmd=("${compose_v2[@]}"); fi
    "${cmd[@]}" -p "$project" "${files[@]}" down --remove-orphans >/dev/null 2>&1 || true
  done
  stop_engine
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || { echo "docker-lab-check: no engine running and no dockerd" >&2; exit 1; }
  dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none >"$logs/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 "$logs/dockerd.log" >&2; echo "docker-lab-check: dockerd did not start" >&2; exit 1; }
  echo "started dockerd (pid $dockerd_pid; log $logs/dockerd.log)"
fi

started=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'; }

if [ "$cold" = 1 ]; then
  # The image, then its build stages (the npm stage is a dangling branch of its own), then the base they grew on.
  docker rmi l4nat-demo:local >/dev/null 2>&1 || true
  docker image prune -f --filter label=io.l4nat.lab >/dev/null
  if [ -z "${L4NAT_BASE:-}" ]; then docker rmi l4nat-base:bookworm >/dev/null 2>&1 || true; fi
  # Compose v2 builds with BuildKit, whose cache is the engine's own: all of it goes.
  docker builder prune -af >/dev/null 2>&1 || true
  echo "cold: removed l4nat-demo:local, its build stages${L4NAT_BASE:+ (kept $L4NAT_BASE)} and the BuildKit cache"
fi

if [ -z "${L4NAT_BASE:-}" ]; then
  export L4NAT_BASE=l4nat-base:bookworm
  if ! docker image inspect "$L4NAT_BASE" >/dev/null 2>&1; then
    t=$(date +%s.%N)
    bash scripts/docker-base.sh "$L4NAT_BASE"
    echo "base image built in $(elapsed "$t") s"
  fi
fi

# This machine's npm settings for the build's npm ci (compose.yaml passes them as build arguments).
npm_setting() { local v; v=$(npm config get "$1" 2>/dev/null || true); case "$v" in null | undefined) v= ;; esac; echo "$v"; }
export L4NAT_NPM_REGISTRY=${L4NAT_NPM_REGISTRY-$(npm_setting registry)}
export L4NAT_NPM_CAFILE=${L4NAT_NPM_CAFILE-$(npm_setting cafile)}
export L4NAT_NPM_PROXY=${L4NAT_NPM_PROXY-$(npm_setting proxy)}
export L4NAT_NPM_HTTPS_PROXY=${L4NAT_NPM_HTTPS_PROXY-$(npm_setting https-proxy)}
export L4NAT_NPM_NOPROXY=${L4NAT_NPM_NOPROXY-$(npm_setting noproxy)}
echo "base $L4NAT_BASE; npm registry ${L4NAT_NPM_REGISTRY:-(default)}, cafile ${L4NAT_NPM_CAFILE:-(default)}"

# compose.yaml's privileged container, or the documented fallback where the engine refuses it.
if out=$(docker run --rm --privileged --network none "$L4NAT_BASE" true 2>&1); then
  echo "privileged containers: allowed (docker/compose.yaml as it is)"
else
  files+=(-f docker/compose.unprivileged.yaml)
  echo "privileged containers: refused ($(echo "$out" | head -1)); with docker/compose.unprivileged.yaml"
fi

fail=0
# check NAME LOG PATTERN CMD...: runs CMD into LOG; ok if it exits 0 and printed a line matching PATTERN (grep -E).
check() {
  local name=$1 log=$2 expect=$3 t rc=0
  shift 3
  t=$(date +%s.%N)
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" = 0 ] && grep -q -E "$expect" "$log"; then
    results+=("ok    $name ($(elapsed "$t") s)")
    return 0
  fi
  tail -30 "$log" >&2
  results+=("FAIL  $name (exit $rc, $(elapsed "$t") s; log $log)")
  fail=1
  return 1
}

run_with() {
  local tag=$1
  shift
  local compose=("$@" -p "$project" "${files[@]}") id code
  echo "$tag: ${compose[*]} up --build"
  if check "$tag up --build" "$logs/$tag-up.log" 'demo OK: ' "${compose[@]}" up --build; then
    # `up` returns 0 whatever the demo did: its exit code is the container's.
    id=$("${compose[@]}" ps -a -q demo)
    code=$(docker inspect -f '{{.State.ExitCode}}' "$id")
    if [ "$code" != 0 ]; then results+=("FAIL  $tag: the demo exited $code"); fail=1; fi
  fi
  "${compose[@]}" down --remove-orphans >/dev/null 2>&1 || true
  if [ "$conformance" = 1 ]; then
    echo "$tag: ${compose[*]} run --rm conformance"
    check "$tag run --rm conformance" "$logs/$tag-conformance.log" '^as required:' "${compose[@]}" run --rm conformance || true
  fi
}

run_with v1 "${compose_v1[@]}"
if docker compose version >/dev/null 2>&1; then
  run_with v2 "${compose_v2[@]}"
else
  results+=("--    v2 (docker compose): not installed here, not run")
fi

echo
printf '%s\n' "${results[@]}"
echo "total $(elapsed "$started") s; logs in $logs"
exit "$fail"
