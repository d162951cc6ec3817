// What the three vision demos add to demos/common.js: image input (drop, pick, paste, camera).

import { el, showError } from './common.js';

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
