#!/usr/bin/env python3
"""Makes the BMP fixtures of Tests/ImagingTests/Fixtures with Pillow's reading of each as a PNG,
the independent reference BMPTests checks synthd's decoder against: 24-bit (13 pixels wide, so
rows are padded), 8-bit grey and colour palettes, 1-bit, and 32-bit (Pillow writes an RGBA
image's alpha in the fourth byte of a plain 32-bit bitmap, and like synthd reads it as unused;
alpha through a mask is checked by hand in BMPTests); and RLE8 and RLE4 bitmaps, which Pillow
reads but does not write, encoded here with every kind of run (repeated, literal, end of line,
a delta jump, end of bitmap; bmp-rle8-short ends three rows early, which Pillow refuses).
Needs Pillow
(python3 -m venv /tmp/pv && /tmp/pv/bin/pip install pillow).
"""
import os
import struct
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


def rle_bitmap(name, rows, bits, palette, width, end_early=False):
    """A bottom-up RLE8 (bits 8) or RLE4 (bits 4) bitmap of `rows` (lists of palette indices,
    top row first), each row coded as `code_row` says, then its reading by Pillow."""
    data = bytearray()
    for y, row in enumerate(reversed(rows)):
        if end_early and y == len(rows) - 4:
            break
        data += code_row(row, bits, y)
        if y == 1:
            data += bytes([0, 2, 3, 1])     # a delta: 3 right and 1 up (the skipped pixels read as index 0)
    data += bytes([0, 1])                 # end of bitmap
    info = struct.pack("<IiiHHIIiiII", 40, width, len(rows), 1, bits, 1 if bits == 8 else 2, len(data), 2835, 2835,
                       len(palette), 0)
    table = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    offset = 14 + len(info) + len(table)
    path = os.path.join(out, name + ".bmp")
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + table + data)
    read = Image.open(path)
    try:
        read.convert("RGB").save(os.path.join(out, name + "-pillow.png"))
        print(name, read.mode, os.path.getsize(path))
    except (OSError, ValueError) as error:
        print(name, "refused by Pillow:", error)


def code_row(row, bits, y):
    """Runs of equal indices as repeated runs, the rest as a literal run (absolute mode, padded
    to a 16-bit word), ended by an end of line; RLE4's repeated runs alternate two indices."""
    coded, i = bytearray(), 0
    literal = []

    def flush():
        nonlocal literal
        if len(literal) >= 3:
            if bits == 8:
                body = bytes(literal)
            else:
                padded = literal + [0] * (len(literal) % 2)
                body = bytes(padded[k] << 4 | padded[k + 1] for k in range(0, len(padded), 2))
            coded.extend(bytes([0, len(literal)]) + body + (b"\0" if len(body) % 2 else b""))
        else:
            for value in literal:
                coded.extend(bytes([1, value if bits == 8 else value << 4]))
        literal = []

    while i < len(row):
        run = 1
        while i + run < len(row) and row[i + run] == row[i]:
            run += 1
        if run >= 3:
            flush()
            coded.extend(bytes([run, row[i] if bits == 8 else row[i] << 4 | row[i]]))
        else:
            literal.extend(row[i:i + run])
        i += run
    flush()
    return bytes(coded) + bytes([0, 0])  # end of line


colours = [(x * 60 % 256, 255 - x * 20, (x * 90) % 256) for x in range(12)]
pattern = [[(x // 3 + y) % 12 if x < 9 else (x * y) % 12 for x in range(13)] for y in range(9)]
rle_bitmap("bmp-rle8", pattern, 8, colours, 13)
rle_bitmap("bmp-rle4", pattern, 4, colours, 13)
rle_bitmap("bmp-rle8-short", pattern, 8, colours, 13, end_early=True)
