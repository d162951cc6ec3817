// What the three vision demos share: URL parameters, the device picker and badge, state and
// errors (the tests read `document.body.dataset`), load progress, the worker, and image input
// (drop, pick, paste, camera).

import { workerPipeline } from 'webformers';

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);
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

export const worker = new Worker(new URL('./worker.js', import.meta.resolve('webformers')), { type: 'module' });

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
  $('status').textContent = `loading the model… ${(loaded / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`;
}

/** `task` on `model` (null: the task's default Hub model) in the demo's worker. */
export async function load(task, model) {
  const pipe = await workerPipeline(worker, task, model, { device, progress_callback: (e) => onProgress(task, e) });
  $('progress').value = 100;
  showDevice(pipe);
  return pipe;
}

// ---- image input: drop, pick, paste, camera --------------------------------------------------

/**
 * Calls `onImage(source)` with what the user gives: a File (dropped, picked, pasted) or, from
 * the camera, a canvas with the current frame. `drop`: the element that takes drops; `pick`: a
 * file input; `camera`: a button that starts/stops the camera, whose frames are shown in `video`
 * and handed over every `everyMs` while it runs (each after the previous one is done).
 */
export function imageSources({ drop, pick, camera, video, everyMs = 0 }, onImage) {
  const first = (list) => [...(list ?? [])].find((f) => f.type.startsWith('image/'));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = first(e.dataTransfer?.files);
    if (file) onImage(file);
  });
  pick.addEventListener('change', () => {
    const file = first(pick.files);
    if (file) onImage(file);
  });
  document.addEventListener('paste', (e) => {
    const file = first([...(e.clipboardData?.items ?? [])].map((i) => i.getAsFile()).filter(Boolean));
    if (file) onImage(file);
  });
  if (!camera) return;
  let stream = null;
  camera.hidden = !navigator.mediaDevices?.getUserMedia;
  camera.addEventListener('click', async () => {
    if (stream) {
      stream.getTracks().forEach((t) => t.stop());
      stream = null;
      video.hidden = true;
      camera.textContent = 'Use the camera';
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    } catch (e) {
      showError(new Error(`the camera could not be opened: ${e.message}`));
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    camera.textContent = 'Stop the camera';
    // The current frame, drawn on a canvas (the pipeline turns it into pixels on this side).
    const grab = async () => {
      if (!stream) return;
      const canvas = el('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext('2d').drawImage(video, 0, 0);
      await onImage(canvas);
      if (stream && everyMs) setTimeout(grab, everyMs);
    };
    grab();
  });
}
