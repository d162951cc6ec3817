"""Makes tests/fixtures/image-reference/: what Pillow and transformers' Pillow-based image
processors make of the test images in tests/fixtures/images/, for tests/images.rs.

- decode: each file's mode, size and sha256 of its pixels as Pillow decodes them (the file's
  channels, and convert("RGB")), JPEGs included: the engine's JPEG decoder reproduces libjpeg's;
- resize: Image.resize with every filter on lossless images (sha256 and sum of the output);
- processors: pixel_values of ViT, DINOv2 (Bit), CLIP, SigLIP, ConvNeXt and DETR processors
  (transformers' Pillow backend) on every test image converted to RGB as transformers' pipelines
  load images: dims, per-channel means, and values at fixed sampled indices.

Run with the reference environment: .cache/pyref-venv/bin/python this.py
"""
import hashlib
import json
import os

import numpy as np
from PIL import Image, ImageOps

import transformers
from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.convnext.image_processing_pil_convnext import ConvNextImageProcessorPil
from transformers.models.detr.image_processing_pil_detr import DetrImageProcessorPil
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

here = os.path.dirname(os.path.abspath(__file__))
images_dir = os.path.join(here, "..", "fixtures", "images")
out_dir = os.path.join(here, "..", "fixtures", "image-reference")
os.makedirs(out_dir, exist_ok=True)

IMAGES = [
    "cat.jpg", "coffee.png", "astronaut.webp", "rocket.bmp", "camera-gray.png", "gradient.png",
    "one-pixel.png", "strip-4000x300.png", "alpha.png", "cmyk.jpg", "two-frames.gif", "exif-rotated.jpg",
]


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def load(name):
    # As transformers' load_image: EXIF orientation applied (a no-op for the other files).
    im = Image.open(os.path.join(images_dir, name))
    mode = im.mode
    im = ImageOps.exif_transpose(im)
    im.file_mode = mode
    return im


# preprocessor_config.json as the Hub repos have them (written from those repos' files).
CONFIGS = {
    "google/vit-base-patch16-224": {
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "ViTFeatureExtractor",
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 224,
    },
    "facebook/dinov2-small": {
        "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "BitImageProcessor",
        "image_std": [0.229, 0.224, 0.225], "resample": 3, "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": 256},
    },
    "openai/clip-vit-base-patch32": {
        "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "size": 224,
    },
    "google/siglip-base-patch16-224": {
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor", "image_std": [0.5, 0.5, 0.5],
        "processor_class": "SiglipProcessor", "resample": 3, "rescale_factor": 0.00392156862745098,
        "size": {"height": 224, "width": 224},
    },
    "facebook/convnext-tiny-224": {
        "crop_pct": 0.875, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "ConvNextFeatureExtractor", "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224,
    },
    "facebook/detr-resnet-50": {
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "DetrFeatureExtractor",
        "format": "coco_detection", "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
        "max_size": 1333, "size": 800,
    },
    # Not a Hub file: ConvNeXt at 384 and up resizes to a square without cropping.
    "convnext-384": {
        "crop_pct": 0.875, "do_normalize": True, "do_resize": True, "image_processor_type": "ConvNextImageProcessor",
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3,
        "size": {"shortest_edge": 384},
    },
}
CLASSES = {
    "ViT": ViTImageProcessorPil, "Bit": BitImageProcessorPil, "CLIP": CLIPImageProcessorPil,
    "Siglip": SiglipImageProcessorPil, "ConvNext": ConvNextImageProcessorPil, "Detr": DetrImageProcessorPil,
}


def processor(config):
    name = config.get("image_processor_type") or config["feature_extractor_type"]
    for prefix, cls in CLASSES.items():
        if name.startswith(prefix):
            kw = {k: v for k, v in config.items() if k not in ("image_processor_type", "feature_extractor_type", "processor_class", "format")}
            return cls(**kw)
    raise ValueError(name)


SAMPLES = 400


def sampled(pv):
    flat = pv.reshape(-1)
    # Fixed, spread indices: a multiplicative walk the test recomputes (index = i * step % len).
    step = 7919 * 104729
    idx = [(i * step) % flat.size for i in range(SAMPLES)]
    return [float(flat[i]) for i in idx]


reference = {"transformers": transformers.__version__, "pillow": Image.__version__, "samples": SAMPLES,
             "decode": {}, "resize": [], "processors": {}}

for name in IMAGES:
    im = load(name)
    native = np.array(im)
    rgb = np.array(im.convert("RGB"))
    entry = {"mode": im.file_mode, "width": im.width, "height": im.height, "native_sha256": sha(native),
             "rgb_sha256": sha(rgb), "rgb_sum": int(rgb.astype(np.int64).sum())}
    reference["decode"][name] = entry

RESIZE_CASES = [
    ("coffee.png", 224, 224), ("coffee.png", 257, 171), ("gradient.png", 200, 150),
    ("gradient.png", 7, 5), ("strip-4000x300.png", 224, 16), ("one-pixel.png", 3, 2),
    ("camera-gray.png", 100, 77), ("rocket.bmp", 320, 100), ("alpha.png", 61, 90),
]
for name, w, h in RESIZE_CASES:
    im = load(name)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")  # Pillow premultiplies alpha when resizing RGBA; the engine resizes RGB.
    for f in range(6):
        r = np.array(im.resize((w, h), resample=f))
        reference["resize"].append({"image": name, "width": w, "height": h, "resample": f,
                                    "channels": 1 if r.ndim == 2 else r.shape[2],
                                    "sha256": sha(r), "sum": int(r.astype(np.int64).sum())})

# RawImage operations: Pillow's convert("L"), and transformers' center_crop where the crop is
# larger than the image along a side (the image is centered in zeros).
from transformers.image_transforms import center_crop  # noqa: E402

reference["grayscale"] = {name: sha(np.array(load(name).convert("RGB").convert("L"))) for name in ("coffee.png", "gradient.png")}
reference["center_crop"] = []
for name, h, w in [("gradient.png", 60, 50), ("gradient.png", 47, 70), ("gradient.png", 20, 30), ("one-pixel.png", 4, 3), ("gradient.png", 49, 65)]:
    arr = np.array(load(name).convert("RGB"))
    out = center_crop(arr, (h, w), data_format="channels_last", input_data_format="channels_last")
    reference["center_crop"].append({"image": name, "height": h, "width": w, "sha256": sha(out), "shape": list(out.shape)})

for repo, config in CONFIGS.items():
    proc = processor(config)
    cases = {}
    for name in IMAGES:
        im = load(name).convert("RGB")
        out = proc(images=[im], return_tensors="np")
        pv = out["pixel_values"].astype(np.float32)
        case = {"dims": list(pv.shape), "channel_means": [float(pv[0, c].astype(np.float64).mean()) for c in range(3)],
                "samples": sampled(pv)}
        if "pixel_mask" in out:
            case["mask_sum"] = int(out["pixel_mask"].sum())
        cases[name] = case
    if repo == "facebook/detr-resnet-50":
        ims = [load(n).convert("RGB") for n in ("cat.jpg", "coffee.png", "strip-4000x300.png")]
        out = proc(images=ims, return_tensors="np")
        pv = out["pixel_values"].astype(np.float32)
        mask = out["pixel_mask"]
        cases["batch:cat.jpg,coffee.png,strip-4000x300.png"] = {
            "dims": list(pv.shape), "channel_means": [float(pv[:, c].astype(np.float64).mean()) for c in range(3)],
            "samples": sampled(pv), "mask_sum": int(mask.sum()),
            "mask_rows": [[int(mask[i, :, 0].sum()), int(mask[i, 0, :].sum())] for i in range(len(ims))]}
    reference["processors"][repo] = {"config": config, "cases": cases}

with open(os.path.join(out_dir, "reference.json"), "w") as f:
    json.dump(reference, f, indent=1)
print("wrote", out_dir, sum(os.path.getsize(os.path.join(out_dir, p)) for p in os.listdir(out_dir)), "bytes")
