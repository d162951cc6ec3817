// The tiny vision models (tests/fixtures/vision/{model}) and Python's answers for them
// (tests/fixtures/vision/*-reference.json, one per model family, made by the script each names):
// `{tolerance, cases: [{task, model, input, options, output}]}`, image inputs being file names of
// tests/fixtures/images/. The same cases the Rust harness runs (tests/vision_tasks.rs); shared by
// vision-node.test.mjs and vision-browser.test.mjs.

import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir } from './helpers.mjs';

export const visionDir = path.join(fixturesDir, 'vision');
export const imagesDir = path.join(fixturesDir, 'images');

/** Every reference file: `[{file, tolerance, cases}]` (empty while none has landed). */
export function visionReferences() {
  if (!fs.existsSync(visionDir)) return [];
  return fs
    .readdirSync(visionDir)
    .filter((f) => f.endsWith('-reference.json'))
    .sort()
    .map((file) => ({ file, ...JSON.parse(fs.readFileSync(path.join(visionDir, file), 'utf8')) }));
}

/** A reference's cases grouped by pipeline (task and model), each with its index in the file. */
export function visionGroups(ref) {
  const groups = new Map();
  ref.cases.forEach((c, index) => {
    const key = `${c.task} ${c.model}`;
    if (!groups.has(key)) groups.set(key, { task: c.task, model: c.model, cases: [] });
    groups.get(key).cases.push({ index, input: c.input, options: c.options, output: c.output });
  });
  return [...groups.values()];
}

/** Whether a file name of tests/fixtures/images is decoded the same by every decoder (lossless). */
export const lossless = (name) => /\.(png|bmp|gif)$/i.test(name);

/** The image file names an input names. */
export function imageNames(input) {
  const names = [];
  const walk = (x) => {
    if (typeof x === 'string' && fs.existsSync(path.join(imagesDir, x))) names.push(x);
    else if (Array.isArray(x)) x.forEach(walk);
  };
  walk(input);
  return names;
}

/**
 * Runs a group's cases on one pipeline; image file names in the inputs become `imageBase + name`
 * (a folder in Node, a URL path in a page). Results are plain JSON (a Tensor as `{dims, data}`
 * with nested rows, as the references hold it). Self-contained, so that a page can run it (as
 * source).
 */
export async function runVisionGroup(pipeline, modelBase, imageBase, device, group, names) {
  const mapInput = (x) => (typeof x === 'string' && names.includes(x) ? imageBase + x : Array.isArray(x) ? x.map(mapInput) : x);
  const plain = (v) => {
    if (v && typeof v.tolist === 'function' && Array.isArray(v.dims)) return { dims: v.dims, data: v.tolist() };
    return v;
  };
  let pipe;
  try {
    pipe = await pipeline(group.task, `${modelBase}${group.model}`, { device });
  } catch (e) {
    return { error: `${e.code}: ${e.message}` };
  }
  const outputs = [];
  for (const c of group.cases) {
    try {
      outputs.push({ value: plain(await pipe(mapInput(c.input), c.options)) });
    } catch (e) {
      outputs.push({ error: `${e.code}: ${e.message}` });
    }
  }
  const used = pipe.device;
  await pipe.dispose();
  return { device: used, outputs };
}
