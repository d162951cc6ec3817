#!/usr/bin/env bash
# Builds the native engine for Node (bindings/node: a Node-API addon) for this machine and lays
# it out as its platform package, npm/native/<triple>/ (package.json + webformers.<triple>.node,
# debug info stripped), where the npm package's native.js finds it when the package runs from
# this tree; published, each platform's folder is the optional package `webformers-<triple>`.
#
# Usage: scripts/build-node-addon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) triple=linux-x64-gnu os=linux cpu=x64 lib=libwebformers_node.so ;;
    Linux-aarch64) triple=linux-arm64-gnu os=linux cpu=arm64 lib=libwebformers_node.so ;;
    Darwin-arm64) triple=darwin-arm64 os=darwin cpu=arm64 lib=libwebformers_node.dylib ;;
    Darwin-x86_64) triple=darwin-x64 os=darwin cpu=x64 lib=libwebformers_node.dylib ;;
    *) echo "build-node-addon: no native build for $(uname -s)-$(uname -m); the package runs its WASM build there" >&2; exit 1 ;;
esac
cargo build --release -q -p webformers-node
out="npm/native/$triple"
mkdir -p "$out"
# Line tables are most of the library's size (130 MB -> about 25 MB).
strip --strip-debug -o "$out/webformers.$triple.node" "target/release/$lib" 2>/dev/null || cp "target/release/$lib" "$out/webformers.$triple.node"
version=$(node -p "require('./npm/package.json').version")
cat >"$out/package.json" <<JSON
{
  "name": "webformers-$triple",
  "version": "$version",
  "description": "webformers' native engine for Node on $os $cpu",
  "license": "Apache-2.0",
  "main": "webformers.$triple.node",
  "files": ["webformers.$triple.node"],
  "os": ["$os"],
  "cpu": ["$cpu"]
}
JSON
echo "build-node-addon: $out/webformers.$triple.node ($(du -h "$out/webformers.$triple.node" | cut -f1))"
