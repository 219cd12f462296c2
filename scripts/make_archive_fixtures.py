#!/usr/bin/env python3
"""Writes the archives of Tests/ArchivesTests/Fixtures with Python's zipfile and tarfile (an
implementation independent of synthd's readers), and expected.json: for each archive, the
files synthd should unpack (path below the dataset root -> zlib CRC-32 of the bytes), the
dataset root's name relative to the destination, and the members it should report skipped.

    TZ=UTC python3 scripts/make_archive_fixtures.py Tests/ArchivesTests/Fixtures

(the .tar.zst fixture needs zstd(1): apt-get install zstd)
"""
import io, json, os, struct, sys, tarfile, time, zipfile, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from archive_fixture_support import png, expect as expect_in

# zipfile stamps members with the time of writing: a fixed time keeps the fixtures' bytes the
# same from one run of this script to the next.
time.time = lambda: 1796342400.0

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


expected = {}
def expect(name, root, files, skipped=()):
    expect_in(expected, name, root, files, skipped)

# A Mac-made zip of a folder: the classes one level down, resource forks, a README, folders listed.
files = {"daisy/a.png": png(1), "daisy/b.png": png(2), "rose/c.png": png(3), "rose/deep/d.png": png(4)}
with zipfile.ZipFile(f"{out}/flowers.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("flowers/", b"")
    for p, b in files.items():
        z.writestr("flowers/" + p, b)
    z.writestr("flowers/README.txt", b"about the flowers")
    z.writestr("flowers/.DS_Store", b"\0\0\0\1Bud1")
    z.writestr("__MACOSX/flowers/daisy/._a.png", b"\0\5\26\7resource fork")
    z.writestr("flowers/synthd.toml", b"[training]\nminutes = 1\n")
files_with_toml = dict(files, **{"synthd.toml": b"[training]\nminutes = 1\n"})
expect("flowers.zip", "flowers", files_with_toml)

# The classes at the top, stored (not deflated), zip64 records forced.
files = {"cat/1.png": png(5), "dog/2.png": png(6)}
with zipfile.ZipFile(f"{out}/zip64.zip", "w", zipfile.ZIP_STORED) as z:
    for p, b in files.items():
        with z.open(p, "w", force_zip64=True) as f:
            f.write(b)
expect("zip64.zip", "", files)

# A gzip'd tar with a pax long name and a GNU one, classes at the top, the gzip in two members.
long_class = "a-class-with-a-name-longer-than-the-hundred-bytes-of-a-ustar-name-field-" + "x" * 40
files = {"shirt/1.png": png(7), f"{long_class}/2.png": png(8), "shirt/3.png": png(9)}
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
    for p, b in files.items():
        info = tarfile.TarInfo(p)
        info.size = len(b)
        t.addfile(info, io.BytesIO(b))
data = buffer.getvalue()
half = len(data) // 2
with open(f"{out}/two-members.tar.gz", "wb") as f:
    for part in (data[:half], data[half:]):
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        f.write(c.compress(part) + c.flush())
expect("two-members.tar.gz", "", files)

# A hostile tar: a way out by '..', an absolute name, links, a FIFO, a GNU long name, an
# unsafe name, a GIF; one good image.
files = {"ok/good.png": png(10), "ok/" + "g" * 120 + ".png": png(11), "abs/x.png": png(12)}
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as t:
    def add(name, data=b"", kind=tarfile.REGTYPE, link=""):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    add("ok/good.png", files["ok/good.png"])
    add("../escape.png", png(13))
    add("ok/../../escape2.png", png(14))
    add("/abs/x.png", files["abs/x.png"])
    add("ok/link.png", kind=tarfile.SYMTYPE, link="/etc/passwd")
    add("ok/hard.png", kind=tarfile.LNKTYPE, link="ok/good.png")
    add("ok/fifo.png", kind=tarfile.FIFOTYPE)
    add("ok/" + "g" * 120 + ".png", files["ok/" + "g" * 120 + ".png"])
    add("ok/anim.gif", b"GIF89a")
    add("ok/bad\x01name.png", png(15))
with open(f"{out}/hostile.tar", "wb") as f:
    f.write(buffer.getvalue())
expect("hostile.tar", "", files, ["../escape.png", "ok/../../escape2.png", "ok/link.png", "ok/hard.png", "ok/fifo.png",
                                  "ok/anim.gif", "ok/bad\x01name.png"])


# A path longer than Linux's 4,096 bytes (17 folders of 250 bytes): skipped, the rest unpacked.
deep = "/".join(["d" * 250] * 17) + "/x.png"
files = {"ok/1.png": png(21)}
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
    for name, data in (("ok/1.png", files["ok/1.png"]), (deep, png(22))):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
with open(f"{out}/long-path.tar", "wb") as f:
    f.write(buffer.getvalue())
expect("long-path.tar", "", files, [deep])


# The other compressions of a tar, each as its own tool writes it (two xz streams and two
# bzip2 streams concatenated, as pixz and pbzip2 write them; zstd(1) for Zstandard, which
# Python's standard library has only from 3.14).
import bz2, lzma, subprocess
files = {"boot/1.png": png(23), "sandal/2.png": png(24), "sandal/3.png": png(25)}
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
    for name, data in files.items():
        info = tarfile.TarInfo("shoes/" + name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
data = buffer.getvalue()
half = len(data) // 2
with open(f"{out}/shoes.tar.xz", "wb") as f:
    f.write(lzma.compress(data[:half]) + lzma.compress(data[half:]))
with open(f"{out}/shoes.tar.bz2", "wb") as f:
    f.write(bz2.compress(data[:half]) + bz2.compress(data[half:]))
with open(f"{out}/shoes.tar.zst", "wb") as f:
    f.write(subprocess.run(["zstd", "-q", "-c", "-19"], input=data, capture_output=True, check=True).stdout)
for suffix in ("xz", "bz2", "zst"):
    expect(f"shoes.tar.{suffix}", "shoes", files)


def patch_zip(path, edit):
    """Rewrites a zip's bytes through edit(bytes) -> bytes."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    with open(path, "wb") as f:
        f.write(edit(data))

# Members compressed by bzip2 (method 12) and LZMA (14, with its end marker, as zipfile writes
# it), as 7-Zip and Python can write them.
files = {"cat/1.png": png(16), "cat/2.png": png(26), "dog/3.png": png(27)}
for method, name in ((zipfile.ZIP_BZIP2, "bzip2.zip"), (zipfile.ZIP_LZMA, "lzma.zip")):
    with zipfile.ZipFile(f"{out}/{name}", "w", method) as z:
        for p, b in files.items():
            z.writestr(p, b)
    expect(name, "", files)

# A member compressed by PPMd (method 98, as 7-Zip can write it): refused with the method's
# name. A stored member with the method patched in both headers.
with zipfile.ZipFile(f"{out}/ppmd.zip", "w", zipfile.ZIP_STORED) as z:
    z.writestr("cat/1.png", png(16))
def set_ppmd(data):
    for signature, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = data.index(signature)
        data[at + method_at:at + method_at + 2] = struct.pack("<H", 98)
    return data

# An encrypted member (the flag set in both headers; the data is what it is).
with zipfile.ZipFile(f"{out}/encrypted.zip", "w", zipfile.ZIP_STORED) as z:
    z.writestr("cat/1.png", png(17))
def set_encrypted(data):
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        data[at + flag_at] |= 1
    return data
patch_zip(f"{out}/encrypted.zip", set_encrypted)
patch_zip(f"{out}/ppmd.zip", set_ppmd)

# A legacy (code page 437) name: "caf\x82" is "café", no UTF-8 flag.
with zipfile.ZipFile(f"{out}/cp437.zip", "w", zipfile.ZIP_STORED) as z:
    z.writestr("cafX/1.png", png(18))
    z.writestr("tea/2.png", png(19))
patch_zip(f"{out}/cp437.zip", lambda d: bytearray(bytes(d).replace(b"cafX/", b"caf\x82/")))
expect("cp437.zip", "", {"caf\u00e9/1.png": png(18), "tea/2.png": png(19)})

# A member that inflates to more than its directory says (a bomb's trick): sizes patched down.
with zipfile.ZipFile(f"{out}/understated.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("cat/1.png", png(20) + bytes(5000))
def understate(data):
    at = data.index(b"PK\x01\x02")
    data[at + 24:at + 28] = struct.pack("<I", 100)
    at = data.index(b"PK\x03\x04")
    data[at + 22:at + 26] = struct.pack("<I", 100)
    return data
patch_zip(f"{out}/understated.zip", understate)

# Nothing but a text file.
with zipfile.ZipFile(f"{out}/no-images.zip", "w") as z:
    z.writestr("notes/readme.txt", b"no images here")

# A Kaggle competition's download: archives inside, no images.
with zipfile.ZipFile(f"{out}/competition.zip", "w") as z:
    z.writestr("train.zip", open(f"{out}/flowers.zip", "rb").read())
    z.writestr("test.tar.xz", b"not really")
    z.writestr("sample_submission.csv", b"id,label\n")

with open(f"{out}/expected.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
