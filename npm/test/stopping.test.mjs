// Stopping a generation from JS (src/stopping.js, src/call.js), without the engine: the call's
// AbortSignal and InterruptableStoppingCriteria never cross into the engine (or a worker: they
// cannot be cloned), and they set the task's interrupt flag through its `interrupt` operation.
// The engine's side (the flag stops generation after the current token) is tested in Rust:
// tests/generation.rs and tests/decoders.rs (pipeline_options_and_interrupt).

import assert from 'node:assert/strict';
import test from 'node:test';

import { callArgs } from '../src/call.js';
import { InterruptableStoppingCriteria, linkInterrupt } from '../src/stopping.js';

test('callArgs takes the signal and the interruptable criteria out of the options', () => {
  const controller = new AbortController();
  const criteria = new InterruptableStoppingCriteria();
  const { options, interrupt } = callArgs('text_or_chat', ['hi', { max_new_tokens: 3, signal: controller.signal, stopping_criteria: [criteria] }]);
  assert.deepEqual(options, { max_new_tokens: 3 });
  assert.equal(interrupt.signal, controller.signal);
  assert.deepEqual(interrupt.criteria, [criteria]);
  structuredClone(options); // what a worker is sent
  assert.equal(callArgs('text_or_chat', ['hi', { max_new_tokens: 3 }]).interrupt, null);
});

test('the signal and the criteria set the flag while the run is linked', async () => {
  const calls = [];
  const invoke = async (method) => calls.push(method);
  const controller = new AbortController();
  const criteria = new InterruptableStoppingCriteria();
  const unlink = await linkInterrupt({ signal: controller.signal, criteria: [criteria] }, invoke);
  assert.deepEqual(calls, ['reset_interrupt']);
  criteria.interrupt();
  controller.abort();
  assert.deepEqual(calls, ['reset_interrupt', 'interrupt', 'interrupt']);
  assert.deepEqual(criteria._call([[1], [2]]), [true, true]);
  unlink();
  assert.deepEqual(calls.slice(3), ['reset_interrupt'], 'unlinked: the flag this run set is cleared');
  criteria.reset();
  criteria.interrupt();
  assert.equal(calls.length, 4, 'unlinked: no more calls');
});

test('an aborted signal or an interrupted criteria stops the run from its start', async () => {
  const calls = [];
  const invoke = async (method) => calls.push(method);
  const unlink = await linkInterrupt({ signal: AbortSignal.abort(), criteria: [] }, invoke);
  unlink();
  const criteria = new InterruptableStoppingCriteria();
  criteria.interrupt();
  await linkInterrupt({ signal: null, criteria: [criteria] }, invoke);
  assert.deepEqual(calls, ['interrupt', 'reset_interrupt', 'interrupt']);
  assert.equal(typeof (await linkInterrupt(null, invoke)), 'function');
  assert.equal(calls.length, 3);
});
