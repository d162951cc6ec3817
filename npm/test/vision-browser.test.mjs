// The image tasks of the built package in headless Chromium (puppeteer-core), on WASM and WebGPU
// (SwiftShader here): the cases of tests/fixtures/vision/*-reference.json through `pipeline()`
// with images decoded by the browser, every input type a page can pass (a URL, a Blob, a File, an
// image element, an ImageBitmap, ImageData, a canvas, an OffscreenCanvas, a RawImage, an array),
// worker pipelines, the browser's decoding measured against the engine's (PIL's), bad input,
// and the three vision demos. Every step has a timeout.
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { evaluateWithin, fixturesDir, launchBrowser, openPage, problemsBut404, saveScreenshot, testServer } from './helpers.mjs';
import { checkGroup } from './tasks.mjs';
import { imageNames, imagesDir, lossless, runVisionGroup, visionGroups, visionReferences } from './vision.mjs';

const refs = visionReferences();

/**
 * How far a browser's decoding of a JPEG or WebP may be from Pillow's, in levels of 255 (another
 * decoder build may round its IDCT or chroma upsampling otherwise). Measured: Chromium here gives
 * Pillow's exact pixels for every test image, the JPEGs (the CMYK one too) and the WebP included
 * (libjpeg-turbo and libwebp, as Pillow's wheels); PNG, BMP and GIF must be identical anywhere.
 */
const LOSSY_DECODE_LEVELS = 2;

let server;
let browser;

before(async () => {
  server = await testServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const page = () => openPage(browser, server.url);

/**
 * The first case of `task` on one lossless, opaque image (canvases store premultiplied alpha, so
 * a canvas of a semi-transparent image is not the file's pixels); null when no reference has one.
 */
function oneImageCase(task) {
  for (const ref of refs) {
    const index = ref.cases.findIndex((c) => c.task === task && typeof c.input === 'string' && lossless(c.input) && c.input !== 'alpha.png');
    if (index >= 0) return { ...ref.cases[index], index, tolerance: ref.tolerance };
  }
  return null;
}

test('the vision references are there (tests/fixtures/vision/*-reference.json)', () => {
  assert.ok(refs.length > 0, 'no tests/fixtures/vision/*-reference.json');
});

/**
 * The test images Chromium decodes to exactly Pillow's RGB pixels (filled by the decoding test,
 * which runs first); the reference cases in the page run on these only.
 */
const exact = new Set();

describe("the browser's decoding against Pillow's (tests/fixtures/image-reference/reference.json)", () => {
  test('PNG, BMP and GIF are identical; JPEG and WebP within LOSSY_DECODE_LEVELS (measured: identical)', { timeout: 120_000 }, async () => {
    const reference = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'image-reference', 'reference.json'), 'utf8')).decode;
    const p = await page();
    const out = await evaluateWithin(
      p,
      90,
      async (reference) => {
        const { RawImage } = await import('/webformers/index.js');
        const { engine } = await import('/webformers/engine.js');
        const wasm = await engine();
        const hex = async (data) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', data))].map((b) => b.toString(16).padStart(2, '0')).join('');
        const diff = (a, b) => {
          let max = 0;
          let differ = 0;
          for (let i = 0; i < a.length; i++) {
            const d = Math.abs(a[i] - b[i]);
            if (d) differ++;
            if (d > max) max = d;
          }
          return { max, share: differ / a.length };
        };
        const result = {};
        for (const [name, want] of Object.entries(reference)) {
          try {
            // As RGB, as the processors take them (Pillow's convert('RGB')).
            const image = (await RawImage.fromURL(`/fixtures/images/${name}`)).rgb();
            const r = { width: image.width, height: image.height, sha256: await hex(image.data) };
            // Where the browser differs from Pillow's hash, how far: against the engine's decoding
            // (which gives Pillow's exact pixels, tested natively).
            let pil = null;
            if (r.sha256 !== want.rgb_sha256) {
              const e = wasm.decodeImage(new Uint8Array(await (await fetch(`/fixtures/images/${name}`)).arrayBuffer()));
              pil = new RawImage(e.data, e.width, e.height, e.channels).rgb().data;
            }
            if (pil && pil.length === image.data.length) Object.assign(r, diff(image.data, pil));
            result[name] = r;
          } catch (e) {
            result[name] = { error: e.message };
          }
        }
        return result;
      },
      reference,
    );
    const summary = Object.entries(out).map(([name, r]) => `${name}: ${r.sha256 === reference[name].rgb_sha256 ? 'exact' : r.error ?? `up to ${r.max} levels on ${(100 * r.share).toFixed(1)}% of values`}`);
    console.log(`Chromium's decoding against Pillow's: ${summary.join('; ')}`);
    for (const [name, r] of Object.entries(out)) {
      const want = reference[name];
      assert.ok(!r.error, `${name}: ${r.error}`);
      assert.deepEqual([r.width, r.height], [want.width, want.height], name);
      if (r.sha256 === want.rgb_sha256) {
        exact.add(name);
        continue;
      }
      assert.ok(!lossless(name), `${name}: the browser's pixels are not Pillow's (up to ${r.max} levels)`);
      assert.ok(r.max <= LOSSY_DECODE_LEVELS, `${name}: the browser's pixels differ from Pillow's by up to ${r.max} levels`);
    }
    assert.deepEqual(p.problems, []);
    await p.close();
  });
});

/** In the page: a group's cases (vision.mjs's runVisionGroup, sent as source) on `device`. */
const inPage = (p, device, group, names) =>
  evaluateWithin(
    p,
    200,
    async (source, device, group, names) => {
      const { pipeline } = await import('/webformers/index.js');
      const run = new Function(`return (${source})`)();
      return run(pipeline, '/fixtures/vision/', '/fixtures/images/', device, group, names);
    },
    runVisionGroup.toString(),
    device,
    group,
    names,
  );

for (const ref of refs) {
  describe(`${ref.file} in the page (images decoded by the browser)`, () => {
    for (const device of ['wasm', 'webgpu']) {
      describe(`device '${device}'`, () => {
        let p = null;
        after(() => p?.close());
        for (const group of visionGroups(ref)) {
          // The cases on images the browser decodes exactly as Pillow (the decoding test above;
          // the lossless ones if it did not run): a level's difference can swap a tiny random
          // model's labels.
          test(`${group.task} on ${group.model} (the cases on images decoded exactly as Pillow)`, { timeout: 240_000 }, async (t) => {
            const decodedExactly = (name) => (exact.size ? exact.has(name) : lossless(name));
            const cases = group.cases.filter((c) => imageNames(c.input).every(decodedExactly));
            if (!cases.length) return t.skip('no case on such images');
            t.diagnostic(`${cases.length} of ${group.cases.length} cases`);
            const sub = { ...group, cases };
            p ??= await page();
            p.problems.length = 0;
            const outcome = await inPage(p, device, sub, cases.flatMap((c) => imageNames(c.input)));
            const problems = problemsBut404(p);
            if ([outcome, ...(outcome.outputs ?? [])].some((o) => o.error?.startsWith('panic'))) {
              await p.close();
              p = null;
            }
            checkGroup(sub, outcome, ref.tolerance);
            assert.equal(outcome.device, device);
            assert.deepEqual(problems, []);
          });
        }
      });
    }
  });
}

describe('every input type a page can pass', () => {
  const c = oneImageCase('image-classification');
  for (const device of ['wasm', 'webgpu']) {
    test(`URL, data: and blob: URLs, Blob, File, <img>, ImageBitmap, ImageData, canvas, OffscreenCanvas, RawImage, an array (${device})`, { skip: !c && 'no image-classification reference', timeout: 240_000 }, async () => {
      const p = await page();
      const out = await evaluateWithin(
        p,
        200,
        async (c, device) => {
          const { pipeline, RawImage } = await import('/webformers/index.js');
          const url = `/fixtures/images/${c.input}`;
          const blob = await (await fetch(url)).blob();
          const img = new Image();
          img.src = url;
          await img.decode();
          const bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
          const canvas = document.createElement('canvas');
          canvas.width = bitmap.width;
          canvas.height = bitmap.height;
          canvas.getContext('2d').drawImage(bitmap, 0, 0);
          const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
          offscreen.getContext('2d').drawImage(bitmap, 0, 0);
          const imageData = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
          const dataUrl = await new Promise((resolve) => {
            const reader = new FileReader();
            reader.onload = () => resolve(reader.result);
            reader.readAsDataURL(blob);
          });
          const inputs = {
            'relative URL': url,
            'absolute URL': new URL(url, location.href).href,
            'data: URL': dataUrl,
            'blob: URL': URL.createObjectURL(blob),
            Blob: blob,
            File: new File([blob], c.input, { type: blob.type }),
            HTMLImageElement: img,
            ImageBitmap: bitmap,
            ImageData: imageData,
            HTMLCanvasElement: canvas,
            OffscreenCanvas: offscreen,
            RawImage: await RawImage.read(url),
          };
          const classifier = await pipeline(c.task, `/fixtures/vision/${c.model}`, { device });
          const results = {};
          for (const [what, input] of Object.entries(inputs)) {
            results[what] = await classifier(input, c.options).then((value) => ({ value }), (e) => ({ error: `${e.code}: ${e.message}` }));
          }
          const all = await classifier(Object.values(inputs), c.options);
          all.forEach((value, i) => (results[`array item ${i}`] = { value }));
          const used = classifier.device;
          await classifier.dispose();
          return { device: used, results };
        },
        c,
        device,
      );
      assert.equal(out.device, device);
      const names = Object.keys(out.results);
      checkGroup(
        { task: c.task, model: `${c.model}: ${names.join(', ')}`, cases: names.map((n) => ({ ...c, index: n })) },
        { outputs: Object.values(out.results) },
        c.tolerance,
      );
      assert.deepEqual(p.problems, []);
      await p.close();
    });
  }

  test('a worker pipeline takes them too (elements and canvases become pixels on this side)', { skip: !c && 'no image-classification reference', timeout: 240_000 }, async () => {
    const p = await page();
    const out = await evaluateWithin(
      p,
      200,
      async (c) => {
        const { workerPipeline, RawImage } = await import('/webformers/index.js');
        const url = `/fixtures/images/${c.input}`;
        const blob = await (await fetch(url)).blob();
        const img = new Image();
        img.src = url;
        await img.decode();
        const raw = await RawImage.read(url);
        const canvas = raw.toCanvas();
        const element = document.createElement('canvas');
        element.width = raw.width;
        element.height = raw.height;
        element.getContext('2d').drawImage(canvas, 0, 0);
        const bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
        const worker = new Worker('/webformers/worker.js', { type: 'module' });
        const classifier = await workerPipeline(worker, c.task, `/fixtures/vision/${c.model}`, { device: 'wasm' });
        const inputs = { 'relative URL': url, Blob: blob, HTMLImageElement: img, HTMLCanvasElement: element, OffscreenCanvas: canvas, ImageBitmap: bitmap, RawImage: raw };
        const results = {};
        for (const [what, input] of Object.entries(inputs)) {
          results[what] = await classifier(input, c.options).then((value) => ({ value }), (e) => ({ error: `${e.code}: ${e.message}` }));
        }
        const all = await classifier(Object.values(inputs), c.options);
        all.forEach((value, i) => (results[`array item ${i}`] = { value }));
        // The caller's RawImage is still whole (its buffer was copied, not moved).
        const intact = raw.data.length === raw.width * raw.height * raw.channels;
        const bad = await classifier('/fixtures/tiny-tasks-reference.json').then(() => 'resolved', (e) => `${e.code}: ${e.message}`);
        await classifier.dispose();
        worker.terminate();
        return { results, intact, bad };
      },
      c,
    );
    const names = Object.keys(out.results);
    checkGroup({ task: c.task, model: `${c.model} in a worker`, cases: names.map((n) => ({ ...c, index: n })) }, { outputs: Object.values(out.results) }, c.tolerance);
    assert.ok(out.intact);
    assert.match(out.bad, /^input: the image at .*tiny-tasks-reference\.json is not an image the browser can decode/);
    assert.deepEqual(p.problems, []);
    await p.close();
  });

  const z = oneImageCase('zero-shot-image-classification');
  test("zero-shot-image-classification's positional labels, in the page and in a worker", { skip: !z && 'no zero-shot-image-classification reference', timeout: 240_000 }, async () => {
    const p = await page();
    const out = await evaluateWithin(
      p,
      200,
      async (z) => {
        const { pipeline, workerPipeline } = await import('/webformers/index.js');
        const { candidate_labels, ...rest } = z.options;
        const worker = new Worker('/webformers/worker.js', { type: 'module' });
        const settle = (promise) => promise.then((value) => ({ value }), (e) => ({ error: `${e.code}: ${e.message}` }));
        const url = `/fixtures/images/${z.input}`;
        const local = await pipeline(z.task, `/fixtures/vision/${z.model}`, { device: 'wasm' });
        const remote = await workerPipeline(worker, z.task, `/fixtures/vision/${z.model}`, { device: 'wasm' });
        const outputs = [await settle(local(url, candidate_labels, rest)), await settle(remote(url, candidate_labels, rest)), await settle(local(url, z.options))];
        await local.dispose();
        await remote.dispose();
        worker.terminate();
        return outputs;
      },
      z,
    );
    checkGroup({ task: z.task, model: `${z.model} (page, worker, options)`, cases: [z, z, z] }, { outputs: out }, z.tolerance);
    assert.deepEqual(problemsBut404(p), []);
    await p.close();
  });
});

describe('bad image input rejects with a clear Error, and the pipeline goes on', () => {
  const c = oneImageCase('image-classification');
  test('text, a non-image URL, a broken Blob, a broken <img>, a number, an empty array', { skip: !c && 'no image-classification reference', timeout: 120_000 }, async () => {
    const p = await page();
    const out = await evaluateWithin(
      p,
      100,
      async (c) => {
        const { pipeline } = await import('/webformers/index.js');
        const classifier = await pipeline(c.task, `/fixtures/vision/${c.model}`, { device: 'wasm' });
        const outcome = (promise) => promise.then(() => 'resolved', (e) => `${e instanceof Error ? '' : 'not an Error '}${e.code}: ${e.message}`);
        const broken = new Image();
        broken.src = '/fixtures/tiny-tasks-reference.json';
        const result = {
          text: await outcome(classifier('a photo of a cat')),
          json: await outcome(classifier('/fixtures/tiny-tasks-reference.json')),
          blob: await outcome(classifier(new Blob(['not an image'], { type: 'image/png' }))),
          img: await outcome(classifier(broken)),
          number: await outcome(classifier(42)),
          empty: await outcome(classifier([])),
          textTask: await outcome(pipeline('text-classification', `/fixtures/vision/${c.model}`, { device: 'wasm' })),
          after: await classifier(`/fixtures/images/${c.input}`, c.options),
        };
        await classifier.dispose();
        return result;
      },
      c,
    );
    assert.match(out.text, /^file: could not fetch the image at a photo of a cat: HTTP 404/);
    assert.match(out.json, /^input: the image at \/fixtures\/tiny-tasks-reference\.json is not an image the browser can decode/);
    assert.match(out.blob, /^input: the Blob \(image\/png\) is not an image the browser can decode/);
    assert.match(out.img, /^input: the image element \(.*tiny-tasks-reference\.json\) could not be decoded/);
    assert.match(out.number, /^input: image-classification takes an image \(a URL or path, .*\) or an array of them, not a number/);
    assert.match(out.empty, /^input: image-classification was given an empty array of images/);
    assert.ok(!out.textTask.startsWith('resolved') && !out.textTask.startsWith('not an Error') && !out.textTask.startsWith('panic'), out.textTask);
    checkGroup({ task: c.task, model: c.model, cases: [c] }, { outputs: [{ value: out.after }] }, c.tolerance);
    await p.close();
  });
});

describe('RawImage in the page', () => {
  test("resize equals the engine's (Pillow's) for every filter; toCanvas, fromCanvas and toBlob round-trip", { timeout: 60_000 }, async () => {
    const p = await page();
    const out = await evaluateWithin(p, 50, async () => {
      const { RawImage } = await import('/webformers/index.js');
      const { engine } = await import('/webformers/engine.js');
      const wasm = await engine();
      const same = (a, b) => a.data.length === b.data.length && a.data.every((x, i) => x === b.data[i]);
      const image = await RawImage.read('/fixtures/images/coffee.png');
      const rgb = image.clone().rgb();
      const filters = {};
      for (const resample of [0, 1, 2, 3, 4, 5]) {
        const js = await rgb.resize(97, 61, { resample });
        filters[resample] = same(js, wasm.resizeImage(rgb, 97, 61, resample));
      }
      const small = await rgb.resize(20, 15, { resample: 3 });
      const back = RawImage.fromCanvas(small.toCanvas()).rgb();
      const png = await RawImage.fromBlob(await small.toBlob());
      return { channels: image.channels, size: small.size, filters, canvas: same(small, back), png: same(small, png.rgb()) };
    });
    assert.equal(out.channels, 4);
    assert.deepEqual(out.size, [20, 15]);
    assert.deepEqual(out.filters, { 0: true, 1: true, 2: true, 3: true, 4: true, 5: true });
    assert.ok(out.canvas && out.png);
    await p.close();
  });
});

describe('the vision demos (tiny models through ?model=)', () => {
  const demo = async (url, done) => {
    const p = await openPage(browser, `${server.url}${url}`);
    await p.waitForFunction(done, { timeout: 200_000 });
    return p;
  };
  const classification = refs.flatMap((r) => r.cases).find((c) => c.task === 'image-classification');
  test('image classification: a photo, its labels with bars, on the device it names', { skip: !classification && 'no image-classification model', timeout: 240_000 }, async () => {
    const p = await demo(`demos/image-classification/?device=wasm&model=/fixtures/vision/${classification.model}&image=/fixtures/images/cat.jpg`, () => document.body.dataset.runs === '1' || document.body.dataset.state === 'error');
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      device: document.getElementById('device').dataset.device,
      rows: [...document.querySelectorAll('#labels li')].map((li) => li.querySelector('.label').textContent),
    }));
    assert.equal(out.state, 'ready', out.error);
    assert.equal(out.device, 'wasm');
    assert.equal(out.rows.length, 5);
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'image-classification');
    await p.close();
  });

  const detection = refs.flatMap((r) => r.cases).find((c) => c.task === 'object-detection');
  test('object detection: boxes drawn on the image', { skip: !detection && 'no object-detection model', timeout: 240_000 }, async () => {
    // threshold 0: a tiny random model's scores are low; every query gives a box.
    const p = await demo(`demos/object-detection/?device=wasm&threshold=0&model=/fixtures/vision/${detection.model}&image=/fixtures/images/coffee.png`, () => document.body.dataset.runs === '1' || document.body.dataset.state === 'error');
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      device: document.getElementById('device').dataset.device,
      boxes: document.querySelectorAll('#boxes .box').length,
      listed: document.querySelectorAll('#objects li').length,
    }));
    assert.equal(out.state, 'ready', out.error);
    assert.equal(out.device, 'wasm');
    assert.ok(out.boxes > 0, 'no box drawn');
    assert.equal(out.boxes, out.listed);
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'object-detection');
    await p.close();
  });

  const clip = refs.flatMap((r) => r.cases).find((c) => c.task === 'zero-shot-image-classification');
  test('photo search: a folder of photos embedded, a query ranks them', { skip: !clip && 'no CLIP model', timeout: 240_000 }, async () => {
    const p = await demo(`demos/photo-search/?device=wasm&model=/fixtures/vision/${clip.model}&query=a%20cat`, () => (document.body.dataset.searches === '1' && document.body.dataset.state === 'ready') || document.body.dataset.state === 'error');
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      device: document.getElementById('device').dataset.device,
      photos: Number(document.body.dataset.photos),
      results: [...document.querySelectorAll('#results .result')].map((r) => Number(r.dataset.score)),
    }));
    assert.equal(out.state, 'ready', out.error);
    assert.equal(out.device, 'wasm');
    assert.ok(out.photos >= 4, `${out.photos} photos embedded`);
    assert.equal(out.results.length, out.photos);
    // Ranked: cosine similarities, best first.
    assert.deepEqual(out.results, [...out.results].sort((a, b) => b - a));
    assert.ok(out.results.every((s) => s >= -1 && s <= 1));
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'photo-search');
    await p.close();
  });
});
