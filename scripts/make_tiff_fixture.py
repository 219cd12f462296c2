#!/usr/bin/env python3
"""Makes the TIFF fixtures of Tests/ImagingTests/Fixtures (tiff-*.tif), each with the image it
is checked against (TIFFTests): Pillow's reading of it converted to RGB or L (the independent
reference) where Pillow and synthd agree (alpha too: both drop it, keeping the colours stored
under it, and a colour premultiplied by an associated alpha is divided back), and otherwise the
expected pixels computed here: 16-bit samples scaled to 8 bits (Pillow clips them at 255). Needs Pillow (python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
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


def with_extra_samples(name, kind):
    """The TIFF `name` with its ExtraSamples tag (338) set to `kind`, in place: Pillow writes
    only unassociated alpha (2); 1 is associated (premultiplied) alpha, 0 an unspecified sample."""
    data = bytearray(open(path(name), "rb").read())
    directory = struct.unpack_from("<I", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, directory)[0]):
        at = directory + 2 + 12 * entry
        if struct.unpack_from("<H", data, at)[0] == 338:
            struct.pack_into("<H", data, at + 8, kind)
            open(path(name), "wb").write(data)
            return
    raise SystemExit(name + ": no ExtraSamples tag")


rgba().save(path("tiff-rgba-16x12.tif"))
assert Image.open(path("tiff-rgba-16x12.tif")).mode == "RGBA"
pillow_reference("tiff-rgba-16x12.tif", "RGB")

la = rgba().convert("LA")
la.save(path("tiff-la-16x12.tif"))
assert Image.open(path("tiff-la-16x12.tif")).mode == "LA"
pillow_reference("tiff-la-16x12.tif", "L")

# Associated alpha: the colours stored premultiplied (each at most its alpha), which Pillow
# divides back when it loads them.
premultiplied = Image.new("RGBA", (16, 12))
for y in range(12):
    for x in range(16):
        a = (x * 16 + y * 5) % 256
        premultiplied.putpixel((x, y), (x * 15 * a // 255, y * 20 * a // 255, (x * 7 + y * 9) % 256 * a // 255, a))
premultiplied.save(path("tiff-rgba-associated-16x12.tif"))
with_extra_samples("tiff-rgba-associated-16x12.tif", 1)
assert Image.open(path("tiff-rgba-associated-16x12.tif")).mode == "RGBA"
pillow_reference("tiff-rgba-associated-16x12.tif", "RGB")

# An unspecified fourth sample: not alpha (Pillow reads RGBX).
rgba().save(path("tiff-rgbx-16x12.tif"))
with_extra_samples("tiff-rgbx-16x12.tif", 0)
assert Image.open(path("tiff-rgbx-16x12.tif")).mode == "RGB"
pillow_reference("tiff-rgbx-16x12.tif", "RGB")

# 16-bit grey, as microscopes write: the expected image is each sample scaled to 8 bits.
values = [(x * 4111 + y * 2999) % 65536 for y in range(12) for x in range(16)]
Image.frombytes("I;16", (16, 12), struct.pack("<%dH" % len(values), *values)).save(path("tiff-grey16-16x12.tif"))
assert Image.open(path("tiff-grey16-16x12.tif")).mode == "I;16"
Image.frombytes("L", (16, 12), bytes((v * 255 + 32767) // 65535 for v in values)).save(path("tiff-grey16-16x12-scaled.png"))

# Float samples: refused with what to do.
Image.new("F", (16, 12), 0.5).save(path("tiff-float-16x12.tif"))
