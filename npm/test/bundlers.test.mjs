// The packed package in four bundlers (demos/bundlers/: Vite, webpack, esbuild, Next.js with
// Turbopack, its default): each
// app is installed from its lock file plus the package's .tgz (`npm pack`, installed with
// --no-save so that the lock files never pin a tarball that changes with every build), built, and
// its output served on 127.0.0.1 cross-origin isolated. In headless Chromium the bundled page
// embeds with the real all-MiniLM-L6-v2 on 'wasm', in the page on the threaded build (2 threads:
// its pool worker started) and in a worker pipeline (the app's bundled worker), both against the
// PyTorch reference within TOLERANCE.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from '../../scripts/static-server.mjs';
import { launchBrowser, maxAbsDiff, modelsDir, npmDir, openPage, problemsBut404, reference, root, TOLERANCE } from './helpers.mjs';

const appsDir = path.join(root, 'demos', 'bundlers');
/** Each app and the folder its build writes the site to. */
const APPS = { vite: 'dist', webpack: 'dist', esbuild: 'dist', next: 'out' };

const ref = reference();
const some = { ...ref, inputs: ref.inputs.slice(0, 4) };
const texts = some.inputs.map((i) => i.text);

let packDir;
let tarball;
let browser;

before(async () => {
  packDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-bundlers-'));
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: npmDir, encoding: 'utf8' }).trim().split('\n').at(-1);
  tarball = path.join(packDir, name);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (packDir) fs.rmSync(packDir, { recursive: true, force: true });
});

function npm(app, args) {
  execFileSync('npm', args, {
    cwd: path.join(appsDir, app),
    stdio: 'inherit',
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
  });
}

/** Installs and builds the app, serves its site with /models/, and returns what its page reported. */
async function buildAndRun(app) {
  const started = Date.now();
  const quiet = ['--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'];
  npm(app, ['ci', ...quiet]);
  npm(app, ['install', '--no-save', ...quiet, tarball]);
  npm(app, ['run', 'build']);
  const built = Date.now();
  const server = await startServer({ isolate: true, mounts: { '/': path.join(appsDir, app, APPS[app]), '/models/': modelsDir } });
  try {
    const p = await openPage(browser, `${server.url}?texts=${encodeURIComponent(JSON.stringify(texts))}`);
    await p.waitForFunction(() => document.body?.dataset.result, { timeout: 240_000 }).catch((e) => {
      throw new Error(`${app}: the page reported nothing (${e.message}); its console: ${JSON.stringify(p.problems)}`);
    });
    const result = JSON.parse(await p.evaluate(() => document.body.dataset.result));
    const problems = problemsBut404(p);
    await p.close();
    console.log(`${app}: install and build ${((built - started) / 1000).toFixed(1)} s, page ${((Date.now() - built) / 1000).toFixed(1)} s`);
    return { result, problems };
  } finally {
    await server.close();
  }
}

for (const app of Object.keys(APPS)) {
  test(`${app}: the bundled page runs the threaded build and a worker pipeline, with the reference's embeddings`, { timeout: 600_000 }, async () => {
    const { result, problems } = await buildAndRun(app);
    assert.equal(result.error, undefined, result.error);
    assert.equal(result.isolated, true);
    for (const where of ['page', 'worker']) {
      const out = result[where];
      assert.equal(out.device, 'wasm', where);
      // 2 threads: the threaded build loaded and its pool worker (the bundled thread-worker.js) started.
      assert.equal(out.threads, 2, where);
      assert.deepEqual(out.dims, [texts.length, ref.hidden_size], where);
      const diff = maxAbsDiff(out.data, some);
      assert.ok(diff <= TOLERANCE, `${app}, ${where}: max abs diff ${diff} > ${TOLERANCE}`);
    }
    assert.deepEqual(problems, []);
  });
}
