// Type-checked by node.test.mjs (tsc --noEmit): the README's examples, typed.
import {
  env,
  pipeline,
  workerPipeline,
  Tensor,
  TextStreamer,
  InterruptableStoppingCriteria,
  WebformersError,
  cos_sim,
  cat,
  stack,
  mean_pooling,
  quantize_embeddings,
  LogLevel,
  AutoTokenizer,
  AutoModel,
  AutoModelForCausalLM,
  AutoModelForSequenceClassification,
  AutoModelForSeq2SeqLM,
  AutoModelForSpeechSeq2Seq,
  AutoProcessor,
  RawImage,
  load_image,
  RawAudio,
  read_audio,
  load_audio,
} from 'webformers';
import type {
  ProgressInfo,
  Message,
  FeatureExtractionPipeline,
  TextClassificationLabel,
  TokenClassificationToken,
  TokenClassificationEntity,
  QuestionAnsweringAnswer,
  FillMaskCandidate,
  ZeroShotClassificationOutput,
  DetectedObject,
  AutomaticSpeechRecognitionOutput,
  CallWarning,
  CustomCache,
} from 'webformers';

export async function embeddings(): Promise<number[][]> {
  env.allowRemoteModels = false;
  env.localModelPath = '/models/';
  env.wasmPaths = '/assets/';
  env.logLevel = 'error';
  env.numThreads = 2;
  env.useWasmCache = false;
  // transformers.js's custom cache: a Cache, or any object with match and put.
  env.useCustomCache = true;
  env.customCache = await caches.open('my-models');
  const kept = new Map<string, Response>();
  const custom: CustomCache = {
    match: async (url) => kept.get(url)?.clone(),
    put: async (url, response) => void kept.set(url, response),
  };
  env.customCache = custom;
  const extractor = await pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2', {
    device: 'webgpu',
    dtype: 'fp32',
    revision: 'main',
    progress_callback: (p: ProgressInfo) => {
      if (p.status === 'progress') console.log(p.file, p.progress, p.loaded, p.total);
    },
  });
  const device: 'webgpu' | 'wasm' | 'cpu' | 'gpu' = extractor.device;
  const threads: number | null = extractor.threads;
  console.log(threads);
  const output: Tensor = await extractor(['Hello', 'World'], { pooling: 'mean', normalize: true });
  const dims: number[] = output.dims;
  const data: Float32Array = output.data;
  console.log(device, dims, data.length, cos_sim(data.subarray(0, 384), data.subarray(384)));
  // transformers.js's Tensor methods and functions
  const first: Tensor = output[0];
  const rows: Tensor = output.slice([0, 1], null).normalize(2, -1).mean(0, true);
  const ids = new Tensor('int64', new BigInt64Array([1n, 2n]), [1, 2]);
  const widened: Tensor<'float32'> = ids.to('float32');
  const pooled: Tensor = mean_pooling(cat([first.unsqueeze(0).unsqueeze(0)], 0), ids);
  const bits = quantize_embeddings(stack([first.view(-1)], 0), 'ubinary');
  env.logLevel = LogLevel.ERROR;
  env.backends.onnx.wasm.numThreads = 1;
  console.log(rows.dims, widened.item(), pooled.size, bits.type, [...first].length);
  const tokenizer = await AutoTokenizer.from_pretrained('Xenova/all-MiniLM-L6-v2');
  const { input_ids, attention_mask } = tokenizer(['Hello', 'World'], { padding: true, truncation: true });
  const text: string = tokenizer.decode(input_ids[0], { skip_special_tokens: true });
  const prompt: string = tokenizer.apply_chat_template([{ role: 'user', content: 'Hi' }], { tokenize: false, add_generation_prompt: true });
  console.log(attention_mask.dims, text, prompt, tokenizer.encode('Hello'), tokenizer.pad_token_id);
  const model = await AutoModel.from_pretrained('Xenova/all-MiniLM-L6-v2', { device: 'webgpu', dtype: 'q8' });
  const inputs = tokenizer(['Hello'], { padding: true });
  const { last_hidden_state } = await model(inputs);
  const sentence = mean_pooling(last_hidden_state, inputs.attention_mask).normalize(2, -1);
  const classifier = await AutoModelForSequenceClassification.from_pretrained('Xenova/distilbert-base-uncased-finetuned-sst-2-english');
  const { logits } = await classifier.forward(inputs);
  const lm = await AutoModelForCausalLM.from_pretrained('HuggingFaceTB/SmolLM2-135M-Instruct');
  const generated = await lm.generate({ ...inputs, max_new_tokens: 4, do_sample: false });
  const processor = await AutoProcessor.from_pretrained('Xenova/vit-base-patch16-224');
  const { pixel_values } = await processor(await load_image('cat.jpg'));
  console.log(sentence.dims, logits.dims, generated.dims, pixel_values?.dims, model.config, lm.device, processor.kind);
  const t5 = await AutoModelForSeq2SeqLM.from_pretrained('Xenova/t5-small');
  const translated = await t5.generate({ ...inputs, max_new_tokens: 8, num_beams: 2 });
  const { encoder_last_hidden_state } = await t5({ ...inputs, decoder_input_ids: translated });
  const whisper = await AutoModelForSpeechSeq2Seq.from_pretrained('Xenova/whisper-tiny.en');
  const speechProcessor = await AutoProcessor.from_pretrained('Xenova/whisper-tiny.en');
  const { input_features } = await speechProcessor(new Float32Array(16000));
  const transcribed = await whisper.generate({ inputs: input_features, max_new_tokens: 8 });
  console.log(translated.dims, encoder_last_hidden_state?.dims, transcribed.dims, (await t5.generate(inputs.input_ids)).dims);
  // A pipeline's loaded model, over the pipeline's weights.
  const { last_hidden_state: hidden } = await extractor.model(inputs);
  const modelId: string = extractor.model_id;
  console.log(hidden.dims, extractor.model.config, extractor.model.class_name, modelId);
  processor.dispose();
  await Promise.all([model.dispose(), classifier.dispose(), lm.dispose()]);
  tokenizer.dispose();
  await extractor.dispose();
  return output.tolist();
}

export async function chat(): Promise<string> {
  const generator = await pipeline('text-generation', 'HuggingFaceTB/SmolLM2-135M-Instruct', { device: 'auto' });
  const messages: Message[] = [{ role: 'user', content: 'What is the capital of France?' }];
  const streamer = new TextStreamer(generator.tokenizer, { skip_prompt: true, callback_function: (t: string) => console.log(t) });
  const [out] = await generator(messages, { max_new_tokens: 64, streamer });
  const reply: Message = out.generated_text.at(-1)!;
  const [plain] = await generator('Once upon a time', { max_new_tokens: 8, return_full_text: false });
  return reply.content + plain.generated_text + out.stats.decode_seconds;
}

export async function stoppable(): Promise<boolean> {
  const generator = await pipeline('text-generation', 'HuggingFaceTB/SmolLM2-135M-Instruct');
  const stopping_criteria = new InterruptableStoppingCriteria();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 1000);
  const [a] = await generator('Once', { max_new_tokens: 512, signal: controller.signal });
  const pending = generator('Upon', { max_new_tokens: 512, stopping_criteria, no_repeat_ngram_size: 3 });
  stopping_criteria.interrupt();
  const [b] = await pending;
  stopping_criteria.reset();
  return a.stats.stop_reason === 'interrupted' && b.stats.stop_reason !== 'eos' && !stopping_criteria.interrupted;
}

export async function inWorker(worker: Worker): Promise<FeatureExtractionPipeline> {
  const extractor = await workerPipeline(worker, 'feature-extraction', 'all-MiniLM-L6-v2', { device: 'wasm' });
  try {
    await extractor('x');
  } catch (e) {
    if (e instanceof WebformersError) console.log(e.code);
  }
  return extractor;
}

export async function textTasks(): Promise<string[]> {
  const out: string[] = [];
  const sentiment = await pipeline('sentiment-analysis', 'Xenova/distilbert-base-uncased-finetuned-sst-2-english');
  const [best]: TextClassificationLabel[] = await sentiment('I love it', { top_k: 1 });
  const all = await sentiment(['a', { text: 'b', text_pair: 'c' }], { top_k: null, function_to_apply: 'sigmoid' });
  out.push(best.label, String(best.score), String(all.length), sentiment.labels.join());

  const ner = await pipeline('ner', 'Xenova/bert-base-multilingual-cased-ner-hrl');
  const tokens: TokenClassificationToken[] = await ner('Ada lives in London', { ignore_labels: [] });
  const entities: TokenClassificationEntity[] = await ner('Ada lives in London', { aggregation_strategy: 'simple' });
  const many: TokenClassificationEntity[][] = await ner(['a', 'b'], { aggregation_strategy: 'first' });
  out.push(tokens[0].entity, String(tokens[0].index), entities[0].entity_group, String(entities[0].start), String(many.length));

  const qa = await pipeline('question-answering');
  const answer = await qa('Where?', 'Here.', { max_answer_len: 4 });
  const answers = await qa({ question: 'Where?', context: 'Here.' }, { top_k: 2, handle_impossible_answer: true, doc_stride: 32, max_seq_len: 128 });
  const first: QuestionAnsweringAnswer = Array.isArray(answer) ? answer[0] : answer;
  out.push(first.answer, String(first.start + first.end), String(Array.isArray(answers)));

  const unmasker = await pipeline('fill-mask', 'Xenova/bert-base-uncased');
  const filled = await unmasker(`Paris is the ${unmasker.mask_token} of France.`, { top_k: 3, targets: ['capital', 'city'] });
  const candidates = filled.flat() as FillMaskCandidate[];
  out.push(candidates[0].token_str, candidates[0].sequence, String(candidates[0].token));

  const classifier = await pipeline('zero-shot-classification', 'Xenova/distilbert-base-uncased-mnli');
  const z: ZeroShotClassificationOutput = await classifier('The river is low.', ['weather', 'music'], { multi_label: true });
  const zs: ZeroShotClassificationOutput[] = await classifier(['a', 'b'], { candidate_labels: 'x, y', hypothesis_template: 'It is {}.' });
  out.push(z.labels[0], String(z.scores[0]), zs[0].sequence);

  const generic = await pipeline('some-future-task' as string, 'org/model');
  console.log(await generic('anything'), generic.info);
  return out;
}

export async function vision(canvas: HTMLCanvasElement, file: File): Promise<string[]> {
  const out: string[] = [];
  const image: RawImage = await RawImage.read('/images/cat.jpg');
  const small: RawImage = await image.clone().rgb().resize(224, null, { resample: 3 });
  const [w, h]: [number, number] = small.size;
  out.push(String(w * h * small.channels), String((await load_image(file)).width));
  const offscreen: OffscreenCanvas | HTMLCanvasElement = small.toCanvas();

  const classifier = await pipeline('image-classification', 'Xenova/vit-base-patch16-224');
  const labels: TextClassificationLabel[] = await classifier(canvas, { top_k: 3 });
  const lists: TextClassificationLabel[][] = await classifier([file, image, offscreen as OffscreenCanvas]);
  out.push(labels[0].label, String(lists.length), classifier.labels[0]);

  const clip = await pipeline('zero-shot-image-classification', 'Xenova/clip-vit-base-patch32');
  const scored = await clip('https://example.com/cat.png', ['cat', 'dog'], { hypothesis_template: 'a photo of a {}' });
  out.push(scored[0].label, String(scored[0].score));

  const embedder = await pipeline('image-feature-extraction', 'Xenova/clip-vit-base-patch32');
  const embedding: Tensor = await embedder([image, new ImageData(2, 2)], { pool: true });
  out.push(String(embedding.dims));

  const detector = await pipeline('object-detection', 'Xenova/detr-resnet-50');
  const objects: DetectedObject[] = await detector(image, { threshold: 0.5, percentage: true });
  out.push(objects[0].label, String(objects[0].box.xmax - objects[0].box.xmin));
  return out;
}

// Audio: read_audio / load_audio give Float32Array samples; RawAudio wraps and converts them.
async function audio(): Promise<number> {
  const samples: Float32Array = await read_audio('speech.wav', 16000);
  const same: Float32Array = await load_audio(new URL('https://example.com/a.mp3'));
  const raw = new RawAudio(samples, 16000);
  const at8k: RawAudio = await raw.resample(8000);
  const fromFile = await RawAudio.read(new Uint8Array(10), 16000);
  const wav: Uint8Array = fromFile.toWav();
  return at8k.data.length + same.length + wav.length + raw.duration;
}
void audio;

// Speech recognition: any audio input; timestamps, language, stopping, streamed text.
async function speech(): Promise<string> {
  const transcriber = await pipeline('automatic-speech-recognition', 'Xenova/whisper-tiny');
  const samples = await read_audio('speech.wav', 16000);
  const criteria = new InterruptableStoppingCriteria();
  const out: AutomaticSpeechRecognitionOutput = await transcriber(samples, {
    return_timestamps: 'word',
    language: transcriber.multilingual ? 'french' : null,
    task: 'translate',
    chunk_length_s: 30,
    signal: new AbortController().signal,
    stopping_criteria: criteria,
    callback_function: (text) => void text,
  });
  const [start, end] = out.chunks?.[0].timestamp ?? [0, null];
  const many = await transcriber([new RawAudio(samples, 16000), new Uint8Array(8), 'a.flac']);
  return `${out.text} ${start} ${end ?? ''} ${many.length} ${transcriber.sampling_rate}`;
}
void speech;

// Translation, summarization, text2text-generation: transformers.js's call shapes and options.
async function seq2seq(): Promise<string> {
  const translator = await pipeline('translation', 'Xenova/nllb-200-distilled-600M');
  const [fr] = await translator('The cat sat on the mat.', { src_lang: 'eng_Latn', tgt_lang: 'fra_Latn' });
  const warnings: CallWarning[] = [];
  const streamer = new TextStreamer(translator.tokenizer, { skip_prompt: true, callback_function: (t: string) => void t });
  const many: { translation_text: string }[] = await translator(['One.', 'Two.'], {
    num_beams: 4,
    num_return_sequences: 2,
    length_penalty: 1.0,
    early_stopping: 'never',
    no_repeat_ngram_size: 3,
    min_length: 2,
    max_new_tokens: 64,
    streamer,
    signal: new AbortController().signal,
    stopping_criteria: new InterruptableStoppingCriteria(),
    warning_callback: (w) => warnings.push(w),
  });
  const opus = await pipeline('translation_en_to_fr', 'Xenova/opus-mt-en-fr');
  const [out]: { translation_text: string }[] = await opus('Hello.', { max_length: 40 });
  const summarizer = await pipeline('summarization', 'Xenova/distilbart-cnn-6-6');
  const [summary] = await summarizer('A long article.', { max_new_tokens: 100, do_sample: false, callback_function: (t) => void t });
  const generator = await pipeline('text2text-generation', 'Xenova/LaMini-Flan-T5-783M');
  const [generated] = await generator(['How are you?'], { do_sample: true, top_k: 10, temperature: 0.7, seed: 1 });
  return `${fr.translation_text} ${many.length} ${out.translation_text} ${summary.summary_text} ${generated.generated_text} ${warnings.length} ${summarizer.max_source_positions}`;
}
void seq2seq;
