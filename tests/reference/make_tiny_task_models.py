"""Makes tiny random task models (classification, token classification, question answering,
masked LM) for six encoder architectures and records what transformers 4.57.6's own
`pipeline()` returns on them: the reference of the five NLP pipeline tasks.

Run once, by hand, in the reference environment with transformers 4.57.6 as an overlay
(transformers 5 removed the question-answering pipeline; Transformers.js follows 4.x):
    .cache/pyref-venv/bin/pip install --no-deps --target /work/main/.cache/tf457 \\
        transformers==4.57.6 tokenizers==0.22.1 huggingface_hub==0.36.0
    PYTHONPATH=/work/main/.cache/tf457 /work/main/.cache/pyref-venv/bin/python \\
        tests/reference/make_tiny_task_models.py

Outputs (under tests/fixtures/):
    tiny-tasks/{ARCH}-{HEAD}/   for ARCH in bert, distilbert, roberta, xlm-roberta, deberta-v2,
                    modernbert and HEAD in sequence-classification (3 NLI labels), token-
                    classification (BIO), question-answering, masked-lm; plus bert-multi-label
                    (4 labels, problem_type multi_label_classification). Each folder:
                    config.json, model.safetensors (float32), tokenizer.json,
                    tokenizer_config.json, special_tokens_map.json.
    tiny-tasks-reference.json   models[name].encoder_check (the base encoder's
                    last_hidden_state for one text) and cases: {task, model, input, options,
                    output}, where output is what pipeline(task, model=folder,
                    tokenizer=folder)(input, **options) returned (question-answering:
                    pipe(question=..., context=..., **options)), as plain JSON.

Method: tokenizers come from make_tiny_encoders.py's trainers (same fixed text): cased /
uncased WordPiece for bert / distilbert, byte-level BPE for roberta and (with ModernBERT's
specials [UNK] [CLS] [SEP] [PAD] [MASK] appended at the end, NFC, [CLS] $A [SEP]) for
modernbert, Unigram + Metaspace for xlm-roberta and (with deberta-v3's [PAD] [CLS] [SEP] [UNK]
= 0-3, [MASK] last, Strip + NFKC, [CLS] $A [SEP] $B [SEP]) for deberta-v2. Weights: a seeded
torch.Generator (make_tiny_encoders.randomize), then the head's last projection rescaled on the
training text's clauses (calibrate_head: each output varies with a set spread around a set bias,
"O" favoured for tagging, QA's [CLS] raised so that the null answer competes). Every pipeline
output is checked for margins (ranked scores distinct by > 1e-3 relative, token argmaxes by
> 1e-3 in logits, QA span candidates at every cut-off distinct), and token classification
for real entities; a model failing a check is rebuilt with the next seed (the seed used is
recorded). All outputs come from the saved folders loaded the ordinary way (pipeline() on
the folder); CPU, float32, eager attention, one thread: reruns give identical files.
"""

import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"

import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

if transformers.__version__ != "4.57.6":
    sys.exit(f"needs transformers 4.57.6 as an overlay (see the docstring), got {transformers.__version__}")

from tokenizers import AddedToken, Regex, normalizers, processors  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    BertTokenizerFast,
    DebertaV2Config,
    DebertaV2TokenizerFast,
    DistilBertConfig,
    DistilBertTokenizerFast,
    ModernBertConfig,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaTokenizerFast,
    pipeline,
)
import transformers.pipelines.question_answering as qa_module  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_json import dump  # noqa: E402
from make_tiny_encoders import (  # noqa: E402
    BPE_VOCAB,
    randomize,
    train_byte_bpe,
    train_lines,
    train_roberta_bpe,
    train_unigram,
    train_wordpiece,
    train_xlmr_unigram,
)

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
OUT_DIR = FIXTURES / "tiny-tasks"
OUT_JSON = FIXTURES / "tiny-tasks-reference.json"

SEED = 2024
MAX_ATTEMPTS = 40
MAX_LEN = 64  # model_max_length everywhere; max_position_embeddings (RoBERTa/XLM-R: 66)
HIDDEN, LAYERS, HEADS, INTERMEDIATE = 32, 2, 4, 64
TOLERANCE = 1e-4
REL_MARGIN = 1e-3  # ranked scores: (a - b) > REL_MARGIN * max(|a|, |b|) (logits: max(.., 1))
LOGIT_MARGIN = 1e-3  # token classification: argmax beats the runner-up by this in logits
MAX_TOTAL_BYTES = 6_000_000

ARCHS = ["bert", "distilbert", "roberta", "xlm-roberta", "deberta-v2", "modernbert"]
TASK_HEADS = ["sequence-classification", "token-classification", "question-answering", "masked-lm"]
NLI = {0: "entailment", 1: "neutral", 2: "contradiction"}
BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
MULTI = {0: "food", 1: "weather", 2: "music", 3: "travel"}

DEBERTA_SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]  # ids 0-3; [MASK] is the last id
DEBERTA_VOCAB = 256
MODERNBERT_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]  # the last 5 ids


# --- tokenizers --------------------------------------------------------------------------

def train_deberta_unigram():
    """deberta-v3's layout (DebertaV2Converter): Strip + charsmap (NFKC stands in) + collapse
    of repeated spaces, Metaspace, [CLS] $A [SEP] / [CLS] $A [SEP] $B:1 [SEP]:1, [MASK] last."""
    normalizer = normalizers.Sequence([
        normalizers.Strip(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok = train_unigram(DEBERTA_SPECIALS, "[UNK]", DEBERTA_VOCAB - 1, normalizer)
    tok.add_special_tokens([AddedToken("[MASK]", special=True)])
    for i, s in enumerate(DEBERTA_SPECIALS):
        assert tok.token_to_id(s) == i, s
    assert tok.token_to_id("[MASK]") == DEBERTA_VOCAB - 1
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return tok


def train_modernbert_bpe():
    """answerdotai/ModernBERT-base's layout: NFC, ByteLevel BPE (add_prefix_space false), the
    specials [UNK] [CLS] [SEP] [PAD] [MASK] (lstrip) after the learned vocabulary, and
    TemplateProcessing [CLS] $A [SEP] (offsets keep a token's leading space: no trimming)."""
    tok = train_byte_bpe([], BPE_VOCAB - len(MODERNBERT_SPECIALS))
    tok.normalizer = normalizers.NFC()
    tok.add_special_tokens([AddedToken(s, special=True, lstrip=(s == "[MASK]"))
                            for s in MODERNBERT_SPECIALS])
    base = BPE_VOCAB - len(MODERNBERT_SPECIALS)
    for i, s in enumerate(MODERNBERT_SPECIALS):
        assert tok.token_to_id(s) == base + i, s
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


TRAINERS = {
    "bert": lambda: train_wordpiece(lowercase=False),
    "distilbert": lambda: train_wordpiece(lowercase=True),
    "roberta": train_roberta_bpe,
    "xlm-roberta": train_xlmr_unigram,
    "deberta-v2": train_deberta_unigram,
    "modernbert": train_modernbert_bpe,
}


def hf_tokenizer(arch, raw):
    """The fast tokenizer class the real checkpoints name in tokenizer_config.json."""
    common = dict(tokenizer_object=raw, model_max_length=MAX_LEN, padding_side="right",
                  truncation_side="right")
    bert_specials = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                         cls_token="[CLS]", mask_token="[MASK]")
    roberta_specials = dict(bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                            unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    if arch == "bert":
        return BertTokenizerFast(do_lower_case=False, clean_up_tokenization_spaces=True,
                                 **bert_specials, **common)
    if arch == "distilbert":
        return DistilBertTokenizerFast(do_lower_case=True, clean_up_tokenization_spaces=True,
                                       **bert_specials, **common)
    if arch == "roberta":
        return RobertaTokenizerFast(add_prefix_space=False, trim_offsets=True,
                                    clean_up_tokenization_spaces=True, **roberta_specials, **common)
    if arch == "xlm-roberta":
        return XLMRobertaTokenizerFast(clean_up_tokenization_spaces=True, **roberta_specials, **common)
    if arch == "deberta-v2":
        # deberta-v3's tokenizer_config.json names no clean_up_tokenization_spaces: 4.57 reads False.
        return DebertaV2TokenizerFast(do_lower_case=False, split_by_punct=False,
                                      bos_token="[CLS]", eos_token="[SEP]",
                                      clean_up_tokenization_spaces=False, **bert_specials, **common)
    if arch == "modernbert":
        return PreTrainedTokenizerFast(clean_up_tokenization_spaces=True,
                                       model_input_names=["input_ids", "attention_mask"],
                                       **bert_specials, **common)
    raise ValueError(arch)


# --- models ------------------------------------------------------------------------------

PREFIX = {"bert": "Bert", "distilbert": "DistilBert", "roberta": "Roberta",
          "xlm-roberta": "XLMRoberta", "deberta-v2": "DebertaV2", "modernbert": "ModernBert"}
HEAD_CLASS = {"sequence-classification": "ForSequenceClassification",
              "token-classification": "ForTokenClassification",
              "question-answering": "ForQuestionAnswering", "masked-lm": "ForMaskedLM"}
AUTO = {"sequence-classification": AutoModelForSequenceClassification,
        "token-classification": AutoModelForTokenClassification,
        "question-answering": AutoModelForQuestionAnswering, "masked-lm": AutoModelForMaskedLM}


def make_config(arch, tok, labels, problem_type=None):
    vocab = len(tok)
    kw = {}
    if labels is not None:
        kw = dict(id2label=dict(labels), label2id={v: k for k, v in labels.items()})
        if problem_type:
            kw["problem_type"] = problem_type
    drop = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=None)
    shapes = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  intermediate_size=INTERMEDIATE)
    if arch == "bert":
        return BertConfig(vocab_size=vocab, max_position_embeddings=MAX_LEN, type_vocab_size=2,
                          pad_token_id=tok.pad_token_id, layer_norm_eps=1e-12, hidden_act="gelu",
                          **shapes, **drop, **kw)
    if arch == "distilbert":
        return DistilBertConfig(vocab_size=vocab, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS,
                                hidden_dim=INTERMEDIATE, max_position_embeddings=MAX_LEN,
                                activation="gelu", dropout=0.0, attention_dropout=0.0,
                                seq_classif_dropout=0.0, qa_dropout=0.0,
                                sinusoidal_pos_embds=False, pad_token_id=tok.pad_token_id, **kw)
    if arch in ("roberta", "xlm-roberta"):
        cls = RobertaConfig if arch == "roberta" else XLMRobertaConfig
        return cls(vocab_size=vocab, max_position_embeddings=MAX_LEN + 2, type_vocab_size=1,
                   pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                   eos_token_id=tok.eos_token_id, layer_norm_eps=1e-5, hidden_act="gelu",
                   **shapes, **drop, **kw)
    if arch == "deberta-v2":
        return DebertaV2Config(
            vocab_size=vocab, max_position_embeddings=MAX_LEN, type_vocab_size=0,
            pad_token_id=tok.pad_token_id, layer_norm_eps=1e-7, hidden_act="gelu",
            relative_attention=True, max_relative_positions=16, position_buckets=8,
            pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
            position_biased_input=False, pooler_hidden_size=HIDDEN, pooler_dropout=0.0,
            pooler_hidden_act="gelu", legacy=True, **shapes, **drop, **kw)
    if arch == "modernbert":
        return ModernBertConfig(
            vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
            num_hidden_layers=3, num_attention_heads=HEADS, hidden_activation="gelu",
            max_position_embeddings=MAX_LEN, norm_eps=1e-5, norm_bias=False,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
            bos_token_id=tok.cls_token_id, cls_token_id=tok.cls_token_id,
            sep_token_id=tok.sep_token_id, global_rope_theta=160000.0, local_rope_theta=10000.0,
            global_attn_every_n_layers=2, local_attention=8, attention_bias=False, mlp_bias=False,
            decoder_bias=True, classifier_pooling="mean", classifier_bias=False,
            classifier_activation="gelu", reference_compile=False, tie_word_embeddings=True, **kw)
    raise ValueError(arch)


def head_modules(model):
    """The task head's final projection (the classifier / qa_outputs)."""
    for name in ("classifier", "qa_outputs"):
        m = getattr(model, name, None)
        if isinstance(m, torch.nn.Linear):
            return m
        if m is not None and isinstance(getattr(m, "out_proj", None), torch.nn.Linear):
            return m.out_proj  # RoBERTa's classification head
    return None


def calibration_texts():
    """The training text split into sentences and clauses, short like the cases' inputs."""
    text = " ".join(line.strip() for line in train_lines())
    return [t for t in re.split(r"(?<=[.?!;:,])\s+", text) if t]


def calibrate_head(model, tok, spread, bias0, cls_boost=0.0):
    """Rescale the head's final projection so that each output varies over the training
    text's sentences (tokens, or pooled sequences) with standard deviation `spread` around
    `bias0`: random hidden states share a large common part, which would otherwise make one
    label win everywhere."""
    proj = head_modules(model)
    feats, firsts = [], []

    def grab(module, inp, out):
        feats.append(inp[0].reshape(-1, inp[0].shape[-1]).detach().clone())
        if inp[0].dim() == 3:
            firsts.append(inp[0][:, 0].detach().clone())

    hook = proj.register_forward_hook(grab)
    with torch.no_grad():
        for text in calibration_texts():
            model(**tok(text, truncation=True, return_tensors="pt"))
        hook.remove()
        x = torch.cat(feats)
        mean = x.mean(0)
        std = ((x - mean) @ proj.weight.T).std(0)
        proj.weight.mul_((spread / std)[:, None])
        proj.bias.copy_(bias0 - proj.weight @ mean)
        if cls_boost:
            # Raise every output at the first token ([CLS] / <s>) by about cls_boost: QA's
            # null answer (handle_impossible_answer) then competes with the spans.
            first = torch.cat(firsts).mean(0) - mean
            proj.weight.add_(cls_boost * first[None, :] / first.dot(first))


def build_model(arch, head, tok, seed, labels, problem_type=None):
    cfg = make_config(arch, tok, labels, problem_type)
    cls = getattr(transformers, PREFIX[arch] + HEAD_CLASS[head])
    torch.manual_seed(seed)
    model = cls(cfg)
    randomize(model, seed)
    model.eval()
    g = torch.Generator().manual_seed(seed + 7)
    if head == "sequence-classification":
        calibrate_head(model, tok, 1.5, torch.randn(cfg.num_labels, generator=g) * 0.5)
    if head == "token-classification":
        # "O" favoured, as in a real tagger; every entity label still wins on some tokens.
        bias0 = torch.randn(cfg.num_labels, generator=g) * 0.3
        bias0[0] += 1.5
        calibrate_head(model, tok, 1.5, bias0)
    if head == "question-answering":
        calibrate_head(model, tok, 3.0, torch.zeros(2), cls_boost=3.0)
    return model


# --- cases -------------------------------------------------------------------------------

LONG_CONTEXT = (
    "The market opens early on Saturday, before the river fog has lifted from the square. "
    "Farmers unload crates of apples, pears, cabbages and onions; the baker stacks warm loaves "
    "on a long wooden table, and the cheese seller cuts thin slices for anyone who asks. "
    "At nine o'clock the bell in the old tower rings, and the town band plays three songs. "
    "The bridge has seven arches. In summer the river is low and green, and swallows fly "
    "under the arches to catch insects above the water. The station is up the hill, past the "
    "mill and the school, and the museum opens at ten, except on Mondays."
)
PUNCT = "\"Fresh bread!\" shouted the BAKER at 9:30 \u2014 Caf\u00e9: honey 4.75?"
LONG_TAGGED = (
    "Farmers from the river road unload crates of apples and pears, the baker stacks warm "
    "loaves on a long wooden table, the cheese seller cuts thin slices, and children run "
    "between the stalls counting coins while the town band plays three songs near the old tower."
)


def text_classification_cases(model):
    pair = {"text": "Where is the station?", "text_pair": "The station is up the hill, past the mill."}
    pair2 = {"text": "Is the museum open?", "text_pair": "The museum opens at ten, except on Mondays."}
    if model == "bert-multi-label":
        return [
            ("The baker stacks warm loaves on a long table.", {}),
            ("The town band plays three songs.", {"top_k": None}),
            ("Cloudy, light wind from the west, twelve degrees.", {"top_k": 2}),
            (["Honey is best.", "The river is low and green."], {}),
            (pair, {"top_k": None}),
            (PUNCT, {"top_k": 3, "function_to_apply": "softmax"}),
            ("The bell in the old tower rings.", {"top_k": 1, "function_to_apply": "none"}),
        ]
    return [
        ("The market opens early on Saturday.", {}),
        ("The bridge has seven arches.", {"top_k": None}),
        ("Children run between the stalls, counting coins.", {"top_k": 1}),
        ("In summer the river is low and green.", {"top_k": 3}),
        ("The cheese seller cuts thin slices.", {"top_k": None, "function_to_apply": "none"}),
        ("The baker stacks warm loaves.", {"top_k": 2, "function_to_apply": "sigmoid"}),
        (pair, {}),
        (pair, {"top_k": None}),
        (["The mayor says it is older than the bridge.", "Nobody remembers when the market began."], {}),
        (["A small dog sleeps in his open case.", "The farmers pack the empty crates."], {"top_k": 2}),
        ([pair, pair2], {"top_k": 1}),
        (PUNCT, {"top_k": None, "function_to_apply": "softmax"}),
    ]


def token_classification_cases():
    text = "The baker sells warm bread to the farmers at the market by the old bridge."
    text2 = "Students from the university sell second-hand books, novels and old dictionaries."
    return [
        (text, {}),
        (text, {"ignore_labels": []}),
        (text, {"aggregation_strategy": "simple"}),
        (text2, {"aggregation_strategy": "first"}),
        (text2, {"aggregation_strategy": "average"}),
        (text2, {"aggregation_strategy": "max"}),
        (text2, {"aggregation_strategy": "none", "ignore_labels": []}),
        ([text, "Swallows fly under the seven arches of the bridge."], {"aggregation_strategy": "simple"}),
        (PUNCT, {"aggregation_strategy": "none", "ignore_labels": []}),
        (PUNCT, {"aggregation_strategy": "first", "ignore_labels": []}),
        ("The cheese seller cuts thin slices for anyone who asks.", {"aggregation_strategy": "average", "ignore_labels": []}),
        (LONG_TAGGED, {"aggregation_strategy": "simple"}),
    ]


def question_answering_cases():
    short = {"question": "Where is the station?",
             "context": "The station is up the hill, past the mill and the school."}
    long_q = {"question": "When does the museum open?", "context": LONG_CONTEXT}
    long_q2 = {"question": "What does the baker stack?", "context": LONG_CONTEXT}
    punct = {"question": "How much is honey?",
             "context": "Prices on the board: apples 1.20, pears 1.50, HONEY 4.75 \u2014 Caf\u00e9 "
                        "\"Fresh bread!\" 2.10, eggs 3.00 a dozen."}
    return [
        (short, {}),
        (short, {"top_k": 3}),
        (short, {"max_answer_len": 2, "top_k": 2}),
        (short, {"handle_impossible_answer": True}),
        (long_q, {}),
        (long_q, {"doc_stride": 16, "max_seq_len": 64, "top_k": 3}),
        (long_q2, {"doc_stride": 16, "max_seq_len": 64, "max_answer_len": 3, "top_k": 3}),
        (long_q2, {"handle_impossible_answer": True, "top_k": 2, "doc_stride": 16}),
        (long_q, {"max_seq_len": 48, "doc_stride": 16, "max_answer_len": 4}),
        (punct, {"top_k": 2}),
        ({"question": "Where is the station?", "context": "The station is up the hill."},
         {"handle_impossible_answer": True, "top_k": 3}),
    ]


def fill_mask_cases(mask):
    return [
        (f"The baker sells warm {mask}.", {}),
        (f"The {mask} has seven arches.", {"top_k": 2}),
        (f"The {mask} opens early on {mask}.", {}),
        (f"Children run between the {mask}, counting {mask}.", {"top_k": 3}),
        (f"The baker stacks warm {mask} on a long table.", {"targets": ["bread", "apples", "river", "water"]}),
        (f"The {mask} plays three songs.", {"targets": ["band", "cobblestones", "museum"], "top_k": 2}),
        (f"The river is low and {mask}.", {"targets": "green"}),
        ([f"The bell in the old {mask} rings.", f"It's {mask} o'clock!"], {"top_k": 2}),
        (f"\"Fresh {mask}!\" shouted the BAKER at 9:30 \u2014 Caf\u00e9.", {"top_k": 3}),
        (f"Prices: apples 1.20, {mask} 4.75, bread 2.10.", {"top_k": 1}),
    ]


def zero_shot_cases():
    text = "The baker stacks warm loaves on a long wooden table."
    return [
        (text, {"candidate_labels": ["bread", "river", "music"]}),
        (text, {"candidate_labels": ["bread", "river", "music"], "multi_label": True}),
        ("The bridge has seven arches.", {"candidate_labels": ["market"]}),
        ("The bridge has seven arches.", {"candidate_labels": ["market", "river", "bridge", "weather"]}),
        ("The town band plays three songs.", {"candidate_labels": ["music", "food"],
                                              "hypothesis_template": "The text is about {}."}),
        (["The river is low and green.", "The museum opens at ten."], {"candidate_labels": ["water", "time", "books"]}),
        ("Cloudy, light wind from the west.", {"candidate_labels": ["weather", "food", "travel", "music"],
                                               "multi_label": False, "hypothesis_template": "It is {}."}),
        (PUNCT, {"candidate_labels": ["food", "weather"], "multi_label": True}),
        ("Where is the station?", {"candidate_labels": ["travel", "bread", "coins", "songs"], "multi_label": True}),
    ]


# --- margin checks -----------------------------------------------------------------------

class Ambiguous(Exception):
    pass


def check_ranked(values, what, logits=False):
    """Consecutive values of a descending list differ by more than REL_MARGIN relative."""
    values = [float(v) for v in values]
    for a, b in zip(values, values[1:]):
        scale = max(abs(a), abs(b), 1.0 if logits else 0.0)
        if not a - b > REL_MARGIN * scale:
            raise Ambiguous(f"{what}: {a} vs {b}")


def check_margin_probs(probs, what):
    """argmax of a probability vector beats the runner-up by LOGIT_MARGIN in log space."""
    p = np.sort(np.asarray(probs, dtype=np.float64))[::-1]
    if not np.log(p[0]) - np.log(p[1]) > LOGIT_MARGIN:
        raise Ambiguous(f"{what}: {p[0]} vs {p[1]}")


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.entity_tags = set()
        self.o_tokens = 0
        self.multi_token_groups = 0
        self.multi_word_groups = 0
        self.multi_token_words = 0
        self.qa_chunks = 0


STATS = Stats()


def instrument_token_classification(pipe):
    orig_gather, orig_word, orig_group = pipe.gather_pre_entities, pipe.aggregate_word, pipe.group_sub_entities
    state = {"words": False}

    def gather(*args, **kwargs):
        pre = orig_gather(*args, **kwargs)
        for e in pre:
            check_margin_probs(e["scores"], f"token {e['word']!r}")
            label = pipe.model.config.id2label[int(e["scores"].argmax())]
            if label == "O":
                STATS.o_tokens += 1
            else:
                STATS.entity_tags.add(label.split("-", 1)[1])
        return pre

    def aggregate_word(entities, strategy):
        state["words"] = True
        if len(entities) > 1:
            STATS.multi_token_words += 1
            if strategy.value == "max":
                check_ranked(sorted((e["scores"].max() for e in entities), reverse=True), "max word token")
            if strategy.value == "average":
                check_margin_probs(np.nanmean(np.stack([e["scores"] for e in entities]), axis=0), "average word")
        return orig_word(entities, strategy)

    def group(entities):
        if len(entities) > 1:
            if state["words"]:
                STATS.multi_word_groups += 1
            else:
                STATS.multi_token_groups += 1
        return orig_group(entities)

    def reset_words(*args, **kwargs):
        state["words"] = False
        return orig_aggregate(*args, **kwargs)

    orig_aggregate = pipe.aggregate
    pipe.gather_pre_entities = gather
    pipe.aggregate_word = aggregate_word
    pipe.group_sub_entities = group
    pipe.aggregate = reset_words


def instrument_question_answering(pipe):
    """Checks every chunk's span candidates at the cut-off the pipeline uses (top_k * 2 + 10
    spans per chunk), and the final answers' order including the first one left out."""
    orig_post = pipe.postprocess

    def post(model_outputs, top_k=1, handle_impossible_answer=False, max_answer_len=15, align_to_words=True):
        result = orig_post(model_outputs, top_k=top_k, handle_impossible_answer=handle_impossible_answer,
                           max_answer_len=max_answer_len, align_to_words=align_to_words)
        pre_topk = top_k * 2 + 10
        orig_select = qa_module.select_starts_ends
        orig_decode = qa_module.decode_spans

        def decode(start, end, topk, max_len, undesired):
            outer = np.matmul(start[..., :, None], end[..., None, :]).reshape(-1, start.shape[-1], end.shape[-1])
            flat = np.sort(np.tril(np.triu(outer), max_len - 1).ravel())[::-1]
            assert topk == pre_topk
            if not flat[topk] > 0:
                raise Ambiguous(f"fewer than {topk + 1} candidate spans with a positive score")
            check_ranked(flat[topk - 1: topk + 1], "span candidates at the cut-off")
            STATS.qa_chunks += 1
            return orig_decode(start, end, topk, max_len, undesired)

        def select(*args):
            args = list(args)
            args[5] = pre_topk
            return orig_select(*args)

        qa_module.select_starts_ends, qa_module.decode_spans = select, decode
        try:
            full = orig_post(model_outputs, top_k=10**6, handle_impossible_answer=handle_impossible_answer,
                             max_answer_len=max_answer_len, align_to_words=align_to_words)
        finally:
            qa_module.select_starts_ends, qa_module.decode_spans = orig_select, orig_decode
        full = full if isinstance(full, list) else [full]
        shown = result if isinstance(result, list) else [result]
        assert full[: len(shown)] == shown, (full, shown)
        check_ranked([a["score"] for a in full[: len(shown) + 1]], "answers")
        return result

    pipe.postprocess = post


# --- running the pipelines ---------------------------------------------------------------

def plain(obj):
    """Pipeline output as plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if isinstance(obj, (np.integer,)) or (isinstance(obj, int) and not isinstance(obj, bool)):
        return int(obj)
    if isinstance(obj, torch.Tensor):
        return plain(obj.tolist())
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    raise TypeError(type(obj))


def make_pipe(task, folder):
    pipe = pipeline(task, model=str(folder), tokenizer=str(folder), device="cpu",
                    model_kwargs={"attn_implementation": "eager"})
    assert pipe.model.dtype == torch.float32
    assert pipe.tokenizer.is_fast
    return pipe


def run_text_classification(pipe, inp, options):
    out = pipe(inp, **options)
    # The full ranking with the same function, to check every margin (also past top_k).
    full_opts = {k: v for k, v in options.items() if k == "function_to_apply"}
    full = pipe(inp, top_k=None, **full_opts)
    rows = full if isinstance(inp, list) else [full]
    logits = options.get("function_to_apply") == "none"
    for row in rows:
        check_ranked([r["score"] for r in row], "labels", logits=logits)
    return out


def run_fill_mask(pipe, inp, options):
    out = pipe(inp, **options)
    k = options.get("top_k", 5)
    more = pipe(inp, **{**options, "top_k": min(k + 1, len(pipe.tokenizer))})
    rows = more if isinstance(inp, list) else [more]
    for row in rows:
        per_mask = row if isinstance(row[0], list) else [row]
        for m in per_mask:
            check_ranked([r["score"] for r in m], "fill-mask candidates")
    return out


def run_zero_shot(pipe, inp, options):
    out = pipe(inp, **options)
    for row in (out if isinstance(out, list) else [out]):
        check_ranked(row["scores"], "zero-shot labels")
    return out


def run_case(task, pipe, inp, options):
    if task == "text-classification":
        return run_text_classification(pipe, inp, options)
    if task == "token-classification":
        return pipe(inp, **options)
    if task == "question-answering":
        return pipe(question=inp["question"], context=inp["context"], **options)
    if task == "fill-mask":
        return run_fill_mask(pipe, inp, options)
    if task == "zero-shot-classification":
        return run_zero_shot(pipe, inp, options)
    raise ValueError(task)


def cases_for(arch, name, head, tok):
    if name == "bert-multi-label":
        return [("text-classification", c) for c in text_classification_cases(name)]
    if head == "sequence-classification":
        return ([("text-classification", c) for c in text_classification_cases(name)]
                + [("zero-shot-classification", c) for c in zero_shot_cases()])
    if head == "token-classification":
        return [("token-classification", c) for c in token_classification_cases()]
    if head == "question-answering":
        return [("question-answering", c) for c in question_answering_cases()]
    if head == "masked-lm":
        return [("fill-mask", c) for c in fill_mask_cases(tok.mask_token)]
    raise ValueError(head)


def check_inputs(arch, head, tok):
    """Inputs fit where the pipeline does not truncate; long ones are long enough."""
    n = len(tok(LONG_CONTEXT)["input_ids"])
    assert n >= 150, (arch, "long QA context", n)
    if head == "token-classification":
        assert len(tok(LONG_TAGGED)["input_ids"]) > MAX_LEN, (arch, "long tagged text")


def check_entities(name):
    s = STATS
    problems = []
    if len(s.entity_tags) < 3:
        problems.append(f"entity tags {sorted(s.entity_tags)}")
    if s.o_tokens < 5:
        problems.append(f"{s.o_tokens} O tokens")
    if s.multi_token_groups < 2:
        problems.append(f"{s.multi_token_groups} multi-token groups (simple)")
    if s.multi_word_groups < 2:
        problems.append(f"{s.multi_word_groups} multi-word groups (first/average/max)")
    if s.multi_token_words < 2:
        problems.append(f"{s.multi_token_words} multi-token words")
    if problems:
        raise Ambiguous(f"{name}: too few entities: " + ", ".join(problems))


def encoder_check(model, tok):
    text = "The bridge has seven arches."
    enc = tok(text, return_tensors="pt")
    with torch.inference_mode():
        hs = model.base_model(**enc).last_hidden_state[0]
    rec = {"text": text, "token_ids": enc["input_ids"][0].tolist(), "last_hidden_state": hs.numpy()}
    cfg = model.config
    if cfg.model_type == "modernbert":
        # The sliding window (local_attention // 2 = 4 tokens each side, on layers whose
        # index is not a multiple of global_attn_every_n_layers) must change this output.
        assert len(rec["token_ids"]) > cfg.local_attention // 2 + 1
        other = type(model.base_model).from_pretrained(
            str(model.name_or_path), attn_implementation="eager", global_attn_every_n_layers=1).eval()
        with torch.inference_mode():
            diff = float((other(**enc).last_hidden_state[0] - hs).abs().max())
        assert diff > 1e-2, diff
        rec["all_layers_global_max_abs_diff"] = diff
    if cfg.model_type == "deberta-v2":
        # Relative positions beyond position_buckets // 2 are log-bucketed.
        assert len(rec["token_ids"]) - 1 > cfg.position_buckets // 2
    return rec


def make_one(arch, head, name, tok_dir, seed0, labels, problem_type=None):
    """Build, save, reload and run; retries with the next seed while a check fails."""
    folder = OUT_DIR / name
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    check_inputs(arch, head, tok)
    last = None
    for attempt in range(MAX_ATTEMPTS):
        seed = seed0 + attempt
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(tok_dir, folder)
        model = build_model(arch, head, tok, seed, labels, problem_type)
        model.save_pretrained(str(folder))
        STATS.reset()
        try:
            cases = []
            pipes = {}
            for task, (inp, options) in cases_for(arch, name, head, tok):
                if task not in pipes:
                    pipes[task] = make_pipe(task, folder)
                    if task == "token-classification":
                        instrument_token_classification(pipes[task])
                    if task == "question-answering":
                        instrument_question_answering(pipes[task])
                out = run_case(task, pipes[task], inp, options)
                cases.append({"task": task, "model": name, "input": inp, "options": options,
                              "output": plain(out)})
            if head == "token-classification":
                check_entities(name)
            if head == "question-answering":
                assert STATS.qa_chunks > 0
                if not any(a.get("answer") == "" for c in cases
                           for a in (c["output"] if isinstance(c["output"], list) else [c["output"]])):
                    raise Ambiguous("the null answer (handle_impossible_answer) is never shown")
        except Ambiguous as e:
            last = e
            print(f"  {name}: seed {seed} rejected: {e}")
            continue
        loaded = AUTO[head].from_pretrained(str(folder), attn_implementation="eager").eval()
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["config.json", "model.safetensors", "special_tokens_map.json",
                         "tokenizer.json", "tokenizer_config.json"], files
        rec = {"architecture": type(loaded).__name__, "folder": folder.relative_to(ROOT).as_posix(),
               "seed": seed, "encoder_check": encoder_check(loaded, tok)}
        return rec, cases
    raise SystemExit(f"{name}: no seed in {MAX_ATTEMPTS} passed the checks; last: {last}")


def folder_size(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    tmp = OUT_DIR / "_tokenizers"

    models_out, cases_out = {}, []
    for ai, arch in enumerate(ARCHS):
        raw = TRAINERS[arch]()
        assert TRAINERS[arch]().to_str() == raw.to_str(), f"{arch} tokenizer training is not deterministic"
        tok_dir = tmp / arch
        hf_tokenizer(arch, raw).save_pretrained(str(tok_dir), legacy_format=False)
        tok = AutoTokenizer.from_pretrained(str(tok_dir))
        assert tok.is_fast and tok.model_max_length == MAX_LEN and tok.mask_token is not None
        assert tok.backend_tokenizer.to_str() == raw.to_str(), arch

        jobs = [(head, f"{arch}-{head}", NLI if head == "sequence-classification" else
                 {i: l for i, l in enumerate(BIO)} if head == "token-classification" else None, None)
                for head in TASK_HEADS]
        if arch == "bert":
            jobs.append(("sequence-classification", "bert-multi-label", MULTI, "multi_label_classification"))
        for hi, (head, name, labels, problem_type) in enumerate(jobs):
            seed0 = SEED + 1000 * ai + 100 * hi
            rec, cases = make_one(arch, head, name, tok_dir, seed0, labels, problem_type)
            models_out[name] = rec
            cases_out.extend(cases)
            print(f"{name}: seed {rec['seed']}, {len(cases)} cases, {folder_size(OUT_DIR / name)} bytes")
    shutil.rmtree(tmp)

    fixture = {
        "transformers_version": transformers.__version__,
        "tolerance": TOLERANCE,
        "note": (
            "Made by tests/reference/make_tiny_task_models.py with transformers 4.57.6 "
            f"(torch {torch.__version__}). Each case: output = pipeline(task, model=folder, "
            "tokenizer=folder)(input, **options) (question-answering: pipe(question=input.question, "
            "context=input.context, **options)), numpy values made plain JSON. encoder_check: "
            "model.base_model(**tokenizer(text)).last_hidden_state[0] (float32, shortest round-"
            "tripping decimals). Margins checked: ranked scores differ by > 1e-3 relative, "
            "token argmaxes by > 1e-3 in logits, QA span candidates at each chunk's cut-off."
        ),
        "models": models_out,
        "cases": cases_out,
    }
    text = dump(fixture) + "\n"
    json.loads(text)
    OUT_JSON.write_text(text, encoding="utf-8")
    total = len(text.encode()) + folder_size(OUT_DIR)
    assert total < MAX_TOTAL_BYTES, total
    per = {}
    for c in cases_out:
        key = (c["task"], c["model"].split("-sequence")[0].split("-token")[0].split("-question")[0].split("-masked")[0])
        per[key] = per.get(key, 0) + 1
    print(f"wrote {OUT_JSON.relative_to(ROOT)} ({len(text.encode())} bytes); total {total} bytes")
    for (task, arch), n in sorted(per.items()):
        print(f"  {task:26s} {arch:12s} {n}")


if __name__ == "__main__":
    sys.exit(main())
