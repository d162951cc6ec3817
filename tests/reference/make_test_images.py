"""Makes the test images in tests/fixtures/images/: real photos from scikit-image's data (public
domain / CC0, shipped in its wheel) in each codec the engine decodes, and drawn images for the
edge cases (1x1, a 4000x300 strip, grayscale, alpha, CMYK, an animated GIF).

Run with the reference environment (scripts/pyref-env.sh): .cache/pyref-venv/bin/python this.py
"""
import os

import numpy as np
from PIL import Image
from skimage import data

out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "images")
os.makedirs(out, exist_ok=True)


def save(img, name, **kw):
    img.save(os.path.join(out, name), **kw)
    print(name, img.mode, img.size, os.path.getsize(os.path.join(out, name)))


# Real photos.
save(Image.fromarray(data.chelsea()), "cat.jpg", quality=90)  # 451x300, a cat
save(Image.fromarray(data.coffee()), "coffee.png")  # 600x400
save(Image.fromarray(data.astronaut()).resize((256, 256), Image.LANCZOS), "astronaut.webp", lossless=True)
save(Image.fromarray(data.rocket()).resize((320, 214), Image.LANCZOS), "rocket.bmp")  # a landscape photo
save(Image.fromarray(data.camera()), "camera-gray.png")  # 512x512, grayscale (L)

# Drawn edge cases.
y, x = np.mgrid[0:48, 0:64]
gradient = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)
save(Image.fromarray(gradient), "gradient.png")
save(Image.fromarray(np.array([[[200, 30, 90]]], dtype=np.uint8)), "one-pixel.png")
y, x = np.mgrid[0:300, 0:4000]
strip = np.stack([(x // 16) % 256, (y * 255 // 299), ((x // 50 + y // 50) % 2) * 255], axis=-1).astype(np.uint8)
save(Image.fromarray(strip), "strip-4000x300.png")
y, x = np.mgrid[0:80, 0:120]
rgba = np.stack([x * 2, y * 3, np.full_like(x, 128), (x + y) * 255 // 198], axis=-1).astype(np.uint8)
save(Image.fromarray(rgba, "RGBA"), "alpha.png")
save(Image.fromarray(data.chelsea()).resize((150, 100)).convert("CMYK"), "cmyk.jpg", quality=92)
frames = [Image.fromarray(np.full((40, 60, 3), c, dtype=np.uint8)) for c in ((250, 0, 0), (0, 0, 250))]
frames[0].paste(Image.fromarray(gradient[:20, :30]), (10, 10))
frames[0].save(os.path.join(out, "two-frames.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
print("two-frames.gif", os.path.getsize(os.path.join(out, "two-frames.gif")))

# A JPEG whose EXIF orientation (6: rotate 90 degrees clockwise to display) must be applied, as
# transformers' load_image (ImageOps.exif_transpose) and Transformers.js (sharp's rotate()) do.
exif = Image.Exif()
exif[0x0112] = 6
save(Image.fromarray(data.chelsea()).resize((90, 60), Image.LANCZOS), "exif-rotated.jpg", quality=92, exif=exif.tobytes())
