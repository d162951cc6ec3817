"""Makes tiny random CLIP and SigLIP models and the answers of Python transformers' pipelines on
them, for tests/vision_tasks.rs.

Outputs (under tests/fixtures/vision/):
    tiny-clip/     CLIPModel: vision tower (patch 8 on 32x32, class token, pre- and post-layernorm,
                   quick-GELU), text tower (causal, pooled at the EOS token by the legacy
                   `eos_token_id: 2` argmax rule, as Xenova/clip-vit-base-patch32's config has it),
                   both projections, logit_scale; CLIP's tokenizer (NFC + whitespace + lowercase
                   normalizer, CLIP's Split regex + ByteLevel, BPE with `</w>` word ends, trained
                   here) saved through transformers' CLIPTokenizer; CLIPImageProcessor config
    tiny-siglip/   SiglipModel: vision tower with the attention-pooling head, text tower pooled
                   from the last token through `head`, logit_scale and logit_bias, tanh GELU; a
                   Unigram tokenizer (NFKC, Metaspace) and a `$A </s>` template (pad = eos = </s>),
                   model_max_length 64; SiglipImageProcessor config
    clip-family-reference.json   the cases: zero-shot-image-classification (several label sets
                   and templates, single images and arrays), image-feature-extraction (vision
                   tower hidden states, and the pooled image embedding), feature-extraction (the
                   projected text embedding)

How each reference is computed, and where it follows transformers.js 4.3.1 rather than Python:
  - zero-shot-image-classification: Python's pipeline() (the PIL image processors: there is no
    torchvision here). transformers.js's default hypothesis_template is "This is a photo of {}"
    (Python's ends with a period), so the case without a template passes transformers.js's
    default to Python. For SigLIP, both pad the texts to max_length (64), but transformers.js's
    ONNX SigLIP takes no attention_mask (optimum exports none), so the padding is attended to;
    Python's tokenizer is told to return input_ids only (model_input_names) to compute that.
  - image-feature-extraction: Python's pipeline cannot run a dual-encoder checkpoint for this
    task (CLIPModel.forward needs input_ids), so the reference is computed from the model:
    without pool, the vision tower's last_hidden_state (CLIP: before post_layernorm; SigLIP:
    after it, as the towers return them); with pool, get_image_features (CLIP: post-layernormed
    class token through visual_projection; SigLIP: the attention-pooling head's output).
  - feature-extraction: get_text_features on the texts tokenized as zero-shot-image-
    classification tokenizes them (CLIP: padding=True with the attention mask; SigLIP: padded
    to 64, no mask); with normalize, divided by the L2 norm.

Run once, by hand, in the reference environment:
    /work/main/.cache/pyref-venv/bin/python tests/reference/make_tiny_vision_clip_family.py
Weights come from a seeded torch.Generator; CPU, float32, eager attention, one thread.
"""

import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"

import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from tokenizers import Regex, normalizers, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    CLIPConfig,
    CLIPModel,
    CLIPTokenizer,
    PreTrainedTokenizerFast,
    SiglipConfig,
    SiglipModel,
    pipeline,
)
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil  # noqa: E402
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_json import dump  # noqa: E402
from make_tiny_encoders import TRAIN_TEXT, train_unigram  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "vision"
IMAGES = ROOT / "tests" / "fixtures" / "images"
SEED = 2468
TOLERANCE = 1e-4
MAX_FOLDER_BYTES = 300_000

TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
VISION = dict(image_size=32, patch_size=8, num_channels=3, **TOWER)


def train_lines():
    return TRAIN_TEXT.splitlines(keepends=True)


# --- tokenizers --------------------------------------------------------------------------

def train_clip_bpe(vocab_size=400):
    """CLIP's tokenizer layout (as transformers' CLIPTokenizer builds it: NFC + whitespace +
    lowercase, CLIP's Split regex, ByteLevel, BPE with `</w>` word ends), the BPE learned here
    by counting (tokenizers' trainer breaks ties in hash-map order, so its merges vary from run
    to run): the byte alphabet, the word-final characters seen, then the most frequent pair
    merged at each step, ties to the smallest pair. <|startoftext|> and <|endoftext|> are the
    last two ids, as in CLIP's vocabulary."""
    shell = CLIPTokenizer(vocab={"<|startoftext|>": 0, "<|endoftext|>": 1}, merges=[])
    backend = shell.backend_tokenizer
    words = {}
    for line in train_lines():
        normalized = backend.normalizer.normalize_str(line)
        for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalized):
            words[w] = words.get(w, 0) + 1
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    finals = sorted({w[-1] + "</w>" for w in words})
    vocab = {t: i for i, t in enumerate(alphabet + finals)}
    split = {w: list(w[:-1]) + [w[-1] + "</w>"] for w in words}
    merges = []
    while len(vocab) < vocab_size - 2:
        pairs = {}
        for w, symbols in split.items():
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + words[w]
        if not pairs:
            break
        best = min(pairs, key=lambda ab: (-pairs[ab], ab))
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        for w, symbols in split.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            split[w] = out
    assert len(vocab) == vocab_size - 2, len(vocab)
    n = len(vocab)
    vocab["<|startoftext|>"] = n
    vocab["<|endoftext|>"] = n + 1
    # transformers' CLIPTokenizer builds the rest (normalizer, pre-tokenizer, RobertaProcessing).
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def train_siglip_unigram():
    """A SentencePiece-like Unigram tokenizer (NFKC, Metaspace), SigLIP's specials
    (<pad> 0, </s> 1, <unk> 2), `$A </s>`; pad and eos are both </s>, as in SigLIP."""
    from tokenizers import processors
    normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok = train_unigram(["<pad>", "</s>", "<unk>"], "<unk>", 255, normalizer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=64, pad_token="</s>", eos_token="</s>",
        unk_token="<unk>", padding_side="right", truncation_side="right",
        model_input_names=["input_ids"])


# --- models ------------------------------------------------------------------------------

def randomize(model, seed):
    """Deterministic weights: matrices and convolutions N(0, 1/fan_in), LayerNorm weights
    1 + N(0, 0.1^2), biases N(0, 0.1^2), embeddings, class embedding and probe N(0, 0.5^2);
    logit_scale ln 10 (scores neither flat nor one-hot), logit_bias -1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            module = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            if name == "logit_scale":
                p.fill_(math.log(10.0))
            elif name == "logit_bias":
                p.fill_(-1.0)
            elif isinstance(module, torch.nn.Embedding) or leaf in ("class_embedding", "probe"):
                p.copy_(noise * 0.5)
            elif isinstance(module, torch.nn.LayerNorm):
                p.copy_(noise * 0.1 + (1.0 if leaf == "weight" else 0.0))
            elif "bias" in leaf:
                p.copy_(noise * 0.1)
            elif p.dim() >= 2:
                p.copy_(noise / math.prod(p.shape[1:]) ** 0.5)
            else:
                raise ValueError(f"unhandled parameter {name} in {type(module).__name__}")


def save(folder, model, tok, processor, image_processor_type):
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    processor.save_pretrained(folder)
    # Saved as the checkpoints on the Hub name it (the PIL class adds a suffix).
    path = folder / "preprocessor_config.json"
    pc = json.loads(path.read_text())
    pc["image_processor_type"] = image_processor_type
    path.write_text(json.dumps(pc, indent=2, sort_keys=True) + "\n")
    for extra in ("chat_template.jinja", "generation_config.json"):
        (folder / extra).unlink(missing_ok=True)
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < MAX_FOLDER_BYTES, (folder, size)
    print(folder.name, size, "bytes:", sorted(f.name for f in folder.iterdir()))


def make_clip():
    tok = train_clip_bpe()
    vocab = len(tok)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=vocab, max_position_embeddings=77, hidden_act="quick_gelu",
                         layer_norm_eps=1e-5, bos_token_id=vocab - 2, eos_token_id=2, pad_token_id=1,
                         **TOWER),
        vision_config=dict(hidden_act="quick_gelu", layer_norm_eps=1e-5, **VISION),
        projection_dim=16, logit_scale_init_value=2.6592)
    model = CLIPModel(cfg)
    model.config.architectures = ["CLIPModel"]
    randomize(model, SEED)
    processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    save(OUT / "tiny-clip", model, tok, processor, "CLIPImageProcessor")


def make_siglip():
    tok = train_siglip_unigram()
    vocab = len(tok)
    cfg = SiglipConfig(
        text_config=dict(vocab_size=vocab, max_position_embeddings=64, hidden_act="gelu_pytorch_tanh",
                         layer_norm_eps=1e-6, pad_token_id=1, eos_token_id=1, bos_token_id=None,
                         projection_size=32, **TOWER),
        vision_config=dict(hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=True, **VISION))
    model = SiglipModel(cfg)
    model.config.architectures = ["SiglipModel"]
    randomize(model, SEED + 1)
    processor = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    save(OUT / "tiny-siglip", model, tok, processor, "SiglipImageProcessor")


# --- reference ---------------------------------------------------------------------------

def load(name):
    folder = OUT / name
    model = (CLIPModel if name == "tiny-clip" else SiglipModel).from_pretrained(folder, attn_implementation="eager").eval()
    if name == "tiny-clip":
        tok = CLIPTokenizer.from_pretrained(folder)
        processor = CLIPImageProcessorPil.from_pretrained(folder)
    else:
        tok = PreTrainedTokenizerFast.from_pretrained(folder)
        # transformers.js's SigLIP takes no attention_mask (see the module docstring).
        tok.model_input_names = ["input_ids"]
        processor = SiglipImageProcessorPil.from_pretrained(folder)
    return model, tok, processor


def pil(name):
    from transformers.image_utils import load_image
    return load_image(str(IMAGES / name))


def tensor_json(t):
    t = t.detach().to(torch.float32).numpy()
    return {"dims": list(t.shape), "data": t}


# No JPEG among the inputs: libjpeg (Pillow) and zune-jpeg (the engine's decoder) round
# differently (a few levels, measured in tests/images.rs), which moves these random models'
# scores by ~1e-3; the lossless formats decode to Pillow's exact pixels.
ZERO_SHOT = [
    # (images, labels, template or None: transformers.js's default)
    ("astronaut.webp", ["cat", "dog", "bridge"], None),
    ("coffee.png", ["a cup of coffee", "a rocket", "an astronaut", "a Cat"], "a photo of {}."),
    ("camera-gray.png", ["man", "camera", "tripod"], "{}"),
    ("rocket.bmp", ["space", "EARTH!"], "This is a photo of {}, probably."),
    (["strip-4000x300.png", "rocket.bmp", "astronaut.webp"], ["cat", "rocket", "astronaut", "bread"], "a picture of a {}"),
    (["coffee.png"], ["coffee"], None),
    (["one-pixel.png", "alpha.png", "two-frames.gif"], ["red", "green", "a gradient"], None),
]
TEXTS = ["a photo of a cat", "The bridge has SEVEN arches.", "", "apples, pears & honey: 4.75"]


def reference_cases(name):
    model, tok, processor = load(name)
    siglip = name == "tiny-siglip"
    clf = pipeline("zero-shot-image-classification", model=model, tokenizer=tok, image_processor=processor)
    cases = []
    for images, labels, template in ZERO_SHOT:
        inputs = [pil(i) for i in images] if isinstance(images, list) else pil(images)
        options = {"candidate_labels": labels}
        if template is not None:
            options["hypothesis_template"] = template
        out = clf(inputs, candidate_labels=labels, hypothesis_template=template or "This is a photo of {}")
        cases.append({"task": "zero-shot-image-classification", "model": name, "input": images,
                      "options": options, "output": out})

    for images in ["gradient.png", "rocket.bmp", ["astronaut.webp", "coffee.png"]]:
        batch = [pil(i) for i in images] if isinstance(images, list) else [pil(images)]
        pixel_values = processor(images=batch, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            hidden = model.vision_model(pixel_values=pixel_values).last_hidden_state
            pooled = model.get_image_features(pixel_values=pixel_values)
            pooled = pooled if isinstance(pooled, torch.Tensor) else pooled.pooler_output
        for options, out in [({}, hidden), ({"pool": True}, pooled)]:
            cases.append({"task": "image-feature-extraction", "model": name, "input": images,
                          "options": options, "output": tensor_json(out)})

    for texts in [TEXTS, TEXTS[0]]:
        batch = [texts] if isinstance(texts, str) else texts
        kwargs = dict(padding="max_length", max_length=64, truncation=True) if siglip else dict(padding=True)
        enc = tok(batch, return_tensors="pt", **kwargs)
        assert siglip == ("attention_mask" not in enc)
        with torch.no_grad():
            emb = model.get_text_features(**enc)
            emb = emb if isinstance(emb, torch.Tensor) else emb.pooler_output
        for options in [{}, {"normalize": True}]:
            out = emb / emb.norm(dim=-1, keepdim=True) if options else emb
            cases.append({"task": "feature-extraction", "model": name, "input": texts,
                          "options": options, "output": tensor_json(out)})
    return cases


def rounded(obj):
    """Scores as float32 values (what the engine and transformers.js compute in)."""
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    if isinstance(obj, float):
        return float(np.float32(obj))
    return obj


def nested(obj):
    if isinstance(obj, dict):
        return {k: nested(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nested(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    make_clip()
    make_siglip()
    cases = []
    for name in ["tiny-clip", "tiny-siglip"]:
        cases += reference_cases(name)
    reference = {
        "made_by": "tests/reference/make_tiny_vision_clip_family.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tolerance": TOLERANCE,
        "cases": rounded(nested(cases)),
    }
    path = OUT / "clip-family-reference.json"
    path.write_text(json.dumps(reference, indent=1) + "\n")
    print(path, len(cases), "cases")


if __name__ == "__main__":
    main()
