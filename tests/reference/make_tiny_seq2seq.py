"""Makes tiny random text encoder-decoder models (Marian, BART, M2M100, NLLB, T5) and records what transformers
4.57.6's `generate` and `pipeline()` give on them: the reference of tests/seq2seq.rs.

Run once, by hand, with transformers 4.57.6 as an overlay (transformers 5 removed the
translation, summarization and text2text-generation pipelines; Transformers.js follows 4.x):
    .cache/pyref-venv/bin/pip install --no-deps --target DIR \\
        transformers==4.57.6 tokenizers==0.22.1 huggingface_hub==0.36.0
    PYTHONPATH=DIR .cache/pyref-venv/bin/python tests/reference/make_tiny_seq2seq.py

Outputs under tests/fixtures/seq2seq/:
    tiny-marian/            MarianMTModel, shared embeddings (model.shared), swish, scale_embedding,
                            static sinusoidal positions (not stored: transformers computes them),
                            decoder_start_token_id = pad, bad_words_ids [[pad]], forced_eos_token_id
    tiny-marian-separate/   the same shapes with share_encoder_decoder_embeddings false: separate
                            encoder and decoder token embeddings, an untied lm_head
    tiny-bart/              BartForConditionalGeneration: learned positions (offset 2),
                            layernorm_embedding, gelu, forced_bos_token_id, no_repeat_ngram_size 3
    tiny-m2m100/            M2M100ForConditionalGeneration: pre-LayerNorm, relu, scale_embedding,
                            sinusoidal positions from the padding index; languages en, fr, de, es
                            as special tokens __en__ ...: the source's before the text
                            (`__en__ text </s>`), the target's the forced BOS
    tiny-nllb/              the same model with NLLB-200's tokenizer conventions: language codes
                            eng_Latn, fra_Latn, deu_Latn, spa_Latn, NllbTokenizerFast
                            (non-legacy: `eng_Latn text </s>`)
    tiny-t5/                T5ForConditionalGeneration v1.0: relu feed-forward, lm_head tied to
                            `shared` (the output scaled by d_model^-0.5), 8 relative position
                            buckets up to distance 20, model_max_length 512 (T5's), task_specific_params
                            summarization prefix "summarize: "
    tiny-flan-t5/           the same with Flan-T5's gated-gelu feed-forward, an untied lm_head and
                            heads of 16 (4 x 16 = 64 over d_model 32)
    reference.json          models[name].check: the encoder's last_hidden_state and the first
                            decoder step's logits for one text; cases: {task, model, input,
                            options, output (pipeline), token_ids (generate on the text with the
                            task's prefix, decoder start first); beam cases: beam_token_ids (every
                            returned sequence) and beam_scores (generate's sequences_scores)}

Tokenizers are made with the `tokenizers` library (Hub Marian checkpoints ship SentencePiece
files only): Unigram + Metaspace with "$A </s>" for Marian and T5 (pad 0, </s> 1, <unk> 2, as
T5's), byte-level BPE with "<s> $A </s>" for BART, trained on the sentences below, saved as
tokenizer.json with a tokenizer_config.json naming PreTrainedTokenizerFast and model_max_length =
max_position_embeddings (64), so that pipeline(truncation=True), like Transformers.js (which
always truncates), cuts the long input (T5: 512, the long input having 1230 tokens). The Unigram
trainer is not deterministic, so a folder's tokenizer.json, once made, is kept by reruns (delete it
to train a new one); everything else is rewritten identically.

transformers has no fast M2M100 tokenizer and its slow one needs sentencepiece files: tiny-m2m100's
tokenizer_config names M2M100Tokenizer (as the Hub's do, and Transformers.js reads it), and the
Python side reads it with M2M100LikeTokenizerFast below, which builds translation inputs as
M2M100Tokenizer._build_translation_inputs does. The translation cases pass src_lang / tgt_lang.

Every reference runs greedy (num_beams=1: 4.57's text2text pipelines default to 4 beams) except
the beam-search cases, whose options name num_beams.
Weights come from a seeded torch.Generator, scaled so greedy choices have clear margins; each
greedy step's best and second-best processed scores must differ by more than MARGIN, else the
next seed is tried. CPU, float32, one thread: reruns give identical files.
"""

import json
import shutil
import sys
from pathlib import Path

import torch
import transformers

if transformers.__version__ != "4.57.6":
    sys.exit(f"needs transformers 4.57.6 as an overlay (see the docstring), got {transformers.__version__}")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BartConfig,
    M2M100Config,
    M2M100ForConditionalGeneration,
    BartForConditionalGeneration,
    MarianConfig,
    MarianMTModel,
    T5Config,
    T5ForConditionalGeneration,
    PreTrainedTokenizerFast,
    pipeline,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from texts import LONG_400  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "seq2seq"
MAX_POSITIONS = 64
MARGIN = 2e-3

CORPUS = [
    "The cat sat on the mat and looked at the rain.",
    "Lighthouses were once the most important pieces of infrastructure along any dangerous coast.",
    "Keepers trimmed wicks, polished lenses and recorded the weather every few hours.",
    "A small boat left the harbour before sunrise with three fishermen on board.",
    "Translation models turn a sentence in one language into a sentence in another.",
    "Summaries keep the main facts of a long article and drop the details.",
    "The museum opens at nine o'clock, except on Mondays when it is closed.",
    "She asked whether the train to the coast would be late again today.",
] + [LONG_400]

INPUTS = [
    "The cat sat on the mat.",
    "A small boat left the harbour with three fishermen.",
    "Keepers recorded the weather, polished lenses and trimmed wicks every night!",
    LONG_400,  # far past 64 tokens: truncated to model_max_length by the tokenizer
]


def marian_tokenizer():
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=160, special_tokens=["</s>", "<unk>", "<pad>"], unk_token="<unk>")
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A $B </s>", special_tokens=[("</s>", 0)])
    return tok, {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}, False


def t5_tokenizer():
    # T5's own tokenizer.json: Unigram, Metaspace, pad 0, </s> 1, <unk> 2, "$A </s>"
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=180, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return tok, {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}, False


def bart_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    names = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    return tok, names, True


LANGUAGES = {
    "nllb": ["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn"],
    "m2m100": ["__en__", "__fr__", "__de__", "__es__"],
}


def multilingual_tokenizer(kind):
    """fairseq's layout, as NLLB's and M2M100's: <s> <pad> </s> <unk>, the pieces, then the
    language tokens (special), the source language's before the text."""
    # BPE (SentencePiece's BPE, as NLLB's), whose training is deterministic, unlike Unigram's
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=specials)
    tok.train_from_iterator(CORPUS, trainer)
    languages = LANGUAGES[kind] + (["<mask>"] if kind == "nllb" else [])
    tok.add_special_tokens(languages)
    first = LANGUAGES[kind][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{first} $A </s>", pair=f"{first} $A $B </s>", special_tokens=[(first, tok.token_to_id(first)), ("</s>", 2)]
    )
    names = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    if kind == "nllb":
        names.update(tokenizer_class="NllbTokenizer", mask_token="<mask>", src_lang="eng_Latn", legacy_behaviour=False)
    else:
        names.update(tokenizer_class="M2M100Tokenizer", src_lang="en")
    names["additional_special_tokens"] = LANGUAGES[kind]
    return tok, names, True


class M2M100LikeTokenizerFast(PreTrainedTokenizerFast):
    """A fast tokenizer that builds translation inputs as M2M100Tokenizer does: the source
    language's token, the text, </s>; the target language's token as the forced BOS."""

    model_input_names = ["input_ids", "attention_mask"]

    def _build_translation_inputs(self, raw_inputs, src_lang, tgt_lang, **extra_kwargs):
        if src_lang is None or tgt_lang is None:
            raise ValueError("Translation requires a `src_lang` and a `tgt_lang` for this model")
        src = f"__{src_lang}__"
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{src} $A </s>", special_tokens=[(src, self.convert_tokens_to_ids(src)), ("</s>", self.eos_token_id)]
        )
        inputs = self(raw_inputs, add_special_tokens=True, **extra_kwargs)
        inputs["forced_bos_token_id"] = self.convert_tokens_to_ids(f"__{tgt_lang}__")
        return inputs


def load_tokenizer(folder, kind):
    if kind == "m2m100":
        return M2M100LikeTokenizerFast.from_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def kept_or(make, kept):
    """`make()`'s tokenizer, or the one already saved (`kept`, tokenizer.json's text)."""
    tok, names, clean_up = make()
    return (Tokenizer.from_str(kept) if kept is not None else tok), names, clean_up


def save_tokenizer(tok, names, clean_up, out, max_length=MAX_POSITIONS):
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": clean_up,
        **names,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def randomize(model, seed):
    gen = torch.Generator().manual_seed(seed)
    # M2M100's pre-LayerNorm residual stream keeps the token's own (tied) embedding on top, so
    # that a random model repeats one token; smaller embeddings and larger layers vary it
    pre_ln = isinstance(model, M2M100ForConditionalGeneration)
    embed_scale, gain = (0.5, 6.0) if pre_ln else (1.0, 1.5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" in name and isinstance(model, (MarianMTModel, M2M100ForConditionalGeneration)):
                continue  # Marian's sinusoids: computed by transformers, never stored
            if "relative_attention_bias" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            elif name.endswith("layer_norm.weight") or name.endswith("layernorm_embedding.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed" in name or name.endswith("shared.weight"):
                p.copy_(embed_scale * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * (gain / fan_in**0.5))
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.copy_(0.5 * torch.randn(model.final_logits_bias.shape, generator=gen))


SPECS = {
    "tiny-marian": dict(kind="marian", shared=True, seed=1),
    "tiny-marian-separate": dict(kind="marian", shared=False, seed=2),
    "tiny-bart": dict(kind="bart", seed=3),
    "tiny-m2m100": dict(kind="m2m100", seed=4, languages={"src_lang": "en", "tgt_lang": "fr"}, other={"src_lang": "de", "tgt_lang": "es"}),
    "tiny-nllb": dict(
        kind="nllb", seed=5, languages={"src_lang": "eng_Latn", "tgt_lang": "fra_Latn"}, other={"src_lang": "fra_Latn", "tgt_lang": "deu_Latn"}
    ),
    # T5 v1.0: relu feed-forward, lm_head tied to `shared` (output scaled by d_model^-0.5)
    "tiny-t5": dict(kind="t5", ff="relu", tied=True, d_kv=8, seed=4),
    # Flan-T5 / T5 v1.1: gated-gelu (gelu_new(wi_0 x) * wi_1 x), an untied lm_head, and heads of
    # 16 (inner dim 64 over d_model 32)
    "tiny-flan-t5": dict(kind="t5", ff="gated-gelu", tied=False, d_kv=16, seed=5),
}

TASKS = {
    "marian": ["translation", "text2text-generation"],
    "bart": ["summarization", "text2text-generation"],
    "m2m100": ["translation"],
    "nllb": ["translation"],
    # summarization's "summarize: " prefix comes from task_specific_params
    "t5": ["summarization", "text2text-generation"],
}

# T5 tokenizers say 512; T5's relative positions have no limit, so only the tokenizer truncates
T5_MAX_LENGTH = 512


def task_prefix(model, task):
    params = (getattr(model.config, "task_specific_params", None) or {}).get(task, {})
    return params.get("prefix", "") + (getattr(model.config, "prefix", None) or "")


def make_model(name, spec, seed):
    out = OUT / name
    # The tokenizers library's Unigram trainer is not deterministic (its hash maps are randomly
    # seeded), so a tokenizer once made is kept: reruns then rewrite the same files.
    kept = (out / "tokenizer.json").read_text() if (out / "tokenizer.json").exists() else None
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    common = dict(
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=MAX_POSITIONS,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    if spec["kind"] == "marian":
        tok, names, clean_up = kept_or(marian_tokenizer, kept)
        vocab = tok.get_vocab_size()
        pad, eos = tok.token_to_id("<pad>"), tok.token_to_id("</s>")
        config = MarianConfig(
            vocab_size=vocab,
            decoder_vocab_size=vocab,
            share_encoder_decoder_embeddings=spec["shared"],
            tie_word_embeddings=spec["shared"],
            activation_function="swish",
            scale_embedding=True,
            pad_token_id=pad,
            eos_token_id=eos,
            decoder_start_token_id=pad,
            forced_eos_token_id=eos,
            **common,
        )
        config.architectures = ["MarianMTModel"]
        torch.manual_seed(0)
        model = MarianMTModel(config).eval()
        generation = {"bad_words_ids": [[pad]], "decoder_start_token_id": pad, "eos_token_id": eos,
                      "forced_eos_token_id": eos, "max_length": 24, "pad_token_id": pad}
    elif spec["kind"] in ("m2m100", "nllb"):
        tok, names, clean_up = kept_or(lambda: multilingual_tokenizer(spec["kind"]), kept)
        config = M2M100Config(
            vocab_size=tok.get_vocab_size(),
            activation_function="relu",
            scale_embedding=True,
            bos_token_id=0,
            pad_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=2,
            **common,
        )
        config.architectures = ["M2M100ForConditionalGeneration"]
        torch.manual_seed(0)
        model = M2M100ForConditionalGeneration(config).eval()
        # not 20: the pipeline takes 20 for transformers' default and uses its own max_new_tokens (256)
        generation = {"bos_token_id": 0, "decoder_start_token_id": 2, "eos_token_id": 2, "max_length": 21, "pad_token_id": 1}
    elif spec["kind"] == "t5":
        tok, names, clean_up = kept_or(t5_tokenizer, kept)
        config = T5Config(
            vocab_size=tok.get_vocab_size(),
            d_model=32,
            d_kv=spec["d_kv"],
            d_ff=64,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=20,
            dropout_rate=0.0,
            feed_forward_proj=spec["ff"],
            tie_word_embeddings=spec["tied"],
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            task_specific_params={"summarization": {"prefix": "summarize: "}},
        )
        config.architectures = ["T5ForConditionalGeneration"]
        torch.manual_seed(0)
        model = T5ForConditionalGeneration(config).eval()
        # max_length always, and not 20: at transformers' default (absent, or 20) 4.57's pipelines
        # generate up to 256 new tokens and generate() adds the decoder prompt's length
        generation = {"decoder_start_token_id": 0, "eos_token_id": 1, "max_length": 24 if spec["tied"] else 22, "pad_token_id": 0}
    else:
        tok, names, clean_up = kept_or(bart_tokenizer, kept)
        vocab = tok.get_vocab_size()
        config = BartConfig(
            vocab_size=vocab,
            activation_function="gelu",
            scale_embedding=False,
            bos_token_id=0,
            pad_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=2,
            forced_bos_token_id=0,
            forced_eos_token_id=2,
            **common,
        )
        config.architectures = ["BartForConditionalGeneration"]
        torch.manual_seed(0)
        model = BartForConditionalGeneration(config).eval()
        generation = {"bos_token_id": 0, "decoder_start_token_id": 2, "eos_token_id": 2, "forced_bos_token_id": 0,
                      "forced_eos_token_id": 2, "max_length": 22, "no_repeat_ngram_size": 3, "pad_token_id": 1}
    randomize(model, seed)
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2, sort_keys=True) + "\n")
    save_tokenizer(tok, names, clean_up, out, T5_MAX_LENGTH if spec["kind"] == "t5" else MAX_POSITIONS)
    if kept is not None:
        (out / "tokenizer.json").write_text(kept)  # byte for byte (a reload may reprint a float)
    return out


def translation_inputs(tokenizer, text, languages):
    """input_ids, and the forced BOS of the target language, as the translation pipeline has them."""
    if not languages:
        return tokenizer(text, truncation=True, return_tensors="pt").input_ids, {}
    inputs = tokenizer._build_translation_inputs(text, return_tensors="pt", truncation=True, **languages)
    return inputs.input_ids, {"forced_bos_token_id": inputs["forced_bos_token_id"]}


def margins_ok(model, input_ids, forced):
    out = model.generate(input_ids, num_beams=1, do_sample=False, output_scores=True, return_dict_in_generate=True, **forced)
    for scores in out.scores:
        top = torch.topk(scores[0], 2).values
        if torch.isfinite(top[1]) and (top[0] - top[1]).item() < MARGIN:
            return False, out.sequences[0].tolist()
    return True, out.sequences[0].tolist()


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    reference = {"transformers": transformers.__version__, "models": {}, "cases": []}
    for name, spec in SPECS.items():
        for seed in range(spec["seed"], spec["seed"] + 200, 10):
            folder = make_model(name, spec, seed)
            model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
            tokenizer = load_tokenizer(folder, spec["kind"])
            languages = spec.get("languages", {})
            # the inputs each task encodes: its prefix, then the text (with the languages' tokens)
            ids = {
                (task, text): translation_inputs(tokenizer, task_prefix(model, task) + text, languages)
                for task in TASKS[spec["kind"]]
                for text in INPUTS
            }
            results = {key: margins_ok(model, *key_ids) for key, key_ids in ids.items()}
            if all(ok for ok, _ in results.values()):
                break
            print(name, "seed", seed, "has a near tie; next seed")
        else:
            sys.exit(f"{name}: no seed with clear margins")
        with torch.no_grad():
            first = translation_inputs(tokenizer, INPUTS[0], languages)[0]
            encoded = model.get_encoder()(input_ids=first).last_hidden_state[0]
            start = torch.tensor([[model.config.decoder_start_token_id]])
            logits = model(input_ids=first, decoder_input_ids=start).logits[0, -1]
        reference["models"][name] = {
            "seed": seed,
            "check": {
                "input_ids": first[0].tolist(),
                "encoder_hidden": encoded.tolist(),
                "first_logits": logits.tolist(),
            },
        }
        for task in TASKS[spec["kind"]]:
            pipe = pipeline(task, model=str(folder), tokenizer=load_tokenizer(folder, spec["kind"]))
            for text in INPUTS:
                token_ids = results[(task, text)][1]
                output = pipe(text, num_beams=1, truncation=True, **languages)
                reference["cases"].append(
                    {"task": task, "model": name, "input": text, "options": languages, "output": output, "token_ids": token_ids}
                )
            # an array of texts gives one result per text
            output = pipe(INPUTS[:2], num_beams=1, truncation=True, **languages)
            reference["cases"].append({"task": task, "model": name, "input": INPUTS[:2], "options": languages, "output": output})
        # a call's generation options over the model's defaults
        pipe = pipeline(TASKS[spec["kind"]][0], model=str(folder), tokenizer=load_tokenizer(folder, spec["kind"]))
        options = {**languages, "max_new_tokens": 5}
        output = pipe(INPUTS[1], num_beams=1, truncation=True, **options)
        reference["cases"].append({"task": TASKS[spec["kind"]][0], "model": name, "input": INPUTS[1], "options": options, "output": output})
        if "other" in spec:
            # another language pair: the source's token before the text, the target's forced
            for text in INPUTS[:3]:
                output = pipe(text, num_beams=1, truncation=True, **spec["other"])
                reference["cases"].append({"task": "translation", "model": name, "input": text, "options": spec["other"], "output": output})
        if name == "tiny-marian-separate":
            # its third text ends at once: min_length bans EOS until the sequence has 5 tokens
            output = pipe(INPUTS[2], num_beams=1, truncation=True, min_length=5)
            reference["cases"].append(
                {"task": TASKS[spec["kind"]][0], "model": name, "input": INPUTS[2], "options": {"min_length": 5}, "output": output}
            )
        # beam search: transformers 4.57's pipeline() and generate() with beams (the ids: every
        # returned sequence, decoder start first, padding cut after EOS)
        beam_options = [{"num_beams": 3}]
        if name == "tiny-bart":
            beam_options.append({"num_beams": 4, "num_return_sequences": 2, "length_penalty": 2.0, "early_stopping": True})
        if name == "tiny-flan-t5":
            beam_options.append({"num_beams": 2, "num_return_sequences": 2})
        if name == "tiny-marian":
            beam_options.append({"num_beams": 2, "no_repeat_ngram_size": 2, "min_length": 6, "early_stopping": "never"})
        if "languages" in spec:
            beam_options = [{**languages, "num_beams": 2}, {**languages, "num_beams": 4, "num_return_sequences": 2}]
        for options in beam_options:
            for text in INPUTS[:2]:
                output = pipe(text, truncation=True, **options)
                generate_options = {k: v for k, v in options.items() if k not in ("src_lang", "tgt_lang")}
                input_ids, forced = ids[(TASKS[spec["kind"]][0], text)]
                with torch.no_grad():
                    out = model.generate(
                        input_ids, do_sample=False, output_scores=True, return_dict_in_generate=True, **generate_options, **forced
                    )
                seqs = out.sequences.tolist()
                pad = model.config.pad_token_id
                token_ids = []
                for seq in seqs:
                    # drop the padding after a sequence's EOS (a start token equal to pad stays)
                    while len(seq) > 1 and seq[-1] == pad:
                        seq = seq[:-1]
                    token_ids.append(seq)
                reference["cases"].append(
                    {"task": TASKS[spec["kind"]][0], "model": name, "input": text, "options": options, "output": output,
                     "beam_token_ids": token_ids, "beam_scores": out.sequences_scores.tolist()}
                )
        print(name, "seed", seed, [r[1] for r in results.values()])
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
