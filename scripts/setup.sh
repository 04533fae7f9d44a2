#!/usr/bin/env bash
# Installs what building and testing videortc needs on a fresh Debian machine with rustup.
#   scripts/setup.sh          the wasm32 target for the policy component
#   scripts/setup.sh --test   also ffmpeg (test media), Chromium (browser peers), iproute2
# Idempotent: installed things are skipped. Uses sudo when not root.
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

# Route A (preferred): rustup's prebuilt std for wasm32 (about 2 s).
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup: wasm32-unknown-unknown present"
elif timeout 120 rustup target add wasm32-unknown-unknown; then
  echo "setup: wasm32-unknown-unknown installed with rustup"
else
  # Route B (fallback): Debian's compiler, std sources and wasm-ld; host/build.rs notices
  # them and builds the guest with -Zbuild-std (see wasm-recipe).
  echo "setup: rustup target add failed; installing the Debian build-std toolchain"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends rustc-web cargo-web rust-web-src lld-22
fi

if [ "$want_test" = 1 ]; then
  missing=()
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v ip >/dev/null || missing+=(iproute2)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi
