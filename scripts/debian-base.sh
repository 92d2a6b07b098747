#!/usr/bin/env bash
# Makes a Debian bookworm base image with Debian's Python 3.11 from Debian packages, for
# machines that can reach a Debian mirror but no container registry. The image's tag goes to
# stdout; an image already present under that tag is reused.
#
#   scripts/debian-base.sh ENGINE [ENGINE FLAGS...]     e.g. podman, or docker
#
# BASE_TAG names the image (default localhost/foresight-base:bookworm-KEY, KEY a digest of this
# script, so that a changed recipe makes a new base).
# The root file system is cached as a tarball (FORESIGHT_CACHE, default .venv/cache, which git
# and the build context ignore) so that a fresh container store imports it again without running mmdebstrap.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 podman|docker [ENGINE FLAGS...]" >&2; exit 2; }
engine=("$@")
key=$(sha256sum "$0" | cut -c1-12)
tag=${BASE_TAG:-localhost/foresight-base:bookworm-$key}
cache=${FORESIGHT_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.venv/cache}
tarball=$cache/debian-bookworm-python3-$key.tar

if "${engine[@]}" image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
if [ ! -s "$tarball" ]; then
  command -v mmdebstrap >/dev/null \
    || { echo "mmdebstrap is missing: make system-deps installs it" >&2; exit 1; }
  mkdir -p "$cache"
  # passwd for useradd/groupadd; no documentation, locales or iconv modules (gconv), which
  # nothing in the image reads.
  # The merged-usr hook lays /usr out merged itself, so apt takes usr-is-merged rather than
  # usrmerge, which would bring a whole Perl (about 50 MB) into the image.
  mmdebstrap --quiet --variant=minbase \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$cache/partial.tar" >&2
  mv "$cache/partial.tar" "$tarball"
fi
"${engine[@]}" import --change 'CMD ["python3"]' "$tarball" "$tag" >&2
echo "$tag"
