// Object detection: a photo (dropped, picked, pasted, or the camera's frames) run through an
// object-detection pipeline in a Web Worker (webformers' worker.js); each detection is drawn as a
// box on the image, and listed.
//
// URL parameters: ?device=auto|webgpu|wasm (default auto); ?model=<Hub id, URL or /path> (default:
// the task's default Hub model); ?image=<URL> (the first image; default a photo served by
// scripts/demo-web.sh); ?threshold=<0..1> (default 0.9, as transformers.js).

import { $, el, params, setState, showError, clearError, count, load } from '../common.js';
import { imageSources } from '../vision-common.js';

const model = params.get('model') || null;
const firstImage = params.get('image') || '/fixtures/images/coffee.png';
$('model').textContent = model ?? "object-detection's default";
$('threshold').value = params.get('threshold') ?? '0.9';
const threshold = () => Number($('threshold').value);
$('threshold-value').textContent = threshold().toFixed(2);

const COLORS = ['#dc2626', '#2563eb', '#16a34a', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];
const colorOf = (label) => COLORS[[...label].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % COLORS.length];

/** Shows the image; resolves to its size in pixels once it is there. */
async function preview(source) {
  if (typeof source === 'string' || source instanceof Blob) {
    const img = el('img');
    img.alt = 'the image searched for objects';
    img.src = typeof source === 'string' ? source : URL.createObjectURL(source);
    $('preview').replaceChildren(img);
    await img.decode();
    return { width: img.naturalWidth, height: img.naturalHeight };
  }
  $('preview').replaceChildren(source);
  return { width: source.width, height: source.height };
}

/** Boxes in the image's pixels, drawn as percentages of its size (so they follow its scaling). */
function drawBoxes(objects, size) {
  const pct = (v, total) => `${(100 * v) / total}%`;
  $('boxes').replaceChildren(
    ...objects.map(({ label, score, box }) => {
      const div = el('div', 'box', el('span', '', `${label} ${score.toFixed(2)}`));
      div.style.setProperty('--c', colorOf(label));
      Object.assign(div.style, {
        left: pct(box.xmin, size.width),
        top: pct(box.ymin, size.height),
        width: pct(box.xmax - box.xmin, size.width),
        height: pct(box.ymax - box.ymin, size.height),
      });
      return div;
    }),
  );
  $('objects').replaceChildren(
    ...objects.map(({ label, score, box }) => {
      const swatch = el('span', 'swatch');
      swatch.style.setProperty('--c', colorOf(label));
      const where = `(${box.xmin.toFixed(0)}, ${box.ymin.toFixed(0)}) to (${box.xmax.toFixed(0)}, ${box.ymax.toFixed(0)})`;
      return el('li', '', el('span', 'label', swatch, label), el('span', 'muted', where), el('span', 'num', score.toFixed(3)));
    }),
  );
}

const t0 = performance.now();
let detector;
let busy = false;
let last = null;

async function detect(source) {
  if (!detector || busy) return; // the camera skips frames while one is being searched
  busy = true;
  last = source;
  clearError();
  setState('running', 'detecting…');
  try {
    const size = await preview(source);
    const t = performance.now();
    // A File or a URL goes to the worker as it is (decoded there); a canvas becomes pixels here.
    const objects = await detector(source, { threshold: threshold() });
    drawBoxes(objects, size);
    $('timings').textContent = `${objects.length} objects · ${(performance.now() - t).toFixed(0)} ms on ${detector.device === 'webgpu' ? 'WebGPU' : 'WASM'}`;
    setState('ready', 'ready');
    count('runs');
  } catch (e) {
    showError(e);
  } finally {
    busy = false;
  }
}

$('threshold').addEventListener('input', () => ($('threshold-value').textContent = threshold().toFixed(2)));
$('threshold').addEventListener('change', () => last && !(last instanceof HTMLCanvasElement) && detect(last));

try {
  detector = await load('object-detection', model);
  $('timings').textContent = `model load ${(performance.now() - t0).toFixed(0)} ms`;
  setState('ready', 'ready');
  imageSources({ drop: $('drop'), pick: $('pick'), camera: $('camera'), video: $('video'), everyMs: 100 }, detect);
  await detect(firstImage);
} catch (e) {
  showError(e);
}
