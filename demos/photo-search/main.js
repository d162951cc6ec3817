// Photo search: a folder of photos embedded with CLIP's vision tower (image-feature-extraction,
// pool: the projected image embedding) in a Web Worker (webformers' worker.js), a query embedded
// with the same model's text tower (feature-extraction on a CLIP model gives its projected text
// embedding), the photos ranked by cosine similarity.
//
// URL parameters: ?device=auto|webgpu|wasm (default auto); ?model=<Hub id, URL or /path of a CLIP
// or SigLIP model> (default Xenova/clip-vit-base-patch32); ?query=<text> (the first search).
// The first photos are the test images scripts/demo-web.sh serves under /fixtures/images/.

import { $, el, params, setState, showError, clearError, count, load } from '../common.js';

const model = params.get('model') || 'Xenova/clip-vit-base-patch32';
if (params.has('query')) $('query').value = params.get('query');
$('model').textContent = model;

const SAMPLES = ['cat.jpg', 'coffee.png', 'astronaut.webp', 'rocket.bmp', 'camera-gray.png'].map((f) => `/fixtures/images/${f}`);
/** Photos embedded per call: a progress step, and a bound on the memory one batch takes. */
const BATCH = 4;

/** {name, url, source, embedding: Float32Array (unit length)} */
const photos = [];

function normalize(v) {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  return v.map((x) => x / n);
}

/** The rows of a [n, dim] tensor, each of unit length (so a dot product is the cosine). */
const rows = (tensor) => {
  const [n, dim] = tensor.dims;
  return Array.from({ length: n }, (_, i) => normalize(tensor.data.slice(i * dim, (i + 1) * dim)));
};

let images;
let texts;
let busy = Promise.resolve();

/** Embeds photos (Files or URLs) in batches, in the worker. */
async function addPhotos(sources) {
  sources = sources.filter((s) => typeof s === 'string' || s.type.startsWith('image/'));
  if (!sources.length) return;
  const t = performance.now();
  setState('running', `embedding ${sources.length} photos…`);
  for (let i = 0; i < sources.length; i += BATCH) {
    const batch = sources.slice(i, i + BATCH);
    // Files and URLs go to the worker as they are, and are decoded there.
    const embeddings = rows(await images(batch, { pool: true }));
    batch.forEach((source, j) => {
      const name = typeof source === 'string' ? source.split('/').at(-1) : source.webkitRelativePath || source.name;
      const url = typeof source === 'string' ? source : URL.createObjectURL(source);
      photos.push({ name, url, embedding: embeddings[j] });
    });
    $('count').textContent = `${photos.length} photos embedded.`;
    $('status').textContent = `embedding photos… ${Math.min(i + BATCH, sources.length)} / ${sources.length}`;
  }
  document.body.dataset.photos = String(photos.length);
  $('timings').textContent = `${sources.length} photos in ${(performance.now() - t).toFixed(0)} ms`;
}

async function search() {
  const query = $('query').value.trim();
  if (!query || !photos.length) return;
  const t = performance.now();
  const [q] = rows(await texts(query));
  if (q.length !== photos[0].embedding.length) {
    throw new Error(`the text embedding has ${q.length} values and the image embeddings ${photos[0].embedding.length}: is ${model} a CLIP-like model?`);
  }
  const ranked = photos.map((p) => ({ ...p, score: p.embedding.reduce((s, x, i) => s + x * q[i], 0) })).sort((a, b) => b.score - a.score);
  $('results').replaceChildren(
    ...ranked.map((p) => {
      const img = el('img');
      img.src = p.url;
      img.alt = p.name;
      img.loading = 'lazy';
      const figure = el('figure', 'result', img, el('figcaption', '', el('span', 'name', p.name), el('span', 'num', p.score.toFixed(3))));
      figure.dataset.score = String(p.score);
      return figure;
    }),
  );
  $('timings').textContent = `query embedded and ${photos.length} photos ranked in ${(performance.now() - t).toFixed(0)} ms on ${texts.device === 'webgpu' ? 'WebGPU' : 'WASM'}`;
  count('searches');
}

/** Runs one step at a time (the worker does anyway), showing its failure. */
function step(fn) {
  busy = busy.then(async () => {
    clearError();
    try {
      await fn();
      setState('ready', 'ready');
    } catch (e) {
      showError(e);
    }
  });
  return busy;
}

const files = (list) => [...(list ?? [])];
$('folder').addEventListener('change', () => step(() => addPhotos(files($('folder').files)).then(search)));
$('pick').addEventListener('change', () => step(() => addPhotos(files($('pick').files)).then(search)));
$('drop').addEventListener('dragover', (e) => e.preventDefault());
$('drop').addEventListener('drop', (e) => {
  e.preventDefault();
  step(() => addPhotos(files(e.dataTransfer?.files)).then(search));
});
$('search').addEventListener('click', () => step(search));
$('query').addEventListener('keydown', (e) => e.key === 'Enter' && step(search));

const t0 = performance.now();
try {
  // Two pipelines on one model in one worker: the vision tower and the text tower.
  images = await load('image-feature-extraction', model);
  texts = await load('feature-extraction', model);
  $('timings').textContent = `model load ${(performance.now() - t0).toFixed(0)} ms`;
  $('search').disabled = false;
  await step(() => addPhotos(SAMPLES).then(search));
} catch (e) {
  showError(e);
}
