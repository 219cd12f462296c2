#!/usr/bin/env python3
"""Makes the transparency fixtures of Tests/ImagingTests/Fixtures, each beside the pixels
Pillow reads from it as PyTorch's ImageFolder does (`Image.open(...).convert("RGB")`, or "L"
for grey: the alpha dropped, the colours stored under it kept), the independent reference
for TransparencyTests:
- png-rgba-16x12.png: a logo on a transparent background whose stored colour is white (what
  many editors write under alpha 0), its edge half transparent;
- png-la-16x12.png: grey with alpha;
- png-palette-trns-16x12.png: a palette with a transparent entry (tRNS);
- webp-lossless-rgba-16x12-pillow.png: Pillow's reading of the existing lossless WebP
  (make_webp_fixture.py), whose pixels carry every alpha.
The RGBA PNG is also copied into Tests/GANTests/Fixtures (TrainingSetTests: the advice).
Needs Pillow (python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
import shutil
from PIL import Image

root = os.path.join(os.path.dirname(__file__), "..", "Tests")
out = os.path.join(root, "ImagingTests", "Fixtures")


def path(name):
    return os.path.join(out, name)


def pillow_reference(name, mode):
    Image.open(path(name)).convert(mode).save(path(name.rsplit(".", 1)[0] + "-pillow.png"))


logo = Image.new("RGBA", (16, 12), (255, 255, 255, 0))
for y in range(12):
    for x in range(16):
        d = max(abs(x - 7.5), abs(y - 5.5))
        if d < 4:
            logo.putpixel((x, y), (200 - x * 5, 40 + y * 10, 90, 255))
        elif d < 5:
            logo.putpixel((x, y), (200 - x * 5, 40 + y * 10, 90, 128))
logo.save(path("png-rgba-16x12.png"))
pillow_reference("png-rgba-16x12.png", "RGB")
shutil.copy(path("png-rgba-16x12.png"), os.path.join(root, "GANTests", "Fixtures", "png-rgba-16x12.png"))

la = Image.new("LA", (16, 12))
for y in range(12):
    for x in range(16):
        la.putpixel((x, y), ((x * 13 + y * 7) % 256, (x * 16 + y * 5) % 256))
la.save(path("png-la-16x12.png"))
pillow_reference("png-la-16x12.png", "L")

palette = Image.new("P", (16, 12))
palette.putpalette([250, 250, 250, 200, 30, 30, 30, 30, 200, 20, 160, 20])
for y in range(12):
    for x in range(16):
        palette.putpixel((x, y), 0 if (x + y) % 5 == 0 else 1 + (x * y) % 3)
palette.save(path("png-palette-trns-16x12.png"), transparency=0)
assert "transparency" in Image.open(path("png-palette-trns-16x12.png")).info
pillow_reference("png-palette-trns-16x12.png", "RGB")

pillow_reference("webp-lossless-rgba-16x12.webp", "RGB")
