// Semantic search: embeds the sentences and the query with all-MiniLM-L6-v2 in a Web Worker
// (webformers' worker.js) and ranks the sentences by cosine similarity.
//
// URL parameters: ?device=auto|webgpu|wasm (default auto), ?model=<id, URL or /path> (default
// all-MiniLM-L6-v2 under /models/, as the demo server serves it; Xenova/all-MiniLM-L6-v2 from the
// Hub on a static build, site.js).

import { env } from 'webformers';
import { $, params, setState, showError, load, hubModels } from '../common.js';

const model = params.get('model') || (hubModels ? 'Xenova/all-MiniLM-L6-v2' : 'all-MiniLM-L6-v2');

// On the demo server, models named by id are looked for under /models/ first, then on the Hub; a
// static host has no /models/ (each id would cost a 404 first).
env.allowLocalModels = !hubModels;
env.localModelPath = '/models/';

const t0 = performance.now();
let extractor;
try {
  extractor = await load('feature-extraction', model);
} catch (e) {
  showError(e);
  throw e;
}
const loadMs = performance.now() - t0;

// ---- search -----------------------------------------------------------------------------------

let corpus = { text: null, sentences: [], vectors: null, ms: 0 };

async function embed(texts) {
  const t = await extractor(texts, { pooling: 'mean', normalize: true });
  return { data: t.data, dim: t.dims[1] };
}

async function search() {
  const query = $('query').value.trim();
  if (!query) return;
  setState('searching', 'searching…');
  $('search').disabled = true;
  try {
    const text = $('sentences').value;
    if (corpus.text !== text) {
      const sentences = text.split('\n').map((s) => s.trim()).filter(Boolean);
      const t = performance.now();
      const vectors = sentences.length ? await embed(sentences) : null;
      corpus = { text, sentences, vectors, ms: performance.now() - t };
    }
    const t = performance.now();
    const q = await embed([query]);
    const queryMs = performance.now() - t;
    const { sentences, vectors } = corpus;
    // The vectors are normalized: the dot product is the cosine similarity.
    const scored = sentences.map((sentence, i) => {
      let dot = 0;
      for (let j = 0; j < q.dim; j++) dot += q.data[j] * vectors.data[i * q.dim + j];
      return { sentence, score: dot };
    });
    scored.sort((a, b) => b.score - a.score);
    const list = $('results');
    list.replaceChildren(
      ...scored.map(({ sentence, score }) => {
        const li = document.createElement('li');
        const meter = document.createElement('span');
        meter.className = 'meter';
        meter.style.width = `${Math.max(0, score) * 120}px`;
        const value = document.createElement('span');
        value.className = 'score';
        value.textContent = score.toFixed(3);
        li.append(meter, value, ' ', sentence);
        li.dataset.score = String(score);
        return li;
      }),
    );
    $('timings').textContent =
      `model load ${loadMs.toFixed(0)} ms · ${sentences.length} sentences embedded in ${corpus.ms.toFixed(0)} ms ` +
      `(once per edit) · query ${queryMs.toFixed(1)} ms`;
    document.body.dataset.searches = String(Number(document.body.dataset.searches ?? 0) + 1);
    setState('ready', `ready in ${(loadMs / 1000).toFixed(1)} s`);
  } catch (e) {
    showError(e);
  } finally {
    $('search').disabled = false;
  }
}

$('search').addEventListener('click', search);
$('query').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') search();
});
$('search').disabled = false;
await search();
