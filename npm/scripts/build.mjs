// `npm run build`: the publishable package in dist/.
//   1. the engine for wasm32 with simd128 (cargo, crate bindings/wasm; .cargo/config.toml sets
//      the target features), in release: dist/wasm/webformers_wasm*;
//   2. the threaded engine: the same crate with the nightly toolchain, `+atomics,+bulk-memory`
//      and the standard library rebuilt for them (`-Z build-std`, needs the nightly toolchain's
//      rust-src: scripts/setup-tools.sh adds it), in its own target folder (<target>/threads):
//      dist/wasm/webformers_wasm_threaded*;
//   3. each again with the crate's `relaxed-simd` feature (the CPU kernels' multiply-adds fused:
//      f32x4.relaxed_madd), dist/wasm/webformers_wasm_relaxed* and
//      webformers_wasm_threaded_relaxed*: only the two webformers crates recompile for them (the
//      feature sets no RUSTFLAGS), and engine.js loads them where relaxed-simd validates;
//   4. their JS glue (wasm-bindgen --target web, the version of the wasm-bindgen crate in
//      Cargo.lock: scripts/setup-tools.sh installs it), one per build (closure shims differ);
//   5. the package's own modules and types from src/ (the .wasm files' sha256 stamped into
//      wasm-cache.js).
// CARGO_TARGET_DIR is honoured. `--skip-cargo` reuses the last engine builds; `--js-only` copies
// the modules alone into an existing dist/.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '..');
const root = path.resolve(pkg, '..');
const dist = path.join(pkg, 'dist');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const wasmIn = path.join(targetDir, 'wasm32-unknown-unknown', 'release', 'webformers_wasm.wasm');
const threadsTargetDir = path.join(targetDir, 'threads');
const wasmThreadedIn = path.join(threadsTargetDir, 'wasm32-unknown-unknown', 'release', 'webformers_wasm.wasm');
// The relaxed-simd builds' output, copied aside (cargo writes both variants to the same file).
const relaxedCopy = (file) => file.replace(/\.wasm$/, '_relaxed.wasm');
// rustc no longer makes `+atomics` imply a shared memory (rust-lang/rust#147225): the linker is
// asked for it, imported (so that every thread's instance gets the same one), with a maximum of
// 4 GiB (shared memories declare one), and with the thread-local storage symbols wasm-bindgen's
// thread start-up needs.
const THREADED_RUSTFLAGS = [
  '-C target-feature=+atomics,+bulk-memory,+simd128',
  ...['--shared-memory', '--import-memory', '--max-memory=4294967296'].map((a) => `-C link-arg=${a}`),
  ...['__wasm_init_tls', '__tls_size', '__tls_align', '__tls_base'].map((s) => `-C link-arg=--export=${s}`),
].join(' ');

function run(cmd, args, options = {}) {
  console.log(`build: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// `--js-only`: the package's modules again over an existing dist/ (a change to src/ alone).
const jsOnly = process.argv.includes('--js-only');
/** Builds with `relaxed-simd`, keeps that output aside, then builds without it. */
function buildBoth(args, options, out) {
  run('cargo', [...args, '--features', 'relaxed-simd'], options);
  fs.copyFileSync(out, relaxedCopy(out));
  run('cargo', args, options);
}

if (!process.argv.includes('--skip-cargo') && !jsOnly) {
  buildBoth(['build', '--release', '--target', 'wasm32-unknown-unknown', '-p', 'webformers-wasm'], {}, wasmIn);
  // The nightly is pinned to a date (scripts/nightly-toolchain): a regression cannot break builds.
  const toolchain = fs.readFileSync(path.join(root, 'scripts', 'nightly-toolchain'), 'utf8').trim();
  const nightly = spawnSync('rustup', ['component', 'list', '--toolchain', toolchain, '--installed'], { encoding: 'utf8' });
  if (nightly.status !== 0 || !/^rust-src\b/m.test(nightly.stdout)) {
    console.error(`build: the threaded build needs the ${toolchain} toolchain with rust-src; run scripts/setup-tools.sh`);
    process.exit(1);
  }
  // RUSTFLAGS replaces .cargo/config.toml's target rustflags (simd128 is repeated here).
  buildBoth(
    [`+${toolchain}`, 'build', '--release', '--target', 'wasm32-unknown-unknown', '-p', 'webformers-wasm', '-Z', 'build-std=std,panic_abort'],
    { env: { ...process.env, RUSTFLAGS: THREADED_RUSTFLAGS, CARGO_TARGET_DIR: threadsTargetDir } },
    wasmThreadedIn,
  );
}

/**
 * The package's modules from src/, with the .wasm files' sha256 stamped into wasm-cache.js: the
 * Cache API key of env.useWasmCache, so a cached module of another build is never used.
 */
/** dist/wasm/ names and the cargo outputs they come from. */
const BUILDS = [
  ['webformers_wasm', wasmIn],
  ['webformers_wasm_relaxed', relaxedCopy(wasmIn)],
  ['webformers_wasm_threaded', wasmThreadedIn],
  ['webformers_wasm_threaded_relaxed', relaxedCopy(wasmThreadedIn)],
];

function copyModules() {
  const digest = (f) => createHash('sha256').update(fs.readFileSync(path.join(dist, 'wasm', f))).digest('hex');
  const digests = Object.fromEntries(BUILDS.map(([name]) => `${name}_bg.wasm`).map((f) => [f, digest(f)]));
  for (const f of fs.readdirSync(path.join(pkg, 'src'))) {
    if (!/\.(js|d\.ts)$/.test(f)) continue;
    let text = fs.readFileSync(path.join(pkg, 'src', f), 'utf8');
    if (f === 'wasm-cache.js') {
      const stamp = '/* build: wasm digests */ {}';
      if (!text.includes(stamp)) throw new Error(`build: ${stamp} is missing from src/wasm-cache.js`);
      text = text.replace(stamp, JSON.stringify(digests));
    }
    fs.writeFileSync(path.join(dist, f), text);
  }
}

if (jsOnly) {
  copyModules();
  console.log('build: dist/ modules copied from src/');
  process.exit(0);
}

// wasm-bindgen must be the exact version of the library in Cargo.lock.
const lock = fs.readFileSync(path.join(root, 'Cargo.lock'), 'utf8');
const want = /name = "wasm-bindgen"\nversion = "([^"]+)"/.exec(lock)?.[1];
const have = spawnSync('wasm-bindgen', ['--version'], { encoding: 'utf8' }).stdout?.trim().split(' ')[1];
if (!have || have !== want) {
  console.error(`build: need wasm-bindgen ${want} (found ${have ?? 'none'}); run scripts/setup-tools.sh`);
  process.exit(1);
}

const missing = BUILDS.filter(([, input]) => !fs.existsSync(input));
if (missing.length) {
  console.error(`build: ${missing.map(([, input]) => input).join(', ')} missing: build without --skip-cargo`);
  process.exit(1);
}
fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(path.join(dist, 'wasm'), { recursive: true });
for (const [name, input] of BUILDS) run('wasm-bindgen', ['--target', 'web', '--out-dir', path.join(dist, 'wasm'), '--out-name', name, input]);
copyModules();
const mb = (f) => (fs.statSync(path.join(dist, 'wasm', f)).size / 1e6).toFixed(1);
console.log(`build: dist/ ready (${BUILDS.map(([name]) => `${name}_bg.wasm ${mb(`${name}_bg.wasm`)} MB`).join(', ')})`);
