#!/usr/bin/env python3
"""Writes the 7z archives of Tests/ArchivesTests/Fixtures with py7zr (an implementation
independent of synthd's reader) and expected-7z.json, as make_archive_fixtures.py does for zip
and tar: for each archive the files synthd should unpack (path below the dataset root -> zlib
CRC-32), the dataset root, and the members it should report skipped.

    /tmp/pv/bin/pip install py7zr   # PyPI; for fixtures only
    /tmp/pv/bin/python scripts/make_7z_fixtures.py Tests/ArchivesTests/Fixtures
"""
import json, os, sys
import py7zr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from archive_fixture_support import png, expect as expect_in
out = sys.argv[1]
expected = {}


def expect(name, root, files, skipped=()):
    expect_in(expected, name, root, files, skipped)


def write(name, members, **options):
    path = f"{out}/{name}"
    if os.path.exists(path):
        os.remove(path)
    with py7zr.SevenZipFile(path, "w", **options) as z:
        for arcname, data in members.items():
            z.writestr(data, arcname)


# py7zr's default: x86 BCJ and LZMA2, solid (every file in one folder), the header compressed;
# the classes one level down, with a README and an empty file beside the images.
files = {"boot/1.png": png(31, 8), "boot/2.png": png(32, 8), "sandal/3.png": png(33, 8), "sandal/deep/4.png": png(34, 8)}
write("shoes.7z", {**{"shoes/" + p: b for p, b in files.items()}, "shoes/README.txt": b"about the shoes", "shoes/boot/empty.png": b""})
expect("shoes.7z", "shoes", {**files, "boot/empty.png": b""})  # written empty: loading rejects it by name

# The other coders synthd unpacks, one archive each, the classes at the top.
for filters, name, seed in (([{"id": py7zr.FILTER_LZMA}], "lzma.7z", 40), ([{"id": py7zr.FILTER_BZIP2}], "bzip2.7z", 50),
                            ([{"id": py7zr.FILTER_DEFLATE}], "deflate.7z", 60), ([{"id": py7zr.FILTER_COPY}], "copy.7z", 70)):
    files = {"cat/1.png": png(seed), "cat/2.png": png(seed + 1), "dog/3.png": png(seed + 2)}
    write(name, files, filters=filters)
    expect(name, "", files)

# x86 BCJ before LZMA2 (py7zr's default) and before LZMA: unpacked.
for filters, name, seed in (([{"id": py7zr.FILTER_X86}, {"id": py7zr.FILTER_LZMA2}], "bcj.7z", 90),
                            ([{"id": py7zr.FILTER_X86}, {"id": py7zr.FILTER_LZMA}], "bcj-lzma.7z", 95)):
    files = {"cat/1.png": png(seed), "dog/2.png": png(seed + 1)}
    write(name, files, filters=filters)
    expect(name, "", files)

# Refused with the reason: a password (AES before LZMA2), PPMd, and ARM's BCJ before LZMA2.
write("encrypted.7z", {"cat/1.png": png(80)}, password="secret")
write("ppmd.7z", {"cat/1.png": png(82)}, filters=[{"id": py7zr.FILTER_PPMD}])
write("arm.7z", {"cat/1.png": png(83)}, filters=[{"id": py7zr.FILTER_ARM}, {"id": py7zr.FILTER_LZMA2}])

# Archives 7-Zip itself wrote (Debian's p7zip-full: apt-get install p7zip-full), of a folder with
# a symbolic link and a text file beside the images: its default (LZMA2, solid, the header
# compressed), a plain header with a folder per file, and BCJ2 (refused: four streams).
import shutil, subprocess, tempfile
if shutil.which("7z"):
    source = tempfile.mkdtemp()
    files = {"cat/1.png": png(101, 8), "cat/2.png": png(102, 8), "dog/3.png": png(103, 8)}
    for p, b in files.items():
        os.makedirs(os.path.dirname(f"{source}/pets/{p}"), exist_ok=True)
        with open(f"{source}/pets/{p}", "wb") as f:
            f.write(b)
    os.symlink("../cat/1.png", f"{source}/pets/dog/link.png")
    with open(f"{source}/pets/notes.txt", "w") as f:
        f.write("about the pets\n")
    for name, switches in (("7zip-default.7z", []), ("7zip-plain-header.7z", ["-mhc=off", "-ms=off"]), ("7zip-bcj2.7z", ["-mf=BCJ2"])):
        path = os.path.abspath(f"{out}/{name}")
        if os.path.exists(path):
            os.remove(path)
        subprocess.run(["7z", "a", "-bd", "-snl", *switches, path, "pets"], cwd=source, check=True, stdout=subprocess.DEVNULL)
        if name != "7zip-bcj2.7z":
            expect(name, "pets", files, skipped=["pets/dog/link.png"])
    shutil.rmtree(source)

with open(f"{out}/expected-7z.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
