#!/usr/bin/env bash
# Builds the Dockerfile's image on a machine that reaches package registries but no image
# registry, then runs the strangers soak (tests/tests/strangers.rs) against the node inside
# it with `docker run -m 200m`, and prints the container's peak memory.
#   scripts/docker-image.sh             build (if needed) and soak
#   SOAK_SEGMENTS=20000 scripts/docker-image.sh
#   SOAK_ONLY=1 scripts/docker-image.sh     the soak against the image already built
# Not a CI step: it is a full release build inside the image.
#
# The base images the Dockerfile names are made here: `debian:bookworm-slim` from Debian
# packages (debootstrap + docker import), and `rust:1.95-slim-bookworm` as that plus this
# machine's rustup toolchain (which has the wasm32 target) in /usr/local, laid out like the
# official image.
set -euo pipefail
cd "$(dirname "$0")/.."
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd --storage-driver=vfs >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null
fi

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" "$mirror"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - debian:bookworm-slim
  rm -rf "$root"
fi

if ! docker image inspect rust:1.95-slim-bookworm >/dev/null 2>&1; then
  ctx=$(mktemp -d)
  toolchain=$(rustup toolchain list | awk '/default/ {print $1}')
  mkdir -p "$ctx/rustup/toolchains" "$ctx/cargo/bin"
  cp -a "$HOME/.rustup/toolchains/$toolchain" "$ctx/rustup/toolchains/"
  cp -a "$HOME/.rustup/settings.toml" "$ctx/rustup/" 2>/dev/null || true
  cp -a "$(command -v rustup)" "$ctx/cargo/bin/rustup"
  for tool in cargo rustc rustdoc; do ln -s rustup "$ctx/cargo/bin/$tool"; done
  # The build stage fetches crates: it trusts what this machine trusts (a TLS-intercepting
  # egress proxy's CA, if there is one).
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  cat >"$ctx/Dockerfile" <<EOF
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \\
    && rm -rf /var/lib/apt/lists/*
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:\$PATH
RUN rustup default $toolchain && rustc --version
EOF
  docker build --network host -t rust:1.95-slim-bookworm "$ctx"
  rm -rf "$ctx"
fi

# The image itself (crates come from the registry over the host's network).
if [ -z "${SOAK_ONLY:-}" ]; then
  docker build --network host -t videortc .
fi
docker image ls videortc
docker run --rm --entrypoint ls videortc -l /usr/local/bin/videortc

# The soak: the test starts the node through this wrapper, inside the image, under 200 MB.
wrapper=$(mktemp)
cat >"$wrapper" <<'EOF'
#!/bin/sh
envs=""
for v in ID WS_ADDR BASE_URL RTC_LOOPBACK RUST_LOG NO_COLOR MEMORY_BUDGET MAX_PEERS; do
  if printenv "$v" >/dev/null; then envs="$envs -e $v"; fi
done
exec docker run --rm --init --network host -m 200m --memory-swap 200m --name videortc-soak \
  $envs videortc "$@"
EOF
chmod +x "$wrapper"
trap 'docker rm -f videortc-soak >/dev/null 2>&1 || true; rm -f "$wrapper"' EXIT
docker rm -f videortc-soak >/dev/null 2>&1 || true
# The default budget (144 MiB) and peer limits: what a 200 MB container is sized for.
(
  while sleep 2; do
    id=$(docker inspect -f '{{.Id}}' videortc-soak 2>/dev/null) || continue
    v1=/sys/fs/cgroup/memory/docker/$id
    v2=/sys/fs/cgroup/system.slice/docker-$id.scope
    if [ -r "$v1/memory.max_usage_in_bytes" ]; then
      echo "container: peak $(($(cat "$v1/memory.max_usage_in_bytes") >> 20)) MiB of 200m" \
        "(cgroup v1, page cache included), limit hits $(cat "$v1/memory.failcnt")," \
        "$(grep oom_kill "$v1/memory.oom_control" | tr '\n' ' ')" >/tmp/videortc-soak-memory
    elif [ -r "$v2/memory.peak" ]; then
      echo "container: peak $(($(cat "$v2/memory.peak") >> 20)) MiB of 200m (cgroup v2)," \
        "$(tr '\n' ' ' <"$v2/memory.events")" >/tmp/videortc-soak-memory
    fi
  done
) &
watcher=$!
VIDEORTC_NODE="$wrapper" STRANGERS_DEFAULTS=1 \
  cargo test -p videortc-tests --test strangers -- --nocapture 2>&1 \
  | tee /tmp/videortc-soak-test.log \
  | grep -E -A2 "^strangers:|test result|panicked|memory budget" || true
echo "the whole test output: /tmp/videortc-soak-test.log"
kill "$watcher" 2>/dev/null || true
cat /tmp/videortc-soak-memory 2>/dev/null || echo "container: no cgroup memory figures found"
