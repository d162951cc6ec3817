#!/usr/bin/env bash
# Installs what building and testing webformers needs on a bare Debian 12 machine (run as root, or
# as a user with sudo): the software Vulkan driver (lavapipe) for native GPU tests, Chromium and
# its driver for browser tests, the wasm32 Rust target, the nightly toolchain's rust-src (the npm
# package's threaded build rebuilds std with `-Z build-std`), and wasm-bindgen-cli at the exact
# version of the `wasm-bindgen` crate in Cargo.lock (the test runner must match the library), and
# cargo-fuzz for scripts/fuzz.sh.
#
# Idempotent: every step checks first and is a no-op (no network) when its tool is present.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf 'setup-tools: %-28s %s\n' "$1" "$2"; }

# 1. Debian packages.
APT_PACKAGES=(mesa-vulkan-drivers libvulkan1 vulkan-tools chromium chromium-driver unzip)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    step "apt packages" "present"
else
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || { echo "setup-tools: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo)
    fi
    step "apt packages" "installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    step "apt packages" "installed"
fi

# 2. The wasm32 target of the active toolchain.
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "rust wasm32 target" "present"
else
    step "rust wasm32 target" "installing"
    rustup target add wasm32-unknown-unknown
fi

# 3. The nightly toolchain with rust-src, for the threaded wasm build (npm/scripts/build.mjs:
#    `cargo +NIGHTLY build -Z build-std=std,panic_abort` with `+atomics,+bulk-memory`). Pinned to
#    the date in scripts/nightly-toolchain, so that a nightly regression cannot break CI.
nightly=$(cat scripts/nightly-toolchain)
if ! rustup toolchain list | grep -q "^$nightly"; then
    step "rust $nightly" "installing"
    rustup toolchain install "$nightly" --profile minimal --component rust-src
elif ! rustup component list --toolchain "$nightly" --installed | grep -qx 'rust-src'; then
    step "rust $nightly rust-src" "installing"
    rustup component add rust-src --toolchain "$nightly"
else
    step "rust $nightly rust-src" "present"
fi

# 4. wasm-bindgen-cli (wasm-bindgen, wasm-bindgen-test-runner) matching Cargo.lock.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [[ -z "$want" ]]; then
    echo "setup-tools: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [[ "$have" == "$want" ]] && command -v wasm-bindgen-test-runner >/dev/null; then
    step "wasm-bindgen-cli $want" "present"
else
    step "wasm-bindgen-cli $want" "installing (had: ${have:-none}; takes a few minutes)"
    # Not --locked: a dependency version pinned by the CLI's own lock file may be absent from the
    # registry mirror.
    cargo install -q wasm-bindgen-cli --version "$want"
    step "wasm-bindgen-cli $want" "installed"
fi

# 5. cargo-fuzz for scripts/fuzz.sh (libFuzzer targets under fuzz/, built with the pinned nightly).
fuzz_want=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null | awk '{ print $2 }')" == "$fuzz_want" ]]; then
    step "cargo-fuzz $fuzz_want" "present"
else
    step "cargo-fuzz $fuzz_want" "installing (takes a few minutes)"
    cargo install -q cargo-fuzz --version "$fuzz_want"
    step "cargo-fuzz $fuzz_want" "installed"
fi
