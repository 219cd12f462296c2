#!/usr/bin/env python3
"""Makes Tests/ImagingTests/Fixtures/cmyk-16x12.jpg, a CMYK JPEG as Pillow writes it (Adobe
marker, values stored inverted, as Photoshop does), with every ink varying (black included),
and cmyk-16x12-pillow.png, the RGB image Pillow reads it as: the independent reference that
synthd's CMYK decoding is checked against (JPEGTests.cmykJPEGsReadAsPillowReadsThem).
Needs Pillow (python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")
image = Image.new("CMYK", (16, 12))
for y in range(12):
    for x in range(16):
        image.putpixel((x, y), (x * 15, y * 20, (x * 7 + y * 9) % 200, (x * 5 + y * 11) % 160))
jpeg = os.path.join(out, "cmyk-16x12.jpg")
image.save(jpeg, quality=95, subsampling=0)
read = Image.open(jpeg)
assert read.mode == "CMYK" and "adobe" in read.info, read.info
read.convert("RGB").save(os.path.join(out, "cmyk-16x12-pillow.png"))
