"""Makes two tiny random DETR object detectors and records what transformers' own
`pipeline("object-detection")` returns on them: the reference of the object-detection task.

    tests/fixtures/vision/tiny-detr/            timm ResNet backbone (`use_timm_backbone: true`,
                                                `conv1`, `layer1.0.conv1`, `bn1`, `downsample.0`:
                                                facebook/detr-resnet-50's layout)
    tests/fixtures/vision/tiny-detr-hf-resnet/  transformers' ResNet backbone (`backbone_config`
                                                of model_type resnet: `embedder.embedder`,
                                                `encoder.stages.N.layers.M.shortcut`)
    tests/fixtures/vision/detr-reference.json   the cases, and each model's raw outputs
                                                (`raw`: logits and pred_boxes on a photo)

Run once, by hand, with transformers 4.57.6 (the Hub's DETR configs are 4.x's: `backbone`,
`use_timm_backbone`, `backbone_kwargs`) and timm, which needs torchvision; both in a venv of
their own so that the shared one keeps transformers' slow image processors by default:
    /work/main/.cache/pyref-venv/bin/python -m venv /work/main/.cache/timm-venv  (python 3.11)
    echo /work/main/.cache/pyref-venv/lib/python3.11/site-packages \\
        > /work/main/.cache/timm-venv/lib/python3.11/site-packages/pyref.pth
    /work/main/.cache/timm-venv/bin/pip install --no-deps timm==1.0.31 torchvision==0.29.2
    HF_HUB_OFFLINE=1 PYTHONPATH=/work/main/.cache/tf457 /work/main/.cache/timm-venv/bin/python \\
        tests/reference/make_tiny_vision_detr.py

Method: a seeded torch generator fills every weight, frozen batch norms included (so that folding
them into the convolutions is tested), and the class head is scaled up so that some queries are
confident (scores above 0.5). Outputs are what pipeline("object-detection", model=folder,
image_processor=DetrImageProcessor (the slow one)) returns, reshaped as transformers.js 4.3.1 returns them: the same list of
{score, label, box} per image. Where the two libraries differ, the reference follows
transformers.js (the task mirrors it), computed here from the model's own logits and boxes:
  - a query is kept when its best class over all logits (the no-object class included) is a real
    class whose probability is >= threshold; Python takes the best real class and keeps it when
    > threshold. Both agree whenever threshold >= 0.5 (a no-object winner leaves every real class
    at <= 0.5), which the script asserts on every such case;
  - `percentage: true` (transformers.js only) gives the boxes as fractions of the image, floats.
Every case is checked for margins: no score within 1e-3 of the threshold and no pixel corner
within 2e-3 of an integer (outputs truncate corners to integers); a model failing a check is
rebuilt with the next seed (the seed used is recorded). CPU, float32, one thread.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

if transformers.__version__ != "4.57.6":
    sys.exit(f"needs transformers 4.57.6 as an overlay (see the docstring), got {transformers.__version__}")

from PIL import Image  # noqa: E402
from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig, pipeline  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from golden_json import dump  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/vision"
IMAGES = ROOT / "tests/fixtures/images"
LABELS = ["person", "cat", "dog", "cup", "rocket"]

PREPROCESSOR = {
    "do_convert_annotations": True,
    "do_normalize": True,
    "do_pad": True,
    "do_rescale": True,
    "do_resize": True,
    "format": "coco_detection",
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "DetrImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    # Small, so that the tests stay fast on a software GPU (facebook/detr-resnet-50: 800 / 1333).
    "size": {"shortest_edge": 80, "longest_edge": 128},
}

TRANSFORMER = dict(
    d_model=32,
    encoder_layers=2,
    decoder_layers=2,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=64,
    decoder_ffn_dim=64,
    num_queries=12,
    num_labels=len(LABELS),
    id2label=dict(enumerate(LABELS)),
    label2id={label: i for i, label in enumerate(LABELS)},
    use_pretrained_backbone=False,
)


def config(kind):
    if kind == "timm":
        # timm's resnet50 with fewer blocks and narrower stages (its plain stem is always 64 wide).
        return DetrConfig(
            use_timm_backbone=True,
            backbone="resnet50",
            backbone_kwargs={"layers": [1, 2, 1, 1], "channels": [4, 8, 12, 16]},
            **TRANSFORMER,
        )
    backbone = ResNetConfig(
        num_channels=3,
        embedding_size=16,
        hidden_sizes=[16, 32, 48, 64],
        depths=[1, 2, 1, 1],
        layer_type="bottleneck",
        hidden_act="relu",
        out_features=["stage4"],
    )
    return DetrConfig(use_timm_backbone=False, backbone=None, backbone_config=backbone, **TRANSFORMER)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if not p.is_floating_point():
                continue
            if name.endswith("running_var"):
                p.copy_(torch.rand(p.shape, generator=g) * 1.5 + 0.25)
            elif name.endswith("running_mean"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
            elif p.dim() == 1 and ("norm" in name or "bn" in name or "downsample.1" in name) and name.endswith("weight"):
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.2)
            elif p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
        # Queries start as zeros, so only their position embeddings tell them apart (through
        # the attention patterns): sharper attention makes the queries' answers differ.
        model.model.query_position_embeddings.weight.mul_(3.0)


def calibrate_head(model, processor, g):
    """Rescales the class head on the decoder's outputs for a few images, so that each logit
    varies with a spread of 2.5 around a bias (a random decoder's outputs share a large common
    part, which would give every query the same label): varied labels, confident scores."""
    hidden = []
    for name in ["cat.jpg", "coffee.png", "gradient.png", "camera-gray.png"]:
        image = Image.open(IMAGES / name).convert("RGB")
        inputs = processor(images=image, return_tensors="pt", input_data_format="channels_last")
        with torch.no_grad():
            hidden.append(model(**inputs).last_hidden_state[0])
    hidden = torch.cat(hidden)  # [images x queries, d]
    mean = hidden.mean(0)
    head = model.class_labels_classifier
    with torch.no_grad():
        w = torch.randn(head.weight.shape, generator=g)
        spread = (hidden - mean) @ w.T  # [n, labels + 1]
        w *= 2.5 / spread.std(0, keepdim=True).T
        bias = torch.randn(head.bias.shape, generator=g) * 0.5
        bias[-1] += 1.0  # no-object wins for some queries
        head.weight.copy_(w)
        head.bias.copy_(bias - w @ mean)


def js_detections(logits, boxes, threshold, size, percentage):
    """transformers.js 4.3.1's post_process_object_detection + ObjectDetectionPipeline, on one
    image's logits [Q, L + 1] and boxes [Q, 4] (float32), in float64 as JavaScript computes."""
    out = []
    for q in range(logits.shape[0]):
        row = logits[q].astype(np.float64)
        best = int(np.argmax(row))
        if best == row.shape[0] - 1:
            continue
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        if probs[best] < threshold:
            continue
        cx, cy, w, h = (float(v) for v in boxes[q])
        corners = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        if not percentage:
            height, width = size
            corners = [int(v * (width if i % 2 == 0 else height)) for i, v in enumerate(corners)]
        out.append({"score": float(probs[best]), "label": LABELS[best], "box": dict(zip(["xmin", "ymin", "xmax", "ymax"], corners))})
    return out


def margins_ok(logits, boxes, threshold, size):
    for q in range(logits.shape[0]):
        row = logits[q].astype(np.float64)
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        top = np.sort(row)
        if top[-1] - top[-2] < 1e-3:
            return f"query {q}: two classes tie"
        best = int(np.argmax(row))
        if best == row.shape[0] - 1:
            continue
        if abs(probs[best] - threshold) < 1e-3:
            return f"query {q}: score {probs[best]} at the threshold {threshold}"
        if probs[best] < threshold:
            continue
        cx, cy, w, h = (float(v) for v in boxes[q])
        height, width = size
        for i, v in enumerate([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]):
            px = v * (width if i % 2 == 0 else height)
            if abs(px - round(px)) < 2e-3:
                return f"query {q}: corner {px} near an integer"
    return None


CASES = [
    ("cat.jpg", {"threshold": 0.5}),
    ("cat.jpg", {}),
    ("cat.jpg", {"threshold": 0.0}),
    ("cat.jpg", {"threshold": 0.3, "percentage": True}),
    ("rocket.bmp", {"threshold": 0.0}),
    ("gradient.png", {"threshold": 0.3, "percentage": True}),
    ("coffee.png", {"threshold": 0.5}),
    ("astronaut.webp", {"threshold": 0.5}),
    ("rocket.bmp", {"threshold": 0.2}),
    ("camera-gray.png", {"threshold": 0.5}),
    ("gradient.png", {"threshold": 0.5}),
    ("one-pixel.png", {"threshold": 0.5}),
    ("strip-4000x300.png", {"threshold": 0.5}),
    ("alpha.png", {"threshold": 0.5}),
    ("cmyk.jpg", {"threshold": 0.5}),
    ("two-frames.gif", {"threshold": 0.5}),
    (["cat.jpg"], {"threshold": 0.5}),
    # Several images of different sizes: run one at a time, as Python's pipeline does
    # (transformers.js 4.3.1 refuses arrays of more than one image).
    (["coffee.png", "gradient.png", "astronaut.webp"], {"threshold": 0.5}),
]


def make(kind, folder):
    processor = DetrImageProcessor(**PREPROCESSOR)
    for seed in range(100):
        torch.manual_seed(seed)
        model = DetrForObjectDetection(config(kind)).eval()
        randomize(model, seed)
        calibrate_head(model, processor, torch.Generator().manual_seed(1000 + seed))
        if os.path.exists(folder):
            shutil.rmtree(folder)
        model.save_pretrained(folder)
        with open(folder / "preprocessor_config.json", "w") as f:
            json.dump(PREPROCESSOR, f, indent=2)
        model = DetrForObjectDetection.from_pretrained(folder).eval()
        # The slow (PIL) processor, named: torchvision in this venv would make the fast one the default.
        detector = pipeline("object-detection", model=str(folder), image_processor=DetrImageProcessor.from_pretrained(folder), device="cpu")

        def raw(name):
            image = Image.open(IMAGES / name).convert("RGB")
            # channels_last named: a 1x1 RGB image is ambiguous to the processor's guess (it takes the
            # 1 as the channels), which makes Python's pipeline fail on one-pixel.png.
            inputs = processor(images=image, return_tensors="pt", input_data_format="channels_last")
            with torch.no_grad():
                out = model(**inputs)
            return out.logits[0].numpy(), out.pred_boxes[0].numpy(), (image.height, image.width)

        cases, problem = [], None
        for images, options in CASES:
            names = images if isinstance(images, list) else [images]
            threshold = options.get("threshold", 0.9)
            outputs = []
            for name in names:
                logits, boxes, size = raw(name)
                problem = margins_ok(logits, boxes, threshold, size)
                if problem:
                    problem = f"{name}: {problem}"
                    break
                js = js_detections(logits, boxes, threshold, size, options.get("percentage", False))
                if threshold >= 0.5 and not options.get("percentage") and name != "one-pixel.png":
                    py = detector(str(IMAGES / name), threshold=threshold)
                    assert [d["label"] for d in py] == [d["label"] for d in js], (name, py, js)
                    for p, j in zip(py, js):
                        assert abs(p["score"] - j["score"]) < 1e-5 and p["box"] == j["box"], (name, p, j)
                outputs.append(js)
            if problem:
                break
            output = outputs if isinstance(images, list) else outputs[0]
            cases.append({"task": "object-detection", "model": folder.name, "input": images, "options": options, "output": output})
        if problem:
            print(f"{folder.name} seed {seed}: {problem}; next seed")
            continue
        detected = sum(len(c["output"]) for c in cases if isinstance(c["input"], str))
        assert detected > 10, "too few detections to test anything"
        logits, boxes, _ = raw("cat.jpg")
        raw_out = {"model": folder.name, "image": "cat.jpg", "seed": seed, "logits": logits, "pred_boxes": boxes}
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"{folder.name}: seed {seed}, {size} bytes, {detected} detections")
        return cases, raw_out
    sys.exit(f"{folder.name}: no seed passes the margin checks")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases, raws = [], []
    for kind, name in [("timm", "tiny-detr"), ("hf", "tiny-detr-hf-resnet")]:
        c, r = make(kind, OUT / name)
        cases += c
        raws.append(r)
    reference = {
        "made_by": "tests/reference/make_tiny_vision_detr.py",
        "transformers": transformers.__version__,
        "tolerance": 1e-4,
        "cases": cases,
        "raw": raws,
    }
    (OUT / "detr-reference.json").write_text(dump(reference) + "\n")


if __name__ == "__main__":
    main()
