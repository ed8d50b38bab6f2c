#!/usr/bin/env bash
# Builds a local Debian 12 + Node 20 base image for docker/Dockerfile (its build argument BASE), for machines that
# reach Debian's package mirror but no image registry:
#   bash scripts/docker-base.sh [IMAGE]        (default l4nat-base:bookworm; as root, with debootstrap and docker)
# Debian 12's archive has Node 18 only, so the Node this machine runs (the binary, its headers for node-gyp and
# its npm) is copied into the image, at the same prefix. So are the certificate authorities this machine added
# to its own store (/usr/local/share/ca-certificates), which npm inside the build may need to reach its registry
# through this machine's network; nothing else of the machine (no npm configuration, no credentials) goes in.
set -euo pipefail

image=${1:-l4nat-base:bookworm}
mirror=${L4NAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${L4NAT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

for tool in debootstrap docker node npm; do
  command -v "$tool" >/dev/null || { echo "docker-base: $tool not found (apt-get install -y debootstrap docker.io; Node 20)" >&2; exit 1; }
done
node_bin=$(readlink -f "$(command -v node)")
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "docker-base: this machine's Node is $(node -v); l4nat needs 20 or later" >&2; exit 1; }
prefix=$(dirname "$(dirname "$node_bin")")
npm_dir=$(npm root -g)/npm
[ -f "$prefix/include/node/node_api.h" ] || { echo "docker-base: no Node headers in $prefix/include/node (node-gyp needs them)" >&2; exit 1; }
[ -d "$npm_dir" ] || { echo "docker-base: npm not found at $npm_dir" >&2; exit 1; }

root=$(mktemp -d /var/tmp/l4nat-base.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT

debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; echo "docker-base: debootstrap failed (log: $root.log)" >&2; exit 1; }
rm -f "$root.log"
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Node: the binary, the headers, npm and its bin links (relative symlinks, kept as such by tar).
rel() { echo "${1#/}"; }
links=()
for l in "$prefix/bin/npm" "$prefix/bin/npx"; do [ -L "$l" ] && links+=("$(rel "$l")"); done
tar -C / -cf - "$(rel "$prefix/bin/node")" "$(rel "$prefix/include/node")" "$(rel "$npm_dir")" "${links[@]}" | tar -C "$root" -xf -

if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi

chroot "$root" node -e 'require("assert").ok(process.versions.node)' \
  || { echo "docker-base: the copied Node does not run in the Debian 12 root" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
echo "docker-base: $image (Debian 12, Node $(node -v), npm $(npm -v))"
