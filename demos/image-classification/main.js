// Image classification: a photo (dropped, picked, pasted, or the camera's frames) labelled by an
// image-classification pipeline in a Web Worker (webformers' worker.js); the five best labels
// with bars.
//
// URL parameters: ?device=auto|webgpu|wasm (default auto); ?model=<Hub id, URL or /path> (default:
// the task's default Hub model); ?image=<URL> (the first image; default a photo of a cat served
// by scripts/demo-web.sh).

import { $, el, params, setState, showError, clearError, count, load } from '../common.js';
import { imageSources } from '../vision-common.js';

const model = params.get('model') || null;
const firstImage = params.get('image') || '/fixtures/images/cat.jpg';
$('model').textContent = model ?? "image-classification's default";

/** The image as the page shows it: an <img> for files and URLs, the canvas itself for a frame. */
function preview(source) {
  let node = source;
  if (typeof source === 'string' || source instanceof Blob) {
    node = el('img');
    node.src = typeof source === 'string' ? source : URL.createObjectURL(source);
    node.alt = 'the image being classified';
  }
  $('preview').replaceChildren(node);
}

function drawLabels(labels) {
  $('labels').replaceChildren(
    ...labels.map(({ label, score }) => {
      const fill = el('div', 'fill');
      fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
      const li = el('li', '', el('span', 'label', label), el('div', 'track', fill), el('span', 'num', score.toFixed(3)));
      li.title = `${label}: ${score}`;
      return li;
    }),
  );
}

const t0 = performance.now();
let classifier;
let busy = false;

async function classify(source) {
  if (!classifier || busy) return; // the camera skips frames while one is being labelled
  busy = true;
  clearError();
  preview(source);
  setState('running', 'classifying…');
  try {
    const t = performance.now();
    // A File or a URL goes to the worker as it is (decoded there); a canvas becomes pixels here.
    const labels = await classifier(source, { top_k: 5 });
    drawLabels(labels);
    $('timings').textContent = `${(performance.now() - t).toFixed(0)} ms on ${classifier.device === 'webgpu' ? 'WebGPU' : 'WASM'}`;
    setState('ready', 'ready');
    count('runs');
  } catch (e) {
    showError(e);
  } finally {
    busy = false;
  }
}

try {
  classifier = await load('image-classification', model);
  $('timings').textContent = `model load ${(performance.now() - t0).toFixed(0)} ms`;
  setState('ready', 'ready');
  imageSources({ drop: $('drop'), pick: $('pick'), camera: $('camera'), video: $('video'), everyMs: 100 }, classify);
  await classify(firstImage);
} catch (e) {
  showError(e);
}
