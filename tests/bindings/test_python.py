"""The Python binding drives the real library against a real simulated unit."""
import os
import subprocess
import tempfile
import threading
import unittest
import zlib

import flasher

CLI = os.environ["FLASHER_CLI"]
DEVSIM = os.environ["FLASHER_DEVSIM"]


def start_unit(flash, *args):
    p = subprocess.Popen([DEVSIM, "--flash", flash, "--product", "demo", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("pty: "):
        p.kill()
        raise RuntimeError(f"devsim said {line!r}")
    return p, line[5:].strip()


class BindingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        cls.cm7 = bytes((i * 7 + i // 97) & 0xFF for i in range(40000))
        cls.cm4 = bytes((i * 13 + i // 31) & 0xFF for i in range(20000))
        open(f"{d}/cm7.bin", "wb").write(cls.cm7)
        open(f"{d}/cm4.bin", "wb").write(cls.cm4)
        for v in ("1.0.0", "1.1.0"):
            subprocess.run([CLI, "pack", "--product", "demo", "--version", v, "--cm7", f"{d}/cm7.bin",
                            "--cm4", f"{d}/cm4.bin", "-o", f"{d}/{v}.pkg"], check=True,
                           stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def test_package_reads_manifest(self):
        pkg = flasher.Package(f"{self.dir.name}/1.1.0.pkg")
        self.assertEqual(pkg.product, "demo")
        self.assertEqual(pkg.version, "1.1.0")
        crcs = {i["core"]: i["crc32"] for i in pkg.manifest["images"]}
        self.assertEqual(crcs["cm7"], f"{zlib.crc32(self.cm7):08x}")
        self.assertEqual(crcs["cm4"], f"{zlib.crc32(self.cm4):08x}")

    def test_corrupt_package_raises_with_code_and_detail(self):
        data = bytearray(open(f"{self.dir.name}/1.0.0.pkg", "rb").read())
        data[len(data) // 2] ^= 0x40
        bad = f"{self.dir.name}/bad.pkg"
        open(bad, "wb").write(data)
        with self.assertRaises(flasher.Error) as cm:
            flasher.Package(bad)
        self.assertLess(cm.exception.code, 0)
        self.assertTrue(cm.exception.name.startswith("FLASHER_E"))
        self.assertTrue(cm.exception.detail)

    def test_missing_port_raises_not_found(self):
        with self.assertRaises(flasher.Error) as cm:
            flasher.Session(f"{self.dir.name}/no-such-port")
        self.assertEqual(cm.exception.name, "FLASHER_ENOTFOUND")

    def test_update_with_progress_then_info(self):
        unit, pty = start_unit(f"{self.dir.name}/unit.flash")
        try:
            phases, done = [], []
            with flasher.Session(pty) as s:
                before = s.info()
                self.assertEqual(before["product"], "demo")
                self.assertEqual(len(before["uid"]), 24)
                res = s.update(flasher.Package(f"{self.dir.name}/1.0.0.pkg"),
                               progress=lambda p: (phases.append(p["phase"]), done.append(p["bytes_done"])))
                self.assertEqual(res["after"]["version"], "1.0.0")
                self.assertEqual(res["payload_bytes"], len(self.cm7) + len(self.cm4))
                self.assertIn("transfer", phases)
                self.assertEqual(done, sorted(done), "progress went backwards")
                s.update(flasher.Package(f"{self.dir.name}/1.1.0.pkg"))
                info = s.info()
                self.assertEqual(info["firmware"], {"cm7": "1.1.0", "cm4": "1.1.0"})
                self.assertEqual(info["mode"], "application")
        finally:
            unit.kill()
            unit.wait()

    def test_progress_returning_false_cancels(self):
        unit, pty = start_unit(f"{self.dir.name}/cancel.flash", "--link-rate", "200000")
        try:
            with flasher.Session(pty) as s:
                with self.assertRaises(flasher.Error) as cm:
                    s.update(flasher.Package(f"{self.dir.name}/1.0.0.pkg"),
                             progress=lambda p: p["phase"] != "transfer" or p["bytes_done"] == 0)
                self.assertEqual(cm.exception.name, "FLASHER_ECANCELLED")
                self.assertNotEqual(s.info()["version"], "1.0.0")
        finally:
            unit.kill()
            unit.wait()


if __name__ == "__main__":
    unittest.main()
