"""The forward outputs of transformers' CLIP and SigLIP classes on the tiny models in
tests/fixtures/vision (made by make_tiny_vision_clip_family.py), for tests/auto_model.rs: what the
engine's AutoModel / CLIPModel / SiglipModel classes and their one-tower classes must answer.

Output: tests/fixtures/vision/dual-encoder-forward.json (not `*-reference.json`: those are
tests/vision_tasks.rs's pipeline cases), per model:
    input_ids (and CLIP's attention_mask)  texts tokenized as the zero-shot-image-classification
                   pipeline tokenizes them: CLIP padding=True with the mask; SigLIP padded to
                   max_length (64) without a mask, as transformers.js feeds its SigLIP (its ONNX
                   text model takes no attention_mask)
    pixel_values   the image processor's output for two images
    model          CLIPModel / SiglipModel forward: logits_per_image, logits_per_text, text_embeds,
                   image_embeds (normalized)
    text, vision   the one-tower classes transformers.js has: CLIPTextModelWithProjection's
                   text_embeds and CLIPVisionModelWithProjection's image_embeds (projected, not
                   normalized); SiglipTextModel's and SiglipVisionModel's pooler_output

Run once, by hand, in the reference environment (tests/reference/requirements.txt):
    .cache/pyref-venv/bin/python tests/reference/make_dual_encoder_forward_reference.py
CPU, float32, eager attention, one thread.
"""

import json
import sys
from pathlib import Path

import torch
import transformers
from transformers import (
    CLIPModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionModelWithProjection,
    PreTrainedTokenizerFast,
    SiglipModel,
    SiglipTextModel,
    SiglipVisionModel,
)
from transformers.image_utils import load_image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_json import dump  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
VISION = ROOT / "tests" / "fixtures" / "vision"
IMAGES = ROOT / "tests" / "fixtures" / "images"
TEXTS = ["a photo of a cat", "The bridge has SEVEN arches.", "a rocket"]
# Lossless formats: the engine decodes them to Pillow's exact pixels (the test feeds the pixels
# stored here anyway).
PICTURES = ["rocket.bmp", "coffee.png"]
TOLERANCE = 1e-4


def named(outputs, names):
    return {n: {"dims": list(outputs[n].shape), "data": outputs[n].detach().to(torch.float32).numpy().ravel()} for n in names}


def reference(name):
    folder = VISION / name
    clip = name == "tiny-clip"
    eager = dict(attn_implementation="eager")
    if clip:
        tok = CLIPTokenizer.from_pretrained(folder)
        enc = tok(TEXTS, padding=True, return_tensors="pt")
        processor = CLIPImageProcessorPil.from_pretrained(folder)
        model, text_class, vision_class = CLIPModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection
        text_out, vision_out = "text_embeds", "image_embeds"
    else:
        tok = PreTrainedTokenizerFast.from_pretrained(folder)
        tok.model_input_names = ["input_ids"]
        enc = tok(TEXTS, padding="max_length", max_length=64, truncation=True, return_tensors="pt")
        processor = SiglipImageProcessorPil.from_pretrained(folder)
        model, text_class, vision_class = SiglipModel, SiglipTextModel, SiglipVisionModel
        text_out, vision_out = "pooler_output", "pooler_output"
    assert clip == ("attention_mask" in enc)
    pixel_values = processor(images=[load_image(str(IMAGES / p)) for p in PICTURES], return_tensors="pt")["pixel_values"]
    both_model = model.from_pretrained(folder, **eager).eval()
    # A tower class reads its tower's config, whose projection_dim here is the untouched default
    # (512): the checkpoint's projections are CLIPConfig's (16), as a one-tower export has it.
    towers = dict(projection_dim=both_model.config.projection_dim) if clip else {}
    with torch.no_grad():
        both = both_model(**enc, pixel_values=pixel_values)
        text = text_class.from_pretrained(folder, **eager, **towers).eval()(**enc)
        vision = vision_class.from_pretrained(folder, **eager, **towers).eval()(pixel_values=pixel_values)
    out = {
        "input_ids": enc["input_ids"].tolist(),
        "pixel_values": {"dims": list(pixel_values.shape), "data": pixel_values.numpy().ravel()},
        "model": named(both, ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"]),
        "text": named(text, [text_out]),
        "vision": named(vision, [vision_out]),
    }
    if clip:
        out["attention_mask"] = enc["attention_mask"].tolist()
    return out


def main():
    result = {
        "made_by": "tests/reference/make_dual_encoder_forward_reference.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tolerance": TOLERANCE,
        "texts": TEXTS,
        "images": PICTURES,
        "models": {name: reference(name) for name in ["tiny-clip", "tiny-siglip"]},
    }
    path = VISION / "dual-encoder-forward.json"
    path.write_text(dump(result) + "\n")
    print(path, json.loads(path.read_text())["models"]["tiny-clip"]["model"]["logits_per_image"]["dims"])


if __name__ == "__main__":
    main()
