// The image tasks of the built package (dist/) in Node, on WASM: every case of
// tests/fixtures/vision/*-reference.json through `pipeline()` against Python's answers (files
// decoded by the engine, as PIL decodes them: the reference's own tolerance), each input type
// Node takes (a path, a file: URL, an http URL, a Blob, a RawImage, a mixed array), RawImage,
// and bad input.
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../scripts/static-server.mjs';
import { NODE_DEVICES, deviceLabel, distDir, fixturesDir, rejectsWith } from './helpers.mjs';
import { checkGroup } from './tasks.mjs';
import { imageNames, imagesDir, lossless, runVisionGroup, visionDir, visionGroups, visionReferences } from './vision.mjs';

const { pipeline, RawImage, WebformersError } = await import(path.join(distDir, 'index.js'));

const refs = visionReferences();

const rejects = (promise, pattern, code) => rejectsWith(WebformersError, promise, pattern, code);

/**
 * The first case of `task` on one lossless image (what every input type must reproduce exactly),
 * with its reference's tolerance; null when no reference has one.
 */
function oneImageCase(task) {
  for (const ref of refs) {
    const index = ref.cases.findIndex((c) => c.task === task && typeof c.input === 'string' && lossless(c.input));
    if (index >= 0) return { ...ref.cases[index], index, tolerance: ref.tolerance, file: ref.file };
  }
  return null;
}

test('the vision references are there (tests/fixtures/vision/*-reference.json)', () => {
  assert.ok(refs.length > 0, `no *-reference.json in ${visionDir}`);
});

for (const device of NODE_DEVICES) {
  for (const ref of refs) {
    describe(`${ref.file} on ${deviceLabel(device)} in Node (files decoded by the engine)`, () => {
      for (const group of visionGroups(ref)) {
        // Every case, JPEGs included: the engine decodes every test image to Pillow's exact pixels.
        test(`${group.task} on ${group.model} (${group.cases.length} cases)`, { timeout: 300_000 }, async () => {
          const names = group.cases.flatMap((c) => imageNames(c.input));
          const outcome = await runVisionGroup(pipeline, `${visionDir}/`, `${imagesDir}/`, device, group, names);
          checkGroup(group, outcome, ref.tolerance);
          assert.equal(outcome.device, device);
        });
      }
    });
  }
}

for (const device of NODE_DEVICES) {
  describe(`image inputs in Node on ${deviceLabel(device)}`, () => {
    const c = oneImageCase('image-classification');
    let server;
    let classifier;
    before(async () => {
      server = await startServer({ mounts: { '/images/': imagesDir, '/fixtures/': fixturesDir } });
      if (c) classifier = await pipeline(c.task, path.join(visionDir, c.model), { device });
    });
    after(async () => {
      await classifier?.dispose();
      await server?.close();
    });

    test('a path, a file: URL, an http URL, a Blob, a RawImage and an array of them give the reference', { skip: !c && 'no image-classification reference' }, async () => {
      const file = path.join(imagesDir, c.input);
      const bytes = fs.readFileSync(file);
      const inputs = {
        path: file,
        'file: URL': pathToFileURL(file).href,
        'http URL': `${server.url}images/${c.input}`,
        'relative path': path.relative(process.cwd(), file),
        Blob: new Blob([bytes], { type: 'image/png' }),
        RawImage: await RawImage.read(file),
      };
      for (const [what, input] of Object.entries(inputs)) {
        checkGroup({ task: c.task, model: `${c.model} (${what})`, cases: [c] }, { outputs: [{ value: await classifier(input, c.options) }] }, c.tolerance);
      }
      const all = Object.values(inputs);
      const many = await classifier(all, c.options);
      assert.equal(many.length, all.length);
      const expected = Array.isArray(c.output[0]) ? c.output[0] : c.output;
      for (const [i, one] of many.entries()) {
        checkGroup({ task: c.task, model: `${c.model} (array item ${i})`, cases: [{ ...c, output: expected }] }, { outputs: [{ value: one }] }, c.tolerance);
      }
    });

    test('bad input rejects with a clear error', { skip: !c && 'no image-classification reference' }, async () => {
      await rejects(classifier('a photo of a cat'), /could not read the image a photo of a cat: no such file/, 'file');
      await rejects(classifier(42), /image-classification takes an image \(a URL or path, .*\) or an array of them, not a number/, 'input');
      await rejects(classifier([]), /empty array of images/, 'input');
      await rejects(classifier({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }), /12 bytes, not 5/, 'input');
      // Not an image: a JSON file, a broken Blob, an HTTP 404.
      await rejects(classifier(path.join(fixturesDir, 'tiny-tasks-reference.json')), /image|decode|format/i, 'input');
      await rejects(classifier(new Blob(['not an image'], { type: 'image/png' })), /image|decode|format/i, 'input');
      await rejects(classifier(`${server.url}images/missing.png`), /could not fetch the image at .*missing\.png: HTTP 404/, 'file');
      // The pipeline still works.
      const out = await classifier(path.join(imagesDir, c.input), c.options);
      checkGroup({ task: c.task, model: c.model, cases: [c] }, { outputs: [{ value: out }] }, c.tolerance);
    });
  });
}

describe('RawImage in Node', () => {
  test('read decodes as the engine does; rgb, grayscale, convert, fromTensor, clone', async () => {
    const image = await RawImage.read(path.join(imagesDir, 'gradient.png'));
    assert.ok(image.width > 0 && image.height > 0);
    assert.equal(image.data.length, image.width * image.height * image.channels);
    assert.deepEqual(image.size, [image.width, image.height]);
    const rgb = image.clone().rgb();
    assert.equal(rgb.channels, 3);
    const gray = new RawImage(new Uint8ClampedArray([10, 20, 30, 255, 255, 255]), 2, 1, 3).grayscale();
    // transformers.js's weights: 0.2989 R + 0.587 G + 0.114 B, rounded.
    assert.deepEqual([...gray.data], [Math.round(0.2989 * 10 + 0.587 * 20 + 0.114 * 30), 255]);
    assert.deepEqual([...new RawImage(new Uint8Array([7, 9]), 2, 1, 1).rgba().data], [7, 7, 7, 255, 9, 9, 9, 255]);
    const chw = RawImage.fromTensor({ dims: [3, 1, 2], data: new Uint8Array([1, 2, 3, 4, 5, 6]) });
    assert.deepEqual([chw.width, chw.height, chw.channels, ...chw.data], [2, 1, 3, 1, 3, 5, 2, 4, 6]);
    assert.throws(() => RawImage.fromTensor({ dims: [2, 2], data: new Uint8Array(4) }), /3 dimensions/);
    assert.throws(() => image.toCanvas(), /needs a browser/);
  });

  test("resize gives Pillow's pixels: every filter on the lossless test images (image-reference/reference.json)", async () => {
    // Made by tests/reference/make_image_reference.py: Image.resize's output hashed, per filter.
    const reference = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'image-reference', 'reference.json'), 'utf8'));
    const failures = [];
    const decoded = new Map();
    for (const c of reference.resize) {
      if (!decoded.has(c.image)) decoded.set(c.image, await RawImage.read(path.join(imagesDir, c.image)));
      // As the reference script: gray stays gray ('L'), everything else converted to RGB.
      const image = decoded.get(c.image).clone().convert(c.channels === 1 ? 1 : 3);
      const out = await image.resize(c.width, c.height, { resample: c.resample });
      const sha = createHash('sha256').update(out.data).digest('hex');
      if (sha !== c.sha256) {
        const sum = out.data.reduce((a, b) => a + b, 0);
        failures.push(`${c.image} to ${c.width}x${c.height} with filter ${c.resample}: sum ${sum} instead of ${c.sum}`);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${reference.resize.length} resizes differ from Pillow's`);
  });

  test("read decodes with the engine: Pillow's exact pixels, JPEGs included (image-reference/reference.json)", async () => {
    const dir = path.join(fixturesDir, 'image-reference');
    const reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
    for (const [name, want] of Object.entries(reference.decode)) {
      const image = (await RawImage.read(path.join(imagesDir, name))).rgb();
      assert.deepEqual([image.width, image.height], [want.width, want.height], name);
      assert.equal(createHash('sha256').update(image.data).digest('hex'), want.rgb_sha256, `${name}: not Pillow's pixels`);
    }
  });

  test("resize: small cases worked out from Pillow's Resample.c by hand; sizes and filters checked", async () => {
    // Small cases worked out from Pillow's Resample.c by hand: a black and a white pixel, doubled.
    const bw = new RawImage(new Uint8ClampedArray([0, 255]), 2, 1, 1);
    const row = async (resample) => [...(await bw.resize(4, 1, { resample })).data];
    assert.deepEqual(await row(0), [0, 0, 255, 255]);
    assert.deepEqual(await row(2), [0, 64, 191, 255]);
    assert.deepEqual(await row('bilinear'), [0, 64, 191, 255]);
    assert.deepEqual(await row(4), [0, 0, 255, 255]);
    const resized = await bw.resize(null, 2);
    assert.deepEqual([resized.width, resized.height], [4, 2]);
    await assert.rejects(bw.resize(4, 1, { resample: 'cubic' }), /unknown resampling filter 'cubic'/);
    await assert.rejects(bw.resize(0, 1), /positive integer sizes/);
  });
});
