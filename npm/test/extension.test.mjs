// The Manifest V3 extension of demos/extension/, built by its script and loaded unpacked into
// headless Chromium: its side panel page (opened as a tab) classifies text given in its URL and
// text handed over by the service worker (the context menu's path), with the packaged tiny model,
// and the labels and scores must be Python's (tests/fixtures/tiny-tasks-reference.json); the
// extension's CSP (`'wasm-unsafe-eval'`, no remote code) must report no violation, and the
// manifest's COOP/COEP must give the threaded engine. Also: a file the extension does not ship
// counts as missing, and in a service worker the package rejects with a clear Error.
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { evaluateWithin, launchBrowser, openPage, root, testServer } from './helpers.mjs';
import { assertClose, tinyTasksDir, tinyTasksReference } from './tasks.mjs';

const MODEL = 'distilbert-sequence-classification';
const tiny = tinyTasksReference();
/** The reference case of the panel's model for `input` (the panel asks for every label). */
function expected(input) {
  const c = tiny.cases.find((c) => c.task === 'text-classification' && c.model === MODEL && c.input === input);
  assert.ok(c, `no reference case for ${input}`);
  return c.output;
}
/** Two cases whose options (`top_k` null or 3) give every label of the three, as the panel does. */
const FROM_URL = 'The bridge has seven arches.';
const FROM_MENU = 'In summer the river is low and green.';

let out;
let browser;
let extensionId;
let serviceWorker;
let panel;

/** The panel as a tab, recording CSP violations from before its first script runs. */
async function openPanel(query) {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.problems = problems;
  await page.evaluateOnNewDocument(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  await page.goto(`chrome-extension://${extensionId}/sidepanel.html${query}`);
  return page;
}

/** Waits for the panel's `runs`-th result; returns what it shows. */
async function result(page, runs) {
  await page.waitForFunction((n) => document.body.dataset.runs === n || document.body.dataset.state === 'error', { timeout: 60_000 }, String(runs));
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    error: document.getElementById('error').textContent,
    text: document.getElementById('text').value,
    labels: [...document.querySelectorAll('#labels li')].map((li) => ({ label: li.dataset.label, score: Number(li.dataset.score) })),
  }));
}

before(async () => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-extension-'));
  // The one command a user runs.
  execFileSync('node', [path.join(root, 'demos', 'extension', 'build.mjs'), '--out', out], { stdio: 'inherit' });
  // A model that lacks an optional file (tokenizer_config.json), for the missing-file test.
  const lacking = path.join(out, 'models', 'without-tokenizer-config');
  fs.cpSync(path.join(tinyTasksDir, MODEL), lacking, { recursive: true });
  fs.rmSync(path.join(lacking, 'tokenizer_config.json'));
  browser = await launchBrowser({ extensions: [out] });
  const target = await browser.waitForTarget((t) => t.type() === 'service_worker' && t.url().startsWith('chrome-extension://'), { timeout: 30_000 });
  extensionId = new URL(target.url()).host;
  serviceWorker = await target.worker();
});

after(async () => {
  await browser?.close();
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

describe('the MV3 extension (demos/extension)', () => {
  test('the side panel classifies the text of its URL as Python does, threaded, with no CSP violation', async () => {
    panel = await openPanel(`?text=${encodeURIComponent(FROM_URL)}`);
    const shown = await result(panel, 1);
    assert.equal(shown.state, 'done', shown.error);
    assertClose(shown.labels, expected(FROM_URL), tiny.tolerance);
    const env = await panel.evaluate(() => ({
      isolated: self.crossOriginIsolated,
      device: document.body.dataset.device,
      threads: Number(document.body.dataset.threads),
      cores: navigator.hardwareConcurrency,
      violations: window.cspViolations,
    }));
    // 'auto' on SwiftShader is WASM; the manifest's COOP/COEP isolate the page: the threaded build.
    assert.equal(env.device, 'wasm');
    assert.equal(env.isolated, true);
    assert.equal(env.threads, Math.min(4, env.cores));
    assert.deepEqual(env.violations, []);
    assert.deepEqual(panel.problems, []);
  });

  test('text from the service worker (the context menu) reaches the panel and is classified', async () => {
    assert.ok(panel, 'the first test opened the panel');
    await serviceWorker.evaluate((text) => globalThis.classifyInPanel(text), FROM_MENU);
    const shown = await result(panel, 2);
    assert.equal(shown.state, 'done', shown.error);
    assert.equal(shown.text, FROM_MENU);
    assertClose(shown.labels, expected(FROM_MENU), tiny.tolerance);
    assert.deepEqual(await panel.evaluate(() => window.cspViolations), []);
    assert.deepEqual(panel.problems, []);
  });

  test('a file the extension does not ship counts as missing', async () => {
    const got = await evaluateWithin(panel, 60, async (text) => {
      const { pipeline } = await import('./webformers/index.js');
      const pipe = await pipeline('text-classification', '/models/without-tokenizer-config', { device: 'wasm' });
      const output = await pipe(text, { top_k: null });
      await pipe.dispose();
      const missing = await pipeline('text-classification', '/models/not-packaged').then(
        () => null,
        (e) => ({ code: e.code, message: e.message }),
      );
      return { output, missing };
    }, FROM_URL);
    assertClose(got.output, expected(FROM_URL), tiny.tolerance);
    assert.equal(got.missing?.code, 'file');
    assert.match(got.missing.message, /not-packaged is not a model: chrome-extension:\/\/\w+\/models\/not-packaged\/config\.json was not found/);
  });

  test('the CSP check sees a violation (an inline script, which the extension forbids)', async () => {
    // (eval would not do: puppeteer's evaluations may eval whatever the page's CSP says.)
    const violations = await panel.evaluate(async () => {
      const script = document.createElement('script');
      script.textContent = 'window.inlineRan = true;';
      document.body.append(script);
      await new Promise((resolve) => setTimeout(resolve, 100)); // the event comes a task later
      return { ran: window.inlineRan === true, seen: window.cspViolations };
    });
    assert.equal(violations.ran, false);
    assert.ok(violations.seen.length > 0, 'no securitypolicyviolation event');
    for (const v of violations.seen) assert.match(v, /^script-src-elem: inline$/);
  });
});

describe('in a service worker', () => {
  test('pipeline() rejects with a clear Error, not import()’s TypeError', async () => {
    const server = await testServer();
    const page = await openPage(browser, server.url);
    try {
      const reply = await evaluateWithin(page, 60, async (model) => {
        const registration = await navigator.serviceWorker.register('/service-worker.mjs', { type: 'module' });
        const worker = registration.installing ?? registration.waiting ?? registration.active;
        const answered = new Promise((resolve) => navigator.serviceWorker.addEventListener('message', (e) => resolve(e.data), { once: true }));
        worker.postMessage({ model });
        return answered;
      }, `/fixtures/tiny-tasks/${MODEL}`);
      assert.equal(reply.name, 'WebformersError', JSON.stringify(reply));
      assert.equal(reply.code, 'unsupported');
      assert.match(reply.message, /cannot run in a service worker.*side panel or an offscreen document/);
    } finally {
      await page.close();
      await server.close();
    }
  });
});
