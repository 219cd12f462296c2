"""What the archive fixture scripts share (make_archive_fixtures.py, make_7z_fixtures.py)."""
import struct, zlib


def png(seed, size=4):
    """A small grey PNG whose pixels depend on seed (each file's bytes differ)."""
    raw = b"".join(b"\0" + bytes((seed * 37 + x * 11 + y * 5) % 256 for x in range(size)) for y in range(size))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def expect(expected, name, root, files, skipped=()):
    """Records in `expected` the files an archive should unpack to (path below the dataset root
    -> zlib CRC-32), its dataset root, and the members it should report skipped."""
    expected[name] = {"root": root, "files": {p: zlib.crc32(b) for p, b in files.items()}, "skipped": sorted(skipped)}
