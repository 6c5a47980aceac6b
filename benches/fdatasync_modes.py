#!/usr/bin/env python3
"""Cost of one write + fdatasync into a WAL-like file, by how the file got its blocks:
appended (the file grows), fallocate'd (blocks reserved, unwritten extents), or pre-zeroed
(blocks written with zeros first). Usage: python3 benches/fdatasync_modes.py [DIR]."""
import os
import sys
import time

DIR = sys.argv[1] if len(sys.argv) > 1 else "target"
N, SIZE, FILE = 1500, 16000, 64 << 20


def run(mode):
    path = os.path.join(DIR, f"fdatasync-{mode}.tmp")
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    if mode == "fallocate":
        os.posix_fallocate(fd, 0, FILE)
    if mode == "zeroed":
        zeros = b"\0" * (1 << 20)
        for _ in range(FILE >> 20):
            os.write(fd, zeros)
        os.fsync(fd)
    buf, off = b"x" * SIZE, 0
    start = time.perf_counter()
    for _ in range(N):
        os.pwrite(fd, buf, off)
        off += SIZE
        os.fdatasync(fd)
    per = (time.perf_counter() - start) / N * 1e6
    os.close(fd)
    os.unlink(path)
    return per


for _ in range(2):
    for m in ["append", "fallocate", "zeroed"]:
        print(f"{m:10} {run(m):6.0f} us per {SIZE}-byte write + fdatasync")
