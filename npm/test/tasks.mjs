// The tiny task models (tests/fixtures/tiny-tasks/{arch}-{head}) and Python's answers for them
// (tests/fixtures/tiny-tasks-reference.json, made by tests/reference/make_tiny_task_models.py):
// each case is the two arguments of a transformers.js call and what the Python pipeline returned.
// Shared by node.test.mjs (WASM in Node) and browser.test.mjs (WASM and WebGPU in Chromium).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir } from './helpers.mjs';

export const tinyTasksDir = path.join(fixturesDir, 'tiny-tasks');

/**
 * The reference: `{tolerance, cases: [{task, model, input, options, output}]}`, with the shape
 * transformers.js gives where it differs from Python's (as tests/common.rs `task_cases` does):
 * several texts with `top_k: 1` give one flat list of labels, not a list per text.
 */
export function tinyTasksReference() {
  const ref = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'tiny-tasks-reference.json'), 'utf8'));
  for (const c of ref.cases) {
    if (c.task === 'text-classification' && Array.isArray(c.input) && c.options?.top_k === 1) c.output = c.output.flat();
  }
  return ref;
}

/**
 * The cases grouped by pipeline (task and model), in the fixture's order, each case with its
 * index in the fixture: one pipeline per group runs all of its cases.
 */
export function taskGroups(ref) {
  const groups = new Map();
  ref.cases.forEach((c, index) => {
    const key = `${c.task} ${c.model}`;
    if (!groups.has(key)) groups.set(key, { task: c.task, model: c.model, cases: [] });
    groups.get(key).cases.push({ index, input: c.input, options: c.options, output: c.output });
  });
  return [...groups.values()];
}

/** How far a detected box's corners may be from the reference's (tests/common.rs BOX_TOLERANCE_PX). */
export const BOX_TOLERANCE_PX = 0.5;

/**
 * Asserts that `actual` has `expected`'s structure: the same keys and lengths, strings and
 * booleans equal, integers (token ids, offsets, indices) equal, other numbers within
 * `tolerance`. `where` names the place in the messages.
 */
export function assertClose(actual, expected, tolerance, where = '') {
  const at = where || '(top)';
  // Box corners (object-detection) are pixels: within half a pixel, as tests/common.rs has it.
  if (/\.(xmin|ymin|xmax|ymax)$/.test(where)) tolerance = Math.max(tolerance, BOX_TOLERANCE_PX);
  if (typeof expected === 'number') {
    assert.equal(typeof actual, 'number', `${at}: expected a number, got ${JSON.stringify(actual)}`);
    if (Number.isInteger(expected) && Number.isInteger(actual)) {
      assert.equal(actual, expected, `${at}: ${actual} != ${expected}`);
    } else {
      assert.ok(Math.abs(actual - expected) <= tolerance, `${at}: ${actual} differs from ${expected} by more than ${tolerance}`);
    }
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${at}: expected an array of ${expected.length}, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${at}: ${actual.length} items instead of ${expected.length}: ${JSON.stringify(actual)}`);
    expected.forEach((e, i) => assertClose(actual[i], e, tolerance, `${where}[${i}]`));
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object' && !Array.isArray(actual), `${at}: expected an object, got ${JSON.stringify(actual)}`);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${at}: keys of ${JSON.stringify(actual)}`);
    for (const key of Object.keys(expected)) assertClose(actual[key], expected[key], tolerance, `${where}.${key}`);
  } else {
    assert.equal(actual, expected, `${at}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
  }
}

/**
 * Checks a group's outputs (`[{value} | {error}]`, one per case, or `{error}` when the pipeline
 * did not load) against the reference; every failing case is listed in one message.
 */
export function checkGroup(group, outcome, tolerance) {
  if (outcome.error) assert.fail(`${group.task} on ${group.model} did not load: ${outcome.error}`);
  const failures = [];
  group.cases.forEach((c, i) => {
    const got = outcome.outputs[i];
    const call = `case ${c.index}: (${JSON.stringify(c.input).slice(0, 80)}, ${JSON.stringify(c.options)})`;
    if (got.error) {
      failures.push(`${call} rejected: ${got.error}`);
      return;
    }
    try {
      assertClose(got.value, c.output, tolerance);
    } catch (e) {
      failures.push(`${call}: ${e.message}`);
    }
  });
  assert.deepEqual(failures, [], `${failures.length} of ${group.cases.length} cases differ from Python:\n${failures.join('\n')}`);
}

/**
 * Runs a group's cases on one pipeline: `pipeline` is the package's, `base` where the models are
 * (a folder, or a URL path in a page). Self-contained, so that a page can run it too (as source).
 */
export async function runGroup(pipeline, base, device, group) {
  let pipe;
  try {
    pipe = await pipeline(group.task, `${base}${group.model}`, { device });
  } catch (e) {
    return { error: `${e.code}: ${e.message}` };
  }
  const outputs = [];
  for (const c of group.cases) {
    try {
      outputs.push({ value: await pipe(c.input, c.options) });
    } catch (e) {
      outputs.push({ error: `${e.code}: ${e.message}` });
    }
  }
  const device_ = pipe.device;
  await pipe.dispose();
  return { device: device_, outputs };
}
