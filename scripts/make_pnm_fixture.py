#!/usr/bin/env python3
"""Makes Tests/ImagingTests/Fixtures/pnm-13x9.ppm and .pgm (binary P6 and P5, as Pillow writes
them) with Pillow's reading of each as a PNG, the reference PNMTests checks synthd's decoder
against; the plain-text and 16-bit kinds are checked by hand there. Needs Pillow
(python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")
rgb = Image.new("RGB", (13, 9))
for y in range(9):
    for x in range(13):
        rgb.putpixel((x, y), (x * 19, y * 28, (x * 7 + y * 9) % 256))
for name, image in {"pnm-13x9.ppm": rgb, "pnm-13x9.pgm": rgb.convert("L")}.items():
    image.save(os.path.join(out, name))
    Image.open(os.path.join(out, name)).save(os.path.join(out, name.replace(".", "-") + "-pillow.png"))
