// What every demo page shares: the top card's device picker and badge, status, progress bar and
// error line (drawn here into the page's <div id="device-card" data-status="...">), URL
// parameters, state and errors (the tests read `document.body.dataset`), the package's worker and
// load progress.

import { env, workerPipeline } from 'webformers';
import { MODELS_FROM, REMOTE_HOST } from './site.js';

// The worker pipelines take the page's env with them.
if (REMOTE_HOST) env.remoteHost = REMOTE_HOST;

export const $ = (id) => document.getElementById(id);

// The top card: #device (the badge), #device-choice, #status, #progress, #error.
const card = $('device-card');
card.innerHTML = `
  <div class="bar">
    <span>Device:</span>
    <span id="device" class="badge">starting…</span>
    <label>run on
      <select id="device-choice">
        <option value="auto">auto</option>
        <option value="webgpu">WebGPU</option>
        <option value="wasm">WASM SIMD</option>
      </select>
    </label>
    <span id="status" class="muted"></span>
  </div>
  <progress id="progress" max="100" value="0"></progress>
  <div id="error" class="error" hidden></div>`;
$('status').textContent = card.dataset.status ?? 'loading…';
export const params = new URLSearchParams(location.search);
/** Whether the default models are Hub ids (a static build) rather than folders under /models/ (see site.js). */
export const hubModels = MODELS_FROM === 'hub';

/**
 * The models a page tries in turn: the one its URL parameter `param` names, else its real model
 * (the folder under /models/ on the demo server, the Hub id on a static build), then `tiny`, a
 * tiny random model that loads anywhere.
 */
export function modelsToTry({ param = 'model', local, hub, tiny }) {
  return params.get(param) ? [params.get(param)] : [hubModels ? hub : local, tiny];
}

/** ?device=auto|webgpu|wasm (default auto). */
export const device = params.get('device') || 'auto';

/** An element with a class and children (strings or elements). */
export function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children);
  return node;
}

export function setState(state, status) {
  document.body.dataset.state = state;
  if (status !== undefined) $('status').textContent = status;
}

export function showError(e) {
  setState('error', 'failed');
  $('error').hidden = false;
  $('error').textContent = e?.message ?? String(e);
}

export function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

/** Bumps a counter in `document.body.dataset` (runs, searches): what the tests wait for. */
export function count(key) {
  document.body.dataset[key] = String(Number(document.body.dataset[key] ?? 0) + 1);
}

// The picker reloads the page on the device it names.
$('device-choice').value = device;
$('device-choice').addEventListener('change', (e) => {
  params.set('device', e.target.value);
  location.search = params.toString();
});

/** Says where a pipeline runs (and why 'auto' took WASM, as a tooltip). */
export function showDevice(pipe) {
  const badge = $('device');
  badge.textContent = pipe.device === 'webgpu' ? `WebGPU · ${pipe.adapter}` : `WASM SIMD · ${pipe.adapter}`;
  badge.className = `badge ${pipe.device}`;
  badge.title = pipe.device_note ?? '';
  badge.dataset.device = pipe.device;
}

// ---- loading: the package's worker.js, a progress bar over every file ------------------------

/** The package's own worker.js, found next to the package's entry module. */
export const worker = new Worker(new URL('./worker.js', import.meta.resolve('webformers')), { type: 'module' });

/** Bytes loaded per file (keyed by task and file): the bar is over all of them. */
const files = new Map();
function onProgress(key, event) {
  if (event.status !== 'progress' && event.status !== 'done') return;
  files.set(`${key} ${event.file}`, { loaded: event.loaded ?? 0, total: event.total ?? 0 });
  let loaded = 0;
  let total = 0;
  for (const f of files.values()) {
    loaded += f.loaded;
    total += f.total || f.loaded;
  }
  $('progress').value = total ? (100 * loaded) / total : 0;
  $('status').textContent = `loading… ${(loaded / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`;
}

/** `task` on `model` (null: the task's default Hub model) in the page's worker, its files on the bar. */
export function loadInWorker(task, model) {
  return workerPipeline(worker, task, model, { device, progress_callback: (e) => onProgress(task, e) });
}

/** loadInWorker, then the bar full and the device badge set. A failed load's files leave the bar. */
export async function load(task, model) {
  let pipe;
  try {
    pipe = await loadInWorker(task, model);
  } catch (e) {
    for (const key of [...files.keys()]) if (key.startsWith(`${task} `)) files.delete(key);
    throw e;
  }
  $('progress').value = 100;
  showDevice(pipe);
  return pipe;
}
