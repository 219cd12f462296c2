#!/usr/bin/env python3
"""Makes Tests/ImagingTests/Fixtures/photo-600x400.jpg, a photo-like colour JPEG (gradients,
shapes, noise; 4:2:0 chroma, as cameras write), and photo-600x400-draft-75x50-pillow.png, the
image Pillow decodes from it with draft("RGB", (75, 50)): libjpeg's DCT scaling by 1/8, the
independent reference that synthd's reduced decoding is checked against
(JPEGTests.largeJPEGsDecodeReducedAsPillowsDraft). Also photo-600x400-pillow.png, the whole
image as Pillow reads it.
Needs Pillow (python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
import random
from PIL import Image, ImageDraw

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")
random.seed(7)
image = Image.new("RGB", (600, 400))
pixels = image.load()
for y in range(400):
    for x in range(600):
        pixels[x, y] = (x * 255 // 599, y * 255 // 399, (x + y) * 255 // 998)
draw = ImageDraw.Draw(image)
for _ in range(25):
    x, y = random.randrange(600), random.randrange(400)
    w, h = random.randrange(20, 200), random.randrange(20, 150)
    colour = tuple(random.randrange(256) for _ in range(3))
    (draw.ellipse if random.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=colour)
for _ in range(20000):
    x, y = random.randrange(600), random.randrange(400)
    r, g, b = pixels[x, y]
    d = random.randrange(-30, 31)
    pixels[x, y] = (max(0, min(255, r + d)), max(0, min(255, g + d)), max(0, min(255, b + d)))
jpeg = os.path.join(out, "photo-600x400.jpg")
image.save(jpeg, quality=85, subsampling=2)
draft = Image.open(jpeg)
draft.draft("RGB", (75, 50))
assert draft.size == (75, 50), draft.size
draft.convert("RGB").save(os.path.join(out, "photo-600x400-draft-75x50-pillow.png"))
