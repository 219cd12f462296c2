#!/usr/bin/env python3
"""Makes tiff-orientation-1.tif ... tiff-orientation-8.tif in Tests/ImagingTests/Fixtures: the same
5x3 colour image stored as is, each with its Orientation tag, and with each
tiff-orientation-N-pillow.png, the image Pillow reads from it as PyTorch's ImageFolder does
(`Image.open(...).convert("RGB")`: Pillow turns a TIFF as its tag says when it loads it, 3x5
for 5-8). The independent reference for TIFFTests.theOrientationTagTurnsTheImageAsPillowDoes.
Needs Pillow (python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")
image = Image.new("RGB", (5, 3))
for y in range(3):
    for x in range(5):
        image.putpixel((x, y), (x * 60, y * 120, 10 + x + 5 * y))
for orientation in range(1, 9):
    name = os.path.join(out, f"tiff-orientation-{orientation}.tif")
    image.save(name, tiffinfo={274: orientation})
    read = Image.open(name).convert("RGB")
    assert read.size == ((3, 5) if orientation >= 5 else (5, 3)), (orientation, read.size)
    read.save(name.replace(".tif", "-pillow.png"))
