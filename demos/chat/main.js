// Chat: a text-generation pipeline in a Web Worker (webformers' worker.js), the conversation kept
// here as a messages array and rendered through the model's chat template by the engine; each
// reply streams in as the worker sends its pieces.
//
// URL parameters: ?device=auto|webgpu|wasm, ?model=<URL or /path of a model folder or .gguf>.
// Default: SmolLM2-135M-Instruct, its Q4_1 GGUF under /models/ on the demo server
// (scripts/fetch-models.sh smollm2), HuggingFaceTB/SmolLM2-135M-Instruct from the Hub on a static
// build (site.js); when it cannot be loaded, the tiny random Llama of the tests stands in
// (gibberish, quickly).

import { $, setState, showError, load, modelsToTry } from '../common.js';

const MODELS = modelsToTry({
  local: '/models/SmolLM2-135M-Instruct.Q4_1.gguf',
  hub: 'HuggingFaceTB/SmolLM2-135M-Instruct',
  tiny: '/fixtures/tiny-llama',
});

const t0 = performance.now();
let generator = null;
for (const model of MODELS) {
  try {
    generator = await load('text-generation', model);
    break;
  } catch (e) {
    if (model === MODELS.at(-1)) {
      showError(e);
      throw e;
    }
    $('note').hidden = false;
    $('note').textContent = `${model} could not be loaded (${e.message}). Using ${MODELS.at(-1)}, a tiny random model, instead: its replies are gibberish.`;
  }
}
const loadMs = performance.now() - t0;
$('model').textContent = `model: ${generator.model_id}`;
setState('ready', `ready in ${(loadMs / 1000).toFixed(1)} s`);

const messages = [];

function bubble(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  $('log').append(div);
  return div;
}

async function send() {
  const text = $('prompt').value.trim();
  if (!text) return;
  $('prompt').value = '';
  $('send').disabled = true;
  setState('generating', 'generating…');
  messages.push({ role: 'user', content: text });
  bubble('user', text);
  const reply = bubble('assistant', '');
  let pieces = 0;
  // Stop: the generation ends after its current token and the reply so far is kept.
  const controller = new AbortController();
  const stop = () => controller.abort();
  $('stop').addEventListener('click', stop);
  $('stop').disabled = false;
  try {
    const [out] = await generator(messages, {
      max_new_tokens: Number($('max-tokens').value),
      signal: controller.signal,
      callback_function: (piece) => {
        pieces++;
        reply.textContent += piece;
      },
    });
    const answer = out.generated_text.at(-1);
    reply.textContent = answer.content;
    messages.push(answer);
    const s = out.stats;
    const decodeRate = s.new_tokens > 1 && s.decode_seconds > 0 ? (s.new_tokens - 1) / s.decode_seconds : 0;
    $('timings').textContent =
      `${s.prompt_tokens} prompt tokens in ${(s.prefill_seconds * 1000).toFixed(0)} ms · ` +
      `${s.new_tokens} new tokens, ${decodeRate.toFixed(1)} tokens/s · stopped by ${s.stop_reason}`;
    reply.dataset.pieces = String(pieces);
    document.body.dataset.replies = String(Number(document.body.dataset.replies ?? 0) + 1);
    setState('ready', 'ready');
  } catch (e) {
    showError(e);
  } finally {
    $('stop').removeEventListener('click', stop);
    $('stop').disabled = true;
    $('send').disabled = false;
  }
}

$('send').addEventListener('click', send);
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') send();
});
$('send').disabled = false;
