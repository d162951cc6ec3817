// Type-checked by node.test.mjs (tsc --noEmit): the README's examples, typed.
import { env, pipeline, workerPipeline, Tensor, TextStreamer, WebformersError, cos_sim } from 'webformers';
import type { ProgressInfo, Message, FeatureExtractionPipeline } from 'webformers';

export async function embeddings(): Promise<number[][]> {
  env.allowRemoteModels = false;
  env.localModelPath = '/models/';
  env.wasmPaths = '/assets/';
  env.logLevel = 'error';
  env.numThreads = 2;
  const extractor = await pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2', {
    device: 'webgpu',
    dtype: 'fp32',
    revision: 'main',
    progress_callback: (p: ProgressInfo) => {
      if (p.status === 'progress') console.log(p.file, p.progress, p.loaded, p.total);
    },
  });
  const device: 'webgpu' | 'wasm' = extractor.device;
  const threads: number | null = extractor.threads;
  console.log(threads);
  const output: Tensor = await extractor(['Hello', 'World'], { pooling: 'mean', normalize: true });
  const dims: number[] = output.dims;
  const data: Float32Array = output.data;
  console.log(device, dims, data.length, cos_sim(data.subarray(0, 384), data.subarray(384)));
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

export async function inWorker(worker: Worker): Promise<FeatureExtractionPipeline> {
  const extractor = await workerPipeline(worker, 'feature-extraction', 'all-MiniLM-L6-v2', { device: 'wasm' });
  try {
    await extractor('x');
  } catch (e) {
    if (e instanceof WebformersError) console.log(e.code);
  }
  return extractor;
}
