// The side panel: the model runs here, in an extension page (module imports and WebAssembly are
// allowed under the extension's CSP, `'wasm-unsafe-eval'`; the manifest's COOP/COEP make the page
// cross-origin isolated, so the threaded engine runs). It classifies text from three places: the
// context menu (background.js stores the selection in chrome.storage.session), the button that
// reads the active tab's selection, and `?text=` in the URL (the test opens the panel as a tab).
//
// model.json (written by build.mjs): {task, model, local}: `local` models ship in the extension's
// models/ folder; otherwise `model` is a Hub id fetched (and cached in IndexedDB) on first use.

import { pipeline, env } from './webformers/index.js';

const $ = (id) => document.getElementById(id);

function setState(state, status) {
  document.body.dataset.state = state;
  if (status !== undefined) $('status').textContent = status;
}

function showError(e) {
  $('error').textContent = `${e?.code ? `${e.code}: ` : ''}${e?.message ?? e}`;
  setState('error');
}

/** Labels with score bars, best first; each row keeps its exact score for the test. */
function draw(output) {
  const rows = output.map(({ label, score }) => {
    const li = document.createElement('li');
    li.dataset.label = label;
    li.dataset.score = String(score);
    const name = document.createElement('span');
    name.textContent = label;
    const track = document.createElement('div');
    track.className = 'track';
    const fill = document.createElement('div');
    fill.className = 'fill';
    fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
    track.append(fill);
    const num = document.createElement('span');
    num.className = 'num';
    num.textContent = score.toFixed(3);
    li.append(name, track, num);
    return li;
  });
  $('labels').replaceChildren(...rows);
}

const config = await (await fetch('model.json')).json();
if (config.local) {
  // Only the packaged folder: nothing is fetched from outside the extension.
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = '/models/';
}

let classifier;
let runs = 0;
async function classify(text) {
  text = text.trim();
  if (!text) return;
  $('text').value = text;
  $('error').textContent = '';
  setState('running', 'classifying…');
  try {
    const pipe = await classifier;
    const started = performance.now();
    // Every label, best first.
    draw(await pipe(text, { top_k: null }));
    runs += 1;
    document.body.dataset.runs = String(runs);
    const where = pipe.device === 'wasm' ? `wasm, ${pipe.threads} thread${pipe.threads > 1 ? 's' : ''}` : pipe.device;
    setState('done', `${config.model} on ${where}: ${(performance.now() - started).toFixed(0)} ms`);
  } catch (e) {
    showError(e);
  }
}

classifier = pipeline(config.task, config.model, { device: 'auto' });
classifier.then(
  (pipe) => {
    document.body.dataset.device = pipe.device;
    document.body.dataset.threads = String(pipe.threads ?? '');
    for (const b of ['classify', 'from-page']) $(b).disabled = false;
    if (document.body.dataset.state === 'loading') setState('ready', `${config.model} loaded (${pipe.device})`);
  },
  showError,
);

$('classify').addEventListener('click', () => classify($('text').value));

// The active tab's selection, read by a one-line script (activeTab: granted by opening the panel
// from the toolbar button or the context menu).
$('from-page').addEventListener('click', async () => {
  try {
    const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
    if (!tab?.id) throw new Error('no active tab');
    const [result] = await chrome.scripting.executeScript({ target: { tabId: tab.id }, func: () => getSelection().toString() });
    if (!result?.result) throw new Error('nothing is selected on the page');
    await classify(result.result);
  } catch (e) {
    showError(e);
  }
});

// The context menu's selection: the one stored before the panel opened, then each new one.
chrome.storage.session.onChanged.addListener((changes) => {
  if (changes.selection?.newValue) classify(changes.selection.newValue.text);
});
const fromUrl = new URLSearchParams(location.search).get('text');
if (fromUrl) classify(fromUrl);
else {
  const { selection } = await chrome.storage.session.get('selection');
  if (selection) classify(selection.text);
}
