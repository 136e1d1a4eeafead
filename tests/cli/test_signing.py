"""`flasher inspect/verify --key`: who signed a package, and verify's exit
codes when a key's signature is missing or does not verify."""
import json
import os
import subprocess
import tempfile
import unittest

CLI = os.environ["FLASHER_CLI"]
EPERM_EXIT, ECORRUPT_EXIT = 25, 16


def run(cwd, *args):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


class Signing(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        with open(os.path.join(self.d, "fw.bin"), "wb") as f:
            f.write(os.urandom(6000))
        for k in ("k1", "k2"):
            rc, _, err = run(self.d, "keygen", "-o", k)
            self.assertEqual(rc, 0, err)
        self.pack("signed.pkg", "--sign", "k1")
        self.pack("unsigned.pkg")

    def tearDown(self):
        self.tmp.cleanup()

    def pack(self, out, *extra):
        rc, _, err = run(self.d, "pack", "-q", "--product", "demo", "--version", "1.0.0",
                         "--cm7", "fw.bin", "--cm4", "fw.bin", *extra, "-o", out)
        self.assertEqual(rc, 0, err)

    def key_id(self, pub):
        rc, out, err = run(self.d, "inspect", "signed.pkg", "--key", pub, "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)["signatures"]["key_ids"][0]

    def test_inspect_names_the_signer_of_the_package_and_each_image(self):
        rc, out, err = run(self.d, "inspect", "signed.pkg", "--key", "k1.pub", "--json")
        self.assertEqual(rc, 0, err)
        sg = json.loads(out)["signatures"]
        k1, = sg["key_ids"]
        self.assertEqual(sg["package"], [{"key_id": k1, "valid": True}])
        self.assertEqual([i["core"] for i in sg["images"]], ["cm7", "cm4"])
        for img in sg["images"]:
            self.assertEqual(img["signers"], [{"key_id": k1, "valid": True}])
        # without a key: listed, not checked; the text form says the same
        rc, out, _ = run(self.d, "inspect", "signed.pkg", "--json")
        self.assertIsNone(json.loads(out)["signatures"]["package"][0]["valid"])
        rc, out, _ = run(self.d, "inspect", "signed.pkg")
        self.assertIn(f"signed by {k1} (not checked)", out)
        rc, out, _ = run(self.d, "inspect", "unsigned.pkg")
        self.assertIn("unsigned", out)

    def test_verify_key_accepts_only_the_keys_intact_signatures(self):
        rc, out, err = run(self.d, "verify", "signed.pkg", "--key", "k1.pub")
        self.assertEqual(rc, 0, err)
        self.assertIn("signed by k1.pub", out)
        rc, _, err = run(self.d, "verify", "signed.pkg", "--key", "k2.pub")
        self.assertEqual(rc, EPERM_EXIT, err)
        self.assertIn("not signed by k2.pub", err)
        rc, _, err = run(self.d, "verify", "unsigned.pkg", "--key", "k1.pub")
        self.assertEqual(rc, EPERM_EXIT, err)
        self.assertIn("unsigned", err)
        # a changed byte in the package signature: the file is intact, the signature is not
        with open(os.path.join(self.d, "signed.pkg"), "rb") as f:
            data = bytearray(f.read())
        data[-7] ^= 0x01
        with open(os.path.join(self.d, "tampered.pkg"), "wb") as f:
            f.write(data)
        self.assertEqual(run(self.d, "verify", "tampered.pkg")[0], 0)
        rc, out, _ = run(self.d, "verify", "tampered.pkg", "--key", "k1.pub", "--json")
        self.assertEqual(rc, ECORRUPT_EXIT)
        doc = json.loads(out)
        self.assertFalse(doc["ok"])
        self.assertIn("does not verify", doc["detail"])
        # a signature block cut short is a malformed file
        with open(os.path.join(self.d, "cut.pkg"), "wb") as f:
            f.write(bytes(data[:-20]))
        rc, _, err = run(self.d, "verify", "cut.pkg")
        self.assertNotEqual(rc, 0)
        # a key file that is not a key
        rc, _, err = run(self.d, "verify", "signed.pkg", "--key", "fw.bin")
        self.assertNotEqual(rc, 0)
        self.assertIn("fw.bin", err)


if __name__ == "__main__":
    unittest.main()
