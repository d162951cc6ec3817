// Speech recognition: audio from the microphone or a file, transcribed by an
// automatic-speech-recognition pipeline (Whisper) in a Web Worker; the text streams in as it is
// decoded, then the timestamped chunks (segments or words) replace it, each one a button that
// plays the audio from there. Audio over 30 s is transcribed in 30 s chunks with 5 s strides.
//
// URL parameters: ?device=auto|webgpu|wasm (default auto); ?model=<Hub id, URL or /path> (default:
// whisper-tiny.en, under /models/ as scripts/demo-web.sh serves it, or Xenova/whisper-tiny.en from
// the Hub on a static build (site.js); when it cannot be loaded, the tiny random multilingual
// Whisper of the tests stands in: gibberish, quickly); ?audio=<URL> (transcribed first; none by
// default).

import { read_audio } from 'webformers';
import { $, el, params, setState, showError, clearError, count, load, modelsToTry } from '../common.js';

const SAMPLING_RATE = 16000;
const CHUNK_SECONDS = 30;
const MODELS = modelsToTry({ local: '/models/whisper-tiny.en', hub: 'Xenova/whisper-tiny.en', tiny: '/fixtures/whisper/tiny-whisper-multi' });
const firstAudio = params.get('audio');

const timeText = (s) => (s == null ? '…' : `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`);

function drawChunks(chunks) {
  $('chunks').replaceChildren(
    ...(chunks ?? []).map(({ timestamp: [start, end], text }) => {
      const jump = el('button', 'time', `${timeText(start)} → ${timeText(end)}`);
      jump.type = 'button';
      jump.addEventListener('click', () => {
        $('player').currentTime = start;
        $('player').play();
      });
      const li = el('li', '', jump, el('span', '', text));
      // The times as the pipeline gave them (null: none), for the tests.
      li.dataset.start = String(start);
      li.dataset.end = String(end);
      return li;
    }),
  );
}

/** The call's options from the page's pickers, for audio of `seconds`. */
function options(seconds, onPiece) {
  const opts = { callback_function: onPiece };
  // An English-only model (whisper-*.en) takes no language or task (as in Python, it refuses them).
  if (transcriber.multilingual) {
    opts.task = $('task').value;
    const language = $('language').value;
    if (language) opts.language = language;
  }
  const stamps = $('timestamps').value;
  if (stamps !== 'none') opts.return_timestamps = stamps === 'word' ? 'word' : true;
  if (seconds > CHUNK_SECONDS) {
    opts.chunk_length_s = CHUNK_SECONDS;
    opts.stride_length_s = 5;
  }
  return opts;
}

const t0 = performance.now();
let transcriber;
let busy = false;

/** Transcribes audio at `url` (a file's object URL, a recording's, or a page URL). */
async function transcribe(url) {
  if (!transcriber || busy) return;
  busy = true;
  clearError();
  $('player').src = url;
  $('player').hidden = false;
  $('transcript').textContent = '';
  drawChunks([]);
  try {
    setState('running', 'decoding the audio…');
    // Decoded and resampled to 16 kHz mono here (AudioContext); the worker gets the samples.
    const audio = await read_audio(url, SAMPLING_RATE);
    const seconds = audio.length / SAMPLING_RATE;
    setState('running', `transcribing ${timeText(seconds)} of audio…`);
    $('progress').removeAttribute('value'); // indeterminate until the first text arrives
    const t = performance.now();
    const result = await transcriber(audio, options(seconds, (piece) => {
      $('transcript').textContent += piece;
    }));
    $('progress').value = 100;
    $('transcript').textContent = result.text;
    drawChunks(result.chunks);
    const took = (performance.now() - t) / 1000;
    $('timings').textContent = `${timeText(seconds)} of audio in ${took.toFixed(1)} s (${(seconds / took).toFixed(1)}x real time) on ${
      transcriber.device === 'webgpu' ? 'WebGPU' : 'WASM'
    }`;
    setState('ready', 'ready');
    count('runs');
  } catch (e) {
    showError(e);
  } finally {
    busy = false;
  }
}

// ---- audio sources: a dropped or picked file, the microphone --------------------------------

function audioSources() {
  const drop = $('drop');
  const first = (list) => [...(list ?? [])].find((f) => f.type.startsWith('audio/') || f.type.startsWith('video/'));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = first(e.dataTransfer?.files);
    if (file) transcribe(URL.createObjectURL(file));
  });
  $('pick').addEventListener('change', () => {
    const file = first($('pick').files);
    if (file) transcribe(URL.createObjectURL(file));
  });

  const button = $('record');
  button.hidden = !navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined';
  let recorder = null;
  button.addEventListener('click', async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      showError(new Error(`the microphone could not be opened: ${e.message}`));
      return;
    }
    const parts = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener('dataavailable', (e) => parts.push(e.data));
    recorder.addEventListener('stop', () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      button.textContent = 'Record';
      button.classList.remove('recording');
      transcribe(URL.createObjectURL(new Blob(parts, { type: parts[0]?.type || 'audio/webm' })));
    });
    recorder.start();
    button.textContent = 'Stop';
    button.classList.add('recording');
  });
}

try {
  for (const model of MODELS) {
    try {
      transcriber = await load('automatic-speech-recognition', model);
      break;
    } catch (e) {
      if (model === MODELS.at(-1)) throw e;
      $('note').hidden = false;
      $('note').textContent = `${model} could not be loaded (${e.message}). Using ${MODELS.at(-1)}, a tiny random model, instead: its transcripts are gibberish.`;
    }
  }
  $('model').textContent = transcriber.model_id;
  $('timings').textContent = `model load ${(performance.now() - t0).toFixed(0)} ms`;
  for (const id of ['language', 'task']) {
    $(id).disabled = !transcriber.multilingual;
    $(id).title = transcriber.multilingual ? '' : 'an English-only model transcribes English only';
  }
  setState('ready', 'ready');
  audioSources();
  if (firstAudio) await transcribe(firstAudio);
} catch (e) {
  showError(e);
}
