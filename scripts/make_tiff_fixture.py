#!/usr/bin/env python3
"""Makes the TIFF fixtures of Tests/ImagingTests/Fixtures (tiff-*.tif), each with the image it
is checked against (TIFFTests): Pillow's reading of it converted to RGB or L (the independent
reference) where Pillow and synthd agree, and otherwise the expected pixels computed here:
alpha composited over black (Pillow's convert drops it), 16-bit samples scaled to 8 bits
(Pillow clips them at 255). Needs Pillow (python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
import struct
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")


def path(name):
    return os.path.join(out, name)


def rgba():
    image = Image.new("RGBA", (16, 12))
    for y in range(12):
        for x in range(16):
            image.putpixel((x, y), (x * 15, y * 20, (x * 7 + y * 9) % 256, (x * 16 + y * 5) % 256))
    return image


def pillow_reference(name, mode):
    Image.open(path(name)).convert(mode).save(path(name.replace(".tif", "-pillow.png")))


rgb = rgba().convert("RGB")
rgb.save(path("tiff-rgb-lzw-16x12.tif"), compression="tiff_lzw")
pillow_reference("tiff-rgb-lzw-16x12.tif", "RGB")

grey = rgba().convert("L")
grey.save(path("tiff-grey-deflate-16x12.tif"), compression="tiff_adobe_deflate")
pillow_reference("tiff-grey-deflate-16x12.tif", "L")

rgb.quantize(colors=12).save(path("tiff-palette-packbits-16x12.tif"), compression="packbits")
pillow_reference("tiff-palette-packbits-16x12.tif", "RGB")

rgb.convert("CMYK").save(path("tiff-cmyk-16x12.tif"))
pillow_reference("tiff-cmyk-16x12.tif", "RGB")

bilevel = Image.new("1", (16, 12))
for y in range(12):
    for x in range(16):
        bilevel.putpixel((x, y), 255 if (x * 3 + y * 5) % 7 < 3 else 0)
bilevel.save(path("tiff-bilevel-g4-16x12.tif"), compression="group4")
pillow_reference("tiff-bilevel-g4-16x12.tif", "L")

photo = Image.new("RGB", (64, 48))
for y in range(48):
    for x in range(64):
        photo.putpixel((x, y), (x * 4, y * 5, (x + y) * 2))
photo.save(path("tiff-jpeg-64x48.tif"), compression="jpeg", quality=90)
pillow_reference("tiff-jpeg-64x48.tif", "RGB")

# Two pages: the first is read.
second = Image.new("RGB", (16, 12), (200, 10, 10))
rgb.save(path("tiff-two-pages-16x12.tif"), save_all=True, append_images=[second])
pillow_reference("tiff-two-pages-16x12.tif", "RGB")


def over_black(image):
    """RGB(A) or LA composited over black, rounded as synthd rounds: (v * a + 127) // 255."""
    bands = image.split()
    alpha = bands[-1].tobytes()
    composited = []
    for band in bands[:-1]:
        values = bytes((v * a + 127) // 255 for v, a in zip(band.tobytes(), alpha))
        composited.append(Image.frombytes("L", image.size, values))
    return Image.merge("RGB" if len(composited) == 3 else "L", composited)


rgba().save(path("tiff-rgba-16x12.tif"))
assert Image.open(path("tiff-rgba-16x12.tif")).mode == "RGBA"
over_black(rgba()).save(path("tiff-rgba-16x12-over-black.png"))

la = rgba().convert("LA")
la.save(path("tiff-la-16x12.tif"))
assert Image.open(path("tiff-la-16x12.tif")).mode == "LA"
over_black(la).save(path("tiff-la-16x12-over-black.png"))

# 16-bit grey, as microscopes write: the expected image is each sample scaled to 8 bits.
values = [(x * 4111 + y * 2999) % 65536 for y in range(12) for x in range(16)]
Image.frombytes("I;16", (16, 12), struct.pack("<%dH" % len(values), *values)).save(path("tiff-grey16-16x12.tif"))
assert Image.open(path("tiff-grey16-16x12.tif")).mode == "I;16"
Image.frombytes("L", (16, 12), bytes((v * 255 + 32767) // 65535 for v in values)).save(path("tiff-grey16-16x12-scaled.png"))

# Float samples: refused with what to do.
Image.new("F", (16, 12), 0.5).save(path("tiff-float-16x12.tif"))
