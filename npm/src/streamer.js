// Streamers, used as transformers.js's are:
//   const streamer = new TextStreamer(generator.tokenizer, { skip_prompt: true, callback_function: (t) => ... });
//   await generator(messages, { max_new_tokens: 128, streamer });
//   const streamer = new WhisperTextStreamer(transcriber.tokenizer, { on_chunk_start: (t) => ..., callback_function: ... });
//   await transcriber(audio, { return_timestamps: true, streamer });
// The engine decodes: it hands the streamer each new piece of text as soon as it is final (whole
// characters; stop strings held back; speech text only once no later window or chunk can change
// it), every step's token ids, and speech segments' start and end times (seconds from the start
// of the audio). Subclasses may override on_finalized_text(text, stream_end).

import { IS_NODE } from './env.js';

export class TextStreamer {
  /**
   * @param {unknown} tokenizer accepted for transformers.js compatibility (decoding happens in the engine)
   * @param {{skip_prompt?: boolean, skip_special_tokens?: boolean, callback_function?: (text: string) => void,
   *   token_callback_function?: (tokens: bigint[]) => void}} [options]
   */
  constructor(tokenizer = null, options = {}) {
    this.tokenizer = tokenizer;
    this.skip_prompt = options.skip_prompt ?? false;
    this.callback_function = options.callback_function ?? null;
    this.token_callback_function = options.token_callback_function ?? null;
  }

  /** Called with each new piece of text; prints it when no callback_function was given. */
  on_finalized_text(text, stream_end) {
    if (this.callback_function) {
      if (text) this.callback_function(text);
    } else if (IS_NODE) {
      process.stdout.write(text + (stream_end ? '\n' : ''));
    } else if (text) {
      console.log(text);
    }
  }

  /** Called once generation ends. */
  end() {
    this.on_finalized_text('', true);
  }
}

/**
 * transformers.js's WhisperTextStreamer: a TextStreamer that also reports speech segments.
 * `on_chunk_start(time)` / `on_chunk_end(time)` get a segment's start and end in seconds from
 * the start of the audio (with `return_timestamps`; they bracket the segment's text, and they are
 * the times of the result's `chunks`); `on_finalize()` runs when the transcription ends.
 * `time_precision` is accepted for compatibility: the engine sends seconds.
 */
export class WhisperTextStreamer extends TextStreamer {
  /**
   * @param {unknown} tokenizer accepted for transformers.js compatibility
   * @param {{skip_prompt?: boolean, skip_special_tokens?: boolean, callback_function?: (text: string) => void,
   *   token_callback_function?: (tokens: bigint[]) => void, on_chunk_start?: (time: number) => void,
   *   on_chunk_end?: (time: number) => void, on_finalize?: () => void, time_precision?: number,
   *   decode_kwargs?: object}} [options]
   */
  constructor(tokenizer = null, options = {}) {
    super(tokenizer, options);
    this.on_chunk_start = options.on_chunk_start ?? null;
    this.on_chunk_end = options.on_chunk_end ?? null;
    this.on_finalize = options.on_finalize ?? null;
    this.time_precision = options.time_precision ?? 0.02;
  }

  end() {
    this.on_finalize?.();
    super.end();
  }
}
