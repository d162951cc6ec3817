"""Makes the tiny random ViT, DINOv2 (plain and with registers) and ConvNeXt models of
tests/fixtures/vision/ and their reference, tests/fixtures/vision/vit-family-reference.json: what
Python transformers' own pipeline() ("image-classification", "image-feature-extraction" with and
without `pool`) returns on the test images of tests/fixtures/images/, shaped as transformers.js
4.3.1 returns it.

Python and transformers.js differ in shape for image-feature-extraction: Python returns one
nested list [1, ...] per image, transformers.js one tensor for the whole call ([N, tokens, dim],
or [N, dim] with `pool`). The reference follows transformers.js: Python's per-image outputs
stacked along the batch dim, as `{"dims", "data"}`. With `top_k: null` transformers.js returns
every label (Python would fall back to its default of 5): the reference passes Python the number
of labels then. Image processors are the slow PIL ones (no torchvision here), which is what
transformers.js reproduces.

Weights are drawn wider than transformers' initialisation (std 0.02 makes every image score
alike), so that images and labels are told apart well beyond the tolerance.

Run with the reference environment: .cache/pyref-venv/bin/python tests/reference/make_tiny_vision_vit_family.py
"""
import json
import math
import os
import shutil

import numpy as np
import torch
from PIL import Image
from transformers import (
    BitImageProcessor,
    ConvNextConfig,
    ConvNextForImageClassification,
    ConvNextImageProcessor,
    ConvNextModel,
    Dinov2Config,
    Dinov2ForImageClassification,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersForImageClassification,
    Dinov2WithRegistersModel,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
    ViTModel,
    pipeline,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "vision")
IMAGES = os.path.join(ROOT, "tests", "fixtures", "images")
TOLERANCE = 1e-4

LABELS = ["tabby cat", "espresso", "astronaut", "space shuttle", "camera", "goldfish", "volcano"]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

torch.set_num_threads(2)


def randomize(model, seed):
    """Redraws every parameter: linear and conv weights ~ N(0, 1/fan_in), norms around 1,
    biases, tokens and layer scales spread, so that outputs depend clearly on the image."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * n)
            elif name.endswith("bias"):
                p.copy_(0.1 * n)
            elif "lambda1" in name or "layer_scale_parameter" in name:
                p.copy_(0.5 + 0.3 * n)
            elif name.endswith("weight"):
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(n / math.sqrt(fan_in) * (2.0 if "classifier" in name else 1.0))
            else:  # cls / mask / register tokens, position embeddings
                p.copy_(0.5 * n)
    return model.eval()


def save(model, processor_config, folder):
    path = os.path.join(OUT, folder)
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path, safe_serialization=True)
    with open(os.path.join(path, "preprocessor_config.json"), "w") as f:
        json.dump(processor_config, f, indent=2)
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    assert size < 200_000, f"{folder} is {size} bytes"
    print(folder, size, "bytes")
    return path


def labelled(config_cls, **kw):
    return config_cls(id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}, **kw)


VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8)
VIT_PROCESSOR = {
    "image_processor_type": "ViTImageProcessor",
    "do_resize": True,
    "size": {"height": 32, "width": 32},
    "resample": 2,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}
DINOV2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2, image_size=32, patch_size=4)


def bit_processor(shortest_edge, crop):
    return {
        "image_processor_type": "BitImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": shortest_edge},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": crop, "width": crop},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD,
        "do_convert_rgb": True,
    }


CONVNEXT = dict(num_channels=3, patch_size=4, num_stages=2, hidden_sizes=[8, 16], depths=[1, 2], image_size=32)
CONVNEXT_PROCESSOR = {
    "image_processor_type": "ConvNextImageProcessor",
    "do_resize": True,
    "size": {"shortest_edge": 32},
    "crop_pct": 0.875,
    "resample": 3,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": IMAGENET_MEAN,
    "image_std": IMAGENET_STD,
}


def make_models():
    """folder -> (path, processor class)"""
    models = {}
    torch.manual_seed(0)
    # ViT: a backbone with its pooler, one without (add_pooling_layer=False), a classifier.
    m = randomize(ViTModel(ViTConfig(**VIT)), 1)
    models["tiny-vit"] = (save(m, VIT_PROCESSOR, "tiny-vit"), ViTImageProcessor)
    m = randomize(ViTModel(ViTConfig(**VIT), add_pooling_layer=False), 2)
    models["tiny-vit-no-pooler"] = (save(m, VIT_PROCESSOR, "tiny-vit-no-pooler"), ViTImageProcessor)
    m = randomize(ViTForImageClassification(labelled(ViTConfig, **VIT)), 3)
    models["tiny-vit-classifier"] = (save(m, VIT_PROCESSOR, "tiny-vit-classifier"), ViTImageProcessor)
    # DINOv2: 8x8 trained positions; crops of 36 px (9x9 patches: bicubic upsampling of the
    # position embeddings) and, with registers, of 28 px (7x7: downsampling, where the
    # antialias that only the registers variant asks for matters).
    m = randomize(Dinov2Model(Dinov2Config(**DINOV2)), 4)
    models["tiny-dinov2"] = (save(m, bit_processor(40, 36), "tiny-dinov2"), BitImageProcessor)
    m = randomize(Dinov2ForImageClassification(labelled(Dinov2Config, **DINOV2)), 5)
    models["tiny-dinov2-classifier"] = (save(m, bit_processor(40, 36), "tiny-dinov2-classifier"), BitImageProcessor)
    m = randomize(Dinov2WithRegistersModel(Dinov2WithRegistersConfig(num_register_tokens=4, **DINOV2)), 6)
    models["tiny-dinov2-registers"] = (save(m, bit_processor(32, 28), "tiny-dinov2-registers"), BitImageProcessor)
    cfg = labelled(Dinov2WithRegistersConfig, num_register_tokens=4, **DINOV2)
    m = randomize(Dinov2WithRegistersForImageClassification(cfg), 7)
    models["tiny-dinov2-registers-classifier"] = (
        save(m, bit_processor(32, 28), "tiny-dinov2-registers-classifier"),
        BitImageProcessor,
    )
    # ConvNeXt: two stages (the second downsamples); the classifier is multi-label (sigmoids).
    m = randomize(ConvNextModel(ConvNextConfig(**CONVNEXT)), 8)
    models["tiny-convnext"] = (save(m, CONVNEXT_PROCESSOR, "tiny-convnext"), ConvNextImageProcessor)
    cfg = labelled(ConvNextConfig, problem_type="multi_label_classification", **CONVNEXT)
    m = randomize(ConvNextForImageClassification(cfg), 9)
    models["tiny-convnext-classifier"] = (save(m, CONVNEXT_PROCESSOR, "tiny-convnext-classifier"), ConvNextImageProcessor)
    return models


def f32(x):
    """A float32 as the shortest decimal that round-trips."""
    return float(str(np.float32(x)))


def nested(a):
    if a.ndim == 0:
        return f32(a)
    return [nested(x) for x in a]


PIPES = {}


def pipe(task, models, model):
    key = (task, model)
    if key not in PIPES:
        path, processor = models[model]
        PIPES[key] = pipeline(task, model=path, image_processor=processor.from_pretrained(path), device="cpu")
    return PIPES[key]


def open_image(name):
    return os.path.join(IMAGES, name)


def classify(models, model, inp, options, tolerance):
    p = pipe("image-classification", models, model)
    kw = dict(options)
    if "top_k" in kw and kw["top_k"] is None:
        kw["top_k"] = len(LABELS)  # transformers.js: every label
    names = inp if isinstance(inp, list) else [inp]
    out = [[{"label": r["label"], "score": f32(r["score"])} for r in p(open_image(n), **kw)] for n in names]
    # Scores must be apart by more than the tolerance for the order to be a fair test.
    for rows in out:
        for a, b in zip(rows, rows[1:]):
            assert a["score"] - b["score"] > 2 * tolerance, (model, inp, rows)
    return out if isinstance(inp, list) else out[0]


def features(models, model, inp, options, _tolerance):
    p = pipe("image-feature-extraction", models, model)
    names = inp if isinstance(inp, list) else [inp]
    per_image = [np.asarray(p(open_image(n), **options), dtype=np.float32) for n in names]
    # transformers.js: one tensor for the call, the images along the batch dim.
    stacked = np.concatenate(per_image, axis=0)
    return {"dims": list(stacked.shape), "data": nested(stacked)}


CASES = [
    # image-classification: default top_k (5 of 7 labels), arrays, top_k 1, 2, 3, null (all).
    ("image-classification", "tiny-vit-classifier", "coffee.png", {}),
    ("image-classification", "tiny-vit-classifier", ["rocket.bmp", "astronaut.webp"], {}),
    ("image-classification", "tiny-vit-classifier", "rocket.bmp", {"top_k": 2}),
    ("image-classification", "tiny-vit-classifier", "camera-gray.png", {"top_k": None}),
    ("image-classification", "tiny-vit-classifier", ["alpha.png"], {"top_k": 1}),
    ("image-classification", "tiny-dinov2-classifier", "astronaut.webp", {}),
    ("image-classification", "tiny-dinov2-classifier", ["coffee.png", "gradient.png"], {"top_k": 3}),
    ("image-classification", "tiny-dinov2-registers-classifier", "astronaut.webp", {}),
    ("image-classification", "tiny-dinov2-registers-classifier", ["two-frames.gif", "strip-4000x300.png"], {"top_k": 2}),
    ("image-classification", "tiny-convnext-classifier", "coffee.png", {}),
    ("image-classification", "tiny-convnext-classifier", ["one-pixel.png", "strip-4000x300.png"], {"top_k": None}),
    # image-feature-extraction: last_hidden_state by default, the pooled output with `pool`.
    ("image-feature-extraction", "tiny-vit", "camera-gray.png", {}),
    ("image-feature-extraction", "tiny-vit", ["rocket.bmp", "two-frames.gif"], {"pool": True}),
    ("image-feature-extraction", "tiny-vit-no-pooler", "coffee.png", {}),
    ("image-feature-extraction", "tiny-vit-no-pooler", ["one-pixel.png", "alpha.png"], {"pool": False}),
    ("image-feature-extraction", "tiny-dinov2", "astronaut.webp", {}),
    ("image-feature-extraction", "tiny-dinov2", ["rocket.bmp", "camera-gray.png"], {"pool": True}),
    ("image-feature-extraction", "tiny-dinov2-registers", "gradient.png", {}),
    ("image-feature-extraction", "tiny-dinov2-registers", "rocket.bmp", {"pool": True}),
    ("image-feature-extraction", "tiny-convnext", "astronaut.webp", {}),
    ("image-feature-extraction", "tiny-convnext", ["coffee.png", "alpha.png"], {"pool": True}),
]

# The JPEGs: the engine's JPEG decoder gives Pillow's pixels exactly (tests/images.rs), so they
# are compared at the same tolerance as every other image.
JPEG_CASES = [
    ("image-classification", "tiny-vit-classifier", "cat.jpg", {"top_k": 1}),
    ("image-classification", "tiny-dinov2-classifier", ["cmyk.jpg", "cat.jpg"], {"top_k": 1}),
    ("image-classification", "tiny-convnext-classifier", "cmyk.jpg", {"top_k": 1}),
    ("image-feature-extraction", "tiny-vit", "cat.jpg", {"pool": True}),
    ("image-feature-extraction", "tiny-dinov2-registers", ["cat.jpg", "cmyk.jpg"], {"pool": True}),
    ("image-feature-extraction", "tiny-convnext", "cat.jpg", {"pool": True}),
]


def write_reference(name, cases, tolerance, note):
    with open(os.path.join(OUT, name), "w") as f:
        f.write("{\n")
        f.write(f' "made_by": "tests/reference/make_tiny_vision_vit_family.py",\n "note": {json.dumps(note)},\n')
        f.write(f' "tolerance": {tolerance},\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n ]\n}\n")
    print(name, len(cases), "cases")


def main():
    models = make_models()
    made = []
    for task, model, inp, options in CASES + JPEG_CASES:
        run = classify if task == "image-classification" else features
        output = run(models, model, inp, options, TOLERANCE)
        made.append({"task": task, "model": model, "input": inp, "options": options, "output": output})
    used = {n for c in CASES + JPEG_CASES for n in (c[2] if isinstance(c[2], list) else [c[2]])}
    photos = {n for n in os.listdir(IMAGES) if os.path.isfile(os.path.join(IMAGES, n))}
    assert used == photos, f"images not covered: {photos - used}"
    write_reference("vit-family-reference.json", made, TOLERANCE, "every test image")


if __name__ == "__main__":
    main()
