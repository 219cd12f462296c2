#!/usr/bin/env python3
"""Makes the WebP fixtures of Tests/ImagingTests/Fixtures, each with the reading it is checked
against (JPEGTests.webp...): webp-lossy-16x12.webp and webp-lossy-16x12-pillow.png (Pillow's
reading of it: the independent reference), webp-lossless-rgba-16x12.webp and
webp-lossless-rgba-16x12.png (the same RGBA pixels as a PNG: synthd drops the alpha of both,
so lossless WebP must match its PNG exactly), and webp-animated-16x12.webp with
webp-animated-16x12-pillow.png (an animation of two frames, the first partly transparent:
Pillow, and so PyTorch's ImageFolder, reads its first frame). Needs Pillow with WebP (python3 -m venv /tmp/pv
&& /tmp/pv/bin/pip install pillow).
"""
import os
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")
rgba = Image.new("RGBA", (16, 12))
for y in range(12):
    for x in range(16):
        rgba.putpixel((x, y), (x * 15, y * 20, (x * 7 + y * 9) % 256, (x * 16 + y * 5) % 256))
rgb = rgba.convert("RGB")
rgb.save(os.path.join(out, "webp-lossy-16x12.webp"), quality=90)
Image.open(os.path.join(out, "webp-lossy-16x12.webp")).convert("RGB").save(os.path.join(out, "webp-lossy-16x12-pillow.png"))
rgba.save(os.path.join(out, "webp-lossless-rgba-16x12.webp"), lossless=True, exact=True)
rgba.save(os.path.join(out, "webp-lossless-rgba-16x12.png"))

second = Image.new("RGBA", (16, 12), (200, 30, 30, 255))
animated = os.path.join(out, "webp-animated-16x12.webp")
rgba.save(animated, save_all=True, append_images=[second], duration=100, lossless=True, exact=True)
assert getattr(Image.open(animated), "n_frames", 1) == 2
Image.open(animated).convert("RGB").save(os.path.join(out, "webp-animated-16x12-pillow.png"))
