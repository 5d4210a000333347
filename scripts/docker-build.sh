#!/usr/bin/env bash
# Build the normgen container image on a machine that cannot pull from any registry.
#
#   bash scripts/docker-build.sh            engine + local base image + `docker build` of ./Dockerfile
#   bash scripts/docker-build.sh --engine   only make sure a Docker engine is installed and running
#
# 1. Engine: Debian's docker.io (and debootstrap) are installed when missing; dockerd is started in the
#    background (log: /var/log/normgen-dockerd.log) when `docker info` fails. Needs root, as on these machines.
# 2. Base image ($BASE_IMAGE, default normgen-base:bookworm-node20): a Debian bookworm rootfs made by
#    `debootstrap --variant=minbase` from Debian's mirror, plus this machine's Node 20 (`node` and npm copied to
#    /usr/local, the layout of the official node:20-slim image) and the host's CA bundle (NODE_EXTRA_CA_CERTS: npm inside
#    the build trusts what the host trusts, e.g. a TLS-inspecting proxy), then
#    `docker import`. Skipped when the image exists (REBUILD_BASE=1 forces it).
# 3. `docker build --build-arg BASE_IMAGE=$BASE_IMAGE -t $IMAGE .` with BuildKit (only the stages the target
#    needs are built, so the CUDA stage's base is never pulled), then prints the image size.
#
# Environment: IMAGE (default normgen:local), BASE_IMAGE, DEBIAN_MIRROR (default http://deb.debian.org/debian),
# DOCKER (client binary; default Debian's /usr/bin/docker, whose built-in BuildKit needs no buildx plugin).
# Exit status: non-zero with a message when the engine cannot start, Node is not v20, or a build step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-normgen:local}
BASE_IMAGE=${BASE_IMAGE:-normgen-base:bookworm-node20}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
log() { echo "[docker-build] $*" >&2; }

# --- 1. engine -------------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
DOCKER=${DOCKER:-$( [[ -x /usr/bin/docker ]] && echo /usr/bin/docker || command -v docker )}
if ! $DOCKER info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/normgen-dockerd.log)"
  $SUDO sh -c 'nohup dockerd > /var/log/normgen-dockerd.log 2>&1 &'
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
  $DOCKER info >/dev/null 2>&1 || { log "dockerd did not start:"; tail -20 /var/log/normgen-dockerd.log >&2; exit 1; }
fi
log "engine: $($DOCKER version --format '{{.Server.Version}}')"
[[ "${1:-}" == "--engine" ]] && exit 0

# --- 2. base image ---------------------------------------------------------------------------------
if [[ -n "${REBUILD_BASE:-}" ]] || ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  node_bin=$(readlink -f "$(command -v node)")
  [[ "$("$node_bin" --version)" == v20.* ]] || { log "need Node 20 on this machine, found $("$node_bin" --version)"; exit 1; }
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  rootfs=build/rootfs
  $SUDO rm -rf "$rootfs"; mkdir -p build
  log "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (a few minutes)"
  $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" > build/debootstrap.log 2>&1 \
    || { tail -20 build/debootstrap.log >&2; exit 1; }
  # Trim what a container never uses: .deb cache, apt lists, docs, man pages, locales.
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  log "adding Node $("$node_bin" --version) from $node_bin and npm from $npm_dir"
  $SUDO install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  $SUDO mkdir -p "$rootfs/usr/local/lib/node_modules"
  $SUDO cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  $SUDO ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  $SUDO ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  $SUDO install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  log "docker import -> $BASE_IMAGE"
  $SUDO tar -C "$rootfs" -c . | $DOCKER import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' - "$BASE_IMAGE" >/dev/null
  $SUDO rm -rf "$rootfs"
fi
log "base: $BASE_IMAGE ($($DOCKER image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"

# --- 3. the real Dockerfile ------------------------------------------------------------------------
log "docker build -t $IMAGE --build-arg BASE_IMAGE=$BASE_IMAGE ."
start=$(date +%s)
DOCKER_BUILDKIT=1 $DOCKER build --progress=plain --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" . >&2
log "built $IMAGE in $(( $(date +%s) - start )) s; size $($DOCKER image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
