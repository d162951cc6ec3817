// The demo gallery: demos/index.html links every demo page there is and every link resolves;
// scripts/build-demos.sh writes the gallery as static files that serve from one folder (nothing
// else mounted, with the headers of its _headers file), where the index opens a demo that runs its
// models in Chromium, threaded, and whose pages default to Hub ids (the chat page's model fetched
// from the Hub stand-in, which the build names with --remote-host). Screenshots go to
// target/screenshots/ (a CI artifact), as the demo tests' own do. Needs `npm run build` first
// (the built folder copies npm/dist).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../scripts/static-server.mjs';
import { fixturesDir, launchBrowser, openPage, root, saveScreenshot } from './helpers.mjs';
import { startHub } from './hub-server.mjs';

const demosDir = path.join(root, 'demos');
/** The chat page's default model on a static build (demos/chat/main.js). */
const CHAT_MODEL = 'HuggingFaceTB/SmolLM2-135M-Instruct';

/** The hrefs of the index's demo list. */
function indexLinks(dir) {
  const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
  const list = html.match(/<ul class="demos">([\s\S]*?)<\/ul>/);
  assert.ok(list, 'index.html has no <ul class="demos">');
  return [...list[1].matchAll(/<a href="([^"]+)"/g)].map((m) => m[1]);
}

/** The page a link opens in `dir`: a folder's index.html, or the file itself. */
const pageOf = (dir, href) => path.join(dir, href.endsWith('/') ? `${href}index.html` : href);

/** Every demo page under demos/: each folder's index.html, and each top-level page but the index. */
function demoPages() {
  return fs
    .readdirSync(demosDir, { withFileTypes: true })
    .flatMap((e) => {
      if (e.isDirectory() && fs.existsSync(path.join(demosDir, e.name, 'index.html'))) return [`${e.name}/`];
      if (e.isFile() && e.name.endsWith('.html') && e.name !== 'index.html') return [e.name];
      return [];
    })
    .sort();
}

describe('demos/index.html', () => {
  test('links every demo page under demos/, and every link resolves to a page', () => {
    const links = indexLinks(demosDir);
    assert.deepEqual([...links].sort(), demoPages());
    assert.ok(links.length >= 8, `${links.length} demos`);
    for (const href of links) assert.ok(fs.existsSync(pageOf(demosDir, href)), `${href}: no page`);
  });
});

describe('scripts/build-demos.sh: the gallery as static files', () => {
  let out;
  let server;
  let browser;
  let hub;
  before(async () => {
    // The chat page's Hub id, served by the stand-in (the tiny Llama under its name).
    hub = await startHub({ [CHAT_MODEL]: path.join(fixturesDir, 'tiny-llama') });
    out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-gallery-')), 'site');
    execFileSync(path.join(root, 'scripts', 'build-demos.sh'), ['--skip-package-build', '--remote-host', hub.endpoint, out], { stdio: 'inherit' });
    // The folder alone, with what its _headers file asks for (threads: crossOriginIsolated).
    const headers = fs.readFileSync(path.join(out, '_headers'), 'utf8');
    assert.match(headers, /Cross-Origin-Opener-Policy: same-origin/);
    assert.match(headers, /Cross-Origin-Embedder-Policy: require-corp/);
    server = await startServer({ mounts: { '/': out }, isolate: true });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await hub?.close();
    if (out) fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });

  test('holds every linked page, the package and the samples the pages start on', () => {
    for (const href of indexLinks(out)) assert.ok(fs.existsSync(pageOf(out, href)), `${href}: not in the built folder`);
    for (const f of ['index.js', 'worker.js', 'thread-worker.js', 'wasm/webformers_wasm_bg.wasm', 'wasm/webformers_wasm_threaded_bg.wasm', 'wasm/webformers_wasm_relaxed_bg.wasm', 'wasm/webformers_wasm_threaded_relaxed_bg.wasm']) {
      assert.ok(fs.existsSync(path.join(out, 'webformers', f)), `webformers/${f} missing`);
    }
    for (const f of ['images/cat.jpg', 'tiny-tasks/bert-masked-lm/model.safetensors', 'seq2seq/tiny-marian/config.json']) {
      assert.ok(fs.existsSync(path.join(out, 'fixtures', f)), `fixtures/${f} missing`);
    }
  });

  test('served from the folder alone: the index opens the text-tasks demo, which runs its five models threaded', { timeout: 240_000 }, async () => {
    const p = await openPage(browser, server.url);
    const listed = await p.evaluate(() => [...document.querySelectorAll('ul.demos a')].map((a) => a.getAttribute('href')));
    assert.deepEqual(listed, indexLinks(out));
    await saveScreenshot(p, 'gallery');
    await Promise.all([p.waitForNavigation(), p.click('a[href="text-tasks/"]')]);
    await p.waitForFunction(() => document.body.dataset.runs === '1' || document.body.dataset.state === 'error', { timeout: 200_000 });
    const out_ = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      isolated: globalThis.crossOriginIsolated,
      done: [...document.querySelectorAll('.task')].map((card) => [card.id, card.dataset.done, card.querySelector('.error')?.textContent ?? '']),
      fillMask: document.querySelectorAll('#fill-mask .rows li').length,
    }));
    assert.equal(out_.state, 'ready', out_.error);
    assert.equal(out_.isolated, true);
    assert.equal(out_.done.length, 5);
    for (const [task, done, error] of out_.done) assert.equal(done, 'ok', `${task}: ${error}`);
    assert.equal(out_.fillMask, 5);
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'gallery-text-tasks');
    await p.close();
  });

  test("its pages' default models are Hub ids: the chat page loads HuggingFaceTB/SmolLM2-135M-Instruct from the Hub, not its tiny stand-in", { timeout: 120_000 }, async () => {
    assert.match(fs.readFileSync(path.join(out, 'site.js'), 'utf8'), /MODELS_FROM = 'hub'/);
    await hub.reset();
    const p = await openPage(browser, `${server.url}chat/`);
    await p.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), { timeout: 100_000 });
    const page = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      model: document.getElementById('model').textContent,
      fellBack: !document.getElementById('note').hidden,
    }));
    assert.equal(page.state, 'ready', page.error);
    assert.equal(page.fellBack, false, 'the page fell back to its tiny model');
    assert.equal(page.model, `model: ${CHAT_MODEL}`);
    const fetched = (await hub.stats()).requests.filter((r) => r.method === 'GET' && (r.status === 200 || r.status === 206)).map((r) => r.file);
    for (const file of ['model.safetensors', 'tokenizer.json']) assert.ok(fetched.some((f) => f?.endsWith(file)), `${file} not fetched: ${JSON.stringify(fetched)}`);
    assert.deepEqual(p.problems, []);
    await p.close();
  });
});
