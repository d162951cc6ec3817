// Shared by the tests: paths, the reference embeddings, a static server and a headless Chromium.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/static-server.mjs';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const npmDir = path.resolve(here, '..');
export const root = path.resolve(npmDir, '..');
export const distDir = path.join(npmDir, 'dist');
export const modelsDir = path.join(root, '.cache', 'models');
export const minilmDir = path.join(modelsDir, 'all-MiniLM-L6-v2');
export const fixturesDir = path.join(root, 'tests', 'fixtures');

/** The PyTorch reference: 29 inputs with their normalized mean-pooled embeddings. */
export function reference() {
  return JSON.parse(fs.readFileSync(path.join(fixturesDir, 'minilm-reference.json'), 'utf8'));
}

export const TOLERANCE = 1e-4;

/**
 * The devices the Node tests run their reference cases on: the WASM build, and 'cpu', the native
 * engine (the addon scripts/build-node-addon.sh builds; without it 'cpu' would be WASM, and the
 * tests' device checks fail).
 */
export const NODE_DEVICES = ['wasm', 'cpu'];
/** A Node device as the tests' names say it. */
export const deviceLabel = (device) => (device === 'cpu' ? 'the native engine' : 'WASM');

/** The reference cut to its inputs of at most 64 tokens (27 of 29): what the tests give
 * SwiftShader's WebGPU, which took a minute for all 29 on a 2-CPU machine (the two 256-token
 * inputs most of it). */
export function softwareGpuReference(ref) {
  return { ...ref, inputs: ref.inputs.filter((i) => i.token_ids.length <= 64) };
}

/** The largest |a - b| between the embeddings (`data`, row-major) and the reference. */
export function maxAbsDiff(data, ref) {
  const h = ref.hidden_size;
  let worst = 0;
  ref.inputs.forEach((input, i) => {
    input.embedding.forEach((x, j) => {
      worst = Math.max(worst, Math.abs(x - data[i * h + j]));
    });
  });
  return worst;
}

/** The lowest cosine similarity between each row of `data` and its reference embedding. */
export function minCosine(data, ref) {
  const h = ref.hidden_size;
  return Math.min(
    ...ref.inputs.map((input, i) => {
      let dot = 0;
      let a = 0;
      let b = 0;
      input.embedding.forEach((x, j) => {
        const y = data[i * h + j];
        dot += x * y;
        a += x * x;
        b += y * y;
      });
      return dot / Math.sqrt(a * b);
    }),
  );
}

/** A port nothing listens on (bound, then released). */
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Test models that are broken on purpose, in a temporary folder:
 *   not-a-model/  (a README, no config.json)
 *   no-weights/   (config.json and tokenizer.json of MiniLM, no model.safetensors: a 404)
 */
export function brokenModels() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-broken-'));
  fs.mkdirSync(path.join(dir, 'not-a-model'));
  fs.writeFileSync(path.join(dir, 'not-a-model', 'README.md'), 'not a model\n');
  fs.mkdirSync(path.join(dir, 'no-weights'));
  for (const f of ['config.json', 'tokenizer.json']) {
    fs.copyFileSync(path.join(minilmDir, f), path.join(dir, 'no-weights', f));
  }
  return dir;
}

/**
 * The server the browser tests load everything from. `isolate`: with the COOP/COEP headers that
 * make its pages crossOriginIsolated (SharedArrayBuffer, so the threaded build).
 */
export async function testServer(extraMounts = {}, { isolate = false } = {}) {
  return startServer({
    isolate,
    mounts: {
      '/': path.join(here, 'pages'),
      '/webformers/': distDir,
      '/models/': modelsDir,
      '/fixtures/': fixturesDir,
      '/demos/': path.join(root, 'demos'),
      ...extraMounts,
    },
  });
}

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Headless Chromium with WebGPU (SwiftShader here) and no network beyond 127.0.0.1, on a fresh
 * profile that `close()` deletes. The benchmarks use it too, with longer protocol timeouts;
 * `args`: more Chromium switches; `extensions`: unpacked extension folders to load.
 */
export async function launchBrowser({ protocolTimeout = 300_000, args = [], extensions = [] } = {}) {
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    protocolTimeout,
    // Puppeteer otherwise passes --disable-extensions; it installs them over a pipe connection.
    ...(extensions.length ? { enableExtensions: extensions, pipe: true } : {}),
    args: [
      '--headless',
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      '--enable-webgpu-developer-features',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      ...args,
    ],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return browser;
}

/**
 * A page's problems less the browser's own line for each 404: the tiny models lack optional
 * files (special_tokens_map.json, sentence_bert_config.json) that the package asks for, as
 * transformers.js does.
 */
export const problemsBut404 = (p) => p.problems.filter((m) => !/Failed to load resource: the server responded with a status of 404/.test(m));

/**
 * Awaits `promise`, expecting a rejection with an instance of `type` (the package's
 * WebformersError) whose message matches `pattern` (and whose code is `code`, when given).
 */
export async function rejectsWith(type, promise, pattern, code) {
  const error = await promise.then(
    () => assert.fail(`expected a rejection matching ${pattern}`),
    (e) => e,
  );
  assert.ok(error instanceof type, `not a ${type.name}: ${error}`);
  assert.match(error.message, pattern);
  if (code) assert.equal(error.code, code, error.message);
  return error;
}

/** page.evaluate with a deadline: a hang in the page fails the test instead of stalling CI. */
export async function evaluateWithin(p, seconds, fn, ...args) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the page did not answer within ${seconds} s`)), seconds * 1000);
  });
  try {
    return await Promise.race([p.evaluate(fn, ...args), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A page that records console errors and uncaught exceptions. */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.problems = problems;
  await page.goto(url);
  return page;
}

/**
 * Packs the package (npm pack) and installs the tarball into an empty app folder, offline, as a
 * user would. `native`: this platform's package too (npm/native/<triple>/, which
 * scripts/build-node-addon.sh lays out), packed and installed beside it, as npm would install it
 * from the registry as an optional dependency. Returns {dir, app, cleanup}.
 */
export function installPacked({ native = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-install-'));
  const pack = (cwd) => path.join(dir, execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd, encoding: 'utf8' }).trim().split('\n').at(-1));
  const tarballs = [pack(npmDir)];
  if (native) tarballs.push(pack(nativePackageDir()));
  const app = path.join(dir, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "app", "private": true, "type": "module" }\n');
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...tarballs], {
    cwd: app,
    stdio: 'inherit',
  });
  return { dir, app, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** This platform's native package folder (scripts/build-node-addon.sh makes it). */
export function nativePackageDir() {
  const triple = { 'linux-x64': 'linux-x64-gnu', 'linux-arm64': 'linux-arm64-gnu', 'darwin-arm64': 'darwin-arm64', 'darwin-x64': 'darwin-x64' }[
    `${process.platform}-${process.arch}`
  ];
  const dir = path.join(npmDir, 'native', triple ?? 'none');
  if (!triple || !fs.existsSync(path.join(dir, 'package.json'))) throw new Error(`${dir}: no native package; run scripts/build-node-addon.sh`);
  return dir;
}

/** Where the demo tests save their screenshots (CI keeps the folder as an artifact). */
export const screenshotsDir = path.join(root, 'target', 'screenshots');

/** Saves the page as `target/screenshots/<name>.png`, once its result has been checked. */
export async function saveScreenshot(page, name) {
  fs.mkdirSync(screenshotsDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotsDir, `${name}.png`), fullPage: true });
}

/** Makes the page's adapters report `bytes` as their storage-binding limit (and pass for real hardware). */
export async function fakeBindingLimit(p, bytes) {
  await p.evaluate((bytes) => {
    /** Makes GPUAdapter's getter `name` answer a copy of the real object with `changes` on it. */
    const override = (name, changes) => {
      const real = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, name).get;
      Object.defineProperty(GPUAdapter.prototype, name, {
        get() {
          const copy = {};
          const value = real.call(this);
          for (const key in value) copy[key] = value[key];
          return Object.assign(copy, changes);
        },
      });
    };
    override('limits', { maxStorageBufferBindingSize: bytes });
    override('info', { isFallbackAdapter: false });
  }, bytes);
}
