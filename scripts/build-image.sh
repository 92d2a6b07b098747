#!/usr/bin/env bash
# Builds the image with podman or docker, whichever is present and working.
#
#   scripts/build-image.sh [TAG]
#
# Environment:
#   PYTHON_IMAGE  the base image; unset, the Dockerfile's python:3.11 slim image is used if it
#                 can be pulled, otherwise scripts/debian-base.sh makes one from Debian packages
#   EXTRAS        optional extras to install, e.g. [plots] for the demo's plots
#   CA_BUNDLE     a CA bundle file (e.g. /etc/ssl/certs/ca-certificates.crt) that pip inside
#                 the build trusts, for networks behind an inspecting TLS proxy (podman only:
#                 docker build cannot mount a file)
#   ENGINE        podman or docker, to choose
set -euo pipefail
tag=${1:-foresight:0.1.0}
repo=$(cd "$(dirname "$0")/.." && pwd)
here=$(dirname "$0")

engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then
    engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  else
    echo "neither podman nor a running docker found: make system-deps installs podman" >&2
    exit 1
  fi
fi
flags=()
if [ "$engine" = podman ]; then
  # runc and cgroupfs work where podman runs inside a container without systemd; a build
  # step may not raise its limits there, so it asks for the ones it is given.
  flags+=(--runtime runc --cgroup-manager=cgroupfs)
fi
build=(build --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if [ -z "${PYTHON_IMAGE:-}" ]; then
  default=$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$repo/Dockerfile")
  if "$engine" "${flags[@]}" image inspect "$default" >/dev/null 2>&1 \
    || "$engine" "${flags[@]}" pull --quiet "$default" >/dev/null 2>&1; then
    PYTHON_IMAGE=$default
  else
    echo "cannot pull $default; making a Debian base with mmdebstrap" >&2
    PYTHON_IMAGE=$("$here/debian-base.sh" "$engine" "${flags[@]}")
  fi
fi
build+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" --build-arg "EXTRAS=${EXTRAS:-}")
if [ -n "${CA_BUNDLE:-}" ]; then
  if [ "$engine" != podman ]; then
    echo "CA_BUNDLE needs podman: docker build cannot mount a file into the build" >&2
    exit 1
  fi
  build+=(-v "$(realpath "$CA_BUNDLE"):/etc/foresight-ca.pem:ro"
    --build-arg PIP_CERT=/etc/foresight-ca.pem)
fi
"$engine" "${flags[@]}" "${build[@]}" --tag "$tag" "$repo" >&2
# The images a rebuild replaced, untagged now; the layers a later build reuses stay.
"$engine" "${flags[@]}" image prune --force \
  --filter label=org.opencontainers.image.title=foresight >/dev/null
echo "$tag"
