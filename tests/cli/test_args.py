"""The flasher CLI's one argument parser: usage errors exit 2 and name the
flag, every command has a complete --help, `flasher help CMD` prints it."""
import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

CLI = os.environ["FLASHER_CLI"]

COMMANDS = ["pack", "inspect", "verify", "list", "info", "update", "confirm",
            "rollback", "reboot", "keygen", "fleet list", "fleet update", "fleet report"]


# Commands run in a scratch directory: an option given a value that looks
# like a flag ("keygen -o --help") may write a file named after it.
SCRATCH = tempfile.mkdtemp(prefix="flasher-args-")
atexit.register(shutil.rmtree, SCRATCH, True)


def run(*args):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=30, cwd=SCRATCH)
    return p.returncode, p.stdout, p.stderr


class Args(unittest.TestCase):
    def usage_error(self, args, *words):
        rc, out, err = run(*args)
        self.assertEqual(rc, 2, f"{args}: exit {rc}, stderr {err!r}")
        for w in words:
            self.assertIn(w, err, f"{args}: the message does not name {w!r}")
        return out, err

    def test_repeated_flags_are_usage_errors(self):
        self.usage_error(["pack", "--product", "p", "--version", "1.0.0", "--cm7", "a", "--cm7", "b",
                          "-o", "x"], "--cm7", "twice")
        self.usage_error(["update", "PORT", "PKG", "--timeout", "5", "--timeout", "6"], "--timeout", "twice")
        self.usage_error(["info", "PORT", "--json", "--json"], "--json", "twice")
        self.usage_error(["inspect", "a.pkg", "b.pkg"], "b.pkg")

    def test_bad_values_are_usage_errors(self):
        self.usage_error(["update", "PORT", "PKG", "--timeout", "soon"], "--timeout", "soon")
        self.usage_error(["update", "PORT", "PKG", "--timeout", "0"], "--timeout")
        self.usage_error(["update", "PORT", "PKG", "--wait-confirm=-5"], "--wait-confirm")
        self.usage_error(["pack", "--product", "p", "--version", "01.0.0", "--cm7", "a", "-o", "x"],
                         "--version", "leading zero")
        self.usage_error(["pack", "--product", "p", "--version", "1.0", "--cm7", "a", "-o", "x"], "--version")
        self.usage_error(["pack", "--min-bootloader", "x"], "--min-bootloader")
        self.usage_error(["fleet", "report", "--format", "xml"], "--format", "xml")
        self.usage_error(["fleet", "report", "--batch", "0"], "--batch")
        self.usage_error(["info", "PORT", "--timeout"], "--timeout", "needs a value")
        self.usage_error(["info", "PORT", "--bogus"], "--bogus")
        self.usage_error(["info", "PORT", "-x"], "-x")
        self.usage_error(["info", "PORT", "--json=yes"], "--json")
        self.usage_error(["info"], "PORT")
        self.usage_error(["nonsense"], "nonsense")

    def test_too_many_hw_revisions(self):
        args = ["pack", "--product", "p", "--version", "1.0.0", "--cm7", "a", "-o", "x"]
        for r in "ABCDE":
            args += ["--hw", r]
        self.usage_error(args, "--hw")

    def test_usage_error_is_json_with_json(self):
        rc, out, err = run("update", "PORT", "PKG", "--timeout", "x", "--json")
        self.assertEqual(rc, 2)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, out)
        o = json.loads(lines[0])
        self.assertEqual(o["event"], "error")
        self.assertEqual(o["exit"], 2)
        self.assertIn("--timeout", o["message"])

    def test_no_stray_value_applies_after_an_error(self):
        # an option after "--" is a positional argument
        self.usage_error(["inspect", "--", "--json", "extra"], "extra")

    def test_help_for_every_command(self):
        for c in COMMANDS:
            rc, out, err = run(*c.split(), "--help")
            self.assertEqual(rc, 0, c)
            self.assertTrue(out.startswith(f"Usage: flasher {c}"), f"{c}: {out[:80]!r}")
            for opt in ("--help", "--quiet", "--verbose"):
                self.assertIn(opt, out, c)
            if c.split()[0] not in ("fleet", "help", "list", "pack"):
                self.assertIn("--json", out, c)
            self.assertEqual(err, "", c)

    def test_help_command_is_the_command_help(self):
        for c in ["pack", "update", "confirm", "rollback", "reboot", "info", "fleet"]:
            rc, via_help, _ = run("help", c)
            self.assertEqual(rc, 0, c)
            rc, direct, _ = run(c, "--help")
            self.assertEqual(via_help, direct, c)
        self.assertIn("--bootloader", run("help", "reboot")[1])
        self.assertIn("--timeout", run("help", "confirm")[1])
        self.assertIn("--timeout", run("help", "rollback")[1])
        rc, out, _ = run("help")
        self.assertEqual(rc, 0)
        for c in ["pack", "inspect", "update", "fleet"]:
            self.assertRegex(out, rf"\n  {c} ")
        self.assertEqual(run("help", "nonsense")[0], 2)

    def test_every_option_in_help_is_accepted(self):
        """Help and parser come from one table: every --flag the help lists
        is known to the parser (no 'unknown option' for any of them)."""
        for c in COMMANDS:
            out = run(*c.split(), "--help")[1]
            for flag in set(re.findall(r"^\s+(?:-\w, )?(--[a-z0-9-]+)", out, re.M)):
                if flag in ("--help",):
                    continue
                rc, _, err = run(*c.split(), flag, "--help") if flag not in ("--quiet", "--verbose") \
                    else run(*c.split(), flag, "--help")
                self.assertNotIn("unknown option", err, f"{c} {flag}")

    def test_version(self):
        for v in ("-V", "--version"):
            rc, out, _ = run(v)
            self.assertEqual(rc, 0)
            self.assertRegex(out, r"^flasher \d+\.\d+\.\d+\n$")

    def test_quiet_and_verbose(self):
        with tempfile.TemporaryDirectory() as d:
            b = os.path.join(d, "cm7.bin")
            with open(b, "wb") as f:
                f.write(os.urandom(4096))
            pkg = os.path.join(d, "p.pkg")
            rc, out, err = run("pack", "-q", "--product", "p", "--version", "1.0.0", "--cm7", b, "-o", pkg)
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, "")
            rc, out, err = run("verify", "-v", pkg)
            self.assertEqual(rc, 0, err)
            self.assertIn("OK", out)
        self.usage_error(["verify", "-q", "-v", "x"], "-q")


if __name__ == "__main__":
    unittest.main()
