#!/usr/bin/env python3
"""Makes exif-orientation-6.jpg, a 16x8 colour JPEG whose Exif data (written by Pillow, beside
a camera's make and model) says orientation 6 (viewers turn it a quarter clockwise), and
exif-orientation-6-pillow.png, the pixels Pillow reads from it as PyTorch's ImageFolder does
(`Image.open(...).convert("RGB")`: as stored, not turned). The independent reference for
ExifOrientationTests (the value) and TrainingSetTests (the advice, the pixels as stored).
Written into Tests/ImagingTests/Fixtures and Tests/GANTests/Fixtures.
Needs Pillow (python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
import shutil
from PIL import Image

root = os.path.join(os.path.dirname(__file__), "..", "Tests")
imaging = os.path.join(root, "ImagingTests", "Fixtures")
image = Image.new("RGB", (16, 8))
for y in range(8):
    for x in range(16):
        image.putpixel((x, y), (x * 15, y * 30, 255 - x * 10))
exif = Image.Exif()
exif[0x010F] = "synthd"     # Make
exif[0x0110] = "fixture"    # Model
exif[0x0112] = 6            # Orientation
jpeg = os.path.join(imaging, "exif-orientation-6.jpg")
image.save(jpeg, quality=95, subsampling=0, exif=exif)
read = Image.open(jpeg)
assert read.getexif()[0x0112] == 6 and read.size == (16, 8), read.getexif()
read.convert("RGB").save(os.path.join(imaging, "exif-orientation-6-pillow.png"))
shutil.copy(jpeg, os.path.join(root, "GANTests", "Fixtures", "exif-orientation-6.jpg"))
