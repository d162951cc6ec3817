"""Reference outputs of the encoder-decoder model classes (AutoModelForSeq2SeqLM,
AutoModelForSpeechSeq2Seq) for tests/seq2seq_auto_model.rs: transformers' own forward and
generate on the tiny random models of tests/fixtures/seq2seq (make_tiny_seq2seq.py) and
tests/fixtures/whisper/tiny-whisper-en (make_tiny_whisper.py), float32 on the CPU.

Output: tests/fixtures/seq2seq/auto-model-reference.json:
    {versions,
     text: {model: {input_ids, attention_mask (a right-padded batch of TEXTS), decoder_input_ids
            (the first DECODER_LEN ids of each row's greedy output), logits [B, T, V],
            encoder_last_hidden_state [B, S, H] (padding positions included: compare the
            attended ones), greedy (generate(max_new_tokens=MAX_NEW) ids [B, L], start token
            first, rows padded with pad_token_id), beams2 (the same with num_beams=2)}},
     whisper: {model: {features: how input_features are made (see `features`), prompt (the decoder
            prompt), decoder_input_ids (the prompt, then the first greedy ids),
            logits_ids (every LOGIT_STRIDE-th vocabulary id), logits (at those ids)
            [B, T, len(logits_ids)], argmax [B, T], encoder_rows (ENCODER_ROWS of
            encoder_last_hidden_state) [B, rows, H], greedy and beams2 as above, except that
            transformers' Whisper generate leaves the prompt out: the new tokens only}}}

The models' own generation_config.json applies, as webformers applies it (Marian's banned pad
and forced EOS, BART's forced BOS and no_repeat_ngram_size; Whisper's suppressions and prompt).

Run once, by hand, in the reference environment (CI never does):
    .cache/pyref-venv/bin/python tests/reference/make_seq2seq_auto_model_reference.py
"""

import json
import math
import pathlib

import torch
import transformers
from transformers import AutoModelForSeq2SeqLM, AutoModelForSpeechSeq2Seq, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/seq2seq/auto-model-reference.json"
TEXT_MODELS = ["tiny-marian", "tiny-bart", "tiny-t5"]
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello world"]
DECODER_LEN = 4
MAX_NEW = 8
LOGIT_STRIDE = 97
ENCODER_ROWS = [0, 1, 750, 1499]


def features(b, n_mels, frames):
    """Row b's log-mel stand-in, a formula the Rust test computes the same way (in f32)."""
    return [[0.5 * math.sin(0.013 * (f + 1) * (m + 1 + 3 * b)) for f in range(frames)] for m in range(n_mels)]


def rounded(t):
    return [round(float(x), 7) for x in t.flatten().tolist()]


def text_model(name):
    folder = ROOT / "tests/fixtures/seq2seq" / name
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert tokenizer.padding_side == "right"
    with torch.no_grad():
        greedy = model.generate(**enc, max_new_tokens=MAX_NEW, num_beams=1, do_sample=False)
        beams = model.generate(**enc, max_new_tokens=MAX_NEW, num_beams=2, do_sample=False)
        decoder_input_ids = greedy[:, :DECODER_LEN]
        out = model(**enc, decoder_input_ids=decoder_input_ids)
    return {
        "input_ids": enc["input_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "decoder_input_ids": decoder_input_ids.tolist(),
        "logits_dims": list(out.logits.shape),
        "logits": rounded(out.logits),
        "encoder_last_hidden_state_dims": list(out.encoder_last_hidden_state.shape),
        "encoder_last_hidden_state": rounded(out.encoder_last_hidden_state),
        "greedy": greedy.tolist(),
        "beams2": beams.tolist(),
    }


def whisper_model(name):
    folder = ROOT / "tests/fixtures/whisper" / name
    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder).eval()
    n_mels, frames = model.config.num_mel_bins, 2 * model.config.max_source_positions
    input_features = torch.tensor([features(b, n_mels, frames) for b in range(2)], dtype=torch.float32)
    with torch.no_grad():
        greedy = model.generate(input_features, max_new_tokens=MAX_NEW, num_beams=1, do_sample=False)
        beams = model.generate(input_features, max_new_tokens=MAX_NEW, num_beams=2, do_sample=False)
        # An English-only checkpoint's prompt: <|startoftranscript|> <|notimestamps|>.
        config = model.generation_config
        prompt = [config.decoder_start_token_id, config.no_timestamps_token_id]
        decoder_input_ids = torch.cat([torch.tensor([prompt] * 2), greedy[:, : DECODER_LEN - len(prompt)]], dim=1)
        out = model(input_features=input_features, decoder_input_ids=decoder_input_ids)
    ids = list(range(0, out.logits.shape[-1], LOGIT_STRIDE))
    return {
        "prompt": prompt,
        "features": "0.5 sin(0.013 (f + 1) (m + 1 + 3 b)) for row b, mel bin m, frame f",
        "input_features_dims": list(input_features.shape),
        "decoder_input_ids": decoder_input_ids.tolist(),
        "logits_dims": list(out.logits.shape),
        "logits_ids": ids,
        "logits": rounded(out.logits[:, :, ids]),
        "argmax": out.logits.argmax(-1).tolist(),
        "encoder_last_hidden_state_dims": list(out.encoder_last_hidden_state.shape),
        "encoder_rows": ENCODER_ROWS,
        "encoder_rows_values": rounded(out.encoder_last_hidden_state[:, ENCODER_ROWS, :]),
        "greedy": greedy.tolist(),
        "beams2": beams.tolist(),
    }


def main():
    torch.manual_seed(0)
    result = {
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
        "max_new_tokens": MAX_NEW,
        "text": {name: text_model(name) for name in TEXT_MODELS},
        "whisper": {"tiny-whisper-en": whisper_model("tiny-whisper-en")},
    }
    OUT.write_text(json.dumps(result) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
