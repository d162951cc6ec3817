// AutoTokenizer: a model's tokenizer on its own, as transformers.js has it. Encoding,
// truncation, decoding and chat templates run in the engine (the same tokenizers code as the
// pipelines: bindings/wasm/src/tokenizer.rs); batching, padding and tensors are here.
//
//   const tokenizer = await AutoTokenizer.from_pretrained('Xenova/bert-base-uncased');
//   const { input_ids, attention_mask } = await tokenizer(['a text', 'another'], { padding: true });
//   tokenizer.decode(input_ids[0], { skip_special_tokens: true });

import { log } from './env.js';
import { engine, guarded, guardedSync, WebformersError } from './engine.js';
import { loadModelFiles, modelFileSet } from './fetch.js';
import { hubFiles } from './hub.js';
import { Tensor } from './tensor.js';

const REQUIRED = ['tokenizer.json'];
const OPTIONAL = ['tokenizer_config.json'];

/** tokenizer_config.json classes whose call returns token_type_ids (transformers.js's list). */
const TOKEN_TYPE_CLASSES = new Set([
  'AlbertTokenizer',
  'BertTokenizer',
  'ConvBertTokenizer',
  'DebertaTokenizer',
  'DebertaV2Tokenizer',
  'ElectraTokenizer',
  'HerbertTokenizer',
  'MobileBertTokenizer',
  'RoFormerTokenizer',
  'SqueezeBertTokenizer',
  'XLMTokenizer',
]);

const SPECIAL_TOKENS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/** A special token of tokenizer_config.json: a string, or an AddedToken object's `content`. */
function tokenOf(config, ...keys) {
  for (const key of keys) {
    const v = config[key];
    if (typeof v === 'string' && v) return v;
    if (v && typeof v === 'object' && typeof v.content === 'string') return v.content;
  }
  return null;
}

/** Token ids from what transformers.js code passes: numbers, BigInts, a typed array or a Tensor. */
function idsOf(token_ids, what = 'token_ids') {
  if (token_ids instanceof Tensor) {
    if (token_ids.dims.length > 1 && token_ids.dims.slice(0, -1).some((d) => d !== 1)) {
      throw new WebformersError(`${what}: a Tensor of dims [${token_ids.dims}] is a batch; use batch_decode`, 'input');
    }
    token_ids = token_ids.data;
  }
  const list = Array.from(token_ids ?? [], Number);
  if (!list.length || !list.every((id) => Number.isInteger(id) && id >= 0)) {
    throw new WebformersError(`${what} must be a non-empty array of non-negative integers`, 'input');
  }
  return Uint32Array.from(list);
}

/**
 * A loaded tokenizer; calling it encodes (see `_call`). Made by `AutoTokenizer.from_pretrained`.
 */
export class PreTrainedTokenizer {
  constructor(handle, config) {
    // Callable, as transformers.js's tokenizers are: tokenizer(text, options).
    const self = (text, options) => self._call(text, options);
    Object.setPrototypeOf(self, new.target.prototype);
    self._handle = handle;
    self.config = config;
    self.model_max_length = config.model_max_length ?? Infinity;
    self.padding_side = config.padding_side ?? 'right';
    self.return_token_type_ids = TOKEN_TYPE_CLASSES.has(String(config.tokenizer_class ?? '').replace(/Fast$/, ''));
    for (const key of SPECIAL_TOKENS) {
      const token = key === 'pad_token' ? tokenOf(config, 'pad_token', 'eos_token') : tokenOf(config, key);
      self[key] = token;
      self[`${key}_id`] = token === null ? undefined : handle.tokenToId(token);
    }
    const special = handle.specialTokens();
    self.all_special_ids = special.map((t) => t.id);
    self.all_special_tokens = special.map((t) => t.content);
    self.chat_template = config.chat_template ?? null;
    return self;
  }

  /** The vocabulary size (added tokens included). */
  get vocab_size() {
    return this._handle.vocabSize();
  }

  /**
   * Encodes a text or an array of texts (with `text_pair`) into `{input_ids, attention_mask}`
   * (and `token_type_ids` for BERT-like tokenizers) as int64 Tensors [batch, tokens], or arrays
   * with `return_tensor: false`. `padding: true` pads to the longest, `'max_length'` to
   * max_length; `truncation` cuts to max_length (default model_max_length) as Python does
   * (special tokens kept, the longest of a pair first).
   */
  _call(text, options = {}) {
    const { text_pair = null, add_special_tokens = true, padding = false, return_token_type_ids = null, return_tensor = true } = options ?? {};
    let { truncation = null, max_length = null } = options ?? {};
    const batched = Array.isArray(text);
    const texts = batched ? text : [text];
    if (batched && !texts.length) throw new WebformersError('text array must be non-empty', 'input');
    if (!texts.every((t) => typeof t === 'string')) throw new WebformersError('text must be a string or an array of strings', 'input');
    let pairs = null;
    if (text_pair !== null) {
      if (batched !== Array.isArray(text_pair) || (batched && text_pair.length !== texts.length)) {
        throw new WebformersError('text_pair must be a string for a string text, or an array as long as the text array', 'input');
      }
      pairs = batched ? text_pair : [text_pair];
    }
    // transformers.js's rules: a max_length without truncation truncates unless padding is true.
    if (max_length === null) max_length = this.model_max_length;
    else if (truncation === null && padding === false) truncation = true;
    const limit = truncation ? Math.min(max_length, this.model_max_length) : null;
    const encoded = texts.map((t, i) =>
      guardedSync(() => this._handle.encode(t, pairs?.[i] ?? null, add_special_tokens, Number.isFinite(limit) ? limit : null)),
    );
    const keys = ['input_ids', 'attention_mask', ...(return_token_type_ids ?? this.return_token_type_ids ? ['token_type_ids'] : [])];
    let rows = encoded.map((e) => Object.fromEntries(keys.map((k) => [k, Array.from(e[k])])));
    if (padding) {
      const longest = Math.max(...rows.map((r) => r.input_ids.length));
      const target = padding === 'max_length' ? Math.min(max_length, this.model_max_length) : longest;
      if (Number.isFinite(target) && rows.some((r) => r.input_ids.length < target)) {
        if (this.pad_token_id === undefined) throw new WebformersError('padding needs a pad token, and this tokenizer has none', 'input');
        rows = rows.map((r) =>
          Object.fromEntries(
            keys.map((k) => {
              const fill = new Array(Math.max(0, target - r[k].length)).fill(k === 'input_ids' ? this.pad_token_id : 0);
              return [k, this.padding_side === 'left' ? [...fill, ...r[k]] : [...r[k], ...fill]];
            }),
          ),
        );
      }
    }
    if (!return_tensor) {
      return Object.fromEntries(keys.map((k) => [k, batched ? rows.map((r) => r[k]) : rows[0][k]]));
    }
    const width = rows[0].input_ids.length;
    if (rows.some((r) => r.input_ids.length !== width)) {
      throw new WebformersError("the texts encode to different lengths: pass padding: true (and truncation: true) to make one tensor of them", 'input');
    }
    return Object.fromEntries(keys.map((k) => [k, new Tensor('int64', BigInt64Array.from(rows.flatMap((r) => r[k]), BigInt), [rows.length, width])]));
  }

  /** The token ids of a text (or pair), special tokens added unless asked otherwise. */
  encode(text, { text_pair = null, add_special_tokens = true } = {}) {
    return Array.from(guardedSync(() => this._handle.encode(String(text), text_pair, add_special_tokens, null)).input_ids);
  }

  /** The tokens of a text as strings (no special tokens unless asked). */
  tokenize(text, { pair = null, add_special_tokens = false } = {}) {
    return guardedSync(() => this._handle.tokenize(String(text), pair, add_special_tokens));
  }

  /** Text of token ids (numbers, BigInts, a typed array or a one-row Tensor). */
  decode(token_ids, { skip_special_tokens = false, clean_up_tokenization_spaces = null } = {}) {
    const ids = idsOf(token_ids);
    return guardedSync(() => this._handle.decode(ids, skip_special_tokens, clean_up_tokenization_spaces ?? undefined));
  }

  /** `decode` of each row (an array of id lists, or a [batch, tokens] Tensor). */
  batch_decode(batch, options = {}) {
    const rows = batch instanceof Tensor ? [...batch].map((row) => row.data ?? [row]) : batch;
    if (!Array.isArray(rows)) throw new WebformersError('batch_decode takes an array of token id lists or a Tensor', 'input');
    return rows.map((row) => this.decode(row, options));
  }

  /** Ids of tokens (strings); undefined for a token outside the vocabulary. */
  convert_tokens_to_ids(tokens) {
    return Array.isArray(tokens) ? tokens.map((t) => this._handle.tokenToId(t)) : this._handle.tokenToId(tokens);
  }

  /** Tokens (strings) of ids. */
  convert_ids_to_tokens(ids) {
    return Array.isArray(ids) ? ids.map((id) => this._handle.idToToken(Number(id))) : this._handle.idToToken(Number(ids));
  }

  /** token → id of the whole vocabulary. */
  get_vocab() {
    const vocab = new Map();
    for (let id = 0; id < this.vocab_size; id++) {
      const token = this._handle.idToToken(id);
      if (token !== undefined) vocab.set(token, id);
    }
    return vocab;
  }

  /**
   * The chat template (the model's, or `chat_template`) rendered for `conversation`
   * ([{role, content}]): the text with `tokenize: false`, else its encoding (special tokens not
   * added again) as `_call` gives it, or its input_ids with `return_dict: false`.
   */
  apply_chat_template(conversation, options = {}) {
    const {
      chat_template = null,
      add_generation_prompt = false,
      tokenize = true,
      padding = false,
      truncation = false,
      max_length = null,
      return_tensor = true,
      return_dict = true,
      tokenizer_kwargs = {},
      tools = null,
      documents = null,
      ...rest
    } = options ?? {};
    // As transformers.js: the options it does not name are template variables (enable_thinking).
    const extra = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
    const rendered = guardedSync(() =>
      this._handle.applyChatTemplate(conversation, add_generation_prompt, chat_template ?? undefined, tools ?? null, documents ?? null, extra),
    );
    if (!tokenize) return rendered;
    const out = this._call(rendered, { add_special_tokens: false, padding, truncation, max_length, return_tensor, ...tokenizer_kwargs });
    return return_dict ? out : out.input_ids;
  }

  /** Frees the engine's tokenizer; the object is unusable afterwards. */
  dispose() {
    this._handle?.free();
    this._handle = null;
  }
}

/**
 * A pipeline's `tokenizer`: from the files it was loaded from (a `ModelFileSet` holding
 * tokenizer.json), what a Hub load fetched (`loaded`, a `HubLoaded`: null when it lacks the two
 * files), or for a Hub model its two files (from the cache the load just filled). Null
 * where the model has no tokenizer.json (a GGUF file, an image model): the pipeline then keeps
 * the placeholder that streamers accept.
 */
export async function pipelineTokenizer(wasm, { fileSet = null, hub = null, loaded = null }) {
  if (loaded) {
    // The Hub load's own files, its tokenizer.json already parsed: nothing read or parsed again.
    try {
      const handle = guardedSync(() => wasm.Tokenizer.fromHubLoaded(loaded));
      if (handle) return new PreTrainedTokenizer(handle, JSON.parse(handle.configJson()));
    } catch (e) {
      log.debug(`the Hub load's tokenizer: ${e?.message ?? e}; reading the files again`);
    }
    return null;
  }
  let files = fileSet;
  try {
    if (hub) files = await guarded(() => hubFiles(wasm, hub, REQUIRED, OPTIONAL, () => {}));
    const handle = guardedSync(() => wasm.Tokenizer.load(files));
    return new PreTrainedTokenizer(handle, JSON.parse(handle.configJson()));
  } catch (e) {
    log.debug(`no tokenizer for the pipeline: ${e?.message ?? e}`);
    return null;
  } finally {
    if (hub) files?.free();
  }
}

/** The tokenizer of a model, as transformers.js's `AutoTokenizer`. */
export class AutoTokenizer {
  /**
   * Loads `model`'s tokenizer.json and tokenizer_config.json: a Hub id (cached as the pipelines'
   * files are), a URL or a local folder. Options: `revision`, `local_files_only`,
   * `progress_callback`.
   */
  static async from_pretrained(model, { revision = 'main', local_files_only = false, progress_callback = null } = {}) {
    const wasm = await engine();
    const progress = (event) => {
      try {
        progress_callback?.(event);
      } catch (e) {
        log.warn('progress_callback threw:', e);
      }
    };
    const fetched = await loadModelFiles(model, { revision, required: REQUIRED, optional: OPTIONAL, progress, localOnly: local_files_only });
    let files;
    if (fetched.hub) {
      files = await guarded(() => hubFiles(wasm, fetched.hub, REQUIRED, OPTIONAL, progress));
    } else {
      files = modelFileSet(wasm, fetched);
    }
    try {
      const handle = guardedSync(() => wasm.Tokenizer.load(files));
      return new PreTrainedTokenizer(handle, JSON.parse(handle.configJson()));
    } finally {
      files.free();
    }
  }
}
