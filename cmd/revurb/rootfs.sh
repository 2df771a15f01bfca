#!/bin/sh
# Lays out the container image's filesystem under DIR, which it empties first:
#
#   usr/local/bin/revurb              static (CGO_ENABLED=0), -trimpath, main.version=VERSION
#   etc/ssl/certs/ca-certificates.crt the CA bundle Go reads to verify rediss:// and
#                                     https webhook endpoints (Debian's ca-certificates)
#   etc/passwd, etc/group             the user and group revurb, 65532, that the image runs as
#   etc/revurb/                       empty: where the config file is mounted
#
# Usage, from the repository root: cmd/revurb/rootfs.sh DIR VERSION
# `make image` runs it on this machine (its Go toolchain, its CA bundle) and
# cmd/revurb/Containerfile runs it inside the Go image, so both give the same
# files. GO names the go command (default go); CA_BUNDLE the CA file (default
# /etc/ssl/certs/ca-certificates.crt, where Debian's ca-certificates puts it);
# GOARCH, if set, the architecture to build for.
set -eu

if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
  echo "usage: $0 DIR VERSION" >&2
  exit 2
fi
dir=$1
version=$2
case "$dir" in
/ | . | ..) echo "$0: will not empty $dir" >&2; exit 2 ;;
esac
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if [ ! -s "$ca" ]; then
  echo "$0: no CA bundle at $ca: install Debian's ca-certificates, or set CA_BUNDLE" >&2
  exit 1
fi

umask 022
rm -rf "$dir"
mkdir -p "$dir/usr/local/bin" "$dir/etc/ssl/certs" "$dir/etc/revurb"

CGO_ENABLED=0 GOOS=linux "${GO:-go}" build -trimpath -ldflags "-s -w -X main.version=$version" \
  -o "$dir/usr/local/bin/revurb" ./cmd/revurb

cp "$ca" "$dir/etc/ssl/certs/ca-certificates.crt"
printf 'revurb:x:65532:65532:revurb:/nonexistent:/sbin/nologin\n' >"$dir/etc/passwd"
printf 'revurb:x:65532:\n' >"$dir/etc/group"
chmod 0755 "$dir/usr/local/bin/revurb"
chmod 0644 "$dir/etc/ssl/certs/ca-certificates.crt" "$dir/etc/passwd" "$dir/etc/group"
