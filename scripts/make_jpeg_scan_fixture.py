#!/usr/bin/env python3
"""Makes Tests/ImagingTests/Fixtures/progressive-631-scans.jpg: a valid 16x16 progressive JPEG
of 631 scans (a decoder bomb in miniature: every scan is decoded over the whole image), and
progressive-16x16.jpg, an ordinary progressive JPEG of the same pixels.

cjpeg's scan scripts allow at most 100 scans, so seven files are made, each with the DC scan
and nine AC coefficients sent by successive approximation (one first scan and nine refinements
each); their AC scans (each with its own Huffman tables) are spliced after the first file's.
djpeg decodes the result without a warning. Needs cjpeg (Debian: libjpeg-turbo-progs).
"""
import os, random, subprocess, tempfile

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures")
work = tempfile.mkdtemp()
random.seed(1)
pixels = bytes((x * 13 + y * 7 + random.randint(0, 30)) % 256 for y in range(16) for x in range(16))
pgm = os.path.join(work, "a.pgm")
open(pgm, "wb").write(b"P5\n16 16\n255\n" + pixels)


def segments(data):
    """(marker, bytes) of each segment after SOI; a scan's entropy-coded data stays with its SOS."""
    i, found = 2, []
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xD9:
            found.append((marker, data[i:i + 2]))
            break
        j = i + 2 + (data[i + 2] << 8 | data[i + 3])
        if marker == 0xDA:
            while not (data[j] == 0xFF and data[j + 1] != 0 and not 0xD0 <= data[j + 1] <= 0xD7):
                j += 1
        found.append((marker, data[i:j]))
        i = j
    return found


files = []
coefficients = list(range(1, 64))
for group, start in enumerate(range(0, 63, 9)):
    script = ["0: 0 0 0 0;"]
    for k in coefficients[start:start + 9]:
        script.append(f"0: {k} {k} 0 9;")
        script += [f"0: {k} {k} {a} {a - 1};" for a in range(9, 0, -1)]
    path = os.path.join(work, f"s{group}.txt")
    open(path, "w").write("\n".join(script) + "\n")
    jpeg = os.path.join(work, f"p{group}.jpg")
    subprocess.run(["cjpeg", "-grayscale", "-scans", path, "-outfile", jpeg, pgm], check=True)
    files.append(open(jpeg, "rb").read())

result = b"\xff\xd8" + b"".join(b for _, b in segments(files[0])[:-1])
for data in files[1:]:
    parts = segments(data)
    first_scan = next(k for k, (m, _) in enumerate(parts) if m == 0xDA)
    result += b"".join(b for _, b in parts[first_scan + 1:-1])
result += b"\xff\xd9"
open(os.path.join(out, "progressive-631-scans.jpg"), "wb").write(result)
subprocess.run(["cjpeg", "-progressive", "-grayscale", "-outfile", os.path.join(out, "progressive-16x16.jpg"), pgm], check=True)
print(len(result), "bytes,", result.count(b"\xff\xda"), "scans")
