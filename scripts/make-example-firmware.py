#!/usr/bin/env python3
"""Write cm7.bin, cm7-b.bin, cm4.bin and cm4-b.bin: firmware-like images (a
vector table, then repetitive code-like words, as compilers produce) for
demos and benchmarks on machines without the cross compiler. Images run in
place, so like a real .bin each is linked for one slot: X.bin for slot A,
X-b.bin for slot B (flasher pack --cm7 cm7.bin --cm7-b cm7-b.bin ...)."""
import random
import struct
import sys

out = sys.argv[1]
# Initial stack pointer: top of the CM7's DTCM; the CM4 cannot reach the
# DTCM, its stack tops SRAM1-3 (pack checks both, and the reset handler).
for core, slots, size, sp in (("cm7", (0x08020000, 0x08080000), 96 * 1024, 0x20020000),
                              ("cm4", (0x08100000, 0x08180000), 48 * 1024, 0x30048000)):
    for suffix, slot in zip(("", "-b"), slots):
        base = slot + 0x400  # after the image header area
        r = random.Random(7 + len(core))  # the same code in both builds
        vectors = struct.pack("<II", sp, base + 0x299) + b"".join(
            struct.pack("<I", base + 0x2A1) for _ in range(164))
        words = [struct.pack("<I", r.getrandbits(32)) for _ in range(700)]
        body = b"".join(r.choice(words) for _ in range((size - len(vectors)) // 4))
        open(f"{out}/{core}{suffix}.bin", "wb").write(vectors + body)
