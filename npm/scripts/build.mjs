// `npm run build`: the publishable package in dist/.
//   1. the engine for wasm32 with simd128 (cargo, crate bindings/wasm; .cargo/config.toml sets
//      the target features), in release;
//   2. its JS glue (wasm-bindgen --target web, the version of the wasm-bindgen crate in
//      Cargo.lock: scripts/setup-tools.sh installs it);
//   3. the package's own modules and types from src/.
// CARGO_TARGET_DIR is honoured. `--skip-cargo` reuses the last engine build.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '..');
const root = path.resolve(pkg, '..');
const dist = path.join(pkg, 'dist');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const wasmIn = path.join(targetDir, 'wasm32-unknown-unknown', 'release', 'webformers_wasm.wasm');

function run(cmd, args, options = {}) {
  console.log(`build: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (!process.argv.includes('--skip-cargo')) {
  run('cargo', ['build', '--release', '--target', 'wasm32-unknown-unknown', '-p', 'webformers-wasm']);
}

// wasm-bindgen must be the exact version of the library in Cargo.lock.
const lock = fs.readFileSync(path.join(root, 'Cargo.lock'), 'utf8');
const want = /name = "wasm-bindgen"\nversion = "([^"]+)"/.exec(lock)?.[1];
const have = spawnSync('wasm-bindgen', ['--version'], { encoding: 'utf8' }).stdout?.trim().split(' ')[1];
if (!have || have !== want) {
  console.error(`build: need wasm-bindgen ${want} (found ${have ?? 'none'}); run scripts/setup-tools.sh`);
  process.exit(1);
}

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(path.join(dist, 'wasm'), { recursive: true });
run('wasm-bindgen', ['--target', 'web', '--out-dir', path.join(dist, 'wasm'), '--out-name', 'webformers_wasm', wasmIn]);
for (const f of fs.readdirSync(path.join(pkg, 'src'))) {
  if (/\.(js|d\.ts)$/.test(f)) fs.copyFileSync(path.join(pkg, 'src', f), path.join(dist, f));
}
const size = fs.statSync(path.join(dist, 'wasm', 'webformers_wasm_bg.wasm')).size;
console.log(`build: dist/ ready (webformers_wasm_bg.wasm ${(size / 1e6).toFixed(1)} MB)`);
