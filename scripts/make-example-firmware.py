#!/usr/bin/env python3
"""Write cm7.bin and cm4.bin: firmware-like images (a vector table, then
repetitive code-like words, as compilers produce) for demos and benchmarks
on machines without the cross compiler."""
import random
import struct
import sys

out = sys.argv[1]
r = random.Random(7)
for core, base, size in (("cm7", 0x08020400, 96 * 1024), ("cm4", 0x08100400, 48 * 1024)):
    vectors = struct.pack("<II", 0x20020000, base + 0x299) + b"".join(
        struct.pack("<I", base + 0x2A1) for _ in range(164))
    words = [struct.pack("<I", r.getrandbits(32)) for _ in range(700)]
    body = b"".join(r.choice(words) for _ in range((size - len(vectors)) // 4))
    open(f"{out}/{core}.bin", "wb").write(vectors + body)
