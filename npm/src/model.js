// Models and processors on their own, as transformers.js has them: `AutoModel`, the
// `AutoModelFor...` classes and `AutoProcessor`. The engine loads a model by its config.json's
// architecture through the same registry as the pipelines (bindings/wasm/src/model.rs,
// core/src/models/auto.rs) and runs it on the package's Tensors; here are the device, the files
// and the Tensors.
//
//   const tokenizer = await AutoTokenizer.from_pretrained(id);
//   const model = await AutoModelForSequenceClassification.from_pretrained(id, { device: 'wasm' });
//   const { logits } = await model(await tokenizer(['a text'], { padding: true }));

import { log } from './env.js';
import { loadNativeModel, nativeDevice, nativeEngine, nativeModelSource } from './native.js';
import { engine, guarded, guardedSync, asError, WebformersError } from './engine.js';
import { loadModelFiles, modelFileSet } from './fetch.js';
import { hubLoad, hubFiles } from './hub.js';
import { openDevice, loadOnDevice, dtypeSpec, deviceName, loadOptions, safeProgress } from './pipeline.js';
import { Tensor } from './tensor.js';
import { imageInput } from './image.js';
import { audioInput } from './audio.js';

/** What a model is made of (model.safetensors stands for its shards too). */
const MODEL_FILES = { required: ['config.json', 'model.safetensors'], optional: ['generation_config.json'] };
const PROCESSOR_FILES = ['preprocessor_config.json'];

/** The engine's `{type, dims, data}` as a Tensor (integers come as Int32Array: made int64). */
function toTensor({ type, dims, data }) {
  return type === 'int64' ? new Tensor('int64', BigInt64Array.from(data, BigInt), dims) : new Tensor(type, data, dims);
}

/** An object of engine tensors by name as an object of Tensors. */
const toTensors = (named) => Object.fromEntries(Object.entries(named).map(([k, v]) => [k, toTensor(v)]));

/** Whether `x` is a tensor the engine can read (the package's Tensor, or transformers.js's). */
const isTensor = (x) => x instanceof Tensor || (x && typeof x === 'object' && typeof x.type === 'string' && Array.isArray(x.dims) && ArrayBuffer.isView(x.data));

/**
 * A loaded model; calling it runs `forward`. Made by `AutoModel.from_pretrained` and the
 * `AutoModelFor...` classes.
 */
export class PreTrainedModel {
  constructor(handle, meta) {
    // Callable, as transformers.js's models are: await model(inputs).
    const self = (inputs) => self.forward(inputs);
    Object.setPrototypeOf(self, new.target.prototype);
    self._handle = handle;
    const info = guardedSync(() => handle.info());
    /** config.json, as transformers.js's `model.config`. */
    self.config = info.config;
    self.info = Object.freeze({ ...info, config: undefined });
    self.model = meta.model;
    self.class_name = meta.class_name;
    /** The task of the pipeline whose weights this model shares (`pipe.model`), else null. */
    self.pipeline_task = meta.pipeline ?? null;
    /** 'webgpu' or 'wasm': where the model runs. */
    self.device = handle.device;
    self.device_note = meta.device_note ?? null;
    self.input_names = handle.inputNames();
    return self;
  }

  _live() {
    if (!this._handle) {
      const owner = this.pipeline_task ? ` (the ${this.pipeline_task} pipeline's model)` : '';
      throw new WebformersError(`this ${this.class_name} was disposed${owner}`, 'input');
    }
    return this._handle;
  }

  /**
   * Runs the model on its inputs (an object of Tensors by name: a tokenizer's output, a
   * processor's): resolves to its outputs by name (`last_hidden_state`, `logits`,
   * `start_logits`/`end_logits`, `pooler_output`, ...), float32 Tensors.
   */
  async forward(inputs) {
    const handle = this._live();
    if (!inputs || typeof inputs !== 'object' || Array.isArray(inputs)) {
      throw new WebformersError('a model takes an object of Tensors by name ({input_ids, attention_mask, ...})', 'input');
    }
    return toTensors(await guarded(() => handle.forward(inputs)));
  }

  /**
   * Generates (`AutoModelForCausalLM`, `AutoModelForSeq2SeqLM`, `AutoModelForSpeechSeq2Seq`):
   * `generate({input_ids, attention_mask, max_new_tokens, do_sample, num_beams, ...})`, the
   * inputs and the generation options in one object as transformers.js takes them
   * (`generation_config` too; `inputs` stands for the model's main input: `input_ids`, or
   * Whisper's `input_features`; a Tensor alone is taken as `inputs`, transformers.js 2's
   * `generate(input_ids)`). Resolves to an int64 Tensor [batch, tokens]: a decoder's rows
   * as given followed by their new tokens; an encoder-decoder's decoder start token (Whisper:
   * its prompt) followed by the new tokens, rows padded with the pad token.
   */
  async generate(args = {}) {
    const handle = this._live();
    // transformers.js 2's positional form: generate(input_ids)
    if (isTensor(args)) args = { inputs: args };
    const { generation_config = null, streamer = null, inputs: main = undefined, ...rest } = args ?? {};
    if (streamer) log.warn('generate(): streamer is not supported on a model; use a pipeline to stream text');
    const inputs = {};
    const options = { ...(generation_config ?? {}) };
    if (main !== undefined && main !== null) {
      if (!isTensor(main)) throw new WebformersError('generate(): `inputs` must be a Tensor (input_ids, or input_features for speech)', 'input');
      inputs[this.input_names[0]] = main;
    }
    for (const [key, value] of Object.entries(rest)) {
      if (value === undefined) continue;
      if (isTensor(value)) inputs[key] = value;
      else options[key] = value;
    }
    const out = await guarded(() => handle.generate(inputs, options));
    return new Tensor('int64', BigInt64Array.from(out.data, BigInt), out.dims);
  }

  /** Frees the model's weights (on WebGPU, its device memory); the object is unusable afterwards. */
  async dispose() {
    this._handle?.free();
    this._handle = null;
  }
}

/** Loads `model` as the class named `class_name` (see AutoModel.from_pretrained). */
async function loadModel(class_name, model, options = {}) {
  const { device: asked, dtype: dtypeOption, revision, progress_callback, local_files_only, signal } = loadOptions(options);
  const device = deviceName(asked);
  const dtype = dtypeSpec(dtypeOption);
  const progress = safeProgress(progress_callback);
  // In Node, the native engine's where its addon is installed (see native.js).
  const native = nativeDevice(asked);
  const addon = native && (await nativeEngine());
  const source = addon && (await nativeModelSource(addon, model, { revision, localOnly: local_files_only }));
  if (source) {
    if (source.file) throw new WebformersError(`${class_name} loads a model folder, not a GGUF file (${model})`, 'input');
    const handle = await loadNativeModel(addon, class_name, source, native, dtype, progress);
    progress({ status: 'ready', task: class_name, model, name: model, device: handle.device });
    return new PreTrainedModel(handle, { model, class_name, device_note: null });
  }
  const wasm = await engine();
  let { dev, note } = await openDevice(wasm, device);
  let fetched;
  try {
    fetched = await loadModelFiles(model, { revision, ...MODEL_FILES, progress, localOnly: local_files_only });
  } catch (e) {
    dev.free();
    throw e;
  }
  let fileSet = null;
  let handle = null;
  try {
    if (!fetched.hub) fileSet = modelFileSet(wasm, fetched);
    const load = async (d) => {
      if (!fetched.hub) return guarded(() => wasm.ModelRunner.load(class_name, fileSet, d, dtype));
      const loaded = await guarded(() => hubLoad(wasm, fetched.hub, MODEL_FILES, d, progress, signal));
      try {
        return await guarded(() => wasm.ModelRunner.loadFromHub(class_name, loaded, d, dtype));
      } finally {
        loaded.free();
      }
    };
    const opened = { dev, note };
    dev = null; // loadOnDevice owns the device now, and frees it when the load fails
    // As pipeline(): 'auto' falls back to WASM when the model does not fit the adapter.
    ({ handle, dev, note } = await loadOnDevice(wasm, device, opened, load));
  } catch (e) {
    throw asError(e);
  } finally {
    fileSet?.free();
    dev?.free(); // the model holds its own reference to the device
  }
  progress({ status: 'ready', task: class_name, model, name: model, device: handle.device });
  return new PreTrainedModel(handle, { model, class_name, device_note: note });
}

/**
 * transformers.js's `AutoModel`: the base model (`last_hidden_state`; a vision model's
 * `pooler_output` too). `from_pretrained(model, {device, dtype, revision, local_files_only,
 * progress_callback, signal})`: a Hub id, a URL or a local folder, as `pipeline()` takes them.
 */
export class AutoModel {
  static class_name = 'AutoModel';

  static async from_pretrained(model, options = {}) {
    return loadModel(this.class_name, model, options);
  }
}

/** `logits` [batch, labels]. */
export class AutoModelForSequenceClassification extends AutoModel {
  static class_name = 'AutoModelForSequenceClassification';
}
/** `logits` [batch, tokens, labels]. */
export class AutoModelForTokenClassification extends AutoModel {
  static class_name = 'AutoModelForTokenClassification';
}
/** `start_logits` and `end_logits` [batch, tokens]. */
export class AutoModelForQuestionAnswering extends AutoModel {
  static class_name = 'AutoModelForQuestionAnswering';
}
/** `logits` [batch, tokens, vocabulary]. */
export class AutoModelForMaskedLM extends AutoModel {
  static class_name = 'AutoModelForMaskedLM';
}
/** `logits` [batch, tokens, vocabulary], and `generate()`. */
export class AutoModelForCausalLM extends AutoModel {
  static class_name = 'AutoModelForCausalLM';
}
/** `logits` [batch, labels]. */
export class AutoModelForImageClassification extends AutoModel {
  static class_name = 'AutoModelForImageClassification';
}
/** `logits` [batch, queries, labels + 1] and `pred_boxes` [batch, queries, 4] (DETR). */
export class AutoModelForObjectDetection extends AutoModel {
  static class_name = 'AutoModelForObjectDetection';
}
/**
 * A text encoder-decoder (Marian, BART, M2M100 / NLLB, T5): `{input_ids, attention_mask,
 * decoder_input_ids}` → `logits` [batch, decoder tokens, vocabulary] and
 * `encoder_last_hidden_state`; `generate({input_ids, attention_mask, max_new_tokens, ...})`.
 */
export class AutoModelForSeq2SeqLM extends AutoModel {
  static class_name = 'AutoModelForSeq2SeqLM';
}
/**
 * A speech encoder-decoder (Whisper): `{input_features, decoder_input_ids}` → `logits` and
 * `encoder_last_hidden_state`; `generate({inputs: input_features, max_new_tokens, language,
 * task, ...})`.
 */
export class AutoModelForSpeechSeq2Seq extends AutoModel {
  static class_name = 'AutoModelForSpeechSeq2Seq';
}

/**
 * CLIP's and SigLIP's classes, as transformers.js names them. `CLIPModel` / `SiglipModel` (and
 * `AutoModel` on their checkpoints) take `{input_ids, attention_mask, pixel_values}` and give
 * `logits_per_image` [images, texts], `logits_per_text`, and the normalized `text_embeds` /
 * `image_embeds`; the one-tower classes give their tower's embedding: `text_embeds` /
 * `image_embeds` (CLIP, projected, not normalized), `pooler_output` (SigLIP).
 */
export class CLIPModel extends AutoModel {
  static class_name = 'CLIPModel';
}
export class CLIPTextModelWithProjection extends AutoModel {
  static class_name = 'CLIPTextModelWithProjection';
}
export class CLIPVisionModelWithProjection extends AutoModel {
  static class_name = 'CLIPVisionModelWithProjection';
}
export class SiglipModel extends AutoModel {
  static class_name = 'SiglipModel';
}
export class SiglipTextModel extends AutoModel {
  static class_name = 'SiglipTextModel';
}
export class SiglipVisionModel extends AutoModel {
  static class_name = 'SiglipVisionModel';
}

/**
 * A model's processor, callable: images → `{pixel_values, original_sizes,
 * reshaped_input_sizes}` (and `pixel_mask` where it pads); audio → `{input_features}`. Made by
 * `AutoProcessor.from_pretrained`.
 */
export class Processor {
  constructor(handle, config) {
    const self = (input) => self._call(input);
    Object.setPrototypeOf(self, new.target.prototype);
    self._handle = handle;
    /** preprocessor_config.json. */
    self.config = config;
    /** 'image' or 'audio'. */
    self.kind = handle.kind;
    if (self.kind === 'audio') self.feature_extractor = { config };
    else self.image_processor = { config };
    return self;
  }

  /** Images (as image pipelines take them: RawImage, URL, path, Blob, ...) or audio (a Float32Array at the model's rate, a RawAudio, a URL, ...), one or an array. */
  async _call(input) {
    const handle = this._handle;
    if (!handle) throw new WebformersError('this processor was disposed', 'input');
    const { value, media } = this.kind === 'audio' ? await audioInput(input, 'AutoProcessor') : await imageInput(input, 'AutoProcessor');
    return toTensors(guardedSync(() => handle.process(value, media)));
  }

  dispose() {
    this._handle?.free();
    this._handle = null;
  }
}

/** transformers.js's `AutoProcessor`: the model's image processor or feature extractor, from its preprocessor_config.json. */
export class AutoProcessor {
  static async from_pretrained(model, { revision = 'main', local_files_only = false, progress_callback = null } = {}) {
    const wasm = await engine();
    const progress = safeProgress(progress_callback);
    const fetched = await loadModelFiles(model, { revision, required: PROCESSOR_FILES, optional: [], progress, localOnly: local_files_only });
    let files;
    if (fetched.hub) {
      files = await guarded(() => hubFiles(wasm, fetched.hub, PROCESSOR_FILES, [], progress));
    } else {
      files = modelFileSet(wasm, fetched);
    }
    try {
      const handle = guardedSync(() => wasm.Processor.load(files));
      return new Processor(handle, handle.config);
    } finally {
      files.free();
    }
  }
}
