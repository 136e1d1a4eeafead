#!/usr/bin/env python3
"""bench/update_table.py - the update benchmark's table (bench/run.sh builds
the binaries and calls this).

Rows: first install (a fresh unit) and steady state (a unit updated twice
before, so both slots of each core hold an image: what a field update
meets), each for firmware-like data (compressed, as an update sends it) and
random data (nothing to compress), over devsim's default link model
(usb-fs, 2 KiB credit, 1 ms answer latency, 1 s re-enumeration per reset)
with --timing real. --quick runs --timing none rows instead (flash costs
nothing: the floor is the link).

For each row the floor is computed step by step from the run's own counts
(devsim --stats) and printed below the table:
  link   = bytes the host wrote / link rate
  bank b = erases on bank b x 1.1 s + word programs on bank b x 200 us
  floor  = max(link, bank 1, bank 2) (the banks work in parallel, the link
           overlaps with both) + the resets' re-enumeration + the
           application's confirm after the reboot
and the seed's path for the same images (ST's ROM DfuSe, computed from the
same flash model, not run):
  seed   = per image: 2 KiB blocks x 104 ms (one DFU_GETSTATUS poll each)
           + every sector the image touches x 1.1 s erase
Ratios: total / floor and total / seed. --runs N repeats every row and
prints the medians.
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

RATE = 900000          # devsim usb-fs, bytes/s, both directions together
ERASE_S = 1.1          # flashsim: one sector erase
PROGRAM_S = 200e-6     # flashsim: one 32-byte word
REENUM_S = 1.0         # devsim --reenum-ms default
CONFIRM_S = 0.2        # devsim: the application confirms 200 ms after start
SECTOR = 128 * 1024
DFU_BLOCK = 2048
DFU_POLL_S = 0.104     # DfuSe: one block per DNLOAD + GETSTATUS round (~104 ms)


def sh(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


class Devsim:
    def __init__(self, exe, flash, args, stats):
        self.stats = stats
        cmd = [exe, "--flash", flash, "--quiet"] + args + (["--stats", stats] if stats else [])
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("pty: "):
            raise SystemExit("devsim did not start: %r" % line)
        self.port = line[5:].strip()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=30)
        if self.stats:
            with open(self.stats) as f:
                return json.load(f)
        return None


_code = None


def newlib_text():
    """Thumb-2 .text of newlib's libc when the toolchain is there (b"" if
    not); extracted once."""
    global _code
    if _code is not None:
        return _code
    libc = "/usr/lib/arm-none-eabi/newlib/thumb/v7e-m+dp/hard/libc.a"
    data = b""
    if os.path.exists(libc) and subprocess.run(["sh", "-c", "command -v arm-none-eabi-objcopy"],
                                               stdout=subprocess.DEVNULL).returncode == 0:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["ar", "x", libc], cwd=d, check=True)
            for o in sorted(os.listdir(d)):
                subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.text", o, o + ".bin"],
                               cwd=d, stderr=subprocess.DEVNULL)
                if os.path.exists(os.path.join(d, o + ".bin")):
                    data += open(os.path.join(d, o + ".bin"), "rb").read()
    _code = data
    return data


def code_like(path, size, seed):
    """Firmware-like bytes: newlib's .text, else words drawn from a small
    vocabulary (compresses like code)."""
    data = newlib_text()
    kind = "newlib Thumb-2 .text" if data else "generated code-like words"
    r = random.Random(seed)
    if not data:
        words = [r.getrandbits(32).to_bytes(4, "little") for _ in range(2048)]
        data = b"".join(r.choice(words) for _ in range(size // 2))
    start = r.randrange(0, max(1, len(data) - size)) if len(data) > size else 0
    while len(data) < start + size:
        data += data
    # a few random words per KiB: each version differs everywhere, as a rebuild does
    b = bytearray(data[start:start + size])
    for _ in range(size // 1024):
        i = r.randrange(0, size - 4) & ~3
        b[i:i + 4] = r.getrandbits(32).to_bytes(4, "little")
    open(path, "wb").write(bytes(b))
    return kind


def make_pkg(flasher, w, data, version, sizes, seed):
    files = []
    for core, size in zip(("cm7", "cm4"), sizes):
        path = os.path.join(w, "%s-%s-%s.bin" % (data, version, core))
        if data == "random":
            open(path, "wb").write(random.Random(seed * 2 + len(files)).randbytes(size))
            kind = "random bytes"
        else:
            kind = code_like(path, size, seed * 2 + len(files))
        files.append(path)
    pkg = os.path.join(w, "%s-%s.pkg" % (data, version))
    sh(flasher, "pack", "--product", "demo", "--version", version, "--cm7", files[0], "--cm4", files[1], "-o", pkg)
    return pkg, kind


def update(bench, port, pkg, compress):
    out = sh(bench, port, pkg, *([] if compress else ["--no-compress"])).stdout
    return {k: float(v) for k, v in (kv.split("=") for kv in out.split())}


def sectors_of(n, header):
    return (header + n + SECTOR - 1) // SECTOR


def seed_path(sizes):
    steps, total = [], 0.0
    for core, n in zip(("cm7", "cm4"), sizes):
        blocks = (n + DFU_BLOCK - 1) // DFU_BLOCK
        secs = sectors_of(n, 0)
        t = blocks * DFU_POLL_S + secs * ERASE_S
        steps.append("%s %d blocks x %.0f ms + %d sectors x %.1f s = %.2f s" %
                     (core, blocks, DFU_POLL_S * 1000, secs, ERASE_S, t))
        total += t
    return total, steps


def floor_of(m, st, resets, flash_costs):
    link = m["wire"] / RATE
    parts = ["link %d B / %d B/s = %.2f s" % (m["wire"], RATE, link)]
    banks = []
    for b in (0, 1):
        e = sum(st["sector_erases"][8 * b:8 * b + 8])
        busy = st["bank_busy_s"][b]
        p = max(0, round((busy - e * ERASE_S) / PROGRAM_S))
        t = e * ERASE_S + p * PROGRAM_S if flash_costs else 0.0
        banks.append(t)
        parts.append("bank %d %d erases x %.1f s + %d programs x %d us = %.2f s%s" %
                     (b + 1, e, ERASE_S, p, PROGRAM_S * 1e6, e * ERASE_S + p * PROGRAM_S,
                      "" if flash_costs else " (not slept: --timing none)"))
    fixed = resets * REENUM_S + CONFIRM_S
    floor = max([link] + banks) + fixed
    parts.append("max(link, bank 1, bank 2) = %.2f s + %d re-enumeration x %.1f s + confirm %.1f s = %.2f s" %
                 (max([link] + banks), resets, REENUM_S, CONFIRM_S, floor))
    return floor, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--runs", type=int, default=1, help="repeat every row N times, print medians")
    ap.add_argument("--quick", action="store_true", help="--timing none rows (no flash time)")
    ap.add_argument("--cm7", type=int, default=383 * 1024, help="CM7 payload bytes (default 383 KiB)")
    ap.add_argument("--cm4", type=int, default=383 * 1024, help="CM4 payload bytes (default 383 KiB)")
    a = ap.parse_args()
    flasher = os.path.join(a.build, "cli", "flasher")
    devsim = os.path.join(a.build, "firmware", "port", "host", "flasher-devsim")
    bench = os.path.join(a.build, "bench", "bench_update")
    timing = "none" if a.quick else "real"
    sizes = (a.cm7, a.cm4)
    seed_s, seed_steps = seed_path(sizes)
    rows, notes, kinds = [], [], {}
    with tempfile.TemporaryDirectory() as w:
        for data in ("firmware", "random"):
            compress = data == "firmware"
            pk = {}
            for i, v in enumerate(("1.0.1", "1.0.2", "1.0.3")):
                pk[v], kinds[data] = make_pkg(flasher, w, data, v, sizes, 16 + i + (100 if data == "random" else 0))
            for kind in ("first install", "steady state"):
                samples = []
                for run in range(a.runs):
                    flash = os.path.join(w, "unit.flash")
                    if os.path.exists(flash):
                        os.unlink(flash)
                    if kind == "steady state":
                        # two updates first (instant link and flash): both
                        # slots of each core hold an image, the unit runs
                        # the second pair confirmed
                        d = Devsim(devsim, flash, ["--link-rate", "none"], None)
                        for v in ("1.0.1", "1.0.2"):
                            update(bench, d.port, pk[v], compress)
                        d.stop()
                    stats = os.path.join(w, "stats.json")
                    d = Devsim(devsim, flash, ["--timing", timing], stats)
                    t0 = time.monotonic()
                    m = update(bench, d.port, pk["1.0.3"], compress)
                    st = d.stop()
                    m["stats"] = st
                    m["wall"] = time.monotonic() - t0
                    samples.append(m)
                # a fresh unit is in its bootloader: one reset (after
                # ACTIVATE); a running unit also resets into its bootloader
                resets = 1 if kind == "first install" else 2
                med = {k: statistics.median(s[k] for s in samples) for k in
                       ("transfer_s", "seconds", "wire", "payload", "timeouts", "retransmits")}
                mid = min(samples, key=lambda s: abs(s["seconds"] - med["seconds"]))
                med["wire"] = mid["wire"]
                fl, steps = floor_of(med, mid["stats"], resets, timing == "real")
                st = mid["stats"]
                er = sum(st["sector_erases"])
                rows.append((kind, data, "yes" if compress else "no", med, er, fl, timing == "real"))
                notes.append(("%s, %s: " % (kind, data), steps))
    print("update of %d + %d bytes (cm7 + cm4), devsim link usb-fs (%d B/s, half-duplex, 2 KiB credit, "
          "1 ms latency, %.0f s re-enumeration), --timing %s%s" %
          (sizes[0], sizes[1], RATE, REENUM_S, timing, ", median of %d runs" % a.runs if a.runs > 1 else ""))
    hdr = ("kind", "data", "comp", "wire B", "erases", "xfer s", "total s", "floor s", "x floor", "seed s",
           "x seed", "tmo", "retx")
    fmt = "%-13s %-8s %-4s %8s %6s %7s %7s %7s %7s %6s %6s %3s %4s"
    print(fmt % hdr)
    for kind, data, comp, m, er, fl, real in rows:
        print(fmt % (kind, data, comp, "%d" % m["wire"], er, "%.2f" % m["transfer_s"], "%.2f" % m["seconds"],
                     "%.2f" % fl, "%.2f" % (m["seconds"] / fl), "%.1f" % seed_s if real else "-",
                     "%.2f" % (m["seconds"] / seed_s) if real else "-", "%d" % m["timeouts"],
                     "%d" % m["retransmits"]))
    print()
    print("floors (step by step, from the run's devsim --stats):")
    for head, steps in notes:
        print("  " + head + "; ".join(steps))
    print("seed's path (ST ROM DfuSe, same images, computed): " + "; ".join(seed_steps) + "; total %.2f s" % seed_s)
    print("xfer = TRANSFER..ACTIVATE (sending + on-unit verify); total = the whole update from opening the "
          "port to the confirmed new pair; data: firmware = %s, random = random bytes" % kinds.get("firmware", "?"))


if __name__ == "__main__":
    main()
