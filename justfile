# videortc verbs. `just` is optional: every recipe is a plain command.

# Install the wasm target (and with `just setup --test`, ffmpeg and Chromium).
setup *args:
    bash scripts/setup.sh {{args}}

# Build the policy component alone (host/build.rs also does this).
guest:
    cargo build -p videortc-guest --profile guest --target wasm32-unknown-unknown

# Build the node (release).
build: setup
    cargo build --release -p videortc

# Run every test.
test *args:
    bash scripts/test.sh {{args}}

# Run the node on :6060 (set ID, WS_ADDR, BASE_URL ... in the environment).
run *args: setup
    cargo run --release -p videortc -- {{args}}

# Benchmarks: policy (criterion), HTTP and WebRTC with Chromium peers; figures go in the README.
bench: (setup "--test")
    cargo bench -p videortc --bench policy
    cargo bench -p videortc-tests --bench http
    cargo bench -p videortc-tests --bench reload
    cargo bench -p videortc-tests --bench rtc

# The WAN benchmark: the node in a network namespace behind a userspace impaired link (root).
bench-wan:
    cargo bench -p videortc-tests --bench wan

# Clippy with warnings as errors, and the format check.
lint:
    cargo clippy --workspace --all-targets -- -D warnings
    cargo fmt --all -- --check

# Format everything.
fmt:
    cargo fmt --all
