"""Python binding of libflasher (ctypes, standard library only).

    import flasher
    pkg = flasher.Package("fw.pkg")
    with flasher.Session("/dev/ttyACM0") as unit:
        print(unit.info()["version"])
        unit.update(pkg, progress=lambda p: print(p["phase"], p["bytes_done"]))

Errors raise flasher.Error (or a subclass named after the code) carrying the
library's code, its stable name and the detail message; the numbers are the
same as the CLI's (exit code 10 + |code|) and the daemon's.
"""
import ctypes
import ctypes.util
import os

__all__ = ["Error", "Package", "Session", "version", "load_library"]

_lib = None


def load_library(path=None):
    """Load libflasher: path, $FLASHER_LIBRARY, or the system's libflasher.so."""
    global _lib
    if _lib is not None and path is None:
        return _lib
    candidates = [path, os.environ.get("FLASHER_LIBRARY"), ctypes.util.find_library("flasher"),
                  "libflasher.so.0", "libflasher.so"]
    last = None
    for c in candidates:
        if not c:
            continue
        try:
            lib = ctypes.CDLL(c)
            break
        except OSError as e:
            last = e
    else:
        raise OSError(f"libflasher not found (set FLASHER_LIBRARY): {last}")
    _declare(lib)
    _lib = lib
    return lib


class Error(Exception):
    """A libflasher error: .code (negative int), .name, .detail."""

    def __init__(self, code, name, detail):
        super().__init__(f"{name}: {detail}" if detail else name)
        self.code = code
        self.name = name
        self.detail = detail


_error_classes = {}


def _raise(code):
    lib = load_library()
    name = lib.flasher_error_name(code).decode()
    detail = lib.flasher_error_last().decode(errors="replace")
    cls = _error_classes.get(code)
    if cls is None:
        cls = type(name.replace("FLASHER_", "Flasher"), (Error,), {})
        _error_classes[code] = cls
    raise cls(code, name, detail)


def _check(code):
    if code < 0:
        _raise(code)
    return code


def _semver(v):
    return f"{v >> 24}.{(v >> 16) & 0xFF}.{v & 0xFFFF}" if v else None


class _Slot(ctypes.Structure):
    _fields_ = [("core", ctypes.c_int), ("primary", ctypes.c_int), ("state", ctypes.c_int),
                ("address", ctypes.c_uint32), ("size", ctypes.c_uint32), ("version", ctypes.c_uint32),
                ("payload_crc32", ctypes.c_uint32)]


class _UnitInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint), ("uid", ctypes.c_char * 25), ("serial", ctypes.c_char * 33), ("product", ctypes.c_char * 17),
                ("hw_rev", ctypes.c_char * 9), ("bootloader_version", ctypes.c_uint32),
                ("protocol_version", ctypes.c_uint32), ("mode", ctypes.c_int), ("state", ctypes.c_int),
                ("cm7_version", ctypes.c_uint32), ("cm4_version", ctypes.c_uint32),
                ("max_payload", ctypes.c_uint), ("window", ctypes.c_uint), ("op_timeout_ms", ctypes.c_uint32),
                ("trial_boots", ctypes.c_int), ("last_boot_error", ctypes.c_int), ("slot_count", ctypes.c_size_t),
                ("slots", _Slot * 4)]  # the library writes no more than sizeof (the _sized calls)


class _Progress(ctypes.Structure):
    _fields_ = [("phase", ctypes.c_int), ("core", ctypes.c_int), ("bytes_done", ctypes.c_uint64),
                ("bytes_total", ctypes.c_uint64), ("bytes_resumed", ctypes.c_uint64), ("rate", ctypes.c_double),
                ("eta_s", ctypes.c_double)]


_ProgressCb = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Progress), ctypes.c_void_p)


class _UpdateOptions(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("progress", _ProgressCb), ("payload", ctypes.c_void_p),
                ("compress", ctypes.c_int), ("no_reboot", ctypes.c_int), ("wait_confirm_ms", ctypes.c_int)]


class _UpdateResult(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint), ("old_cm7_version", ctypes.c_uint32), ("old_cm4_version", ctypes.c_uint32),
                ("new_version", ctypes.c_uint32), ("payload_bytes", ctypes.c_uint64),
                ("resumed_bytes", ctypes.c_uint64), ("sent_bytes", ctypes.c_uint64),
                ("wire_bytes", ctypes.c_uint64), ("after", _UnitInfo),
                ("retransmits", ctypes.c_uint32), ("timeouts", ctypes.c_uint32)]


_MODES = {1: "bootloader", 2: "application"}
_STATES = {0: "empty", 1: "confirmed", 2: "pending", 3: "trial", 4: "rolled_back"}
_PHASES = {0: "connect", 1: "check", 2: "transfer", 3: "verify", 4: "activate", 5: "reboot", 6: "done"}
_CORES = {1: "cm7", 2: "cm4"}


def _declare(lib):
    P = ctypes.c_void_p
    sig = {
        "flasher_version": (ctypes.c_char_p, []),
        "flasher_error_name": (ctypes.c_char_p, [ctypes.c_int]),
        "flasher_error_last": (ctypes.c_char_p, []),
        "flasher_package_open": (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_char_p]),
        "flasher_package_free": (None, [P]),
        "flasher_package_product": (ctypes.c_char_p, [P]),
        "flasher_package_version": (ctypes.c_uint32, [P]),
        "flasher_package_manifest_json": (ctypes.c_char_p, [P]),
        "flasher_session_open": (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_char_p, P]),
        "flasher_session_close": (None, [P]),
        "flasher_session_info_sized": (ctypes.c_int, [P, ctypes.POINTER(_UnitInfo), ctypes.c_size_t]),
        "flasher_session_update_sized": (ctypes.c_int, [P, P, ctypes.POINTER(_UpdateOptions),
                                                        ctypes.POINTER(_UpdateResult), ctypes.c_size_t]),
        "flasher_session_confirm": (ctypes.c_int, [P]),
        "flasher_session_rollback": (ctypes.c_int, [P]),
        "flasher_session_reboot": (ctypes.c_int, [P, ctypes.c_int]),
        "flasher_session_cancel": (None, [P]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def version():
    """The library's version string."""
    return load_library().flasher_version().decode()


def _info_dict(i):
    fw = {"cm7": _semver(i.cm7_version), "cm4": _semver(i.cm4_version)}
    return {
        "uid": i.uid.decode(), "serial": i.serial.decode(), "product": i.product.decode(),
        "hw_rev": i.hw_rev.decode(), "bootloader_version": _semver(i.bootloader_version),
        "mode": _MODES.get(i.mode, str(i.mode)), "state": _STATES.get(i.state, str(i.state)),
        "firmware": fw, "version": fw["cm7"] or fw["cm4"], "trial_boots": i.trial_boots,
    }


class Package:
    """A firmware package, opened and fully verified."""

    def __init__(self, path):
        lib = load_library()
        self._h = ctypes.c_void_p()
        _check(lib.flasher_package_open(ctypes.byref(self._h), os.fsencode(path)))

    @property
    def product(self):
        return load_library().flasher_package_product(self._h).decode()

    @property
    def version(self):
        return _semver(load_library().flasher_package_version(self._h)) or "0.0.0"

    @property
    def manifest(self):
        import json
        return json.loads(load_library().flasher_package_manifest_json(self._h).decode())

    def close(self):
        if self._h:
            load_library().flasher_package_free(self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        self.close()


class Session:
    """One unit. Use from one thread at a time; cancel() from any thread."""

    def __init__(self, port):
        lib = load_library()
        self._h = ctypes.c_void_p()
        _check(lib.flasher_session_open(ctypes.byref(self._h), port.encode(), None))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._h:
            load_library().flasher_session_close(self._h)
            self._h = ctypes.c_void_p()

    def info(self):
        i = _UnitInfo()
        _check(load_library().flasher_session_info_sized(self._h, ctypes.byref(i), ctypes.sizeof(i)))
        return _info_dict(i)

    def update(self, package, progress=None, compress=True):
        """Update the unit; progress(dict) may return False to cancel."""
        def cb(p, _payload):
            if progress is None:
                return 0
            c = p.contents
            keep = progress({"phase": _PHASES.get(c.phase, str(c.phase)), "core": _CORES.get(c.core),
                             "bytes_done": c.bytes_done, "bytes_total": c.bytes_total,
                             "bytes_resumed": c.bytes_resumed, "rate": c.rate, "eta_s": c.eta_s})
            return -1 if keep is False else 0
        cfn = _ProgressCb(cb)
        opts = _UpdateOptions(1, cfn, None, 1 if compress else 0, 0, 10000)
        res = _UpdateResult()
        _check(load_library().flasher_session_update_sized(self._h, package._h, ctypes.byref(opts),
                                                           ctypes.byref(res), ctypes.sizeof(res)))
        return {"payload_bytes": res.payload_bytes, "resumed_bytes": res.resumed_bytes,
                "sent_bytes": res.sent_bytes, "wire_bytes": res.wire_bytes, "after": _info_dict(res.after)}

    def confirm(self):
        _check(load_library().flasher_session_confirm(self._h))

    def rollback(self):
        _check(load_library().flasher_session_rollback(self._h))

    def reboot(self, bootloader=False):
        _check(load_library().flasher_session_reboot(self._h, 1 if bootloader else 0))

    def cancel(self):
        load_library().flasher_session_cancel(self._h)
