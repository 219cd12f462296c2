#!/usr/bin/env python3
"""Makes the BMP fixtures of Tests/ImagingTests/Fixtures with Pillow's reading of each as a PNG,
the independent reference BMPTests checks synthd's decoder against: 24-bit (13 pixels wide, so
rows are padded), 8-bit grey and colour palettes, 1-bit, and 32-bit (Pillow writes an RGBA
image's alpha in the fourth byte of a plain 32-bit bitmap, and like synthd reads it as unused;
alpha through a mask is checked by hand in BMPTests). Needs Pillow
(python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")
rgba = Image.new("RGBA", (13, 9))
for y in range(9):
    for x in range(13):
        rgba.putpixel((x, y), (x * 19, y * 28, (x * 7 + y * 9) % 256, 255 if x < 6 else (x * 16 + y * 5) % 256))
rgb = rgba.convert("RGB")
kinds = {"bmp-24": rgb, "bmp-8-grey": rgb.convert("L"), "bmp-8-palette": rgb.convert("P", palette=Image.ADAPTIVE, colors=40),
         "bmp-1": rgb.convert("1"), "bmp-32-rgba": rgba}
for name, image in kinds.items():
    path = os.path.join(out, name + ".bmp")
    image.save(path)
    read = Image.open(path)
    read.convert("RGB").save(os.path.join(out, name + "-pillow.png"))
    print(name, read.mode, os.path.getsize(path))
