"""Builds the two "synthetic" folders that bound what any generator can add to a small real
set (docs/quality.md, "What a perfect generator would add"):

  new-real  PER_CLASS images per class that are in FULL but not in REAL (hard links): what a
            perfect generator would write;
  shifted   PER_CLASS images per class made from REAL's own images, each moved 1-2 pixels
            (up to MAX_SHIFT, the optional last argument) at random with its edges repeated:
            variation learnt from the real images alone. REAL may be synthd's output tree
            (files beside the class folders, such as manifest.jsonl, are skipped).
  deformed  as shifted, but each copy turned by up to DEGREES (the optional last argument,
            default 10), scaled by up to 10% either way and moved by up to 2 pixels.
  flipped   REAL's images mirrored left to right: the first copy of each image as it is
            mirrored, further copies (PER_CLASS above the class's count) mirrored and moved
            1-2 pixels as `shifted` moves them.
  blended   PER_CLASS images per class, each two of the class's real images averaged pixel by
            pixel with a weight drawn from 0.3-0.7 (mixup within a class, labels unchanged):
            variation between the real images, where the others vary each image alone.
  toned     as shifted, but each copy's tones changed instead of its place: its pixels scaled
            by a factor drawn from 0.7-1.3 and put through a gamma drawn from 0.75-1.33 (the
            black background stays black): the variation of ink and lighting between photos.

    scripts/with-torch python3 scripts/bound_folders.py new-real data/small out/bound/new-real/small 50 data/fashion
    scripts/with-torch python3 scripts/bound_folders.py shifted  data/small out/bound/shifted/small 50
    scripts/with-torch python3 scripts/bound_folders.py deformed data/small out/bound/deformed/small 250 10
    scripts/with-torch python3 scripts/bound_folders.py flipped  data/small out/bound/flipped/small 50
    scripts/with-torch python3 scripts/bound_folders.py blended  data/small out/bound/blended/small 250
    scripts/with-torch python3 scripts/bound_folders.py toned    data/small out/bound/toned/small 250
    .build/release/synthd eval data/small out/bound/new-real/small --test data/fashion-test --seeds 3 --multiples 0.5,1

Reads and writes 8-bit greyscale PNG (what `synthd import-idx` writes) with the standard
library and NumPy only. Seeded: the same arguments make the same folders.
"""
import os
import random
import struct
import sys
import zlib

import numpy as np


def read_grey_png(path):
    data = open(path, 'rb').read()
    pos, idat, width, height = 8, b'', 0, 0
    while pos < len(data):
        length, = struct.unpack('>I', data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            width, height, depth, colour = struct.unpack('>IIBB', body[:10])
            if depth != 8 or colour != 0 or body[12] != 0:
                sys.exit(f'{path}: not an 8-bit greyscale, non-interlaced PNG')
        elif kind == b'IDAT':
            idat += body
        pos += 12 + length
    raw, out = zlib.decompress(idat), np.zeros((height, width), np.int32)
    previous = np.zeros(width, np.int32)
    for y in range(height):
        kind = raw[y * (width + 1)]
        line = np.frombuffer(raw[y * (width + 1) + 1:(y + 1) * (width + 1)], np.uint8).astype(np.int32)
        row = np.zeros(width, np.int32)
        for x in range(width):  # PNG's five row filters, undone pixel by pixel
            a, b = (row[x - 1] if x else 0), previous[x]
            c = previous[x - 1] if x else 0
            if kind == 0: p = 0
            elif kind == 1: p = a
            elif kind == 2: p = b
            elif kind == 3: p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[x] = (line[x] + p) & 255
        out[y], previous = row, row
    return out.astype(np.uint8)


def write_grey_png(path, image):
    height, width = image.shape
    raw = b''.join(b'\0' + image[y].tobytes() for y in range(height))

    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    with open(path + '.partial', 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
    os.replace(path + '.partial', path)


def shifted(image, down, right):
    height, width = image.shape
    rows = np.clip(np.arange(height) - down, 0, height - 1)
    columns = np.clip(np.arange(width) - right, 0, width - 1)
    return image[rows][:, columns]


def deformed(image, rng, degrees, scale, most):
    """IMAGE turned by up to DEGREES, scaled by up to SCALE either way and moved by up to MOST
    pixels about its centre (bilinear, edges repeated): a small random affine map."""
    height, width = image.shape
    angle = np.radians(rng.uniform(-degrees, degrees))
    factor = 1 + rng.uniform(-scale, scale)
    down, right = rng.uniform(-most, most), rng.uniform(-most, most)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    y, x = y - cy - down, x - cx - right          # each output pixel, back to where it came from
    cos, sin = np.cos(angle) / factor, np.sin(angle) / factor
    sy, sx = cos * y - sin * x + cy, sin * y + cos * x + cx
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    pixels = image.astype(np.float64)

    def at(r, c):
        return pixels[np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)]
    value = (at(y0, x0) * (1 - fy) * (1 - fx) + at(y0, x0 + 1) * (1 - fy) * fx
             + at(y0 + 1, x0) * fy * (1 - fx) + at(y0 + 1, x0 + 1) * fy * fx)
    return np.clip(np.rint(value), 0, 255).astype(np.uint8)


def main(argv):
    if len(argv) < 5 or argv[1] not in ('new-real', 'shifted', 'deformed', 'flipped', 'blended', 'toned') or (argv[1] == 'new-real' and len(argv) < 6):
        sys.exit(__doc__)
    mode, real, out, per_class = argv[1], argv[2], argv[3], int(argv[4])
    most = int(argv[5]) if mode == 'shifted' and len(argv) > 5 else 2
    rng = random.Random(1)
    for name in sorted(n for n in os.listdir(real) if os.path.isdir(os.path.join(real, n))):
        files = sorted(os.listdir(os.path.join(real, name)))
        os.makedirs(os.path.join(out, name), exist_ok=True)
        if mode == 'deformed':
            images = [read_grey_png(os.path.join(real, name, f)) for f in files if f.endswith('.png')]
            degrees = float(argv[5]) if len(argv) > 5 else 10
            for i in range(per_class):
                write_grey_png(os.path.join(out, name, f'{i:05d}.png'),
                               deformed(images[i % len(images)], rng, degrees, 0.1, 2))
        elif mode == 'toned':
            images = [read_grey_png(os.path.join(real, name, f)).astype(np.float64) / 255 for f in files if f.endswith('.png')]
            for i in range(per_class):
                factor, gamma = rng.uniform(0.7, 1.3), np.exp(rng.uniform(np.log(0.75), np.log(1 / 0.75)))
                image = np.clip(np.rint(255 * factor * images[i % len(images)] ** gamma), 0, 255).astype(np.uint8)
                write_grey_png(os.path.join(out, name, f'{i:05d}.png'), image)
        elif mode == 'blended':
            images = [read_grey_png(os.path.join(real, name, f)).astype(np.float64) for f in files if f.endswith('.png')]
            for i in range(per_class):
                a, b = rng.sample(range(len(images)), 2)
                weight = rng.uniform(0.3, 0.7)
                image = np.clip(np.rint(weight * images[a] + (1 - weight) * images[b]), 0, 255).astype(np.uint8)
                write_grey_png(os.path.join(out, name, f'{i:05d}.png'), image)
        elif mode == 'flipped':
            images = [read_grey_png(os.path.join(real, name, f))[:, ::-1] for f in files if f.endswith('.png')]
            for i in range(per_class):
                image = images[i % len(images)]
                if i >= len(images):
                    down = right = 0
                    while down == 0 and right == 0:
                        down, right = rng.randint(-2, 2), rng.randint(-2, 2)
                    image = shifted(image, down, right)
                write_grey_png(os.path.join(out, name, f'{i:05d}.png'), image)
        elif mode == 'shifted':
            images = [read_grey_png(os.path.join(real, name, f)) for f in files]
            for i in range(per_class):
                down = right = 0
                while down == 0 and right == 0:
                    down, right = rng.randint(-most, most), rng.randint(-most, most)
                write_grey_png(os.path.join(out, name, f'{i:05d}.png'), shifted(images[i % len(images)], down, right))
        else:
            others = sorted(set(os.listdir(os.path.join(argv[5], name))) - set(files))
            rng.shuffle(others)
            if len(others) < per_class:
                sys.exit(f'{argv[5]}/{name}: only {len(others)} images that {real}/{name} lacks, {per_class} asked')
            for i, f in enumerate(others[:per_class]):
                os.link(os.path.join(argv[5], name, f), os.path.join(out, name, f'{i:05d}.png'))


if __name__ == '__main__':
    main(sys.argv)
