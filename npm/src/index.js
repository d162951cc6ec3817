// webformers: Hugging Face models in the browser and Node, on WebGPU or WASM SIMD, with the
// transformers.js pipeline API. See README.md.

import { RawImage } from './image.js';

export { env, LogLevel } from './env.js';
export { pipeline } from './proxy.js';
export { AutoTokenizer, PreTrainedTokenizer } from './tokenizer.js';
export {
  AutoModel,
  AutoModelForSequenceClassification,
  AutoModelForTokenClassification,
  AutoModelForQuestionAnswering,
  AutoModelForMaskedLM,
  AutoModelForCausalLM,
  AutoModelForImageClassification,
  AutoModelForObjectDetection,
  AutoModelForSeq2SeqLM,
  AutoModelForSpeechSeq2Seq,
  CLIPModel,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  SiglipModel,
  SiglipTextModel,
  SiglipVisionModel,
  AutoProcessor,
  PreTrainedModel,
  Processor,
} from './model.js';
export { Tensor, cos_sim, cat, stack, mean_pooling, quantize_embeddings } from './tensor.js';
export { RawImage };
/** transformers.js's `load_image`: `RawImage.read`. */
export const load_image = (input) => RawImage.read(input);
export { RawAudio, read_audio } from './audio.js';
/** transformers.js's `load_audio` (its newer name for `read_audio`). */
export { read_audio as load_audio } from './audio.js';
export { TextStreamer, WhisperTextStreamer } from './streamer.js';
export { InterruptableStoppingCriteria } from './stopping.js';
export { WebformersError } from './engine.js';
export { workerPipeline } from './worker-client.js';
export { cache } from './hub-store.js';
