#!/usr/bin/env bash
# Builds the images the containers leg runs, from Debian's and PyPI's packages only (no container
# registry is needed), each skipped when an image built from the same inputs exists already:
#
#   local/postgres:15            Debian bookworm's PostgreSQL 15 (debootstrap), with an entrypoint
#                                that honours POSTGRES_USER/PASSWORD/DB as the official image does
#   local/python:3.11-bookworm   Debian bookworm's Python 3.11: the Dockerfile's PYTHON_IMAGE
#   local/uv:<version>           uv's static binaries from its PyPI wheel: the Dockerfile's UV_IMAGE
#   library:local                the app, built by the Dockerfile on the two above
#
#   scripts/images.sh [postgres|python|uv|app|all]...     (default: all)
#
# Each image carries the hash of its inputs as a label (org.library.inputs); a rebuild happens
# only when that hash changes. Needs root (debootstrap) and a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER="${DOCKER:-docker}"
SUITE=bookworm
UV_VERSION="${UV_VERSION:-$(sed -n 's/^UV_VERSION := *//p' Makefile)}"
POSTGRES_IMAGE="${LOCAL_POSTGRES_IMAGE:-local/postgres:15}"
PYTHON_IMAGE="${LOCAL_PYTHON_IMAGE:-local/python:3.11-bookworm}"
UV_IMAGE="${LOCAL_UV_IMAGE:-local/uv:$UV_VERSION}"
APP_IMAGE="${LOCAL_APP_IMAGE:-library:local}"
LABEL=org.library.inputs

log() { printf 'images: %s\n' "$*" >&2; }

# The machine's Debian mirror, as apt has it (deb822 "URIs:" or a one-line "deb URL").
debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local found
  found="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit} /^deb / && $2 ~ /debian\/?$/ {print $2; exit}')" || true
  echo "${found:-http://deb.debian.org/debian}"
}

# The hash of an image's inputs: the files and words given.
inputs_hash() { { for arg in "$@"; do if [[ -f "$arg" ]]; then cat "$arg"; else echo "$arg"; fi; done; } | sha256sum | cut -c1-16; }

current() {  # the inputs hash the image was built from, or nothing
  "$DOCKER" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

need() {  # install a Debian package when its command is missing
  command -v "$1" >/dev/null 2>&1 && return
  log "installing $2 (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null
}

# The machine's extra CA certificates (a TLS-inspecting egress proxy, say), so that uv in the
# Python image reaches PyPI as the machine does. None on an ordinary machine.
extra_cas() { ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; }

# debootstrap ROOTFS PACKAGES: a minimal Debian bookworm with those packages.
bootstrap() {
  need debootstrap debootstrap
  local rootfs="$1" packages="$2" mirror
  mirror="$(debian_mirror)"
  log "debootstrap $SUITE ($packages) from $mirror"
  debootstrap --variant=minbase --include="$packages" "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; return 1; }
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
}

import() {  # import ROOTFS IMAGE HASH [--change ...]
  local rootfs="$1" image="$2" hash="$3"
  shift 3
  tar --numeric-owner -C "$rootfs" -c . | "$DOCKER" import --change "LABEL $LABEL=$hash" "$@" - "$image" >/dev/null
}

build_postgres() {
  local packages=postgresql-15 hash
  hash="$(inputs_hash "$(declare -f bootstrap build_postgres)" images/postgres/entrypoint.sh images/postgres/Dockerfile "$SUITE" "$packages")"
  if [[ "$(current "$POSTGRES_IMAGE")" == "$hash" ]]; then log "$POSTGRES_IMAGE is current"; return; fi
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  bootstrap "$work/rootfs" "$packages"
  local root="$work/rootfs"
  # The package's default cluster goes: its configuration would steer Debian's client wrappers
  # to its port, and the entrypoint makes the cluster the container serves.
  rm -rf "$root"/etc/postgresql/15/main "$root"/var/lib/postgresql/15
  mkdir -p "$root/var/lib/postgresql/data" "$root/run/postgresql"
  chroot "$root" chown -R postgres:postgres /var/lib/postgresql /run/postgresql
  import "$root" "$POSTGRES_IMAGE-rootfs" "$hash"
  # The configuration import cannot set (STOPSIGNAL): a small Dockerfile on the imported root.
  DOCKER_BUILDKIT=0 "$DOCKER" build --quiet --build-arg BASE="$POSTGRES_IMAGE-rootfs" \
    --label "$LABEL=$hash" -t "$POSTGRES_IMAGE" images/postgres >/dev/null
  "$DOCKER" rmi "$POSTGRES_IMAGE-rootfs" >/dev/null
  log "built $POSTGRES_IMAGE"
}

build_python() {
  local packages=python3,ca-certificates hash
  # shellcheck disable=SC2046
  hash="$(inputs_hash "$(declare -f bootstrap build_python)" "$SUITE" "$packages" $(extra_cas))"
  if [[ "$(current "$PYTHON_IMAGE")" == "$hash" ]]; then log "$PYTHON_IMAGE is current"; return; fi
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  bootstrap "$work/rootfs" "$packages"
  local root="$work/rootfs" ca
  for ca in $(extra_cas); do install -m 0644 "$ca" "$root/usr/local/share/ca-certificates/"; done
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  # Like the official image: `python` is Python 3 too.
  ln -sf python3 "$root/usr/bin/python"
  import "$root" "$PYTHON_IMAGE" "$hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]'
  log "built $PYTHON_IMAGE"
}

build_uv() {
  local hash
  hash="$(inputs_hash "$(declare -f build_uv)" "uv==$UV_VERSION")"
  if [[ "$(current "$UV_IMAGE")" == "$hash" ]]; then log "$UV_IMAGE is current"; return; fi
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "uv $UV_VERSION from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work/wheel" "uv==$UV_VERSION"
  mkdir -p "$work/rootfs"
  python3 - "$work" <<'PY'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
(wheel,) = (work / "wheel").glob("uv-*.whl")
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if "/scripts/" in name and name.rsplit("/", 1)[1] in ("uv", "uvx"):
            target = work / "rootfs" / name.rsplit("/", 1)[1]
            target.write_bytes(archive.read(name))
            target.chmod(0o755)
PY
  [[ -x "$work/rootfs/uv" && -x "$work/rootfs/uvx" ]] || { log "no uv binaries in the wheel"; return 1; }
  import "$work/rootfs" "$UV_IMAGE" "$hash" --change 'ENTRYPOINT ["/uv"]'
  log "built $UV_IMAGE"
}

# The Dockerfile needs BuildKit (cache mounts). A docker client with the buildx plugin has it;
# without the plugin, client 23 and newer refuse, but Debian's docker.io client (20.10, in
# /usr/bin) drives the engine's built-in BuildKit itself.
buildkit_docker() {
  if "$DOCKER" buildx version >/dev/null 2>&1; then echo "$DOCKER"; return; fi
  if [[ -x /usr/bin/docker ]] && /usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
    echo /usr/bin/docker; return
  fi
  log "no docker client with BuildKit: install the buildx plugin, or Debian's docker.io"
  return 1
}

build_app() {
  # Docker's own cache decides what is rebuilt; the base images are the local ones.
  local docker
  docker="$(buildkit_docker)"
  log "docker build $APP_IMAGE (PYTHON_IMAGE=$PYTHON_IMAGE, UV_IMAGE=$UV_IMAGE)"
  DOCKER_BUILDKIT=1 "$docker" build --quiet \
    --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" --build-arg UV_IMAGE="$UV_IMAGE" \
    -t "$APP_IMAGE" . >/dev/null
  log "built $APP_IMAGE"
}

# The two debootstraps at once: each waits on the network and dpkg more than on a core.
both_roots() {
  build_postgres & local postgres=$!
  build_python & local python=$!
  local failed=0
  wait "$postgres" || failed=1
  wait "$python" || failed=1
  return "$failed"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(all)
for target in "${targets[@]}"; do
  case "$target" in
    postgres) build_postgres ;;
    python) build_python ;;
    uv) build_uv ;;
    app) build_python; build_uv; build_app ;;
    all) both_roots; build_uv; build_app ;;
    *) echo "usage: $0 [postgres|python|uv|app|all]... (not '$target')" >&2; exit 2 ;;
  esac
done
# Images these builds replaced (now untagged) go.
"$DOCKER" image prune --force --filter "label=$LABEL" >/dev/null
