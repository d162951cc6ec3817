"""Makes the seq2seq benchmark's models (bench/seq2seq.sh): random weights with the real shapes
of google/flan-t5-small and Helsinki-NLP/opus-mt-en-de, their ONNX exports in the layout
Transformers.js 4.3.1 loads, and Python transformers' greedy and beam-4 token ids on the
benchmark's input (bench/seq2seq-reference.json).

Run once, by hand, in the optimum venv (optimum-onnx needs transformers 4.x; see bench/README.md,
"Seq2seq"):
    scripts/pyref-env.sh && bench/optimum-env.sh
    .cache/optimum-venv/bin/python bench/make-seq2seq-models.py [NAME ...]     # ~6 min, 1.6 GB

For each NAME (bench-flan-t5-small, bench-opus-mt), writes .cache/models/NAME/ (config.json,
generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json: what webformers
loads) and .cache/models/NAME-onnx/ (the same config and tokenizer files, onnx/encoder_model.onnx
and onnx/decoder_model_merged.onnx: optimum's `text2text-generation-with-past` export, opset 17,
the decoder with and without its cache merged into one graph; and both with `_quantized`: ORT
dynamic quantization, signed int8 per-channel weights, reduce_range, subgraphs included, as
Transformers.js's `q8`).

- bench-flan-t5-small: T5ForConditionalGeneration with flan-t5-small's config (d_model 512, d_ff
  1024, 8 + 8 layers, 6 heads of 64, gated-gelu, 32 relative position buckets up to 128, vocab
  32128, untied lm_head), task text2text-generation;
- bench-opus-mt: MarianMTModel with opus-mt-en-de's config (d_model 512, 6 + 6 layers, 8 heads,
  ffn 2048, swish, scale_embedding, static sinusoidal positions, vocab 58101, embeddings shared
  by encoder, decoder and lm_head, pad 58100 = decoder start, eos 0, bad_words_ids [[pad]]), task
  translation. The checkpoint's forced_eos_token_id is left out: the benchmark forces exactly
  NEW_TOKENS new tokens (min_new_tokens = max_new_tokens), which a forced EOS would contradict.

Weights: transformers' own initialization under torch.manual_seed; the seed is tried upwards
until every greedy step's best and second-best scores differ by more than MARGIN, so that float
rounding cannot flip a choice between runtimes. (Random Marian repeats one token whatever its
weights' scale, tied embeddings and post-LayerNorm: its ids check less than T5's, which vary.) The tokenizers are not trained (the tokenizer is
not what is timed): a Unigram model whose pieces fill the model's whole vocabulary (so that every
id a random model emits decodes): the special tokens, single characters, a few hundred English
words, then letter pairs, triples and quadruples, with and without the word-start "▁"; Metaspace
pre-tokenizer and decoder, "$A </s>" appended, tokenizer_class PreTrainedTokenizerFast.
CPU, float32, one thread: reruns give identical files.
"""

import itertools
import json
import re
import shutil
import string
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

if not transformers.__version__.startswith("4."):
    sys.exit(f"needs transformers 4.x (the optimum venv, bench/optimum-env.sh), got {transformers.__version__}")

from transformers import AutoTokenizer, MarianConfig, MarianMTModel, T5Config, T5ForConditionalGeneration  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / ".cache" / "models"
REFERENCE = ROOT / "bench" / "seq2seq-reference.json"
NEW_TOKENS = 64
MARGIN = 1e-3
# One fixed English input, 31 tokens with the closing </s> under both tokenizers.
INPUT = "The old lighthouse keeper climbed the stairs every evening to light the lamp, and the ships passed safely along the rocky coast."
WORDS = (
    "the of and to in is was for on that with as by at from his her it an were are which this be or has had "
    "not but their they one all there been also more after first new other who when its some two into time "
    "than over only would most people years about like over through many where between each made world "
    "old keeper stairs every evening light lamp ships passed along coast "
    "sea water day night house city school small large long high great good year work way man men women "
    "life state home part place case point group number government company system program question "
    "translate english german french summarize"
).split()


def vocabulary(size, specials, last=None):
    """`size` Unigram pieces (text, score): `specials` first, `last` (if any) at the end."""
    letters = string.ascii_lowercase
    chars = list(letters + string.ascii_uppercase + string.digits + ".,;:!?'\"-()")
    seen = set(specials) | ({last} if last else set())
    pieces = []

    def add(piece, score):
        if piece not in seen and len(pieces) + len(specials) + (1 if last else 0) < size:
            seen.add(piece)
            pieces.append((piece, score))

    add("▁", -3.0)
    # Whole words score best, single characters worst, so that the input is mostly words.
    for w in WORDS:
        add("▁" + w, -4.0)
        add("▁" + w.capitalize(), -4.5)
    for c in chars:
        add("▁" + c, -9.0)
        add(c, -9.5)
    for n, score in ((2, -7.0), (3, -7.5), (4, -8.0)):
        for combo in itertools.product(letters, repeat=n):
            add("▁" + "".join(combo), score)
            add("".join(combo), score - 0.5)
    vocab = [(s, 0.0) for s in specials] + pieces + ([(last, 0.0)] if last else [])
    assert len(vocab) == size, (len(vocab), size)
    return vocab


def make_tokenizer(vocab, unk, eos):
    ids = {p: i for i, (p, _) in enumerate(vocab)}
    tok = Tokenizer(models.Unigram(vocab, unk_id=ids[unk], byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A $B </s>", special_tokens=[("</s>", ids[eos])])
    # marked special (their ids unchanged), so that decoding skips them
    tok.add_special_tokens([p for p, score in vocab if p.startswith("<") and p.endswith(">")])
    return tok


SPECS = {
    "bench-flan-t5-small": dict(kind="t5", task="text2text-generation", seed=1),
    "bench-opus-mt": dict(kind="marian", task="translation", seed=1),
}


def build(kind, seed):
    """(model, tokenizer, names for tokenizer_config, generation_config dict)."""
    torch.manual_seed(seed)
    if kind == "t5":
        vocab = vocabulary(32128, ["<pad>", "</s>", "<unk>"])
        tok = make_tokenizer(vocab, "<unk>", "</s>")
        config = T5Config(
            vocab_size=32128, d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_decoder_layers=8, num_heads=6,
            relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.1,
            layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", tie_word_embeddings=False, pad_token_id=0,
            eos_token_id=1, decoder_start_token_id=0, n_positions=512,
        )
        config.architectures = ["T5ForConditionalGeneration"]
        model = T5ForConditionalGeneration(config).eval()
        generation = {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}
    else:
        vocab = vocabulary(58101, ["</s>", "<unk>"], last="<pad>")
        tok = make_tokenizer(vocab, "<unk>", "</s>")
        pad = 58100
        config = MarianConfig(
            vocab_size=58101, decoder_vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
            encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
            activation_function="swish", scale_embedding=True, max_position_embeddings=512, dropout=0.1,
            attention_dropout=0.0, activation_dropout=0.0, pad_token_id=pad, eos_token_id=0, bos_token_id=0,
            decoder_start_token_id=pad, forced_eos_token_id=None, share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
            static_position_embeddings=True, normalize_embedding=False, normalize_before=False,
        )
        config.architectures = ["MarianMTModel"]
        model = MarianMTModel(config).eval()
        generation = {"bad_words_ids": [[pad]], "bos_token_id": 0, "decoder_start_token_id": pad, "eos_token_id": 0,
                      "max_length": 512, "pad_token_id": pad}
    names = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    return model, tok, names, generation


def save(out, model, tok, names, generation):
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2, sort_keys=True) + "\n")
    tok.save(str(out / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, "clean_up_tokenization_spaces": False, **names}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def generate(model, input_ids, generation, beams):
    extra = {"bad_words_ids": generation["bad_words_ids"]} if "bad_words_ids" in generation else {}
    out = model.generate(
        input_ids, num_beams=beams, do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
        output_scores=True, return_dict_in_generate=True, **extra,
    )
    ids = out.sequences[0, 1:].tolist()  # without the decoder start token
    margin = None
    if beams == 1:
        margin = min(float((s[0].topk(2).values[0] - s[0].topk(2).values[1])) for s in out.scores)
    return ids, margin


def export_onnx(src, dest):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export
    import onnx

    tmp = Path(tempfile.mkdtemp(prefix=".tmp-onnx-", dir=dest.parent))
    try:
        raw = tmp / "optimum"
        main_export(str(src), output=str(raw), task="text2text-generation-with-past", device="cpu", opset=17, do_validation=False)
        out = tmp / "model"
        (out / "onnx").mkdir(parents=True)
        for f in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]:
            shutil.copy2(src / f, out / f)
        for stem in ["encoder_model", "decoder_model_merged"]:
            fp32 = out / "onnx" / f"{stem}.onnx"
            onnx.save(onnx.load(str(raw / f"{stem}.onnx")), str(fp32))
            quantize_dynamic(
                str(fp32), str(out / "onnx" / f"{stem}_quantized.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                reduce_range=True, extra_options={"MatMulConstBOnly": True, "EnableSubgraph": True},
            )
        if dest.exists():
            shutil.rmtree(dest)
        out.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    torch.set_num_threads(1)
    names_wanted = sys.argv[1:] or list(SPECS)
    reference = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
    reference.update(
        {
            "input": INPUT,
            "new_tokens": NEW_TOKENS,
            "made_by": f"bench/make-seq2seq-models.py, transformers {transformers.__version__}, torch {torch.__version__}, "
                       "CPU float32: generate(num_beams=1 or 4, min_new_tokens = max_new_tokens = new_tokens); "
                       "token ids without the decoder start token",
        }
    )
    models_ref = reference.setdefault("models", {})
    for name in names_wanted:
        spec = SPECS[name]
        out = MODELS_DIR / name
        for seed in range(spec["seed"], spec["seed"] + 20):
            model, tok, names, generation = build(spec["kind"], seed)
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            save(out, model, tok, names, generation)
            tokenizer = AutoTokenizer.from_pretrained(out)
            input_ids = tokenizer(INPUT, return_tensors="pt").input_ids
            with torch.no_grad():
                greedy, margin = generate(model, input_ids, generation, 1)
            distinct = len(set(greedy))
            print(f"{name} seed {seed}: {input_ids.shape[1]} input tokens, smallest greedy margin {margin:.2e}, "
                  f"{distinct} distinct tokens", flush=True)
            if margin > MARGIN:
                break
        else:
            sys.exit(f"{name}: no seed gives greedy margins above {MARGIN}")
        with torch.no_grad():
            beam, _ = generate(model, input_ids, generation, 4)
        models_ref[name] = {
            "task": spec["task"],
            "seed": seed,
            "input_ids": input_ids[0].tolist(),
            "greedy_token_ids": greedy,
            "greedy_min_margin": margin,
            "beam4_token_ids": beam,
        }
        print(f"{name}: greedy {greedy[:12]}..., beam-4 {beam[:12]}...", flush=True)
        export_onnx(out, MODELS_DIR / f"{name}-onnx")
        for p in sorted((MODELS_DIR / f"{name}-onnx").rglob("*.onnx")):
            print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes", flush=True)
        text = json.dumps(reference, indent=1)
        # lists of ids on one line each
        text = re.sub(r"\[\s*([-0-9.e,\s]+?)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
        REFERENCE.write_text(text + "\n")


if __name__ == "__main__":
    main()
