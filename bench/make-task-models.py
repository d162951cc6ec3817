"""Makes the BERT-base-sized random task models of the task benchmarks (bench/tasks.sh).

Run once, by hand, in the reference environment (see bench/README.md):
    scripts/fetch-models.sh minilm && scripts/pyref-env.sh
    .cache/pyref-venv/bin/python bench/make-task-models.py

Writes, under .cache/bench-models/ (git-ignored: weights are never committed):
    bert-base-sequence-classification/   BertForSequenceClassification, labels NEGATIVE/POSITIVE
    bert-base-question-answering/        BertForQuestionAnswering
each with bert-base-uncased's shapes (hidden 768, 12 layers, 12 heads, intermediate 3072, vocab
30522, 512 positions), random weights from a seeded generator (transformers' own
initialization, std 0.02), bert-base-uncased's WordPiece tokenizer (all-MiniLM-L6-v2 ships that
same vocabulary; its tokenizer.json's padding and truncation to 128 are removed, as
bert-base-uncased's has none), and:
    config.json, model.safetensors (float32)                 what webformers loads
    onnx/model.onnx (fp32, opset 14)                         Transformers.js dtype 'fp32'
    onnx/model_quantized.onnx (dynamic int8)                 Transformers.js dtype 'q8' (its
                                                             default on 'wasm')
Transformers.js 4.3.1 looks for `onnx/model{suffix}.onnx` with suffix '' for fp32 and
'_quantized' for q8 (src/utils/dtypes.js, DEFAULT_DTYPE_SUFFIX_MAPPING). The q8 file is made as
Transformers.js's own conversion script makes it for BERT (scripts/convert.py + quantize.py):
onnxruntime's dynamic quantization, signed int8 weights (QInt8: no Conv in the graph),
per-channel scales with reduce_range (its defaults for every model type outside its
decoder/audio list), MatMulConstBOnly. Both files are checked against PyTorch here; bench/
tasks.sh then checks webformers against Transformers.js on them.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering, BertForSequenceClassification

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_SRC = ROOT / ".cache" / "models" / "all-MiniLM-L6-v2"
DEST = ROOT / ".cache" / "bench-models"
OPSET = 14
SEED = 20261204
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]

# bert-base-uncased's config.json, dropout off (inference only).
BERT_BASE = dict(
    vocab_size=30522,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=512,
    type_vocab_size=2,
    initializer_range=0.02,
    layer_norm_eps=1e-12,
    pad_token_id=0,
)
# bert-base-uncased's tokenizer_config.json (with the special tokens spelled out).
TOKENIZER_CONFIG = {
    "do_lower_case": True,
    "model_max_length": 512,
    "tokenizer_class": "BertTokenizer",
    "clean_up_tokenization_spaces": True,
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
SPECIAL_TOKENS = {k: TOKENIZER_CONFIG[k] for k in ["unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]}

MODELS = {
    "bert-base-sequence-classification": dict(
        cls=BertForSequenceClassification,
        config=dict(id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}),
        outputs=["logits"],
    ),
    "bert-base-question-answering": dict(cls=BertForQuestionAnswering, config={}, outputs=["start_logits", "end_logits"]),
}

# A padded batch of different lengths (catches shapes frozen by the tracer), pairs included.
CHECK_TEXTS = [
    ("Hello world", None),
    ("a", None),
    ("The quick brown fox jumps over the lazy dog, twice.", None),
    ("Where is the library?", "The library is at the heart of the building. " * 20),
]


class ForExport(torch.nn.Module):
    """The task model with the classic additive attention mask built here.

    As in bench/export-onnx.py: transformers 5 builds its masks with code the TorchScript tracer
    freezes to the sample's shapes, so the mask is made explicitly, (1 - mask) * -10000 added to
    the scores, as transformers 4 (and the exports Transformers.js publishes) did. The heads are
    transformers' own modules, applied as their forward applies them.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        bert = self.model.bert
        h = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * -10000.0
        seq = bert.encoder(h, attention_mask=additive).last_hidden_state
        if isinstance(self.model, BertForSequenceClassification):
            return self.model.classifier(bert.pooler(seq))
        start, end = self.model.qa_outputs(seq).split(1, dim=-1)
        return start.squeeze(-1), end.squeeze(-1)


def write_tokenizer(out: Path):
    """bert-base-uncased's tokenizer: MiniLM's tokenizer.json (the same vocabulary and
    normalizer) without its padding and truncation to 128."""
    tok = json.loads((TOKENIZER_SRC / "tokenizer.json").read_text())
    with open(TOKENIZER_SRC / "tokenizer_config.json") as f:
        src_config = json.load(f)
    assert src_config["do_lower_case"] and tok["model"]["type"] == "WordPiece" and len(tok["model"]["vocab"]) == 30522
    tok["truncation"] = None
    tok["padding"] = None
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    (out / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2) + "\n")


def make(name: str, spec: dict, out: Path):
    config = BertConfig(**BERT_BASE, **spec["config"])
    config.architectures = [spec["cls"].__name__]
    torch.manual_seed(SEED)
    model = spec["cls"](config).eval()
    model.save_pretrained(str(out), safe_serialization=True)
    write_tokenizer(out)
    tok = AutoTokenizer.from_pretrained(str(out))

    sample = tok(["Hello world", "a longer sample sentence"], padding=True, return_tensors="pt")
    args = tuple(sample[k] for k in INPUT_NAMES)
    axes = {0: "batch_size", 1: "sequence_length"}
    fp32 = out / "onnx" / "model.onnx"
    fp32.parent.mkdir()
    with torch.inference_mode():
        torch.onnx.export(
            ForExport(model).eval(),
            args,
            str(fp32),
            input_names=INPUT_NAMES,
            output_names=spec["outputs"],
            dynamic_axes={k: axes for k in INPUT_NAMES} | {k: {0: "batch_size"} if k == "logits" else axes for k in spec["outputs"]},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: one self-contained file, ORT's fusions apply
        )
    onnx.checker.check_model(str(fp32))
    q8 = fp32.with_name("model_quantized.onnx")
    quantize_dynamic(
        str(fp32),
        str(q8),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"MatMulConstBOnly": True, "EnableSubgraph": True},
    )
    check(model, tok, fp32, spec["outputs"], atol=1e-4)
    # int8 is approximate: this bound catches a broken graph, not drift.
    check(model, tok, q8, spec["outputs"], atol=0.5)


def check(model, tok, path: Path, outputs, atol: float):
    """ORT on the exported file against PyTorch (the task model's own forward) on a padded batch."""
    texts = [t for t, _ in CHECK_TEXTS]
    pairs = [p for _, p in CHECK_TEXTS]
    # A batch of texts, then of text pairs: the two ways the tasks call the model.
    for batch in [tok(texts, padding=True, return_tensors="np"), tok([texts[-1]] * 2, [pairs[-1], "short"], padding=True, return_tensors="np")]:
        feed = {k: batch[k].astype(np.int64) for k in INPUT_NAMES}
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(outputs, feed)
        with torch.inference_mode():
            ref = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
        worst = 0.0
        for name, g in zip(outputs, got):
            w = getattr(ref, name).numpy()
            if name != "logits":  # per token: only real tokens count
                g, w = g * feed["attention_mask"], w * feed["attention_mask"]
            worst = max(worst, float(np.abs(g - w).max()))
        print(f"{path.name}: max |ORT - torch| {worst:.2e} (bound {atol})")
        if worst > atol:
            sys.exit(f"{path} does not match PyTorch")


def main():
    torch.set_num_threads(2)
    if not (TOKENIZER_SRC / "tokenizer.json").exists():
        sys.exit(f"missing {TOKENIZER_SRC}: run scripts/fetch-models.sh minilm first")
    DEST.mkdir(parents=True, exist_ok=True)
    for name, spec in MODELS.items():
        # Built in a sibling temp folder and renamed at the end, so an interrupted run never
        # leaves a half-written model that looks complete.
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=DEST))
        try:
            make(name, spec, tmp)
            final = DEST / name
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in sorted((DEST / name).rglob("*")):
            if p.is_file():
                print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
