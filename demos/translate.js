// Translation and summaries: a translation pipeline (Marian's opus-mt, one language pair a model;
// NLLB and M2M100, many, with source and target pickers) and a summarization pipeline (BART), each
// in the page's Web Worker; the text streams in as it is generated (with beam search: the best
// result, once the search ends). A text longer than the model reads is cut, as transformers.js
// cuts it, and the page says so.
//
// URL parameters: ?device=auto|webgpu|wasm (default auto); ?model=<Hub id, URL or /path> for
// translation and ?summary-model=... for summaries. Defaults: opus-mt-en-fr and
// distilbart-cnn-6-6, under /models/ on the demo server (put a model folder there: config.json,
// model.safetensors, tokenizer.json), Xenova/opus-mt-en-fr and Xenova/distilbart-cnn-6-6 from the
// Hub on a static build (site.js); when they cannot be loaded, the tiny random models of the tests
// stand in (gibberish, quickly).

import { $, setState, showError, clearError, count, load, modelsToTry } from './common.js';

const TINY_TRANSLATION = '/fixtures/seq2seq/tiny-marian';
const TINY_SUMMARY = '/fixtures/seq2seq/tiny-bart';
const TRANSLATION_MODELS = modelsToTry({ local: '/models/opus-mt-en-fr', hub: 'Xenova/opus-mt-en-fr', tiny: TINY_TRANSLATION });
const SUMMARY_MODELS = modelsToTry({ param: 'summary-model', local: '/models/distilbart-cnn-6-6', hub: 'Xenova/distilbart-cnn-6-6', tiny: TINY_SUMMARY });

// Language codes as the multilingual models' tokenizers name them: NLLB (FLORES-200) and M2M100.
const LANGUAGES = [
  ['English', 'eng_Latn', 'en'],
  ['French', 'fra_Latn', 'fr'],
  ['German', 'deu_Latn', 'de'],
  ['Spanish', 'spa_Latn', 'es'],
  ['Italian', 'ita_Latn', 'it'],
  ['Portuguese', 'por_Latn', 'pt'],
  ['Dutch', 'nld_Latn', 'nl'],
  ['Polish', 'pol_Latn', 'pl'],
  ['Russian', 'rus_Cyrl', 'ru'],
  ['Arabic', 'arb_Arab', 'ar'],
  ['Hindi', 'hin_Deva', 'hi'],
  ['Chinese (Simplified)', 'zho_Hans', 'zh'],
  ['Japanese', 'jpn_Jpan', 'ja'],
  ['Korean', 'kor_Hang', 'ko'],
];

const t0 = performance.now();
let translator;
let summarizer = null;
let busy = false;

/** The first of `models` that loads; a note says when a stand-in was taken. */
async function loadFirst(task, models, what) {
  for (const model of models) {
    try {
      return await load(task, model);
    } catch (e) {
      if (model === models.at(-1)) throw e;
      $('note').hidden = false;
      $('note').textContent = `${model} could not be loaded (${e.message}). Using ${models.at(-1)}, a tiny random ${what} model, instead: its output is gibberish.`;
    }
  }
}

/**
 * Whether the model translates between many languages (NLLB and M2M100 are `m2m_100` models) and
 * which codes its tokenizer knows: NLLB's vocabulary (256k) is twice M2M100's.
 */
function languageCodes(pipe) {
  if (pipe.model_type !== 'm2m_100') return null;
  return pipe.vocab_size > 200_000 ? 1 : 2;
}

function languagePickers() {
  const column = languageCodes(translator);
  $('languages').hidden = column === null;
  if (column === null) return;
  for (const [id, initial] of [['src-lang', 'English'], ['tgt-lang', 'French']]) {
    $(id).replaceChildren(
      ...LANGUAGES.map((row) => {
        const option = new Option(row[0], row[column]);
        option.selected = row[0] === initial;
        return option;
      }),
    );
  }
}

/**
 * Runs `pipe` on `text` into the element `out` (streamed), its cut-text warning into `warning`,
 * its timings into `timings`.
 */
async function generate(pipe, text, options, out, warning, timings) {
  if (busy) return;
  busy = true;
  clearError();
  out.textContent = '';
  warning.hidden = true;
  try {
    setState('running', 'generating…');
    $('progress').removeAttribute('value');
    const t = performance.now();
    let firstPiece = null;
    const [result] = await pipe(text, {
      ...options,
      callback_function: (piece) => {
        firstPiece ??= performance.now();
        out.textContent += piece;
      },
      warning_callback: ({ message }) => {
        warning.hidden = false;
        warning.textContent = message;
      },
    });
    $('progress').value = 100;
    out.textContent = Object.values(result)[0];
    const took = (performance.now() - t) / 1000;
    const first = firstPiece === null ? '' : `, first text after ${((firstPiece - t) / 1000).toFixed(2)} s`;
    timings.textContent = `${took.toFixed(2)} s on ${pipe.device === 'webgpu' ? 'WebGPU' : 'WASM'}${first}`;
    setState('ready', 'ready');
    count('runs');
  } catch (e) {
    showError(e);
  } finally {
    busy = false;
  }
}

function translate() {
  const options = {};
  if ($('beams').value) options.num_beams = Number($('beams').value);
  if (!$('languages').hidden) {
    options.src_lang = $('src-lang').value;
    options.tgt_lang = $('tgt-lang').value;
  }
  return generate(translator, $('source').value, options, $('output'), $('warning'), $('timings'));
}

async function summarize() {
  if (busy) return;
  if (!summarizer) {
    try {
      setState('loading', 'loading the summarization model…');
      $('summarize').disabled = true;
      summarizer = await loadFirst('summarization', SUMMARY_MODELS, 'BART');
      $('summary-model').textContent = summarizer.model_id;
    } catch (e) {
      showError(e);
      $('summarize').disabled = false;
      return;
    }
    $('summarize').disabled = false;
  }
  return generate(summarizer, $('article').value, {}, $('summary'), $('summary-warning'), $('summary-timings'));
}

function showTab(name) {
  for (const tab of ['translate', 'summarize']) {
    $(`tab-${tab}`).setAttribute('aria-selected', String(tab === name));
    $(`${tab}-pane`).hidden = tab !== name;
  }
}

$('tab-translate').addEventListener('click', () => showTab('translate'));
$('tab-summarize').addEventListener('click', () => showTab('summarize'));
$('translate').addEventListener('click', translate);
$('summarize').addEventListener('click', summarize);

try {
  translator = await loadFirst('translation', TRANSLATION_MODELS, 'Marian');
  $('model').textContent = translator.model_id;
  $('timings').textContent = `model load ${(performance.now() - t0).toFixed(0)} ms`;
  languagePickers();
  $('translate').disabled = false;
  setState('ready', 'ready');
} catch (e) {
  showError(e);
}
