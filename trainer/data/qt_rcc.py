"""Reader of Qt binary resource files (``.rcc``), for the photographs GCompris ships inside them
(Debian's ``gcompris-qt-data``: ``/usr/share/gcompris-qt/rcc/*.rcc``).

Format (Qt's ``rcc`` tool, ``qtbase/src/tools/rcc/rcc.cpp``; all integers big-endian):
header ``b"qres"``, version (u32), tree offset, data offset, names offset (u32 each), and from version 3
a flags word. The tree is an array of nodes: name offset (u32), flags (u16: 1 zlib, 2 directory,
4 zstd), then for a directory the child count and first child index (u32 each), for a file the
country and language (u16 each) and the data offset (u32); from version 2 each node also has an 8-byte
modification time. A name is a u16 length, a u32 hash and that many UTF-16BE code units. A file's data is
a u32 length and the bytes; zlib-compressed data is ``qCompress``'s: a u32 uncompressed size, then zlib.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator


def entries(path: str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(resource path, file bytes)`` for every file in the ``.rcc`` at ``path``, depth first.

    Raises:
        ValueError: not an rcc file, or a zstd-compressed entry (Python's stdlib has no zstd; GCompris'
            Debian build uses zlib).
        OSError: the file cannot be read.
    """
    buf = open(path, "rb").read()
    if buf[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node_size = 14 if version < 2 else 22

    def name_at(off: int) -> str:
        n = struct.unpack(">H", buf[names + off:names + off + 2])[0]
        return buf[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * node_size
        name_off, flags = struct.unpack(">IH", buf[base:base + 6])
        name = "" if index == 0 else name_at(name_off)
        full = f"{prefix}/{name}" if name else prefix
        if flags & 2:
            count, first = struct.unpack(">II", buf[base + 6:base + 14])
            for i in range(first, first + count):
                yield from walk(i, full)
            return
        (off,) = struct.unpack(">I", buf[base + 10:base + 14])
        (size,) = struct.unpack(">I", buf[data + off:data + off + 4])
        blob = buf[data + off + 4:data + off + 4 + size]
        if flags & 4:
            raise ValueError(f"{path}:{full}: zstd-compressed resource")
        if flags & 1:
            blob = zlib.decompress(blob[4:])
        yield full, blob

    yield from walk(0, "")
