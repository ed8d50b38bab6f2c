#!/usr/bin/env bash
# Installs the Debian 12 packages l4nat's build, tests, demo and benchmark use. Run as root.
#   libpcap-dev: builds the `cap` package (packet capture in the conformance tests)
#   clang, libclang-rt-14-dev: the packet-core fuzzers (Debian 12's clang 14 ships libFuzzer's runtime in
#     libclang-rt-14-dev; without it native/test builds no fuzzer and test/native.test.ts fails under CI=true)
#   iproute2: the namespace labs (tests only)
#   iperf3, haproxy, nftables: the conformance suite and benchmark's references (iperf3 also test/affinity-netns.test.ts); ethtool: the benchmark's real-NIC variant
#   bird2: the BGP daemon of the scale-out lab (test/scaleout-netns.test.ts); its systemd service is not used
#   openssl: certificates for the TLS tests (admin API, cluster views, https health checks, scale-out lab)
#   systemd (for systemd-analyze: the unit's system-call groups) and libseccomp-dev: l4nat under its unit's sandbox
#   where systemd is not PID 1 (test/systemd-sandbox-netns.test.ts)
#   chromium: the dashboard's browser test (test/dashboard-netns.test.ts, driven by playwright-core)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential python3 libpcap-dev clang libclang-rt-14-dev iproute2 procps iperf3 haproxy nftables tcpdump ethtool bird2 openssl systemd libseccomp-dev chromium >/dev/null
echo "install-deps: system packages installed"
# The lab runs its own `bird -c CONF -s SOCK` per namespace; the distribution's bird.service (started by the package
# where systemd is PID 1) would run BIRD in the default namespace: stop and disable it.
if [ -d /run/systemd/system ]; then
  systemctl disable --now bird.service >/dev/null 2>&1 || true
fi
