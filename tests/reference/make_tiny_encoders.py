"""Makes tiny random encoder models and their golden outputs, for fast encoder tests.

Outputs (all under tests/fixtures/):
    tiny-roberta/       RobertaModel (no pooler), byte-level BPE tokenizer as roberta-base has it
                        (ByteLevel add_prefix_space false, RobertaProcessing <s> $A </s>)
    tiny-xlm-roberta/   XLMRobertaModel (no pooler), Unigram tokenizer with a Metaspace
                        pre-tokenizer and XLM-R's specials and template
    tiny-distilbert/    DistilBertModel (no token types), uncased WordPiece tokenizer
    tiny-bert-pooler/   BertModel with its pooler, hidden_act gelu_new (tanh GELU), two token
                        types, cased WordPiece tokenizer
    tiny-encoders-reference.json   per model: config and tokenizer facts, the safetensors
                        tensor names and shapes, and for 4 texts the token ids,
                        last_hidden_state, masked mean, token-0 vector (and pooler output);
                        a sentence pair; a right-padded batch of the 4 texts checked equal to
                        the single runs

Each folder holds config.json, model.safetensors (float32), tokenizer.json and
tokenizer_config.json, as transformers' save_pretrained writes them.

Run once, by hand, in the reference environment (CI never does):
    scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_tiny_encoders.py

Method: the BPE and Unigram tokenizers are trained with the `tokenizers` library on the fixed
text below (written for this project), their outputs made canonical where the trainers are not
deterministic; the WordPiece vocabularies are counted from the same text (see
wordpiece_vocab()). Weights are drawn from a torch.Generator with a fixed seed (not
transformers' init, which leaves norms at 1 and biases at 0 and so would test neither).
Everything recorded is computed on what was saved, reloaded the ordinary way; CPU, float32,
eager attention, one thread: rerunning gives identical files.
"""

import os

# Tokenizer training and encoding on one thread, so reruns are byte-identical.
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import (  # noqa: E402
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import (  # noqa: E402
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)
from golden_json import dump, f32_list  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
OUT_JSON = FIXTURES / "tiny-encoders-reference.json"

SEED = 4321
MAX_POS = 40
HIDDEN, LAYERS, HEADS, INTERMEDIATE = 32, 2, 4, 64
BATCH_TOL = 1e-5
MAX_TOTAL_BYTES = 2_000_000

# Trained vocabulary sizes (the model's vocab_size equals the tokenizer's).
BPE_VOCAB = 384        # 5 specials + 256 byte symbols + merges
UNIGRAM_VOCAB = 256    # 4 specials + pieces (255), then <mask> appended as id 255
WORDPIECE_VOCAB = 320  # 5 specials + characters + ##characters + counted pieces

ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0-4
XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3; <mask> is the last id
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0-4

# Training text for all tokenizers, written for this project.
TRAIN_TEXT = """\
The market opens early on Saturday, before the river fog has lifted from the square.
Farmers unload crates of apples, pears, cabbages and onions; the baker stacks warm loaves
on a long wooden table, and the cheese seller cuts thin slices for anyone who asks.
Children run between the stalls, counting coins and arguing about which honey is best.
At nine o'clock the bell in the old tower rings, and the town band plays three songs.
Nobody remembers when the market began. Some say it was a hundred years ago, others say
it was always there, like the river itself. The mayor says it is older than the bridge.
The bridge has seven arches. In spring the water rises almost to the top of the middle
arch, and the boatmen wait on the bank until the current slows. In summer the river is
low and green, and swallows fly under the arches to catch insects above the water.
Questions visitors ask: Where is the station? How much are the plums? Is the museum open?
The answers are simple. The station is up the hill, the plums are two coins a basket,
and the museum opens at ten, except on Mondays, when the keeper goes fishing.
Prices on the board: apples 1.20, pears 1.50, honey 4.75, bread 2.10, eggs 3.00 a dozen.
A musician plays the violin near the fountain, and a small dog sleeps in his open case.
When it rains, the sellers pull canvas roofs over their tables and keep talking loudly.
By one o'clock the crowd thins. The farmers pack the empty crates into their vans,
sweep the cobblestones, and drive home along the river road, past the mill and the school.
In the evening the square is quiet again. Lamps come on, a cat crosses from one doorway
to another, and the only sound is the water running under the seven arches of the bridge.
Notes from the town record: 1887 flood, 1923 new bridge, 1961 electric lamps, 2019 repairs.
"Fresh bread!" shouted the baker. "Two for three!" answered the girl at the next stall.
Students from the university sell second-hand books: novels, atlases, old dictionaries.
The weather report said: cloudy, light wind from the west, twelve degrees, no rain today.
"""

# (name, text). "medium" and "punctuation" fit in every model's max length; "truncated"
# is cut by every tokenizer (checked below).
INPUTS = [
    ("short", "The bridge has seven arches."),
    ("medium", "The baker sells warm bread, and the farmers bring apples to the square."),
    ("punctuation", "What?! \"Yes,\" it's 4:30 \u2014 Caf\u00e9 \u2713"),
    ("truncated", (
        "Every Saturday morning the whole town walks down to the square by the river, where "
        "farmers, bakers and cheese sellers have set up their stalls since long before anyone "
        "can remember, and the band plays until the bell in the old tower rings at noon."
    )),
]
PAIR = ("Where is the station?", "The station is up the hill, past the mill.")


# --- tokenizers --------------------------------------------------------------------------

def train_lines():
    return TRAIN_TEXT.splitlines(keepends=True)


def train_byte_bpe(specials, vocab_size):
    """A byte-level BPE (ByteLevel pre-tokenizer, add_prefix_space false, and decoder) trained
    on the text, with `specials` (str or AddedToken) first; no post-processor. Also used by
    make_tiny_task_models.py (ModernBERT, specials appended afterwards)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(train_lines(), trainer)
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    return tok


def train_roberta_bpe():
    """roberta-base's layout: ByteLevel BPE, add_prefix_space false, RobertaProcessing."""
    specials = ROBERTA_SPECIALS[:4] + [AddedToken("<mask>", lstrip=True, special=True)]
    tok = train_byte_bpe(specials, BPE_VOCAB)
    for i, s in enumerate(ROBERTA_SPECIALS):
        assert tok.token_to_id(s) == i, s
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    return tok


def train_unigram(specials, unk, vocab_size, normalizer):
    """A Unigram model with a Metaspace pre-tokenizer and decoder (prepend always) trained on
    the text, `specials` first (scores 0), made canonical; `vocab_size` pieces in all, no
    mask, no post-processor. Also used by make_tiny_task_models.py (DeBERTa-v2)."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token=unk,
        show_progress=False,
    )
    tok.train_from_iterator(train_lines(), trainer)
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    # The trainer's EM sums in hash-map order, so scores vary in the last bits from run to
    # run: round them to 6 decimals and order pieces by (score desc, piece). It also appends
    # the characters it must keep with scores min - 0.0001 * k in hash-map order: give that
    # ladder to those characters in code-point order instead.
    tj = json.loads(tok.to_str())
    vocab = tj["model"]["vocab"]
    n = len(specials)
    assert [p for p, _ in vocab[:n]] == specials
    pieces = [(p, round(s, 6)) for p, s in vocab[n:]]
    k = len(pieces) - 1
    while k > 0 and abs(pieces[k - 1][1] - pieces[k][1] - 1e-4) < 2e-6 and len(pieces[k - 1][0]) == 1:
        k -= 1
    ladder = pieces[k:]
    assert len(ladder) > 1 and all(len(p) == 1 for p, _ in ladder), ladder
    ladder = list(zip(sorted(p for p, _ in ladder), [s for _, s in ladder]))
    pieces = sorted(pieces[:k], key=lambda ps: (-ps[1], ps[0])) + ladder
    tj["model"]["vocab"] = [[p, 0.0] for p in specials] + [[p, s] for p, s in pieces]
    return Tokenizer.from_str(json.dumps(tj))


def train_xlmr_unigram():
    """XLM-R's layout: Unigram, Metaspace (prepend always), <s> $A </s> template, <mask> last.
    NFKC + collapsing runs of spaces stands in for XLM-R's Precompiled (nmt_nfkc) charsmap."""
    normalizer = normalizers.Sequence([
        normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok = train_unigram(XLMR_SPECIALS, "<unk>", UNIGRAM_VOCAB - 1, normalizer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    assert tok.get_vocab_size() == UNIGRAM_VOCAB
    for i, s in enumerate(XLMR_SPECIALS):
        assert tok.token_to_id(s) == i, s
    assert tok.token_to_id("<mask>") == UNIGRAM_VOCAB - 1
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def wordpiece_vocab(normalizer, pre_tokenizer):
    """A WordPiece vocabulary counted from the training text, deterministically.

    (tokenizers' WordPieceTrainer numbers the ##-symbols in hash-map order, and ties between
    merges follow those numbers, so its vocabulary changes from run to run.) Vocabulary:
    the specials, every character, every non-initial character as ##c, then candidate pieces
    (whole words, word-initial prefixes of 2-6 characters, ##-continuations of 2-4
    characters) by score = occurrences * (length - 1), ties by piece, until WORDPIECE_VOCAB."""
    words = {}
    for line in train_lines():
        for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            words[w] = words.get(w, 0) + 1
    chars = sorted({c for w in words for c in w})
    cont = sorted({"##" + c for w in words for c in w[1:]})
    base = BERT_SPECIALS + chars + cont
    scores = {}
    for w, n in words.items():
        cands = {w} | {w[:j] for j in range(2, min(len(w), 6) + 1)}
        cands |= {"##" + w[i:j] for i in range(1, len(w)) for j in range(i + 2, min(len(w), i + 4) + 1)}
        for c in cands:
            if c not in base:
                length = len(c) - (2 if c.startswith("##") else 0)
                scores[c] = scores.get(c, 0) + n * (length - 1)
    ranked = sorted(scores, key=lambda c: (-scores[c], c))
    vocab = base + ranked[: WORDPIECE_VOCAB - len(base)]
    assert len(vocab) == WORDPIECE_VOCAB == len(set(vocab)), len(vocab)
    return {t: i for i, t in enumerate(vocab)}


def train_wordpiece(lowercase):
    """BERT's layout: BertNormalizer, BertPreTokenizer, WordPiece ##, [CLS] $A [SEP]."""
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab = wordpiece_vocab(normalizer, pre_tokenizer)
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(BERT_SPECIALS)
    assert tok.get_vocab_size() == WORDPIECE_VOCAB, tok.get_vocab_size()
    for i, s in enumerate(BERT_SPECIALS):
        assert tok.token_to_id(s) == i, s
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok


TRAINERS = {
    "roberta": train_roberta_bpe,
    "xlm-roberta": train_xlmr_unigram,
    "distilbert": lambda: train_wordpiece(lowercase=True),
    "bert-pooler": lambda: train_wordpiece(lowercase=False),
}


def hf_tokenizer(tok, kind, max_len):
    if kind in ("roberta", "xlm-roberta"):
        kw = dict(bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                  unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                  model_input_names=["input_ids", "attention_mask"])
    else:
        kw = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                  mask_token="[MASK]")
        kw["model_input_names"] = (["input_ids", "attention_mask"] if kind == "distilbert"
                                   else ["input_ids", "token_type_ids", "attention_mask"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_len,
                                   padding_side="right", truncation_side="right", **kw)


# --- models ------------------------------------------------------------------------------

def make_model(kind, vocab):
    drop = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    shapes = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  intermediate_size=INTERMEDIATE, max_position_embeddings=MAX_POS)
    if kind == "roberta":
        cfg = RobertaConfig(vocab_size=vocab, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                            eos_token_id=2, layer_norm_eps=1e-5, hidden_act="gelu",
                            **shapes, **drop)
        return RobertaModel(cfg, add_pooling_layer=False)
    if kind == "xlm-roberta":
        cfg = XLMRobertaConfig(vocab_size=vocab, type_vocab_size=1, pad_token_id=1,
                               bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
                               hidden_act="gelu", **shapes, **drop)
        return XLMRobertaModel(cfg, add_pooling_layer=False)
    if kind == "distilbert":
        cfg = DistilBertConfig(vocab_size=vocab, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS,
                               hidden_dim=INTERMEDIATE, max_position_embeddings=MAX_POS,
                               activation="gelu", dropout=0.0, attention_dropout=0.0,
                               sinusoidal_pos_embds=False, pad_token_id=0)
        return DistilBertModel(cfg)
    if kind == "bert-pooler":
        cfg = BertConfig(vocab_size=vocab, type_vocab_size=2, pad_token_id=0,
                         layer_norm_eps=1e-12, hidden_act="gelu_new", **shapes, **drop)
        return BertModel(cfg, add_pooling_layer=True)
    raise ValueError(kind)


def load_model(kind, folder):
    """Reload the ordinary way (AutoModel), except that RoBERTa/XLM-R are built without the
    pooler their saved weights lack (AutoModel would add a randomly initialised one)."""
    kw = dict(dtype=torch.float32, attn_implementation="eager")
    if kind == "roberta":
        return RobertaModel.from_pretrained(str(folder), add_pooling_layer=False, **kw).eval()
    if kind == "xlm-roberta":
        return XLMRobertaModel.from_pretrained(str(folder), add_pooling_layer=False, **kw).eval()
    return AutoModel.from_pretrained(str(folder), **kw).eval()


def randomize(model, seed):
    """Deterministic weights: linear ~ N(0, 1/fan_in), LayerNorm weights 1 + N(0, 0.1^2),
    all biases and LayerNorm biases N(0, 0.1^2), embeddings (word, position, type) N(0, 0.5^2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            module = model.get_submodule(name.rsplit(".", 1)[0])
            leaf = name.rsplit(".", 1)[1]
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if isinstance(module, torch.nn.Embedding):
                p.copy_(noise * 0.5)
            elif isinstance(module, torch.nn.LayerNorm):
                p.copy_(noise * 0.1 + (1.0 if leaf == "weight" else 0.0))
            elif leaf == "bias":
                p.copy_(noise * 0.1)
            elif isinstance(module, torch.nn.Linear):  # weight is [out, in]
                p.copy_(noise / p.shape[1] ** 0.5)
            else:
                raise ValueError(f"unhandled parameter {name} in {type(module).__name__}")


def swapped_activation_diff(kind, model, ids, extra):
    """How far last_hidden_state moves if the other GELU is used: shows the fixture tells
    exact erf GELU from the tanh approximation."""
    cfg = model.config.__class__.from_dict(model.config.to_dict())
    if kind == "distilbert":
        cfg.activation = "gelu_new"
    else:
        cfg.hidden_act = "gelu" if cfg.hidden_act == "gelu_new" else "gelu_new"
    cfg._attn_implementation = "eager"
    kw = {"add_pooling_layer": False} if kind in ("roberta", "xlm-roberta") else {}
    other = model.__class__(cfg, **kw)
    other.load_state_dict(model.state_dict())
    other.eval()
    with torch.inference_mode():
        a = model(input_ids=ids, **extra).last_hidden_state
        b = other(input_ids=ids, **extra).last_hidden_state
    return float((a - b).abs().max())


def roberta_position_ids(ids, padding_idx):
    """transformers' create_position_ids_from_input_ids: non-pad tokens count up from
    padding_idx + 1; pad tokens get padding_idx."""
    mask = (ids != padding_idx).int()
    return (torch.cumsum(mask, dim=1) * mask).long() + padding_idx


# --- golden outputs ----------------------------------------------------------------------

def forward(model, enc):
    with torch.inference_mode():
        out = model(**enc)
    hs = out.last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hs * m).sum(1) / m.sum(1)
    pooled = getattr(out, "pooler_output", None)
    return hs, mean, pooled


def text_record(kind, name, text, tok, raw_tok, model, max_len):
    enc = tok([text], truncation=True, max_length=max_len, return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    full = tok(text)["input_ids"]
    raw = Tokenizer.from_str(raw_tok.to_str())
    assert raw.encode(text).ids == full
    raw.enable_truncation(max_len)
    assert raw.encode(text).ids == ids
    if name == "truncated":
        assert len(full) > max_len and len(ids) == max_len, (kind, len(full))
    else:
        assert full == ids, (kind, name, len(full))
    hs, mean, pooled = forward(model, enc)
    rec = {
        "name": name,
        "text": text,
        "num_tokens": len(ids),
        "num_tokens_untruncated": len(full),
        "token_ids": ids,
        "tokens": tok.convert_ids_to_tokens(ids),
    }
    if "token_type_ids" in enc:
        rec["token_type_ids"] = enc["token_type_ids"][0].tolist()
    if kind in ("roberta", "xlm-roberta"):
        pos = roberta_position_ids(enc["input_ids"], model.config.pad_token_id)
        # The same output with these position ids passed explicitly.
        with torch.inference_mode():
            explicit = model(**enc, position_ids=pos).last_hidden_state
            from_zero = model(**enc, position_ids=pos - pos[0, 0]).last_hidden_state
        assert torch.equal(explicit, hs)
        rec["position_ids"] = pos[0].tolist()
        rec["positions_from_zero_max_abs_diff"] = float((from_zero - hs).abs().max())
    rec["last_hidden_state"] = hs[0].numpy()
    rec["mean_pooled"] = mean[0].numpy()
    rec["token0"] = hs[0, 0].numpy()
    if pooled is not None:
        rec["pooler_output"] = pooled[0].numpy()
    return rec, enc


def pair_record(kind, tok, model, max_len):
    a, b = PAIR
    enc = tok([a], [b], truncation=True, max_length=max_len, return_tensors="pt")
    hs, mean, pooled = forward(model, enc)
    rec = {"text": a, "text_pair": b, "token_ids": enc["input_ids"][0].tolist(),
           "tokens": tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())}
    assert ("token_type_ids" in enc) == (kind == "bert-pooler")
    if "token_type_ids" in enc:
        rec["token_type_ids"] = enc["token_type_ids"][0].tolist()
        assert 1 in rec["token_type_ids"]
    if kind in ("roberta", "xlm-roberta"):
        rec["position_ids"] = roberta_position_ids(enc["input_ids"], model.config.pad_token_id)[0].tolist()
    if "token_type_ids" in enc:
        # How far the output moves if the pair's second segment wrongly gets type 0.
        zeros = {**enc, "token_type_ids": torch.zeros_like(enc["token_type_ids"])}
        with torch.inference_mode():
            wrong = model(**zeros).last_hidden_state
        rec["token_types_all_zero_max_abs_diff"] = float((wrong - hs).abs().max())
    rec["mean_pooled"] = mean[0].numpy()
    rec["token0"] = hs[0, 0].numpy()
    if pooled is not None:
        rec["pooler_output"] = pooled[0].numpy()
    return rec


def batch_record(kind, tok, model, max_len, singles):
    texts = [t for _, t in INPUTS]
    enc = tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    hs, mean, pooled = forward(model, enc)
    diffs = {"last_hidden_state": 0.0, "mean_pooled": 0.0, "token0": 0.0}
    if pooled is not None:
        diffs["pooler_output"] = 0.0
    for b, (rec, _) in enumerate(singles):
        n = rec["num_tokens"]
        assert enc["input_ids"][b, :n].tolist() == rec["token_ids"]
        assert enc["attention_mask"][b].tolist() == [1] * n + [0] * (enc["input_ids"].shape[1] - n)
        pairs = [("last_hidden_state", hs[b, :n]), ("mean_pooled", mean[b]), ("token0", hs[b, 0])]
        if pooled is not None:
            pairs.append(("pooler_output", pooled[b]))
        for key, got in pairs:
            d = float(np.abs(got.numpy() - rec[key]).max())
            diffs[key] = max(diffs[key], d)
    assert max(diffs.values()) < BATCH_TOL, (kind, diffs)
    out = {
        "padding_side": "right",
        "pad_token_id": tok.pad_token_id,
        "input_ids": enc["input_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
    }
    if "token_type_ids" in enc:
        out["token_type_ids"] = enc["token_type_ids"].tolist()
    if kind in ("roberta", "xlm-roberta"):
        out["position_ids"] = roberta_position_ids(enc["input_ids"], model.config.pad_token_id).tolist()
    out["max_abs_diff_vs_single"] = diffs
    return out


# --- facts for implementers --------------------------------------------------------------

def tokenizer_facts(kind, tok, raw_tok, max_len):
    tj = json.loads(raw_tok.to_str())
    post = tj["post_processor"]
    facts = {
        "model": tj["model"]["type"],
        "normalizer": tj["normalizer"],
        "pre_tokenizer": tj["pre_tokenizer"],
        "post_processor_type": post["type"],
        "decoder_type": tj["decoder"]["type"],
        "vocab_size": raw_tok.get_vocab_size(),
        "special_tokens": {t["content"]: t["id"] for t in tj["added_tokens"]},
        "adds_special_tokens": tok("x")["input_ids"] != tok("x", add_special_tokens=False)["input_ids"],
        "single_template": " ".join(tok.convert_ids_to_tokens(tok("x")["input_ids"])).replace(
            " ".join(tok.convert_ids_to_tokens(tok("x", add_special_tokens=False)["input_ids"])), "$A"),
        "model_input_names": list(tok.model_input_names),
        "model_max_length": max_len,
        "truncation_in_tokenizer_json": tj["truncation"],
        "padding_in_tokenizer_json": tj["padding"],
        "pad_token_id": tok.pad_token_id,
    }
    if tj["model"]["type"] == "WordPiece":
        facts["continuing_subword_prefix"] = tj["model"]["continuing_subword_prefix"]
        facts["unk_token"] = tj["model"]["unk_token"]
    if tj["model"]["type"] == "Unigram":
        facts["unk_id"] = tj["model"]["unk_id"]
    if kind == "roberta":
        facts["add_prefix_space"] = tj["pre_tokenizer"]["add_prefix_space"]
    return facts


def model_facts(kind, model, max_len):
    c = model.config
    if kind == "distilbert":
        f = {
            "hidden_size": c.dim, "num_hidden_layers": c.n_layers, "num_attention_heads": c.n_heads,
            "head_dim": c.dim // c.n_heads, "intermediate_size": c.hidden_dim,
            "max_position_embeddings": c.max_position_embeddings, "activation": c.activation,
            "layer_norm_eps": 1e-12,
            "layer_norm_eps_note": "hard-coded in modeling_distilbert.py, not in config.json",
            "has_token_type_embeddings": False, "has_pooler": False,
            "sinusoidal_pos_embds": c.sinusoidal_pos_embds,
            "position_ids": "0, 1, ..., n-1",
            "config_key_names": "dim / n_layers / n_heads / hidden_dim / activation (not BERT's names)",
            "checkpoint_prefix_note": (
                "saved from DistilBertModel: names have no prefix; Hub checkpoints saved from "
                "DistilBertForMaskedLM etc. prefix them with 'distilbert.'"),
        }
    else:
        f = {
            "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads, "head_dim": c.hidden_size // c.num_attention_heads,
            "intermediate_size": c.intermediate_size, "max_position_embeddings": c.max_position_embeddings,
            "hidden_act": c.hidden_act, "layer_norm_eps": c.layer_norm_eps,
            "type_vocab_size": c.type_vocab_size, "has_token_type_embeddings": True,
            "has_pooler": kind == "bert-pooler",
            "pad_token_id": c.pad_token_id,
        }
        if kind in ("roberta", "xlm-roberta"):
            f["padding_idx"] = c.pad_token_id
            f["position_ids"] = (
                f"non-pad tokens count up from padding_idx + 1 = {c.pad_token_id + 1} "
                f"(cumsum(ids != {c.pad_token_id}) * mask + {c.pad_token_id}); pad tokens get "
                f"padding_idx = {c.pad_token_id}; so at most max_position_embeddings - 2 = "
                f"{max_len} tokens")
            f["token_type_ids"] = "all 0 (type_vocab_size 1); the tokenizer does not return them"
            f["checkpoint_prefix_note"] = (
                f"saved from {type(model).__name__} without pooler: names have no prefix; Hub "
                "checkpoints (roberta-base, xlm-roberta-base) prefix them with 'roberta.' and "
                "carry pooler.dense.* too")
        else:
            f["position_ids"] = "0, 1, ..., n-1"
            f["token_type_ids"] = "0 for [CLS] A [SEP], 1 for B [SEP] of a pair"
            f["pooler"] = "pooler_output = tanh(pooler.dense(last_hidden_state[:, 0]))"
            f["gelu_new"] = "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))"
            f["checkpoint_prefix_note"] = (
                "saved from BertModel: names have no prefix; Hub checkpoints saved from "
                "BertForPreTraining etc. prefix them with 'bert.'")
    f["vocab_size"] = c.vocab_size
    f["attention_scale"] = f"1 / sqrt(head_dim) = 1 / sqrt({f['head_dim']})"
    f["attention_mask"] = "padded keys masked out (additive dtype-min before softmax)"
    return f


def folder_size(path):
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)

    out_models = {}
    for mi, kind in enumerate(["roberta", "xlm-roberta", "distilbert", "bert-pooler"]):
        folder = FIXTURES / f"tiny-{kind}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

        raw = TRAINERS[kind]()
        again = TRAINERS[kind]()
        assert again.to_str() == raw.to_str(), f"{kind} tokenizer training is not deterministic"
        max_len = MAX_POS - 2 if kind in ("roberta", "xlm-roberta") else MAX_POS
        hf_tokenizer(raw, kind, max_len).save_pretrained(str(folder))

        torch.manual_seed(SEED + mi)
        model = make_model(kind, raw.get_vocab_size())
        randomize(model, SEED + 100 * (mi + 1))
        model.eval()
        model.save_pretrained(str(folder))

        # Everything below runs on what was saved, loaded the ordinary way.
        tok = AutoTokenizer.from_pretrained(str(folder))
        model = load_model(kind, folder)
        assert len(tok) == model.config.vocab_size == raw.get_vocab_size()
        assert tok.model_max_length == max_len
        raw_tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        assert raw_tok.to_str() == raw.to_str()
        with safetensors.safe_open(str(folder / "model.safetensors"), "pt") as f:
            names = sorted(f.keys())
            dtypes = sorted({str(f.get_slice(k).get_dtype()) for k in names})
            shapes = {k: list(f.get_slice(k).get_shape()) for k in names}
            metadata = f.metadata()
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"], files

        singles = [text_record(kind, n, t, tok, raw_tok, model, max_len) for n, t in INPUTS]
        first = singles[0][1]
        extra = {k: v for k, v in first.items() if k != "input_ids"}
        rec = {
            "folder": folder.relative_to(ROOT).as_posix(),
            "class": type(model).__name__,
            "model_type": model.config.model_type,
            "files": files,
            "folder_bytes": folder_size(folder),
            "safetensors_dtypes": dtypes,
            "safetensors_metadata": metadata,
            "safetensors_tensors": shapes,
            "config": model_facts(kind, model, max_len),
            "tokenizer": tokenizer_facts(kind, tok, raw_tok, max_len),
            "other_gelu_max_abs_diff": swapped_activation_diff(kind, model, first["input_ids"], extra),
            "inputs": [r for r, _ in singles],
            "pair": pair_record(kind, tok, model, max_len),
            "padded_batch": batch_record(kind, tok, model, max_len, singles),
        }
        out_models[f"tiny-{kind}"] = rec

    fixture = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "note": (
            "Made by tests/reference/make_tiny_encoders.py. Four tiny random encoders (hidden "
            f"{HIDDEN}, {LAYERS} layers, {HEADS} heads, intermediate {INTERMEDIATE}, "
            f"max_position_embeddings {MAX_POS}), each with a tokenizer trained with the "
            "tokenizers library (WordPiece: counted) on a fixed text in the script: "
            "tiny-roberta byte-level BPE "
            f"(vocab {BPE_VOCAB}, specials <s> <pad> </s> <unk> <mask> = 0-4, "
            "RobertaProcessing), tiny-xlm-roberta Unigram with a Metaspace pre-tokenizer "
            f"(vocab {UNIGRAM_VOCAB}: <s> <pad> </s> <unk> = 0-3, <mask> = {UNIGRAM_VOCAB - 1}; "
            "NFKC + collapse of repeated spaces stands in for XLM-R's Precompiled charsmap), "
            f"tiny-distilbert uncased and tiny-bert-pooler cased WordPiece (vocab {WORDPIECE_VOCAB}, "
            "[PAD] [UNK] [CLS] [SEP] [MASK] = 0-4; its vocabulary counted deterministically from "
            "the text, see wordpiece_vocab(), as WordPieceTrainer's output varies between runs). "
            "Weights: a seeded torch.Generator "
            "(see randomize(): LayerNorm weights 1 + N(0, 0.01), all biases N(0, 0.01), "
            "embeddings N(0, 0.25), linear weights N(0, 1/fan_in)), saved with "
            "save_pretrained and reloaded before any output is computed; CPU, float32, eager "
            "attention. inputs[i].token_ids: tokenizer(text, truncation=True, "
            "max_length=tokenizer.model_max_length), specials added by the tokenizer's "
            "post-processor; model_max_length is 40 for the BERTs and 38 for RoBERTa/XLM-R "
            "(their positions start at padding_idx + 1 = 2, so 40 position rows hold 38 tokens, "
            "as roberta-base's 514 hold 512). last_hidden_state: [tokens, hidden]; mean_pooled: "
            "mean of last_hidden_state over attention_mask 1 tokens; token0: last_hidden_state[0] "
            "(<s> / [CLS]); pooler_output (tiny-bert-pooler): tanh(dense(token0)). "
            "position_ids (RoBERTa/XLM-R) are what the model computes from the ids, checked by "
            "passing them explicitly; positions_from_zero_max_abs_diff shows how far the output "
            "moves if positions wrongly start at 0. other_gelu_max_abs_diff: how far "
            "last_hidden_state of input 0 moves with the other GELU (erf vs tanh). pair: "
            "tokenizer(text, text_pair) (RoBERTa/XLM-R <s> A </s></s> B </s>; BERT [CLS] A [SEP] "
            "B [SEP] with token_type_ids 1 on B [SEP] for tiny-bert-pooler, whose "
            "token_types_all_zero_max_abs_diff shows the type embeddings matter). padded_batch: "
            "the 4 inputs right-padded in one batch; every value equals the single runs within "
            f"max_abs_diff_vs_single (asserted < {BATCH_TOL}). Floats are the shortest decimals "
            "that round-trip to float32."
        ),
        "models": out_models,
    }
    text = dump(fixture) + "\n"
    json.loads(text)
    OUT_JSON.write_text(text, encoding="utf-8")
    total = len(text.encode()) + sum(r["folder_bytes"] for r in out_models.values())
    assert total < MAX_TOTAL_BYTES, total
    print(f"wrote {OUT_JSON.relative_to(ROOT)} ({len(text.encode())} bytes); total {total} bytes")
    for name, r in out_models.items():
        print(f"  {name}: {r['folder_bytes']} bytes, vocab {r['config']['vocab_size']}, "
              f"tokens {[x['num_tokens'] for x in r['inputs']]} "
              f"(untruncated {[x['num_tokens_untruncated'] for x in r['inputs']]}), "
              f"other gelu diff {r['other_gelu_max_abs_diff']:.3g}, "
              f"batch diffs {r['padded_batch']['max_abs_diff_vs_single']}")
        for x in r["inputs"]:
            if "positions_from_zero_max_abs_diff" in x:
                print(f"    positions-from-0 diff {x['positions_from_zero_max_abs_diff']:.3g}")


if __name__ == "__main__":
    sys.exit(main())
