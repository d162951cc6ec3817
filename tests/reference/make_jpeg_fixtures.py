"""Small JPEGs covering what the native decoder handles (quality, chroma subsampling, grayscale,
progressive, restart markers, odd sizes, CMYK), and Pillow's decoding of each, converted to RGB
(or kept gray), as a sha256 per file: tests/fixtures/images/jpeg/ and reference.json there.

Run with Pillow and numpy (and scikit-image for the photo): python make_jpeg_fixtures.py
"""
import hashlib
import json
import os

import numpy as np
from PIL import Image
from skimage import data

out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "images", "jpeg")
os.makedirs(out, exist_ok=True)

photo = Image.fromarray(data.chelsea()).resize((96, 64), Image.LANCZOS)
odd = Image.fromarray(data.astronaut()).resize((17, 13), Image.LANCZOS)
rng = np.random.default_rng(0)
noise = Image.fromarray(rng.integers(0, 256, (21, 35, 3), dtype=np.uint8))  # saturating IDCT outputs
cases = {
    "q50-420.jpg": (photo, dict(quality=50, subsampling=2)),
    "q90-422.jpg": (photo, dict(quality=90, subsampling=1)),
    "q100-444.jpg": (photo, dict(quality=100, subsampling=0)),
    "q90-420-progressive.jpg": (photo, dict(quality=90, subsampling=2, progressive=True)),
    "q75-444-progressive.jpg": (photo, dict(quality=75, subsampling=0, progressive=True)),
    "q90-420-optimized.jpg": (photo, dict(quality=90, subsampling=2, optimize=True)),
    "q90-420-restart.jpg": (photo, dict(quality=90, subsampling=2, restart_marker_blocks=3)),
    "q80-422-restart-rows.jpg": (photo, dict(quality=80, subsampling=1, restart_marker_rows=1)),
    "q90-progressive-restart.jpg": (photo, dict(quality=90, progressive=True, restart_marker_blocks=2)),
    "gray.jpg": (photo.convert("L"), dict(quality=85)),
    "gray-progressive.jpg": (photo.convert("L"), dict(quality=85, progressive=True)),
    "odd-17x13-420.jpg": (odd, dict(quality=90, subsampling=2)),
    "odd-17x13-422.jpg": (odd, dict(quality=90, subsampling=1)),
    "odd-17x13-progressive.jpg": (odd, dict(quality=90, subsampling=2, progressive=True)),
    "one-pixel.jpg": (odd.resize((1, 1)), dict(quality=90)),
    "two-by-three-420.jpg": (odd.resize((2, 3)), dict(quality=90, subsampling=2)),
    "three-420.jpg": (odd.resize((3, 3)), dict(quality=90, subsampling=2)),
    "five-420.jpg": (odd.resize((5, 7)), dict(quality=90, subsampling=2)),
    "noise-q100-420.jpg": (noise, dict(quality=100, subsampling=2)),
    "noise-q30-422.jpg": (noise, dict(quality=30, subsampling=1)),
    "cmyk.jpg": (None, dict(quality=90)),
}
cmyk = np.stack([rng.integers(0, 256, (16, 24), dtype=np.uint8) for _ in range(4)], axis=-1)
cmyk[..., :3] = np.asarray(photo.resize((24, 16)).convert("CMYK"))[..., :3]
cmyk[..., 3] = np.linspace(0, 255, 24, dtype=np.uint8)[None, :]
cases["cmyk.jpg"] = (Image.fromarray(cmyk, "CMYK"), dict(quality=90))

reference = {}
for name, (img, kw) in cases.items():
    img.save(os.path.join(out, name), **kw)
    im = Image.open(os.path.join(out, name))
    im.load()
    px = np.asarray(im if im.mode == "L" else im.convert("RGB"))
    reference[name] = {"mode": im.mode, "width": im.width, "height": im.height,
                       "sha256": hashlib.sha256(np.ascontiguousarray(px).tobytes()).hexdigest()}
    px.tofile(os.path.join(out, name.replace(".jpg", ".u8")))
with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump({"pillow": Image.__version__, "images": reference}, f, indent=1)
