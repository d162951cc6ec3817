// Compares two runtimes' results of a pipeline task on the same inputs (bench/task-checks.json):
// text-classification's, image-classification's and zero-shot-image-classification's labels and
// scores, question-answering's answers and scores. Used by
// bench/transformersjs/tasks.mjs (Node) and bench/js/tasks-browser.mjs (Chromium).

/** Answers as both runtimes spell them: Transformers.js decodes tokens (lowercased, spaces around
 * punctuation cleaned), webformers slices the context. */
const norm = (s) => String(s).toLowerCase().replace(/\s+/g, '');

/**
 * `want` and `got`: what each runtime returned for the task's check inputs. Returns
 * { items, agree (labels or answers equal), max_score_diff, max_rel_score_diff, by_item (each
 * input's max_score_diff: image inputs differ in how each runtime resizes and decodes them) }.
 */
export function compareTask(task, want, got) {
  const w = Array.isArray(want) ? want : [want];
  const g = Array.isArray(got) ? got : [got];
  if (w.length !== g.length) throw new Error(`${task}: ${w.length} results against ${g.length}`);
  let agree = 0;
  let maxDiff = 0;
  let maxRel = 0;
  const byItem = [];
  const note = (a, b) => {
    byItem[byItem.length - 1] = Math.max(byItem.at(-1), Math.abs(a - b));
    maxDiff = Math.max(maxDiff, Math.abs(a - b));
    maxRel = Math.max(maxRel, Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30));
  };
  for (let i = 0; i < w.length; i++) {
    byItem.push(0);
    if (['text-classification', 'image-classification', 'zero-shot-image-classification'].includes(task)) {
      // Every label's score (top_k: null; zero-shot gives every candidate label), best first.
      const a = [w[i]].flat();
      const b = [g[i]].flat();
      if (a[0].label === b[0].label) agree++;
      const scores = new Map(b.map((x) => [x.label, x.score]));
      for (const x of a) note(x.score, scores.get(x.label) ?? NaN);
    } else if (task === 'question-answering') {
      if (norm(w[i].answer) === norm(g[i].answer)) agree++;
      note(w[i].score, g[i].score);
    } else {
      throw new Error(`no comparison for ${task}`);
    }
  }
  return {
    items: w.length,
    agree,
    max_score_diff: Number(maxDiff.toPrecision(3)),
    max_rel_score_diff: Number(maxRel.toPrecision(3)),
    by_item: byItem.map((x) => Number(x.toPrecision(3))),
  };
}

/** Calls a Transformers.js pipeline of `task` on `input` as the task's call takes it. */
export async function callTransformersJs(pipe, task, input, options = {}) {
  if (task === 'question-answering') {
    if (Array.isArray(input)) {
      const out = [];
      for (const x of input) out.push(await pipe(x.question, x.context, options));
      return out;
    }
    return pipe(input.question, input.context, options);
  }
  if (task === 'zero-shot-image-classification') {
    // (images, candidate_labels, options), as webformers also takes the labels in the options.
    const { candidate_labels: labels, ...rest } = options;
    return pipe(input, labels, rest);
  }
  return pipe(input, options);
}
