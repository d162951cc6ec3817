// Types of the `webformers` package (the transformers.js pipeline API on WebGPU and WASM SIMD).

export type Device = 'webgpu' | 'wasm';
export type DeviceOption = Device | 'auto';
export type DType = 'auto' | 'fp32' | 'fp16';

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
  /** Weight storage on the device: 'auto' (as stored, default), 'fp32' or 'fp16'. */
  dtype?: DType;
  /** The Hub revision (branch, tag or commit) for models named by id. Default 'main'. */
  revision?: string;
  progress_callback?: ProgressCallback | null;
  /** Only look under env.localModelPath. */
  local_files_only?: boolean;
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
  /** Default '/models/' (a URL path in browsers, a folder in Node). */
  localModelPath: string;
  allowRemoteModels: boolean;
  /** Default: true in Node, false in browsers (as transformers.js). */
  allowLocalModels: boolean;
  /**
   * Where webformers_wasm_bg.wasm (and webformers_wasm_threaded_bg.wasm) are served from: a folder
   * URL, or { 'webformers_wasm_bg.wasm': url, 'webformers_wasm_threaded_bg.wasm': url }.
   */
  wasmPaths: string | Record<string, string> | null;
  /**
   * CPU threads for device 'wasm': null (default) for the cores, at most 4. More than one runs the
   * threaded build, which needs a crossOriginIsolated page (COOP/COEP headers) or Node; elsewhere
   * one thread runs. Read when the engine first loads.
   */
  numThreads: number | null;
  logLevel: 'debug' | 'info' | 'warning' | 'error' | 'none';
  /** Milliseconds without data before a request is abandoned. Default 30000. */
  fetchTimeout: number;
}

export const env: Env;

/** A dense float32 tensor, as transformers.js's Tensor. */
export class Tensor {
  constructor(type: 'float32', data: Float32Array, dims: number[]);
  readonly type: 'float32';
  readonly data: Float32Array;
  readonly dims: number[];
  readonly size: number;
  /** Nested arrays, one level per dimension. */
  tolist(): any[];
  dispose(): void;
}

/** An Error from webformers; `code` says what failed. */
export class WebformersError extends Error {
  constructor(message: string, code?: string);
  /**
   * 'file' (missing or bad file), 'network', 'config', 'weight', 'tokenizer', 'unsupported',
   * 'input', 'no_adapter', 'over_limit', 'gpu', 'wasm', 'worker', 'panic' or 'engine'; for Hub
   * models also 'auth' (private or gated), 'integrity' (bytes not matching their sha256),
   * 'quota' (the browser's storage quota) and 'cache' (IndexedDB failed).
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
  readonly model: string;
  /** Where this pipeline runs. */
  readonly device: Device;
  /** The adapter or CPU in words. */
  readonly adapter: string;
  /** Why device 'auto' ended up on WASM (no WebGPU, a software adapter, a model over its limits); null otherwise. */
  readonly device_note: string | null;
  /** CPU threads of a 'wasm' pipeline (1 without cross-origin isolation); null on WebGPU. */
  readonly threads: number | null;
  /** Frees the model's memory (after the calls in flight). */
  dispose(): Promise<void>;
}

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

export interface Message {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export declare class TextStreamer {
  constructor(
    tokenizer?: unknown,
    options?: { skip_prompt?: boolean; skip_special_tokens?: boolean; callback_function?: (text: string) => void },
  );
  /** Called with each new piece of text (prints it when there is no callback_function). */
  on_finalized_text(text: string, stream_end: boolean): void;
  end(): void;
}

export interface TextGenerationOptions {
  max_new_tokens?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  seed?: number;
  /** Stop before any of these strings. */
  stop?: string | string[];
  /** For string prompts: include the prompt in generated_text (default true, as transformers.js). */
  return_full_text?: boolean;
  streamer?: TextStreamer;
  /** Called with each new piece of text (a shortcut for a streamer). */
  callback_function?: (text: string) => void;
}

export interface GenerationStats {
  prompt_tokens: number;
  new_tokens: number;
  stop_reason: 'eos' | 'stop_string' | 'max_tokens';
  prefill_seconds: number;
  decode_seconds: number;
}

export interface TextGenerationOutput<T> {
  generated_text: T;
  stats: GenerationStats;
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
}

export interface PipelineTypes {
  'feature-extraction': FeatureExtractionPipeline;
  embeddings: FeatureExtractionPipeline;
  'text-generation': TextGenerationPipeline;
}

/**
 * A pipeline for `task` on `model`: a Hub id ('sentence-transformers/all-MiniLM-L6-v2'), a URL
 * or /path of a model folder (or of a .gguf file for text-generation), or in Node a path.
 */
export function pipeline<T extends keyof PipelineTypes>(
  task: T,
  model?: string | null,
  options?: PipelineOptions,
): Promise<PipelineTypes[T]>;

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
