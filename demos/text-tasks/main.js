// Text tasks: five pipelines (text-classification, token-classification, question-answering,
// fill-mask, zero-shot-classification) loaded in one Web Worker (webformers' worker.js) and run
// on one text; each result is drawn as it comes.
//
// URL parameters: ?device=auto|webgpu|wasm (default auto); ?<task>=<model> for any task (a Hub
// id, URL or /path; empty for the task's default Hub model). Default models: the tiny random
// models of the tests under /fixtures/tiny-tasks/ (scripts/demo-web.sh serves them).

import { $, el, params, setState, showError, showDevice, count, loadInWorker } from '../common.js';

const TINY = '/fixtures/tiny-tasks/';
const TASKS = [
  { task: 'text-classification', tiny: 'distilbert-sequence-classification' },
  { task: 'zero-shot-classification', tiny: 'bert-sequence-classification' },
  { task: 'token-classification', tiny: 'bert-token-classification' },
  { task: 'question-answering', tiny: 'bert-question-answering' },
  { task: 'fill-mask', tiny: 'bert-masked-lm' },
];

// ---- the models: one field per task -------------------------------------------------------------

for (const t of TASKS) {
  const input = el('input');
  input.type = 'text';
  input.id = `model-${t.task}`;
  input.value = params.has(t.task) ? params.get(t.task) : TINY + t.tiny;
  input.placeholder = `${t.task}'s default Hub model`;
  input.autocomplete = 'off';
  const label = el('label', '', t.task);
  label.htmlFor = input.id;
  $('models').append(label, input);
}
const modelOf = (task) => $(`model-${task}`).value.trim() || null;
$('use-tiny').addEventListener('click', () => {
  for (const t of TASKS) $(`model-${t.task}`).value = TINY + t.tiny;
});
$('use-hub').addEventListener('click', () => {
  for (const t of TASKS) $(`model-${t.task}`).value = '';
});

// ---- loading: one worker for every model -----------------------------------------------------

/** task → {model, pipe} (pipe: a promise), reloaded when its model field changes. */
const loaded = new Map();

function pipelineFor(task) {
  const model = modelOf(task);
  const have = loaded.get(task);
  if (have && have.model === model) return have.pipe;
  have?.pipe.then((p) => p.dispose(), () => {});
  const pipe = loadInWorker(task, model);
  loaded.set(task, { model, pipe });
  return pipe;
}

// ---- drawing the results ------------------------------------------------------------------------

/** Labels with score bars, best first. */
function scoreRows(pairs) {
  return pairs.map(([label, score]) => {
    const fill = el('div', 'fill');
    fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
    const li = el('li', '', el('span', 'label', label), el('div', 'track', fill), el('span', 'num', score.toFixed(3)));
    li.title = `${label}: ${score}`;
    return li;
  });
}

/** `text` with the character ranges of `spans` ({start, end, node(part)}) wrapped. */
function marked(text, spans) {
  const out = [];
  let at = 0;
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    if (s.start < at || s.end <= s.start) continue; // overlapping or empty: left plain
    out.push(text.slice(at, s.start), s.node(text.slice(s.start, s.end)));
    at = s.end;
  }
  out.push(text.slice(at));
  return out;
}

const draw = {
  'text-classification'(card, out) {
    card.querySelector('.out').replaceChildren(...scoreRows(out.map((r) => [r.label, r.score])));
  },
  'zero-shot-classification'(card, out) {
    card.querySelector('.out').replaceChildren(...scoreRows(out.labels.map((l, i) => [l, out.scores[i]])));
  },
  'token-classification'(card, out, { text }) {
    const spans = out
      .filter((e) => e.start !== null && e.end !== null)
      .map((e) => ({
        start: e.start,
        end: e.end,
        node: (part) => {
          const span = el('span', 'ent', part, el('sup', '', e.entity_group));
          span.dataset.group = e.entity_group;
          span.title = `${e.entity_group} ${e.score.toFixed(3)}`;
          return span;
        },
      }));
    card.querySelector('.out').replaceChildren(...marked(text, spans));
    card.dataset.entities = String(spans.length);
  },
  'question-answering'(card, out, { text, question }) {
    const node = (part) => {
      const m = el('mark', '', part);
      m.title = `score ${out.score.toFixed(3)}`;
      return m;
    };
    const head = el('div', 'muted', `Q: ${question} → `, el('strong', '', out.answer || '(no answer)'), ` (${out.score.toFixed(3)})`);
    card.querySelector('.out').replaceChildren(head, ...marked(text, [{ start: out.start, end: out.end, node }]));
  },
  'fill-mask'(card, out, { masked, mask }) {
    const list = Array.isArray(out[0]) ? out[0] : out; // several masks: the first one's candidates
    card.querySelector('.masked').replaceChildren(...marked(masked, [{ start: masked.indexOf(mask), end: masked.indexOf(mask) + mask.length, node: (p) => el('mark', '', p) }]));
    card.querySelector('.out').replaceChildren(...scoreRows(list.map((c) => [c.token_str, c.score])));
  },
};

/** The call for each task on the page's inputs. */
function calls(pipe, task) {
  const text = $('text').value.trim();
  switch (task) {
    case 'zero-shot-classification':
      return { args: [text, $('labels').value], view: {} };
    case 'token-classification':
      return { args: [text, { aggregation_strategy: 'simple' }], view: { text } };
    case 'question-answering':
      return { args: [$('question').value.trim(), text], view: { text, question: $('question').value.trim() } };
    case 'fill-mask': {
      const mask = pipe.mask_token;
      const word = $('mask-word').value.trim();
      // The text as it is when it has the mask token; else with the word to mask replaced.
      const masked = text.includes(mask) ? text : word && text.includes(word) ? text.replace(word, mask) : `${text} ${mask}`;
      return { args: [masked, { top_k: 5 }], view: { masked, mask } };
    }
    default:
      return { args: [text, { top_k: null }], view: {} };
  }
}

// ---- running ------------------------------------------------------------------------------------

const t0 = performance.now();
let loadMs = null;

async function runTask({ task }) {
  const card = $(task);
  card.querySelector('.error')?.remove();
  delete card.dataset.done;
  try {
    const pipe = await pipelineFor(task);
    showDevice(pipe);
    const { args, view } = calls(pipe, task);
    const t = performance.now();
    const out = await pipe(...args);
    card.querySelector('.took').textContent = `${(performance.now() - t).toFixed(0)} ms`;
    draw[task](card, out, view);
    card.dataset.done = 'ok';
  } catch (e) {
    card.querySelector('.out').replaceChildren();
    card.append(el('div', 'error', e?.message ?? String(e)));
    card.dataset.done = 'error';
  }
}

async function runAll() {
  $('run').disabled = true;
  setState('running', 'running…');
  const started = performance.now();
  // One worker: the tasks run one after another there anyway.
  for (const t of TASKS) await runTask(t);
  loadMs ??= performance.now() - t0;
  $('progress').value = 100;
  const failed = TASKS.filter((t) => $(t.task).dataset.done === 'error').length;
  $('timings').textContent = `first load and run ${(loadMs / 1000).toFixed(1)} s · this run ${(performance.now() - started).toFixed(0)} ms`;
  count('runs');
  $('tiny-note').hidden = !TASKS.some((t) => modelOf(t.task)?.startsWith(TINY));
  if (failed === TASKS.length) showError(new Error('no task could run: see each task for why'));
  else setState('ready', failed ? `ready (${failed} of ${TASKS.length} tasks failed)` : 'ready');
  $('run').disabled = false;
}

$('run').addEventListener('click', runAll);
for (const id of ['question', 'mask-word', 'labels']) {
  $(id).addEventListener('keydown', (e) => {
    if (e.key === 'Enter') runAll();
  });
}
await runAll();
