"""Makes the random-weight vision models of the vision task benchmarks (bench/vision-tasks.sh,
bench/js/tasks-browser.mjs).

Run once, by hand, in the reference environment (see bench/README.md):
    scripts/pyref-env.sh
    .cache/pyref-venv/bin/python bench/make-vision-models.py [vit-base-image-classification] [clip-vit-base-patch32]

Writes, under .cache/bench-models/ (git-ignored: weights are never committed):
    vit-base-image-classification/   ViTForImageClassification with google/vit-base-patch16-224's
                                     shapes (hidden 768, 12 layers, 12 heads, intermediate 3072,
                                     224x224 in 16x16 patches, 1000 labels LABEL_0..LABEL_999)
    clip-vit-base-patch32/           CLIPModel with openai/clip-vit-base-patch32's shapes (text:
                                     hidden 512, 12 layers, 8 heads, 77 positions, vocab 49408;
                                     vision: hidden 768, 12 layers, 12 heads, 224x224 in 32x32
                                     patches; projections to 512)
    images/astronaut-224.png         the check image (make_check_image)
each model with random weights from a seeded generator (transformers' own initialization), the
image processor those repositories have, and:
    config.json, model.safetensors (float32)                 what webformers loads
    onnx/model.onnx (fp32, opset 14)                         Transformers.js dtype 'fp32'
    onnx/model_quantized.onnx (dynamic 8-bit)                Transformers.js dtype 'q8'
    preprocessor_config.json                                 the repository's, as transformers
                                                             saves it (below)
The repositories' preprocessor_config.json files are in the legacy feature-extractor form
(`"size": 224`); they are loaded and saved back with transformers, which writes `size` as
{height, width} (ViT) and {shortest_edge} (CLIP), as Transformers.js's conversion (Optimum saves
the processor) writes them for the Transformers.js repositories. Both runtimes read the same
file, and it must mean the same to both: Transformers.js 4.3.1 reads a bare `"size": 224` as
"fit in 224x224, keeping the aspect ratio" (image_processors_utils.js,
get_resize_output_image_size), where Python resizes ViT's input to 224x224 and CLIP's shortest
edge to 224.
Transformers.js 4.3.1 loads `onnx/model{suffix}.onnx` ('' for fp32, '_quantized' for q8):
image-classification through ViTForImageClassification (input pixel_values, output logits),
zero-shot-image-classification through CLIPModel, whose one session takes input_ids,
attention_mask and pixel_values and gives logits_per_image (src/pipelines/
zero-shot-image-classification.js, models/modeling_utils.js encoder_forward; the outputs are
those of Optimum's CLIP export, which Transformers.js's conversion script runs). The q8 files are
made as that script makes them (scripts/convert.py + quantize.py): ORT dynamic quantization of
every op type ORT can quantize dynamically, per-channel with reduce_range (its defaults outside
its decoder/audio list), and *unsigned* 8-bit weights because the graphs have a Conv (the patch
embedding): ONNX Runtime Web has no ConvInteger for signed weights.

The CLIP tokenizer is CLIP's real one: no Hub is reachable, so its byte-level BPE merges come
from the open_clip_torch wheel on PyPI (bpe_simple_vocab_16e6.txt.gz, the file OpenAI's CLIP
ships), pinned by version and sha256, and the vocabulary is built from them as CLIP builds it
(256 byte symbols, the same with `</w>`, the first 48894 merges, <|startoftext|>, <|endoftext|>:
49408 tokens); transformers' CLIPTokenizer then writes tokenizer.json.

Both ONNX files are checked against PyTorch here (fp32 tightly; q8 loosely, to catch a broken
graph); bench/vision-tasks.sh and bench/js/tasks-browser.mjs then check webformers against
Transformers.js on them.
"""

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from PIL import Image
from transformers import (
    AutoImageProcessor,
    CLIPConfig,
    CLIPModel,
    CLIPTokenizer,
    ViTConfig,
    ViTForImageClassification,
)

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / ".cache" / "bench-models"
WHEELS = ROOT / ".cache" / "wheels"
IMAGES = ROOT / "tests" / "fixtures" / "images"
OPSET = 14
SEED = 20261205

# The wheel that carries CLIP's BPE merges (wheels on the registry are immutable: a mismatch
# means a corrupt or substituted download).
CLIP_BPE_WHEEL = "open_clip_torch==3.3.0"
CLIP_BPE_SHA256 = "c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce"
CLIP_BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"

# google/vit-base-patch16-224's config.json, dropout off (inference only).
VIT_BASE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    initializer_range=0.02,
    layer_norm_eps=1e-12,
    image_size=224,
    patch_size=16,
    num_channels=3,
    qkv_bias=True,
    encoder_stride=16,
)
# Its preprocessor_config.json, as the repository has it (written as transformers saves it).
VIT_PREPROCESSOR = {
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "ViTFeatureExtractor",
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 2,
    "size": 224,
}

# openai/clip-vit-base-patch32's config.json. Its text config says eos_token_id 2 (from before
# transformers' PR #24773): the text model then pools at argmax(input_ids), the <|endoftext|>
# token having the highest id, as the checkpoint does.
CLIP_TEXT = dict(
    vocab_size=49408,
    hidden_size=512,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=8,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    attention_dropout=0.0,
    projection_dim=512,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)
CLIP_VISION = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=224,
    patch_size=32,
    num_channels=3,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    attention_dropout=0.0,
    projection_dim=512,
)
CLIP_PREPROCESSOR = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}
# What the zero-shot benchmark asks (bench/vision.json), to check the export on the same shapes.
CHECK_LABELS = ["cat", "dog", "cup of coffee", "rocket", "astronaut"]
CHECK_IMAGES = ["cat.jpg", "coffee.png", "astronaut.webp"]


def bytes_to_unicode():
    """GPT-2's byte-level alphabet, in its order: the printable bytes first, standing for
    themselves, then the other bytes in byte order, standing for code points from 256 on."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}


def clip_bpe_merges() -> list[str]:
    """CLIP's merges, from the pinned wheel (downloaded once into .cache/wheels)."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    wheels = list(WHEELS.glob("open_clip_torch-3.3.0-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check", "-d", str(WHEELS), CLIP_BPE_WHEEL],
            check=True,
        )
        wheels = list(WHEELS.glob("open_clip_torch-3.3.0-*.whl"))
    wheel = wheels[0]
    if hashlib.sha256(wheel.read_bytes()).hexdigest() != CLIP_BPE_SHA256:
        wheel.unlink()
        sys.exit(f"{wheel}: sha256 mismatch (removed; run again)")
    with zipfile.ZipFile(wheel) as z:
        lines = gzip.decompress(z.read(CLIP_BPE_MEMBER)).decode("utf-8").split("\n")
    # Line 0 is a version header; CLIP keeps the merges that make its vocabulary 49408 long.
    return lines[1 : 49152 - 256 - 2 + 1]


def write_clip_tokenizer(out: Path):
    merges = clip_bpe_merges()
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[tuple(m.split()) for m in merges], model_max_length=77)
    tok.save_pretrained(str(out))
    # CLIP's own tokenization of a known phrase: <|startoftext|> a photo of a cat . <|endoftext|>
    ids = tok("a photo of a cat.")["input_ids"]
    assert ids == [49406, 320, 1125, 539, 320, 2368, 269, 49407], ids
    return tok


def write_json(path: Path, value):
    path.write_text(json.dumps(value, indent=2) + "\n")


def write_preprocessor(out: Path, legacy: dict):
    """The repository's preprocessor_config.json, loaded and saved back by transformers (see the
    top of this file)."""
    write_json(out / "preprocessor_config.json", legacy)
    AutoImageProcessor.from_pretrained(str(out)).save_pretrained(str(out))
    saved = json.loads((out / "preprocessor_config.json").read_text())
    assert isinstance(saved["size"], dict) and saved["size"] != legacy["size"], saved
    return AutoImageProcessor.from_pretrained(str(out))


class VitForExport(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


class ClipForExport(torch.nn.Module):
    """CLIPModel's forward with the text model's causal and padding mask built here.

    transformers 5 builds its masks with code the TorchScript tracer freezes to the sample's
    shapes, so the additive mask is made explicitly from the sequence length; everything else is
    transformers' own modules, applied as CLIPModel.forward applies them (outputs as Optimum's CLIP
    export names them).
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, pixel_values):
        m = self.model
        text = m.text_model
        h = text.embeddings(input_ids=input_ids)
        pos = torch.arange(input_ids.shape[1])
        blocked = (pos[None, :] > pos[:, None])[None, None] | (attention_mask[:, None, None, :] == 0)
        additive = blocked.to(h.dtype) * torch.finfo(h.dtype).min
        seq = text.final_layer_norm(text.encoder(inputs_embeds=h, attention_mask=additive).last_hidden_state)
        # eos_token_id 2: pooled at argmax(input_ids), as CLIPTextModel does for this config.
        pooled = seq[torch.arange(seq.shape[0]), input_ids.to(torch.int32).argmax(dim=-1)]
        text_embeds = m.text_projection(pooled)

        vision = m.vision_model
        x = vision.pre_layrnorm(vision.embeddings(pixel_values))
        x = vision.encoder(inputs_embeds=x).last_hidden_state
        image_embeds = m.visual_projection(vision.post_layernorm(x[:, 0, :]))

        text_embeds = text_embeds / text_embeds.norm(p=2, dim=-1, keepdim=True)
        image_embeds = image_embeds / image_embeds.norm(p=2, dim=-1, keepdim=True)
        logits_per_text = torch.matmul(text_embeds, image_embeds.t()) * m.logit_scale.exp()
        return logits_per_text.t(), logits_per_text, text_embeds, image_embeds


def export(module, args, names, outputs, axes, out: Path):
    fp32 = out / "onnx" / "model.onnx"
    fp32.parent.mkdir()
    with torch.inference_mode():
        torch.onnx.export(
            module.eval(),
            args,
            str(fp32),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: one self-contained file, ORT's fusions apply
        )
    onnx.checker.check_model(str(fp32))
    q8 = fp32.with_name("model_quantized.onnx")
    ops = {n.op_type for n in onnx.load(str(fp32), load_external_data=False).graph.node}
    quantize_dynamic(
        str(fp32),
        str(q8),
        # Transformers.js's quantize.py: unsigned weights when the graph has a Conv.
        weight_type=QuantType.QUInt8 if "Conv" in ops else QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"MatMulConstBOnly": True, "EnableSubgraph": True},
    )
    return fp32, q8


def check(path: Path, feed: dict, want: dict, atol: float):
    """ORT on the exported file against PyTorch's outputs."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(want), feed)
    worst = max(float(np.abs(g - w).max()) for g, w in zip(got, want.values()))
    print(f"  {path.name}: max |ORT - torch| {worst:.2e} (bound {atol})")
    if worst > atol:
        sys.exit(f"{path} does not match PyTorch")
    return dict(zip(want, got))


def photos(names):
    return [Image.open(IMAGES / n).convert("RGB") for n in names]


def make_vit(out: Path):
    config = ViTConfig(**VIT_BASE, num_labels=1000)
    config.architectures = ["ViTForImageClassification"]
    torch.manual_seed(SEED)
    model = ViTForImageClassification(config).eval()
    model.save_pretrained(str(out), safe_serialization=True)
    processor = write_preprocessor(out, VIT_PREPROCESSOR)

    pixels = processor(photos(CHECK_IMAGES), return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (3, 3, 224, 224), pixels.shape
    fp32, q8 = export(
        VitForExport(model),
        (pixels[:2],),
        ["pixel_values"],
        ["logits"],
        {"pixel_values": {0: "batch_size"}, "logits": {0: "batch_size"}},
        out,
    )
    with torch.inference_mode():
        want = {"logits": model(pixel_values=pixels).logits.numpy()}
    feed = {"pixel_values": pixels.numpy()}
    check(fp32, feed, want, atol=1e-4)
    # 8-bit is approximate: this bound catches a broken graph, not drift.
    check(q8, feed, want, atol=0.5)
    top = torch.from_numpy(want["logits"][0]).softmax(-1).topk(3)
    print(f"  PyTorch top 3 on cat.jpg: {[(config.id2label[int(i)], round(float(p), 5)) for p, i in zip(top.values, top.indices)]}")


def make_clip(out: Path):
    config = CLIPConfig(text_config=CLIP_TEXT, vision_config=CLIP_VISION, projection_dim=512, logit_scale_init_value=2.6592)
    config.architectures = ["CLIPModel"]
    torch.manual_seed(SEED)
    # Eager attention: the additive mask of ClipForExport is added to the scores as is.
    model = CLIPModel._from_config(config, attn_implementation="eager").eval()
    model.save_pretrained(str(out), safe_serialization=True)
    processor = write_preprocessor(out, CLIP_PREPROCESSOR)
    tok = write_clip_tokenizer(out)

    # As the pipeline calls them: the labels in the default hypothesis template, padded.
    texts = [f"This is a photo of {label}" for label in CHECK_LABELS]
    enc = tok(texts, padding=True, return_tensors="pt")
    assert len(set(enc["attention_mask"].sum(-1).tolist())) > 1, "the check needs padding"
    pixels = processor(photos(CHECK_IMAGES), return_tensors="pt")["pixel_values"]
    names = ["input_ids", "attention_mask", "pixel_values"]
    outputs = ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"]
    fp32, q8 = export(
        ClipForExport(model),
        (enc["input_ids"][:3], enc["attention_mask"][:3], pixels[:2]),
        names,
        outputs,
        {
            "input_ids": {0: "text_batch_size", 1: "sequence_length"},
            "attention_mask": {0: "text_batch_size", 1: "sequence_length"},
            "pixel_values": {0: "image_batch_size"},
            "logits_per_image": {0: "image_batch_size", 1: "text_batch_size"},
            "logits_per_text": {0: "text_batch_size", 1: "image_batch_size"},
            "text_embeds": {0: "text_batch_size"},
            "image_embeds": {0: "image_batch_size"},
        },
        out,
    )
    with torch.inference_mode():
        ref = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pixels)
    want = {k: getattr(ref, k).numpy() for k in outputs}
    feed = {"input_ids": enc["input_ids"].numpy(), "attention_mask": enc["attention_mask"].numpy(), "pixel_values": pixels.numpy()}
    check(fp32, feed, want, atol=1e-4)
    check(q8, feed, want, atol=0.5)
    probs = torch.from_numpy(want["logits_per_image"][0]).softmax(-1)
    print(f"  PyTorch on cat.jpg: {sorted(zip(probs.tolist(), CHECK_LABELS), reverse=True)}")


def make_check_image():
    """A 224x224 PNG (the middle of astronaut.webp): both models' preprocessing leaves its size
    as it is (no resize, no crop) and PNG decodes exactly, so on it the runtimes' labels and
    scores can be compared without resampling or JPEG-decoder differences."""
    (DEST / "images").mkdir(parents=True, exist_ok=True)
    image = Image.open(IMAGES / "astronaut.webp").convert("RGB")
    assert image.size == (256, 256)
    image.crop((16, 16, 240, 240)).save(DEST / "images" / "astronaut-224.png")


def main():
    torch.set_num_threads(2)
    DEST.mkdir(parents=True, exist_ok=True)
    make_check_image()
    only = sys.argv[1:]  # model names to make (default: both)
    for name, make in [("vit-base-image-classification", make_vit), ("clip-vit-base-patch32", make_clip)]:
        if only and name not in only:
            continue
        print(name)
        # Built in a sibling temp folder and renamed at the end, so an interrupted run never
        # leaves a half-written model that looks complete.
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=DEST))
        try:
            make(tmp)
            final = DEST / name
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in sorted((DEST / name).rglob("*")):
            if p.is_file():
                print(f"  {p.relative_to(DEST)}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
