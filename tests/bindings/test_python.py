"""The Python package drives the real library against real simulated units
(Debian's pytest: python3 -m pytest tests/bindings)."""
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zlib

import pytest

import flasher

CLI = os.environ["FLASHER_CLI"]
DEVSIM = os.environ["FLASHER_DEVSIM"]
HERE = os.path.dirname(os.path.abspath(__file__))
PKG_SRC = os.path.join(HERE, "..", "..", "bindings", "python")


def start_unit(flash, *args):
    p = subprocess.Popen([DEVSIM, "--flash", flash, "--product", "demo", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("pty: "):
        p.kill()
        raise RuntimeError(f"devsim said {line!r}")
    return p, line[5:].strip()


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    d = tmp_path_factory.mktemp("fw")
    cm7 = bytes((i * 7 + i // 97) & 0xFF for i in range(40000))
    cm4 = bytes((i * 13 + i // 31) & 0xFF for i in range(20000))
    (d / "cm7.bin").write_bytes(cm7)
    (d / "cm4.bin").write_bytes(cm4)
    pkgs = {}
    for v in ("1.0.0", "1.1.0"):
        flasher.pack(str(d / f"{v}.pkg"), "demo", v, cm7=str(d / "cm7.bin"), cm4=str(d / "cm4.bin"))
        pkgs[v] = str(d / f"{v}.pkg")
    return {"dir": d, "cm7": cm7, "cm4": cm4, "pkg": pkgs}


@pytest.fixture
def unit(tmp_path):
    p, pty = start_unit(str(tmp_path / "unit.flash"))
    yield pty
    p.kill()
    p.wait()


def test_errors_are_module_attributes_named_as_documented():
    assert issubclass(flasher.FlasherENotFound, flasher.Error)
    assert flasher.FlasherEIncompatible.code == -11
    assert flasher.FlasherEIncompatible.name == "FLASHER_EINCOMPATIBLE"
    for code, cls in flasher.ERROR_CLASSES.items():
        assert getattr(flasher, cls.__name__) is cls
        assert flasher.load_library().flasher_error_name(code).decode() == cls.name


def test_pack_and_inspect(fw):
    pkg = flasher.pack(str(fw["dir"] / "x.pkg"), "demo", "2.3.4", cm7=str(fw["dir"] / "cm7.bin"),
                       hw_revs=["A", "B"], min_bootloader="0.2.0", build_id="ci-42")
    assert (pkg.product, pkg.version, pkg.min_bootloader, pkg.hw_revs) == ("demo", "2.3.4", "0.2.0", ["A", "B"])
    (img,) = pkg.images
    assert img["core"] == "cm7" and img["size"] == len(fw["cm7"])
    assert img["crc32"] == f"{zlib.crc32(fw['cm7']):08x}"
    assert len(pkg.sha256) == 64
    assert pkg.manifest["product"] == "demo"
    with pytest.raises(flasher.FlasherEInval) as e:
        flasher.pack(str(fw["dir"] / "y.pkg"), "demo", "01.0.0", cm7=str(fw["dir"] / "cm7.bin"))
    assert e.value.detail


def test_corrupt_package_raises_with_code_and_detail(fw, tmp_path):
    data = bytearray(open(fw["pkg"]["1.0.0"], "rb").read())
    data[len(data) // 2] ^= 0x40
    bad = tmp_path / "bad.pkg"
    bad.write_bytes(data)
    with pytest.raises(flasher.Error) as e:
        flasher.Package(str(bad))
    assert e.value.code < 0 and e.value.name.startswith("FLASHER_E") and e.value.detail


def test_missing_port_raises_not_found(tmp_path):
    with pytest.raises(flasher.FlasherENotFound):
        flasher.Session(str(tmp_path / "no-such-port"))


def test_discovery_and_watch_without_units():
    assert flasher.list_ports() == []  # no USB units outside a testbed
    with pytest.raises(flasher.FlasherEInval):
        flasher.list_ports(usb_ids=["not-an-id"])
    with pytest.raises(flasher.FlasherENotFound):
        flasher.find_port("0048003A3532510C31300000", usb_ids=["1209:0001"])
    with flasher.Watch(usb_ids=["0483:5740"], existing=True) as w:
        assert w.fileno() >= 0
        assert w.dispatch(0.05) == []
        w.interrupt()
        with pytest.raises(flasher.FlasherECancelled):
            w.dispatch(None)


def test_update_with_progress_options_and_info(fw, unit):
    phases, done = [], []
    logs = []
    with flasher.Session(unit, timeout_ms=2000, retries=4, reconnect_timeout_ms=20000,
                         log=lambda lvl, msg: logs.append(lvl), log_level="debug") as s:
        before = s.info()
        assert before["product"] == "demo" and len(before["uid"]) == 24
        res = s.update(flasher.Package(fw["pkg"]["1.0.0"]),
                       progress=lambda p: (phases.append(p["phase"]), done.append(p["bytes_done"])))
        assert res["after"]["version"] == "1.0.0" and res["new_version"] == "1.0.0"
        assert res["payload_bytes"] == len(fw["cm7"]) + len(fw["cm4"])
        assert "transfer" in phases and done == sorted(done)
        assert "debug" in logs
        s.update(flasher.Package(fw["pkg"]["1.1.0"]), compress=False, wait_confirm_ms=5000)
        info = s.info()
        assert info["firmware"] == {"cm7": "1.1.0", "cm4": "1.1.0"}
        assert info["mode"] == "application"
        assert {sl["state"] for sl in info["slots"]} <= {"empty", "active", "receiving", "staged", "previous",
                                                        "invalid"}


def test_no_reboot_stops_after_activation(fw, unit):
    with flasher.Session(unit) as s:
        s.update(flasher.Package(fw["pkg"]["1.0.0"]), no_reboot=True)
        assert s.info()["state"] == "pending"


def test_progress_returning_false_cancels(fw, tmp_path):
    p, pty = start_unit(str(tmp_path / "c.flash"), "--link-rate", "200000")
    try:
        with flasher.Session(pty) as s:
            with pytest.raises(flasher.FlasherECancelled):
                s.update(flasher.Package(fw["pkg"]["1.0.0"]),
                         progress=lambda pr: pr["phase"] != "transfer" or pr["bytes_done"] == 0)
            assert s.info()["version"] != "1.0.0"
    finally:
        p.kill()
        p.wait()


def test_exception_in_progress_propagates_as_itself(fw, tmp_path):
    class Stop(Exception):
        pass

    def boom(pr):
        if pr["phase"] == "transfer":
            raise Stop("from the callback")
    p, pty = start_unit(str(tmp_path / "e.flash"), "--link-rate", "200000")
    try:
        with flasher.Session(pty) as s:
            with pytest.raises(Stop, match="from the callback"):
                s.update(flasher.Package(fw["pkg"]["1.0.0"]), progress=boom)
            assert s.info()["version"] != "1.0.0"  # cancelled before activation, session still usable
    finally:
        p.kill()
        p.wait()


def test_ctrl_c_cancels_cleanly_and_raises_keyboard_interrupt(fw, tmp_path):
    """A real SIGINT to a Python process in the middle of an update."""
    p, pty = start_unit(str(tmp_path / "k.flash"), "--link-rate", "100000")
    script = textwrap.dedent(f"""
        import sys, flasher
        s = flasher.Session({pty!r})
        said = []
        def progress(p):
            if p["phase"] == "transfer" and not said:
                said.append(print("transfer", flush=True))
        try:
            s.update(flasher.Package({fw['pkg']['1.0.0']!r}), progress=progress)
        except KeyboardInterrupt:
            print("interrupted", s.info()["version"], flush=True)
            sys.exit(130)
        print("finished", flush=True)
    """)
    try:
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=os.environ)
        first = child.stdout.readline().strip()
        if first != "transfer":
            child.kill()
            pytest.fail(f"child said {first!r}: {child.communicate()[1]}")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        assert child.returncode == 130, (out, err)
        assert out.splitlines()[-1] in ("interrupted None", "interrupted 0.0.0"), out
        assert "Traceback" not in err and "Exception ignored" not in err, err
    finally:
        p.kill()
        p.wait()


def test_pip_installs_the_package_in_a_venv(tmp_path):
    """pyproject.toml: pip install (no network: --no-index, Debian's setuptools)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    # from a copy: a build leaves egg-info and build/ beside the sources
    src = tmp_path / "src"
    shutil.copytree(PKG_SRC, src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", str(src)],
                   check=True, cwd=str(tmp_path),
                   env={**os.environ, "PYTHONPATH": "", "PIP_NO_CACHE_DIR": "1"})
    out = subprocess.run([py, "-c", "import flasher, os; print(flasher.__file__); print(flasher.version())"],
                         check=True, capture_output=True, text=True, cwd=str(tmp_path),
                         env={**os.environ, "PYTHONPATH": ""}).stdout.split()
    assert out[0].startswith(str(venv)), out
    assert out[1] == flasher.version()
