// Stopping a generation from JavaScript, as transformers.js does it:
//   const stopping_criteria = new InterruptableStoppingCriteria();
//   generator(messages, { stopping_criteria });   // later: stopping_criteria.interrupt();
// and with an AbortSignal: generator(messages, { signal: controller.signal }).
// The engine checks one interrupt flag before every token; the pipeline sets it (its task's
// `interrupt` operation) when the signal aborts or the criteria is interrupted. The call then
// resolves with what was generated so far (stats.stop_reason 'interrupted').

export class InterruptableStoppingCriteria {
  constructor() {
    this.interrupted = false;
    /** @type {Set<() => void>} the runs in flight that this criteria stops */
    this.listeners = new Set();
  }

  /** Stops the generations it was passed to after their current token (and later ones until reset). */
  interrupt() {
    this.interrupted = true;
    for (const stop of this.listeners) stop();
  }

  reset() {
    this.interrupted = false;
  }

  /** transformers.js's StoppingCriteria call: one flag a sequence. */
  _call(input_ids) {
    return new Array(input_ids?.length ?? 1).fill(this.interrupted);
  }
}

/** The call options' `signal` and interruptable criteria (one, or in a list). */
export function interruptSources(signal, stopping_criteria) {
  const list = stopping_criteria == null ? [] : Array.isArray(stopping_criteria) ? stopping_criteria : [stopping_criteria];
  const criteria = list.filter((c) => c instanceof InterruptableStoppingCriteria);
  return signal || criteria.length ? { signal: signal ?? null, criteria } : null;
}

/**
 * Links a run to its interrupt sources: resets the engine's flag (or sets it, when the signal is
 * already aborted or a criteria already interrupted, as transformers.js would stop at once), then
 * sets it whenever one fires. `invoke(method)` calls the task's operation; returns the unlink,
 * which clears the flag again if this run set it, so that a later call (with other sources, or
 * none) is not stopped by this one's signal. (A criteria that stays interrupted stops its next run
 * from that run's own link.)
 */
export async function linkInterrupt(sources, invoke) {
  if (!sources) return () => {};
  const { signal, criteria } = sources;
  let fired = false;
  const stop = () => {
    fired = true;
    invoke('interrupt').catch(() => {});
  };
  fired = !!signal?.aborted || criteria.some((c) => c.interrupted);
  await invoke(fired ? 'interrupt' : 'reset_interrupt');
  signal?.addEventListener('abort', stop);
  for (const c of criteria) c.listeners.add(stop);
  return () => {
    signal?.removeEventListener('abort', stop);
    for (const c of criteria) c.listeners.delete(stop);
    if (fired) invoke('reset_interrupt').catch(() => {});
  };
}
