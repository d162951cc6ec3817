// Types of the `webformers` package (the transformers.js pipeline API on WebGPU and WASM SIMD).

/** Where a pipeline runs: 'cpu' and 'gpu' are the native engine's (Node). */
export type Device = 'webgpu' | 'wasm' | 'cpu' | 'gpu';
/**
 * 'cpu' and 'gpu' (transformers.js's names): in Node the native engine where its addon
 * (`webformers-<platform>`) is installed, else 'wasm' and 'webgpu'; in browsers 'wasm' and 'webgpu'.
 * 'auto' in Node is the native CPU engine where the addon is installed (transformers.js's Node
 * default is onnxruntime-node's CPU), else WASM.
 */
export type DeviceOption = Device | 'auto' | 'cpu' | 'gpu';
export type DType = 'auto' | 'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4' | 'bnb4' | 'q4f16';
/** Per module, as transformers.js names them: the encoder, and the decoder or whole model. */
export type DTypeByModule = Partial<
  Record<'model' | 'encoder_model' | 'decoder_model_merged' | 'decoder_model' | 'decoder_with_past_model' | 'embed_tokens' | 'vision_encoder' | 'audio_encoder', DType>
>;

/** A load progress event, shaped as transformers.js's. */
export type ProgressInfo =
  | { status: 'initiate'; name: string; file: string }
  | { status: 'download'; name: string; file: string }
  | { status: 'progress'; name: string; file: string; loaded: number; total: number; progress: number }
  | { status: 'done'; name: string; file: string; loaded: number; total: number; progress: number }
  /** Hub models: bytes over every file of the load so far, after each 'progress'. */
  | { status: 'progress_total'; name: string; loaded: number; total: number; progress: number }
  | { status: 'ready'; task: string; model: string; name: string; device: Device };

export type ProgressCallback = (info: ProgressInfo) => void;

export interface PipelineOptions {
  /** 'auto' (default): WebGPU when an adapter opens and the model fits its limits, else WASM. */
  device?: DeviceOption;
  /**
   * Weight precision: 'auto' (as stored, default), 'fp32', 'fp16', 'q8' (linear layers quantized
   * to 8 bits at load), 'q4' (4 bits), 'q4f16' (4-bit linear layers, other weights f16), or per
   * module ({ encoder_model: 'fp32', decoder_model_merged: 'q4' }). GGUF weights stay as stored.
   * On WebGPU with 'shader-f16', 'fp16' and 'q4f16' also keep a decoder's KV cache in f16.
   */
  dtype?: DType | DTypeByModule;
  /** The Hub revision (branch, tag or commit) for models named by id. Default 'main'. */
  revision?: string;
  progress_callback?: ProgressCallback | null;
  /** Only look under env.localModelPath. */
  local_files_only?: boolean;
  /**
   * Aborts the load (rejecting with code 'aborted'): Hub downloads stop at once (complete files
   * stay cached, a file in progress stays resumable and is never visible), other steps at the
   * next step. Not taken by workerPipeline() yet.
   */
  signal?: AbortSignal | null;
}

/**
 * A cache of model files for `env.customCache`: the `match` and `put` of the Web Cache API, keyed
 * by http(s) URLs. `match` resolves to the Response put for that URL, or undefined.
 */
export interface CustomCache {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
}

export interface Env {
  readonly version: string;
  /** Default 'https://huggingface.co/'. */
  remoteHost: string;
  /** Default '{model}/resolve/{revision}/'. */
  remotePathTemplate: string;
  /** A Hugging Face token for private and gated models, sent to remoteHost's origin only. Default null. */
  accessToken: string | null;
  /** Keep Hub models in IndexedDB (browsers), so a second load downloads nothing. Default true. */
  useBrowserCache: boolean;
  /** Node: keep Hub models on disk in huggingface_hub's cache layout (shared with the CLI and Python). Default true. */
  useFSCache: boolean;
  /** Node: that cache's folder. Default null: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir: string | null;
  /**
   * Keep models in `customCache` instead of IndexedDB or the disk cache: Hub models, and models
   * fetched from http(s) URLs. A file is put once, whole and verified; a revision found there is
   * used without asking the Hub (as transformers.js). Default false.
   */
  useCustomCache: boolean;
  /** The cache `useCustomCache` uses: the Web Cache API's `match` and `put` (a `Cache` is one). Default null. */
  customCache: CustomCache | null;
  /**
   * Browsers: keep the engine's .wasm in the Cache API (cache 'webformers-wasm'), so a page loaded
   * again compiles it from there instead of downloading it. Where there is no Cache API it is
   * fetched as usual. Read when the engine first loads. Default true (as transformers.js).
   */
  useWasmCache: boolean;
  /** Default '/models/' (a URL path in browsers, a folder in Node). */
  localModelPath: string;
  allowRemoteModels: boolean;
  /** Default: true in Node, false in browsers (as transformers.js). */
  allowLocalModels: boolean;
  /**
   * Where webformers_wasm_bg.wasm (and webformers_wasm_threaded_bg.wasm, and their relaxed-simd
   * twins webformers_wasm_relaxed_bg.wasm and webformers_wasm_threaded_relaxed_bg.wasm) are served
   * from: a folder URL, or { 'webformers_wasm_bg.wasm': url, ... }.
   */
  wasmPaths: string | Record<string, string> | null;
  /**
   * The relaxed-simd builds (fused multiply-adds): null (default) or true where the JS engine
   * validates relaxed-simd, false for the simd128 builds. Read when the engine first loads.
   */
  relaxedSimd: boolean | null;
  /** Node: devices 'cpu', 'auto' and 'gpu' run the native addon where installed (default true); false runs WASM. */
  useNative: boolean;
  /**
   * CPU threads for device 'wasm': null (default) for the cores, at most 4. More than one runs the
   * threaded build, which needs a crossOriginIsolated page (COOP/COEP headers) or Node; elsewhere
   * one thread runs. Read when the engine first loads.
   */
  numThreads: number | null;
  /** A name, or a `LogLevel` number as transformers.js code sets it. */
  logLevel: 'debug' | 'info' | 'warning' | 'error' | 'none' | number;
  /**
   * Where transformers.js code configures ONNX Runtime's WASM backend: numThreads and wasmPaths
   * are env.numThreads and env.wasmPaths; `proxy: true` runs pipeline() in a Web Worker (pages).
   */
  backends: {
    readonly onnx: {
      readonly wasm: { numThreads: number | null; wasmPaths: string | Record<string, string> | null; proxy: boolean; [setting: string]: unknown };
    };
  };
  /** Milliseconds without data before a request is abandoned. Default 30000. */
  fetchTimeout: number;
}

export const env: Env;

/** Element types of a Tensor, and the typed array holding each (float16: Uint16Array bits where there is no Float16Array). */
export interface TensorDataTypes {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}
export type TensorType = keyof TensorDataTypes;

/** A dense row-major tensor in JavaScript memory, as transformers.js's Tensor. Pipelines give float32 ones. */
export class Tensor<T extends TensorType = 'float32'> {
  constructor(type: T, data: TensorDataTypes[T] | ArrayLike<number | bigint>, dims: number[]);
  readonly type: T;
  readonly data: TensorDataTypes[T];
  readonly dims: number[];
  readonly size: number;
  /** Row i of the first dimension (negative: from the end), sharing this tensor's data. */
  readonly [index: number]: Tensor<T>;
  /** The rows of the first dimension, or a 1-D tensor's elements. */
  [Symbol.iterator](): Iterator<any>;
  /** The value of a one-element tensor. */
  item(): number | bigint;
  /** Nested arrays, one level per dimension. */
  tolist(): any;
  clone(): Tensor<T>;
  /** Per dimension: an index (the dimension goes), [start, end] (end exclusive; null: open), or null (all). */
  slice(...slices: Array<number | [number | null, number | null] | null>): Tensor<T>;
  permute(...dims: number[]): Tensor<T>;
  /** As transformers.js: the same as permute. */
  transpose(...dims: number[]): Tensor<T>;
  /** Another shape of the same data; one size may be -1. */
  view(...dims: number[]): Tensor<T>;
  squeeze(dim?: number | number[] | null): Tensor<T>;
  unsqueeze(dim: number): Tensor<T>;
  flatten(start_dim?: number, end_dim?: number): Tensor<T>;
  sum(dim?: number | null, keepdim?: boolean): Tensor<T>;
  mean(dim?: number | null, keepdim?: boolean): Tensor<T>;
  norm(p?: number | 'fro', dim?: number | null, keepdim?: boolean): Tensor<T>;
  /** Divided by the p-norm over `dim` (default: each row). */
  normalize(p?: number, dim?: number): Tensor<T>;
  min(dim?: number | null, keepdim?: boolean): Tensor<T>;
  max(dim?: number | null, keepdim?: boolean): Tensor<T>;
  map(fn: (value: any, index: number) => any): Tensor<T>;
  mul(value: number): Tensor<T>;
  div(value: number): Tensor<T>;
  add(value: number): Tensor<T>;
  sub(value: number): Tensor<T>;
  /** A copy of another element type (this tensor when it is one). */
  to<U extends TensorType>(type: U): Tensor<U>;
  dispose(): void;
}

/** Tensors joined along `dim`. */
export function cat<T extends TensorType>(tensors: Tensor<T>[], dim?: number): Tensor<T>;
/** Tensors of one shape stacked along a new dimension `dim`. */
export function stack<T extends TensorType>(tensors: Tensor<T>[], dim?: number): Tensor<T>;
/** The mean of [batch, tokens, width] hidden states over the tokens the [batch, tokens] mask marks. */
export function mean_pooling(last_hidden_state: Tensor<'float32'>, attention_mask: Tensor<TensorType>): Tensor<'float32'>;
/** [n, width] embeddings as packed sign bits: 'binary' (int8) or 'ubinary' (uint8). */
export function quantize_embeddings(tensor: Tensor<'float32'>, precision: 'binary' | 'ubinary'): Tensor<'int8' | 'uint8'>;

/** Options of a tokenizer call (transformers.js's). */
export interface TokenizerCallOptions {
  text_pair?: string | string[] | null;
  add_special_tokens?: boolean;
  /** true: to the longest; 'max_length': to max_length. */
  padding?: boolean | 'max_length';
  /** Cut to max_length (default model_max_length), special tokens kept, as Python does. */
  truncation?: boolean | null;
  max_length?: number | null;
  /** Default true: int64 Tensors [batch, tokens]; false: arrays (unbatched for one text). */
  return_tensor?: boolean;
  return_token_type_ids?: boolean | null;
}

export interface BatchEncoding {
  input_ids: Tensor<'int64'>;
  attention_mask: Tensor<'int64'>;
  /** BERT-like tokenizers (or return_token_type_ids: true). */
  token_type_ids?: Tensor<'int64'>;
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** A model's tokenizer; call it to encode. */
export interface PreTrainedTokenizer {
  (text: string | string[], options?: TokenizerCallOptions & { return_tensor?: true }): BatchEncoding;
  (text: string | string[], options: TokenizerCallOptions & { return_tensor: false }): Record<string, number[] | number[][]>;
  readonly config: Record<string, unknown>;
  readonly model_max_length: number;
  padding_side: 'left' | 'right';
  readonly vocab_size: number;
  readonly bos_token: string | null;
  readonly bos_token_id: number | undefined;
  readonly eos_token: string | null;
  readonly eos_token_id: number | undefined;
  readonly pad_token: string | null;
  readonly pad_token_id: number | undefined;
  readonly unk_token: string | null;
  readonly unk_token_id: number | undefined;
  readonly sep_token: string | null;
  readonly sep_token_id: number | undefined;
  readonly cls_token: string | null;
  readonly cls_token_id: number | undefined;
  readonly mask_token: string | null;
  readonly mask_token_id: number | undefined;
  readonly all_special_ids: number[];
  readonly all_special_tokens: string[];
  readonly chat_template: string | null;
  encode(text: string, options?: { text_pair?: string | null; add_special_tokens?: boolean }): number[];
  tokenize(text: string, options?: { pair?: string | null; add_special_tokens?: boolean }): string[];
  decode(token_ids: ArrayLike<number | bigint> | Tensor<TensorType>, options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  batch_decode(batch: ArrayLike<number | bigint>[] | Tensor<TensorType>, options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string[];
  convert_tokens_to_ids(tokens: string[]): (number | undefined)[];
  convert_tokens_to_ids(token: string): number | undefined;
  convert_ids_to_tokens(ids: number[]): (string | undefined)[];
  convert_ids_to_tokens(id: number): string | undefined;
  get_vocab(): Map<string, number>;
  apply_chat_template(conversation: ChatMessage[], options: { tokenize: false; add_generation_prompt?: boolean; chat_template?: string | null }): string;
  apply_chat_template(
    conversation: ChatMessage[],
    options?: TokenizerCallOptions & { tokenize?: true; return_dict?: boolean; add_generation_prompt?: boolean; chat_template?: string | null; tokenizer_kwargs?: TokenizerCallOptions },
  ): BatchEncoding | Tensor<'int64'>;
  /** Frees the engine's tokenizer. */
  dispose(): void;
}
export const PreTrainedTokenizer: { prototype: PreTrainedTokenizer };

/** transformers.js's AutoTokenizer: a model's tokenizer.json and tokenizer_config.json. */
export class AutoTokenizer {
  static from_pretrained(
    model: string,
    options?: { revision?: string; local_files_only?: boolean; progress_callback?: ((p: ProgressInfo) => void) | null },
  ): Promise<PreTrainedTokenizer>;
}

/** A model's outputs by name (float32). */
export type ModelOutput = Record<string, Tensor<'float32'>>;

/** A processor's outputs: an image processor's or a feature extractor's. */
export type ProcessorOutput = {
  pixel_values?: Tensor<'float32'>;
  /** Where the processor pads (DETR): 1 on the image's pixels. */
  pixel_mask?: Tensor<'int64'>;
  /** [N, 2]: each image's (height, width) before and after resizing. */
  original_sizes?: Tensor<'int64'>;
  reshaped_input_sizes?: Tensor<'int64'>;
  input_features?: Tensor<'float32'>;
};

/** A model's inputs by name: a tokenizer's or processor's output (undefined entries are skipped). */
export type ModelInputs = BatchEncoding | ProcessorOutput | Record<string, Tensor<TensorType> | undefined>;

/** Options of `generate()`: the inputs (Tensors) and generation options in one object, as transformers.js takes them. */
export interface GenerateArgs {
  /** A decoder's or a text encoder-decoder's input; `inputs` may stand for it. */
  input_ids?: Tensor<TensorType>;
  attention_mask?: Tensor<TensorType>;
  /** Whisper's log-mel [batch, mel bins, frames] (AutoProcessor's output); `inputs` may stand for it. */
  input_features?: Tensor<'float32'>;
  /** The model's main input (input_ids; Whisper's input_features), as transformers.js's `generate({ inputs })`. */
  inputs?: Tensor<TensorType>;
  /** An encoder-decoder's decoder prompt [batch, tokens] (default: its start token; Whisper's prompt from language and task). */
  decoder_input_ids?: Tensor<TensorType>;
  num_beams?: number;
  num_return_sequences?: number;
  /** Whisper: the language (a code, name or token) and the task ('transcribe' or 'translate'). */
  language?: string;
  task?: string;
  max_new_tokens?: number;
  max_length?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  no_repeat_ngram_size?: number;
  seed?: number;
  eos_token_id?: number | number[];
  generation_config?: Record<string, unknown>;
  [option: string]: unknown;
}

/**
 * A model on its own (`AutoModel.from_pretrained` and the `AutoModelFor...` classes). Calling it
 * runs `forward`: `const { logits } = await model(await tokenizer(texts, { padding: true }))`.
 */
export interface PreTrainedModel {
  (inputs: ModelInputs): Promise<ModelOutput>;
  /**
   * Outputs as transformers names them: `last_hidden_state` [batch, tokens, hidden] (zeros at
   * padding; text encoders take right padding), `logits`, `start_logits` / `end_logits`,
   * `pooler_output`, `pred_boxes`; an encoder-decoder's `logits` [batch, decoder tokens,
   * vocabulary] for its `decoder_input_ids` and `encoder_last_hidden_state`: float32 Tensors.
   */
  forward(inputs: ModelInputs): Promise<ModelOutput>;
  /**
   * AutoModelForCausalLM: each row of input_ids followed by its new tokens; AutoModelForSeq2SeqLM
   * and AutoModelForSpeechSeq2Seq: the decoder's start token (Whisper: its prompt) followed by the
   * new tokens, padded with the pad token; int64 [batch, tokens].
   */
  generate(args: GenerateArgs | Tensor<TensorType>): Promise<Tensor<'int64'>>;
  /** config.json. */
  readonly config: Record<string, unknown>;
  /** The engine's facts: model_type, architecture, id2label, vocab_size, hidden_size, max_positions. */
  readonly info: Readonly<Record<string, unknown>>;
  /** The id, URL or path it was loaded from. */
  readonly model: string;
  /** The class it was loaded as ('AutoModelForMaskedLM'). */
  readonly class_name: string;
  /** The task of the pipeline whose weights it shares (`pipe.model`); null for a model loaded on its own. */
  readonly pipeline_task: string | null;
  readonly device: Device;
  readonly device_note: string | null;
  /** The inputs forward() reads. */
  readonly input_names: string[];
  /**
   * Frees its weights; the model is unusable afterwards. A pipeline's model frees only its
   * hold on them: the pipeline keeps working, and `pipe.model` gives a new one.
   */
  dispose(): Promise<void>;
}

/** `from_pretrained`'s options: pipeline()'s. */
export type ModelOptions = PipelineOptions;

export const PreTrainedModel: { prototype: PreTrainedModel };
export const Processor: { prototype: Processor };

/** transformers.js's AutoModel: the base model of a Hub id, URL or folder. */
export class AutoModel {
  static from_pretrained(model: string, options?: ModelOptions): Promise<PreTrainedModel>;
}
export class AutoModelForSequenceClassification extends AutoModel {}
export class AutoModelForTokenClassification extends AutoModel {}
export class AutoModelForQuestionAnswering extends AutoModel {}
export class AutoModelForMaskedLM extends AutoModel {}
export class AutoModelForCausalLM extends AutoModel {}
export class AutoModelForImageClassification extends AutoModel {}
/** `logits` [batch, queries, labels + 1] and `pred_boxes` [batch, queries, 4] (DETR). */
export class AutoModelForObjectDetection extends AutoModel {}
/** Marian, BART, M2M100 / NLLB, T5: `{input_ids, attention_mask, decoder_input_ids}` → `logits`, `encoder_last_hidden_state`; `generate()`. */
export class AutoModelForSeq2SeqLM extends AutoModel {}
/** Whisper: `{input_features, decoder_input_ids}` → `logits`, `encoder_last_hidden_state`; `generate({ inputs, language, task, ... })`. */
export class AutoModelForSpeechSeq2Seq extends AutoModel {}
/** CLIP / SigLIP: `logits_per_image`, `logits_per_text`, `text_embeds`, `image_embeds` (normalized). */
export class CLIPModel extends AutoModel {}
/** `text_embeds` [texts, D]: projected, not normalized. */
export class CLIPTextModelWithProjection extends AutoModel {}
/** `image_embeds` [images, D]: projected, not normalized. */
export class CLIPVisionModelWithProjection extends AutoModel {}
export class SiglipModel extends AutoModel {}
/** `pooler_output` [texts, D]. */
export class SiglipTextModel extends AutoModel {}
/** `pooler_output` [images, D]. */
export class SiglipVisionModel extends AutoModel {}

/** A model's processor (`AutoProcessor.from_pretrained`), callable on images or audio. */
export interface Processor {
  /** Images → pixel_values, original_sizes, reshaped_input_sizes (pixel_mask where it pads); audio → input_features. */
  (input: ImageInput | ImageInput[] | AudioInput | AudioInput[]): Promise<ProcessorOutput>;
  /** preprocessor_config.json. */
  readonly config: Record<string, unknown>;
  readonly kind: 'image' | 'audio';
  dispose(): void;
}

/** transformers.js's AutoProcessor: the image processor or feature extractor of preprocessor_config.json. */
export class AutoProcessor {
  static from_pretrained(
    model: string,
    options?: { revision?: string; local_files_only?: boolean; progress_callback?: ProgressCallback | null },
  ): Promise<Processor>;
}

/** transformers.js's log levels, for env.logLevel. */
export const LogLevel: Readonly<{ DEBUG: 10; INFO: 20; WARNING: 30; ERROR: 40; NONE: 50 }>;

/** An Error from webformers; `code` says what failed. */
export class WebformersError extends Error {
  constructor(message: string, code?: string);
  /**
   * 'file' (missing or bad file), 'network', 'config', 'weight', 'tokenizer', 'unsupported',
   * 'input', 'no_adapter', 'over_limit', 'out_of_memory' (a GPU buffer the device has no room
   * for, or a model over the 4 GiB WebAssembly memory), 'device_lost' (the WebGPU device is gone:
   * a new pipeline opens a new one), 'gpu', 'wasm', 'worker', 'panic' or 'engine'; for Hub
   * models also 'auth' (private or gated), 'integrity' (bytes not matching their sha256),
   * 'quota' (the browser's storage quota), 'cache' (IndexedDB failed) and 'aborted' (the load's
   * AbortSignal fired).
   */
  code: string;
}

/** A Hub model cached in this browser (IndexedDB, per origin). */
export interface CachedModel {
  /** 'org/name'. */
  readonly repo: string;
  /** Bytes of its complete files (each content counted once). */
  readonly size: number;
  readonly files: ReadonlyArray<{ file: string; commit: string; size: number }>;
  /** Branches and tags → the commit they pointed to when last loaded. */
  readonly revisions: Readonly<Record<string, string>>;
  /** Bytes of downloads that did not finish (kept so that the next load resumes). */
  readonly incomplete: number;
}

/** The Hub models cached in this browser. Empty where there is no IndexedDB (Node). */
export const cache: {
  list(): Promise<CachedModel[]>;
  /** Removes every file of `repo`; resolves to the bytes freed. */
  delete(repo: string): Promise<number>;
  clear(): Promise<void>;
};

export function cos_sim(a: ArrayLike<number>, b: ArrayLike<number>): number;

interface PipelineBase {
  readonly task: string;
  /**
   * The loaded model, as transformers.js's `pipe.model`: callable (`await pipe.model(inputs)`),
   * with `config` (config.json) and, for text-generation and the encoder-decoder tasks
   * (translation, summarization, text2text-generation, speech recognition), `generate()`; it
   * shares the pipeline's weights (no second copy), made on first read and disposed with the
   * pipeline. Reading it throws (code 'unsupported') for tasks without a model class here (the
   * zero-shot image task's dual encoder; text-generation from a GGUF file).
   */
  readonly model: PreTrainedModel;
  /** The model id, URL or folder the pipeline was made from. */
  readonly model_id: string;
  /** Where this pipeline runs. */
  readonly device: Device;
  /** The adapter or CPU in words. */
  readonly adapter: string;
  /** Why device 'auto' ended up on WASM (no WebGPU, a software adapter, a model over its limits); null otherwise. */
  readonly device_note: string | null;
  /** CPU threads of a 'wasm' pipeline (1 without cross-origin isolation); null on WebGPU. */
  readonly threads: number | null;
  /** Facts about the loaded model from the engine (each is also a property of the pipeline). */
  readonly info: Readonly<Record<string, unknown>>;
  /**
   * The model's tokenizer (as `AutoTokenizer.from_pretrained` gives it) where the model has a
   * tokenizer.json and the pipeline runs on this thread; else a placeholder that streamers accept.
   */
  readonly tokenizer?: PreTrainedTokenizer | unknown;
  /** Frees the model's memory (after the calls in flight). */
  dispose(): Promise<void>;
}

// ---- feature-extraction ---------------------------------------------------------------------

export interface FeatureExtractionOptions {
  /** Default 'none' (every token's vector). */
  pooling?: 'none' | 'mean' | 'cls' | 'first_token';
  /** L2-normalize each vector. Default false. */
  normalize?: boolean;
}

export interface FeatureExtractionPipeline extends PipelineBase {
  /** dims: [texts, hidden] pooled, [texts, tokens, hidden] with pooling 'none'. */
  (texts: string | string[], options?: FeatureExtractionOptions): Promise<Tensor>;
  readonly task: 'feature-extraction';
  readonly hidden_size: number;
}

// ---- text-classification (sentiment-analysis) -------------------------------------------------

/** Two texts classified together (what cross-encoders and NLI models read). */
export interface TextPair {
  text: string;
  text_pair: string;
}

export interface TextClassificationOptions {
  /**
   * Absent: the best label; a number: the n best; null: every label (each list from the most
   * likely down).
   */
  top_k?: number | null;
  /** Default: 'sigmoid' for multi-label models (and single-logit ones), else 'softmax'. */
  function_to_apply?: 'softmax' | 'sigmoid' | 'none';
}

export interface TextClassificationLabel {
  label: string;
  score: number;
}

export interface TextClassificationPipeline extends PipelineBase {
  /** One text: its labels (the best one only, unless top_k says otherwise). */
  (text: string, options?: TextClassificationOptions): Promise<TextClassificationLabel[]>;
  /** A pair: the best label as one object; with top_k, a list. */
  (pair: TextPair, options?: TextClassificationOptions): Promise<TextClassificationLabel | TextClassificationLabel[]>;
  /**
   * Several inputs: one object each (the best label, or top_k 1), else one list each.
   */
  (texts: (string | TextPair)[], options?: TextClassificationOptions): Promise<TextClassificationLabel[] | TextClassificationLabel[][]>;
  readonly task: 'text-classification';
  /** The model's labels, by class index (config.json's id2label). */
  readonly labels: string[];
}

// ---- token-classification (ner) ---------------------------------------------------------------

export type AggregationStrategy = 'none' | 'simple' | 'first' | 'average' | 'max';

export interface TokenClassificationOptions {
  /** Labels left out of the result. Default ['O']. */
  ignore_labels?: string[];
  /** How sub-word tokens are merged into words and entities. Default 'none' (one result per token). */
  aggregation_strategy?: AggregationStrategy;
}

/** One token's label (aggregation_strategy 'none'). */
export interface TokenClassificationToken {
  entity: string;
  score: number;
  /** The token's position in the tokenized input. */
  index: number;
  word: string;
  /** Character offsets of the token in the text. */
  start: number | null;
  end: number | null;
}

/** One entity: neighbouring tokens merged (any aggregation_strategy but 'none'). */
export interface TokenClassificationEntity {
  entity_group: string;
  score: number;
  word: string;
  start: number | null;
  end: number | null;
}

export interface TokenClassificationPipeline extends PipelineBase {
  (text: string, options?: TokenClassificationOptions & { aggregation_strategy?: 'none' }): Promise<TokenClassificationToken[]>;
  (text: string, options: TokenClassificationOptions & { aggregation_strategy: Exclude<AggregationStrategy, 'none'> }): Promise<TokenClassificationEntity[]>;
  (texts: string[], options?: TokenClassificationOptions & { aggregation_strategy?: 'none' }): Promise<TokenClassificationToken[][]>;
  (texts: string[], options: TokenClassificationOptions & { aggregation_strategy: Exclude<AggregationStrategy, 'none'> }): Promise<TokenClassificationEntity[][]>;
  readonly task: 'token-classification';
  readonly labels: string[];
}

// ---- question-answering -------------------------------------------------------------------------

export interface QuestionContext {
  question: string;
  context: string;
}

export interface QuestionAnsweringOptions {
  /** The n best answers (a list when more than 1). Default 1. */
  top_k?: number;
  /** Consider the empty answer (start = end = 0, answer ''). Default false. */
  handle_impossible_answer?: boolean;
  /** Longest answer, in tokens. Default 15. */
  max_answer_len?: number;
  /** Tokens per window over a long context (question included). Default 384. */
  max_seq_len?: number;
  /** Tokens the windows overlap by. Default 128. */
  doc_stride?: number;
  /** Longest question, in tokens. Default 64. */
  max_question_len?: number;
}

export interface QuestionAnsweringAnswer {
  answer: string;
  score: number;
  /** Character offsets of the answer in the context. */
  start: number;
  end: number;
}

export interface QuestionAnsweringPipeline extends PipelineBase {
  /** One answer; with top_k over 1, a list of them. */
  (question: string, context: string, options?: QuestionAnsweringOptions): Promise<QuestionAnsweringAnswer | QuestionAnsweringAnswer[]>;
  (input: QuestionContext, options?: QuestionAnsweringOptions): Promise<QuestionAnsweringAnswer | QuestionAnsweringAnswer[]>;
  /** Several questions (paired up with as many contexts): one result each. */
  (questions: string[], contexts: string[], options?: QuestionAnsweringOptions): Promise<(QuestionAnsweringAnswer | QuestionAnsweringAnswer[])[]>;
  (inputs: QuestionContext[], options?: QuestionAnsweringOptions): Promise<(QuestionAnsweringAnswer | QuestionAnsweringAnswer[])[]>;
  readonly task: 'question-answering';
}

// ---- fill-mask ----------------------------------------------------------------------------------

export interface FillMaskOptions {
  /** Candidates per mask. Default 5. */
  top_k?: number;
  /** Score only these words (each as its first token when it is not one token). */
  targets?: string | string[];
}

export interface FillMaskCandidate {
  score: number;
  /** The token id. */
  token: number;
  token_str: string;
  /** The text with the mask filled in. */
  sequence: string;
}

export interface FillMaskPipeline extends PipelineBase {
  /** A text with one mask token: its candidates; with several masks: a list per mask. */
  (text: string, options?: FillMaskOptions): Promise<FillMaskCandidate[] | FillMaskCandidate[][]>;
  /** One such result per text. */
  (texts: string[], options?: FillMaskOptions): Promise<(FillMaskCandidate[] | FillMaskCandidate[][])[]>;
  readonly task: 'fill-mask';
  /** The mask token to put in texts ('[MASK]', '<mask>'). */
  readonly mask_token: string;
}

// ---- zero-shot-classification -------------------------------------------------------------------

export interface ZeroShotClassificationOptions {
  /** Scores each label on its own (entailment against contradiction) instead of softmaxed over the labels. Default false. */
  multi_label?: boolean;
  /** The hypothesis each label is put into; `{}` marks where. Default 'This example is {}.' */
  hypothesis_template?: string;
}

export interface ZeroShotClassificationOutput {
  sequence: string;
  /** From the most likely down. */
  labels: string[];
  scores: number[];
}

export interface ZeroShotClassificationPipeline extends PipelineBase {
  (text: string, candidate_labels: string | string[], options?: ZeroShotClassificationOptions): Promise<ZeroShotClassificationOutput>;
  (texts: string[], candidate_labels: string | string[], options?: ZeroShotClassificationOptions): Promise<ZeroShotClassificationOutput[]>;
  /** The labels in the options (a list, or one comma-separated string). */
  (text: string, options: ZeroShotClassificationOptions & { candidate_labels: string | string[] }): Promise<ZeroShotClassificationOutput>;
  (texts: string[], options: ZeroShotClassificationOptions & { candidate_labels: string | string[] }): Promise<ZeroShotClassificationOutput[]>;
  readonly task: 'zero-shot-classification';
  /** The NLI model's own labels (entailment, neutral, contradiction). */
  readonly labels: string[];
}

// ---- text-generation ----------------------------------------------------------------------------

export interface Message {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  /** Text, or parts (`{type: 'text', text}`, ...) for templates that take them; null beside tool_calls. */
  content: string | Array<Record<string, unknown>> | null;
  /** Anything else the chat template reads (`tool_calls`, `name`, ...). */
  [key: string]: unknown;
}

export interface TextStreamerOptions {
  skip_prompt?: boolean;
  skip_special_tokens?: boolean;
  /** Each new piece of final text. */
  callback_function?: (text: string) => void;
  /** Every generation step's token ids (special and timestamp tokens included). */
  token_callback_function?: (tokens: bigint[]) => void;
}

export declare class TextStreamer {
  constructor(tokenizer?: unknown, options?: TextStreamerOptions);
  callback_function: ((text: string) => void) | null;
  token_callback_function: ((tokens: bigint[]) => void) | null;
  /** Called with each new piece of text (prints it when there is no callback_function). */
  on_finalized_text(text: string, stream_end: boolean): void;
  end(): void;
}

export interface WhisperTextStreamerOptions extends TextStreamerOptions {
  /** A segment starts: seconds from the start of the audio (with return_timestamps). */
  on_chunk_start?: (time: number) => void;
  /** A segment ends: seconds from the start of the audio. */
  on_chunk_end?: (time: number) => void;
  /** The transcription ended. */
  on_finalize?: () => void;
  /** Accepted for transformers.js compatibility (the engine sends seconds). */
  time_precision?: number;
  decode_kwargs?: object;
}

/**
 * transformers.js's WhisperTextStreamer, for automatic-speech-recognition: pass it as the call's
 * `streamer`. Text comes once it is final (see the README's "Streaming speech").
 */
export declare class WhisperTextStreamer extends TextStreamer {
  constructor(tokenizer?: unknown, options?: WhisperTextStreamerOptions);
  on_chunk_start: ((time: number) => void) | null;
  on_chunk_end: ((time: number) => void) | null;
  on_finalize: (() => void) | null;
  time_precision: number;
}

/** A call's progress through its input (`progress_callback` of an automatic-speech-recognition call). */
export interface CallProgress {
  status: 'progress';
  /** Percent, 0 to 100. */
  progress: number;
  done: number;
  total: number;
  /** 's': seconds of audio. */
  unit: string;
}

/**
 * transformers.js's InterruptableStoppingCriteria: pass it as `stopping_criteria`, then
 * `interrupt()` stops the generation after its current token; the call resolves with what was
 * generated so far (`stats.stop_reason` 'interrupted'). It stays interrupted until `reset()`.
 */
export declare class InterruptableStoppingCriteria {
  constructor();
  readonly interrupted: boolean;
  interrupt(): void;
  reset(): void;
}

export interface TextGenerationOptions {
  max_new_tokens?: number;
  /** The most tokens in all, prompt included. */
  max_length?: number;
  /** No EOS before this many new tokens. */
  min_new_tokens?: number;
  /** No EOS before the whole sequence is this long. */
  min_length?: number;
  /** With do_sample: that many independent samples (seeded seed, seed + 1, ...), one result each; with num_beams: the best ones. */
  num_return_sequences?: number;
  /** Beam search with this many beams. */
  num_beams?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  seed?: number;
  /** 0 is none: no n-gram of this size occurs twice. */
  no_repeat_ngram_size?: number;
  /** Ids never generated / not generated first. */
  suppress_tokens?: number[];
  begin_suppress_tokens?: number[];
  /** Generation ends after any of these ids; they replace the model's own EOS ids, as in transformers. */
  eos_token_id?: number | number[];
  /** Stop before any of these strings. */
  stop?: string | string[];
  /** transformers' name for `stop`. */
  stop_strings?: string | string[];
  /** Aborting stops the generation after its current token; the call resolves with what was generated so far. */
  signal?: AbortSignal;
  /** An InterruptableStoppingCriteria (or a list of them), as in transformers.js; any other criteria is refused (an error naming it). */
  stopping_criteria?: InterruptableStoppingCriteria | InterruptableStoppingCriteria[];
  /** Called with each new token's ids (BigInts), as transformers.js's streamer option. */
  token_callback_function?: (ids: bigint[]) => void;
  /**
   * Continue from the KV cache the pipeline kept from its last call where this prompt extends
   * that call's prompt and reply (multi-turn chat; default true; the tokens are a fresh run's).
   * false computes the whole prompt and keeps no cache.
   */
  reuse_cache?: boolean;
  /** The most bytes the kept KV cache may hold (default 256 MiB); a larger one is dropped. */
  max_cache_bytes?: number;
  /** A messages prompt: tool definitions (JSON schemas) for the chat template. */
  tools?: Array<Record<string, unknown>>;
  /** A messages prompt: documents (`{title, text}`) for the chat template. */
  documents?: Array<Record<string, unknown>>;
  /** A messages prompt: end where the assistant's reply begins (default true). */
  add_generation_prompt?: boolean;
  /** A messages prompt: this Jinja template instead of the model's. */
  chat_template?: string;
  /** A messages prompt: further template variables, e.g. `{enable_thinking: false}`. */
  chat_template_kwargs?: Record<string, unknown>;
  /** For string prompts: include the prompt in generated_text (default true, as transformers.js). */
  return_full_text?: boolean;
  streamer?: TextStreamer;
  /** Called with each new piece of text (a shortcut for a streamer). */
  callback_function?: (text: string) => void;
}

export interface GenerationStats {
  prompt_tokens: number;
  /** Of prompt_tokens, those continued from the pipeline's kept KV cache rather than computed. */
  prompt_tokens_reused: number;
  new_tokens: number;
  /** Seconds to the first new token (the prompt's forward pass). */
  time_to_first_token: number;
  /** New tokens per second after the first. */
  tokens_per_second: number;
  token_ids: number[];
  stop_reason: 'eos' | 'stop_string' | 'max_tokens' | 'interrupted';
  prefill_seconds: number;
  decode_seconds: number;
}

export interface TextGenerationOutput<T> {
  generated_text: T;
  /** Not enumerable: the result keeps transformers.js's shape (deepEqual, JSON.stringify, spreads). */
  readonly stats: GenerationStats;
}

export interface TextGenerationPipeline extends PipelineBase {
  (prompt: string, options?: TextGenerationOptions): Promise<TextGenerationOutput<string>[]>;
  (messages: Message[], options?: TextGenerationOptions): Promise<TextGenerationOutput<Message[]>[]>;
  (prompts: string[], options?: TextGenerationOptions): Promise<TextGenerationOutput<string>[][]>;
  readonly task: 'text-generation';
  /** Pass to `new TextStreamer(generator.tokenizer, ...)`, as in transformers.js. */
  readonly tokenizer: unknown;
  /** The prompt as the model sees it. */
  apply_chat_template(messages: Message[]): Promise<string>;
  /** With the call's chat options; add_generation_prompt defaults to true. */
  apply_chat_template(request: {
    messages: Message[];
    tools?: Array<Record<string, unknown>>;
    documents?: Array<Record<string, unknown>>;
    add_generation_prompt?: boolean;
    chat_template?: string;
    chat_template_kwargs?: Record<string, unknown>;
  }): Promise<string>;
  /** Forgets the KV cache kept from the last call (see `reuse_cache`). */
  clear_cache(): Promise<void>;
}

// ---- images -------------------------------------------------------------------------------------

/** Decoded pixels, as transformers.js's RawImage: row-major, `channels` bytes a pixel. */
export class RawImage {
  constructor(data: Uint8ClampedArray | Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4);
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
  /** 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** [width, height]. */
  readonly size: [number, number];
  /** From a URL or path, a Blob, a canvas, an image element, an ImageBitmap, ImageData; a RawImage is returned as is. */
  static read(input: ImageInput | URL): Promise<RawImage>;
  /** A URL (http(s), relative, blob:, data:) or, in Node, a path or file: URL. */
  static fromURL(url: string | URL): Promise<RawImage>;
  static fromBlob(blob: Blob): Promise<RawImage>;
  /** RGBA pixels of a canvas. Browsers only. */
  static fromCanvas(canvas: HTMLCanvasElement | OffscreenCanvas): RawImage;
  /** From a uint8 tensor of dims [C, H, W] ('CHW', default) or [H, W, C] ('HWC'). */
  static fromTensor(tensor: { dims: number[]; data: Uint8Array | Uint8ClampedArray; type?: string }, channel_format?: 'CHW' | 'HWC'): RawImage;
  /** In place; returns this. */
  grayscale(): this;
  /** In place (gray repeated, alpha dropped); returns this. */
  rgb(): this;
  /** In place; returns this. */
  rgba(): this;
  convert(channels: 1 | 3 | 4): this;
  clone(): RawImage;
  /**
   * A resized copy with PIL's pixels (its filters and rounding). `resample`: 0 nearest, 1 lanczos,
   * 2 bilinear (default), 3 bicubic, 4 box, 5 hamming, or the name. A null size keeps the aspect ratio.
   */
  resize(
    width: number | null,
    height: number | null,
    options?: { resample?: 0 | 1 | 2 | 3 | 4 | 5 | 'nearest' | 'lanczos' | 'bilinear' | 'bicubic' | 'box' | 'hamming' },
  ): Promise<RawImage>;
  /** Browsers only: an OffscreenCanvas (a canvas element where there is none). */
  toCanvas(): OffscreenCanvas | HTMLCanvasElement;
  /** Browsers only. */
  toBlob(type?: string, quality?: number): Promise<Blob>;
}

/** transformers.js's `load_image`: `RawImage.read`. */
export function load_image(input: ImageInput | URL): Promise<RawImage>;

/**
 * What every image task takes: a URL (http(s), relative, blob:, data:; in Node also a path or
 * file: URL), a Blob or File, an image element, an ImageBitmap, ImageData, a canvas or
 * OffscreenCanvas, or a RawImage.
 */
export type ImageInput =
  | string
  | Blob
  | RawImage
  | HTMLImageElement
  | ImageBitmap
  | ImageData
  | HTMLCanvasElement
  | OffscreenCanvas;

// ---- image-classification -------------------------------------------------------------------

export interface ImageClassificationOptions {
  /** The n best labels (default 5); null: every label. */
  top_k?: number | null;
}

export interface ImageClassificationPipeline extends PipelineBase {
  /** One image: its best labels, the most likely first. */
  (image: ImageInput, options?: ImageClassificationOptions): Promise<TextClassificationLabel[]>;
  /** Several: one list each. */
  (images: ImageInput[], options?: ImageClassificationOptions): Promise<TextClassificationLabel[][]>;
  readonly task: 'image-classification';
  readonly labels: string[];
}

// ---- image-feature-extraction ---------------------------------------------------------------

export interface ImageFeatureExtractionOptions {
  /** The model's pooled embedding ([images, hidden]) instead of every patch's ([images, patches, hidden]). */
  pool?: boolean | null;
}

export interface ImageFeatureExtractionPipeline extends PipelineBase {
  (images: ImageInput | ImageInput[], options?: ImageFeatureExtractionOptions): Promise<Tensor>;
  readonly task: 'image-feature-extraction';
}

// ---- zero-shot-image-classification -----------------------------------------------------------

export interface ZeroShotImageClassificationOptions {
  /** Default 'This is a photo of {}.' */
  hypothesis_template?: string;
  candidate_labels?: string[];
}

export interface ZeroShotImageClassificationPipeline extends PipelineBase {
  /** One image: every label with its score, the most likely first. */
  (image: ImageInput, candidate_labels: string[], options?: ZeroShotImageClassificationOptions): Promise<TextClassificationLabel[]>;
  (images: ImageInput[], candidate_labels: string[], options?: ZeroShotImageClassificationOptions): Promise<TextClassificationLabel[][]>;
  (image: ImageInput, options: ZeroShotImageClassificationOptions & { candidate_labels: string[] }): Promise<TextClassificationLabel[]>;
  (images: ImageInput[], options: ZeroShotImageClassificationOptions & { candidate_labels: string[] }): Promise<TextClassificationLabel[][]>;
  readonly task: 'zero-shot-image-classification';
}

// ---- object-detection -------------------------------------------------------------------------

export interface ObjectDetectionOptions {
  /** The least score a detection needs. Default 0.9. */
  threshold?: number;
  /** Boxes as fractions of the image's size instead of pixels. Default false. */
  percentage?: boolean;
}

export interface DetectedObject {
  score: number;
  label: string;
  box: { xmin: number; ymin: number; xmax: number; ymax: number };
}

export interface ObjectDetectionPipeline extends PipelineBase {
  (image: ImageInput, options?: ObjectDetectionOptions): Promise<DetectedObject[]>;
  (images: ImageInput[], options?: ObjectDetectionOptions): Promise<DetectedObject[][]>;
  readonly task: 'object-detection';
  readonly labels: string[];
}

// ---- automatic-speech-recognition ------------------------------------------------------------

/** Speech: an audio file, mono samples at 16 kHz (as transformers.js takes them), an AudioBuffer or a RawAudio (see AudioInput). */
export type SpeechInput = AudioInput;

export interface AutomaticSpeechRecognitionOptions {
  /** The spoken language (multilingual models): 'english', 'en' or '<|en|>'; detected when absent. */
  language?: string | null;
  /** 'transcribe' (default) or 'translate' (to English), multilingual models only. */
  task?: 'transcribe' | 'translate' | null;
  /** true: segment chunks with [start, end] seconds; 'word': one chunk per word. */
  return_timestamps?: boolean | 'word';
  /** The chunks' language names too (Python transformers' option). */
  return_language?: boolean;
  /** Cut long audio into chunks of this many seconds (30 for Whisper), merged after decoding. */
  chunk_length_s?: number;
  /** The chunks' overlap on each side, in seconds (default chunk_length_s / 6), or [left, right]. */
  stride_length_s?: number | [number, number];
  max_new_tokens?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  seed?: number;
  /** Only 1: beam search is not implemented. */
  num_beams?: 1;
  /** Accepted and ignored, as transformers.js does for Whisper. */
  force_full_sequences?: boolean;
  /** An InterruptableStoppingCriteria (or a list holding one), as in transformers.js. */
  stopping_criteria?: InterruptableStoppingCriteria | InterruptableStoppingCriteria[];
  /** Gets the transcript as it becomes final, each step's tokens, and segment start/end times. */
  streamer?: TextStreamer | WhisperTextStreamer;
  /** Called with each new piece of final text (a shortcut for a streamer). */
  callback_function?: (text: string) => void;
  /** Called after every 30 s window or chunk with the seconds of audio done. */
  progress_callback?: (progress: CallProgress) => void;
  /** Aborting stops after the current token; no further window or chunk starts. */
  signal?: AbortSignal;
}

export interface AutomaticSpeechRecognitionChunk {
  text: string;
  timestamp: [number, number | null];
  language?: string | null;
}

export interface AutomaticSpeechRecognitionOutput {
  text: string;
  chunks?: AutomaticSpeechRecognitionChunk[];
}

export interface AutomaticSpeechRecognitionPipeline extends PipelineBase {
  /** One audio: its transcript (streamed through a streamer's callbacks as it is decoded). */
  (audio: SpeechInput, options?: AutomaticSpeechRecognitionOptions): Promise<AutomaticSpeechRecognitionOutput>;
  /** Several: one transcript each. */
  (audios: SpeechInput[], options?: AutomaticSpeechRecognitionOptions): Promise<AutomaticSpeechRecognitionOutput[]>;
  readonly task: 'automatic-speech-recognition';
  /** Whether the model takes `language` and `task` (English-only checkpoints, whisper-*.en, refuse them). */
  readonly multilingual: boolean;
  /** The rate the model hears (16000 for Whisper): other rates are resampled. */
  readonly sampling_rate: number;
  readonly num_mel_bins: number;
  /** Pass to `new WhisperTextStreamer(transcriber.tokenizer, ...)`, as in transformers.js. */
  readonly tokenizer: unknown;
  /** `processor.feature_extractor.config.sampling_rate`, as transformers.js code reads it. */
  readonly processor: { feature_extractor: { config: { sampling_rate: number } } };
}

// ---- translation, summarization, text2text-generation -------------------------------------------

/** What a call reports that does not fail it (today: a text cut to the model's length). */
export interface CallWarning {
  type: 'warning';
  /** Says what happened, as `translation: the text is 512 tokens long; only its first 512 ...`. */
  message: string;
}

/**
 * The generation options of the text encoder-decoder tasks, named as in transformers.js (the
 * model's generation_config.json fills the rest: opus-mt's num_beams 4 and max_length 512,
 * BART's forced BOS/EOS, no_repeat_ngram_size, length_penalty).
 */
export interface Text2TextGenerationOptions {
  max_new_tokens?: number;
  /** Counts the decoder's start token, as in transformers. */
  max_length?: number;
  /** The shortest result, in tokens (the decoder's start token counted, as in transformers). */
  min_length?: number;
  min_new_tokens?: number;
  /** Beam search with this many beams (1: greedy or sampling). Default: generation_config.json's. */
  num_beams?: number;
  /** Results per text, best first (at most num_beams; with do_sample and no beams, independent samples seeded seed, seed + 1, ...); they come one after another in the flat array, as in transformers.js. */
  num_return_sequences?: number;
  /** Beam search: the exponent of the length a beam's score is divided by (> 0 favours longer results). */
  length_penalty?: number;
  /** Beam search: stop as soon as num_beams results are done (true), when no beam can beat them (false), or only at max_length ('never'). */
  early_stopping?: boolean | 'never';
  /** 0 is none: no n-gram of this size occurs twice. */
  no_repeat_ngram_size?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  seed?: number;
  /** Generation ends after any of these ids; they replace the model's own EOS ids, as in transformers. */
  eos_token_id?: number | number[];
  /** Ids never generated / not generated first. */
  suppress_tokens?: number[];
  begin_suppress_tokens?: number[];
  /** Stop before any of these strings. */
  stop?: string | string[];
  stop_strings?: string | string[];
  /** Gets the text as it is generated (with beams: the best result's, when the search ends) and each step's tokens. */
  streamer?: TextStreamer;
  /** Called with each new piece of text (a shortcut for a streamer). */
  callback_function?: (text: string) => void;
  /** Aborting stops the generation after its current token; the call resolves with what was generated so far. */
  signal?: AbortSignal;
  /** An InterruptableStoppingCriteria (or a list holding one), as in transformers.js. */
  stopping_criteria?: InterruptableStoppingCriteria | InterruptableStoppingCriteria[];
  /**
   * Gets what the call reports without failing (a text longer than the model reads is cut, as
   * transformers.js cuts it, and said so here). Without it, warnings go to `console.warn`
   * (muted by `env.logLevel` 'error' or 'none').
   */
  warning_callback?: (warning: CallWarning) => void;
}

export interface TranslationOptions extends Text2TextGenerationOptions {
  /** The source language of a multilingual model (NLLB `eng_Latn`, M2M100 `en`); without it, the tokenizer's default. Marian (one language pair a model) ignores it, as transformers.js does. */
  src_lang?: string;
  /** The target language: required by multilingual models (NLLB `fra_Latn`, M2M100 `fr`). */
  tgt_lang?: string;
}

export interface TranslationPipeline extends PipelineBase {
  /**
   * `num_return_sequences` objects per text, in one flat array (the input is truncated to the
   * tokenizer's model_max_length, as transformers.js does, and a warning says so).
   */
  (texts: string | string[], options?: TranslationOptions): Promise<{ translation_text: string }[]>;
  readonly task: 'translation';
  /** Pass to `new TextStreamer(translator.tokenizer, ...)`, as in transformers.js. */
  readonly tokenizer: unknown;
  /** The longest input the encoder reads, in tokens. */
  readonly max_source_positions: number;
}

export interface SummarizationPipeline extends PipelineBase {
  (texts: string | string[], options?: Text2TextGenerationOptions): Promise<{ summary_text: string }[]>;
  readonly task: 'summarization';
  readonly tokenizer: unknown;
  readonly max_source_positions: number;
}

export interface Text2TextGenerationPipeline extends PipelineBase {
  (texts: string | string[], options?: Text2TextGenerationOptions): Promise<{ generated_text: string }[]>;
  readonly task: 'text2text-generation';
  readonly tokenizer: unknown;
  readonly max_source_positions: number;
}

// ---- audio --------------------------------------------------------------------------------------

/**
 * Mono audio samples at `sampling_rate`, as transformers.js's RawAudio. Browser windows decode
 * with `decodeAudioData` (stereo mixed as transformers.js: sqrt(2) * (L + R) / 2) and resample
 * with an OfflineAudioContext; Node and workers decode and resample in the engine (WAV, MP3,
 * FLAC, OGG/Vorbis, M4A/AAC; channels averaged; rubato).
 */
export class RawAudio {
  constructor(audio: Float32Array | Float32Array[], sampling_rate: number);
  audio: Float32Array | Float32Array[];
  sampling_rate: number;
  /** The samples as one Float32Array (chunks concatenated). */
  readonly data: Float32Array;
  /** Seconds. */
  readonly duration: number;
  /** From a URL or path, a Blob, file bytes, an AudioBuffer, or a RawAudio, at `sampling_rate` (default 16000). */
  static read(input: AudioFileInput | AudioBuffer | RawAudio, sampling_rate?: number): Promise<RawAudio>;
  /** A URL (http(s), relative, blob:, data:) or, in Node, a path or file: URL. */
  static fromURL(url: string | URL, sampling_rate?: number): Promise<RawAudio>;
  static fromBlob(blob: Blob, sampling_rate?: number): Promise<RawAudio>;
  /** At another rate (itself when it already is). */
  resample(sampling_rate: number): Promise<RawAudio>;
  /** A 32-bit float mono WAV file. */
  toWav(): Uint8Array;
  toBlob(): Blob;
  /** Node: writes the WAV file; browsers: downloads it. */
  save(path: string): Promise<void>;
}

/** transformers.js's `read_audio`: the file at `url` (or, in Node, a path) as mono samples at `sampling_rate` (default 16000). */
export function read_audio(url: string | URL, sampling_rate?: number): Promise<Float32Array>;
/** transformers.js's `load_audio`: `read_audio`. */
export function load_audio(url: string | URL, sampling_rate?: number): Promise<Float32Array>;

/** An audio file: a URL or path, a Blob or File, or its bytes. */
export type AudioFileInput = string | URL | Blob | Uint8Array | ArrayBuffer;
/**
 * What every speech task takes: an audio file (AudioFileInput), samples at 16 kHz
 * (Float32Array or Float64Array, as transformers.js), an AudioBuffer (browsers), or a RawAudio
 * (at any rate: the engine resamples).
 */
export type AudioInput = AudioFileInput | Float32Array | Float64Array | AudioBuffer | RawAudio;

/** A task these types do not describe: the engine's answer as it comes. */
export interface GenericPipeline extends PipelineBase {
  (input: unknown, ...rest: unknown[]): Promise<unknown>;
}

/** The pipeline each task name (and alias) gives. */
export interface PipelineTypes {
  'feature-extraction': FeatureExtractionPipeline;
  embeddings: FeatureExtractionPipeline;
  'text-generation': TextGenerationPipeline;
  'text-classification': TextClassificationPipeline;
  'sentiment-analysis': TextClassificationPipeline;
  'token-classification': TokenClassificationPipeline;
  ner: TokenClassificationPipeline;
  'question-answering': QuestionAnsweringPipeline;
  'fill-mask': FillMaskPipeline;
  'zero-shot-classification': ZeroShotClassificationPipeline;
  'image-classification': ImageClassificationPipeline;
  'image-feature-extraction': ImageFeatureExtractionPipeline;
  'zero-shot-image-classification': ZeroShotImageClassificationPipeline;
  'object-detection': ObjectDetectionPipeline;
  'automatic-speech-recognition': AutomaticSpeechRecognitionPipeline;
  asr: AutomaticSpeechRecognitionPipeline;
  translation: TranslationPipeline;
  /** transformers.js's `translation_xx_to_yy` names are `translation`. */
  [task: `translation_${string}`]: TranslationPipeline;
  summarization: SummarizationPipeline;
  'text2text-generation': Text2TextGenerationPipeline;
}

/**
 * A pipeline for `task` on `model`: a Hub id ('sentence-transformers/all-MiniLM-L6-v2'), a URL
 * or /path of a model folder (or of a .gguf file for text-generation), or in Node a path. Without
 * a model, the task's default Hub model (as transformers.js's).
 */
export function pipeline<T extends keyof PipelineTypes>(
  task: T,
  model?: string | null,
  options?: PipelineOptions,
): Promise<PipelineTypes[T]>;
export function pipeline(task: string, model?: string | null, options?: PipelineOptions): Promise<GenericPipeline>;

/**
 * `pipeline()` run in a Web Worker that loaded 'webformers/worker': the same callable, with the
 * work off the main thread.
 */
export function workerPipeline<T extends keyof PipelineTypes>(
  worker: Worker,
  task: T,
  model?: string | null,
  options?: PipelineOptions,
): Promise<PipelineTypes[T]>;
export function workerPipeline(worker: Worker, task: string, model?: string | null, options?: PipelineOptions): Promise<GenericPipeline>;
