// A streamer for text-generation, used as transformers.js's TextStreamer is:
//   const streamer = new TextStreamer(generator.tokenizer, { skip_prompt: true, callback_function: (t) => ... });
//   await generator(messages, { max_new_tokens: 128, streamer });
// The engine hands it each new piece of text as soon as it is final (whole characters, stop
// strings held back). Subclasses may override on_finalized_text(text, stream_end).

import { IS_NODE } from './env.js';

export class TextStreamer {
  /**
   * @param {unknown} tokenizer accepted for transformers.js compatibility (decoding happens in the engine)
   * @param {{skip_prompt?: boolean, skip_special_tokens?: boolean, callback_function?: (text: string) => void}} [options]
   */
  constructor(tokenizer = null, options = {}) {
    this.tokenizer = tokenizer;
    this.skip_prompt = options.skip_prompt ?? false;
    this.callback_function = options.callback_function ?? null;
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
