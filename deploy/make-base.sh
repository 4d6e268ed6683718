#!/usr/bin/env bash
# Makes a local Debian bookworm base image for the Dockerfile where no image
# registry is reachable: debootstrap (minbase) from the mirror apt already
# uses, then `docker import`. Prints the image name. Does nothing when the
# image exists, so the build cache of the layers above it stays valid.
#   deploy/make-base.sh [IMAGE]      (default chat-base:bookworm)
set -euo pipefail
image=${1:-chat-base:bookworm}
docker=${DOCKER:-docker}

if $docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

# The first deb822 or one-line source apt is configured with.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
           /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
             /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1)
fi
[ -n "$mirror" ] || { echo "make-base: no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }

dir=$(mktemp -d /tmp/chat-base.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "make-base: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$dir" "$mirror" > "$dir.log" 2>&1 ||
  { tail -20 "$dir.log" >&2; rm -f "$dir.log"; exit 1; }
rm -f "$dir.log"
# apt caches and docs are not part of a base layer
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
tar -C "$dir" -c . | $docker import -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "$image"
