"""Python binding of libflasher (ctypes over the installed C library).

    import flasher
    pkg = flasher.Package("fw.pkg")                 # verified on open
    for port in flasher.list_ports():                 # discovery
        with flasher.Session(port["path"], timeout_ms=2000) as unit:
            print(unit.info()["version"])
            unit.update(pkg, progress=lambda p: print(p["phase"], p["bytes_done"]))

Errors raise flasher.Error or its subclass for the code, a module attribute
named after the C code: FLASHER_ENOTFOUND -> flasher.FlasherENotFound (the
table is ERROR_CLASSES). Each has .code (the library's negative number, as in
docs/errors.md), .name ("FLASHER_ENOTFOUND") and .detail.

Ctrl-C during Session.update() cancels the update on the unit cleanly and
raises KeyboardInterrupt; an exception raised by the progress callback
cancels it too and propagates as itself. The progress callback runs on the
calling thread.
"""
import ctypes
import ctypes.util
import json
import os
import queue
import threading

__all__ = ["Error", "Package", "Session", "Watch", "version", "load_library", "list_ports", "find_port",
           "pack", "ERROR_CLASSES"]

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


# ---- errors ----------------------------------------------------------------

class Error(Exception):
    """A libflasher error: .code (negative int), .name, .detail."""
    code = None
    name = None

    def __init__(self, code, name, detail):
        super().__init__(f"{name}: {detail}" if detail else name)
        self.code = code
        self.name = name
        self.detail = detail


# The library's codes (only ever appended, never renumbered: docs/errors.md).
_CODES = [
    (-1, "FLASHER_EINVAL", "FlasherEInval"), (-2, "FLASHER_ENOMEM", "FlasherENoMem"),
    (-3, "FLASHER_EIO", "FlasherEIO"), (-4, "FLASHER_ENOTFOUND", "FlasherENotFound"),
    (-5, "FLASHER_EFORMAT", "FlasherEFormat"), (-6, "FLASHER_ECORRUPT", "FlasherECorrupt"),
    (-7, "FLASHER_ETIMEOUT", "FlasherETimeout"), (-8, "FLASHER_EDISCONNECTED", "FlasherEDisconnected"),
    (-9, "FLASHER_EPROTOCOL", "FlasherEProtocol"), (-10, "FLASHER_EDEVICE", "FlasherEDevice"),
    (-11, "FLASHER_EINCOMPATIBLE", "FlasherEIncompatible"), (-12, "FLASHER_ECANCELLED", "FlasherECancelled"),
    (-13, "FLASHER_EBUSY", "FlasherEBusy"), (-14, "FLASHER_EUNSUPPORTED", "FlasherEUnsupported"),
    (-15, "FLASHER_EPERM", "FlasherEPerm"), (-16, "FLASHER_EVERIFY", "FlasherEVerify"),
    (-17, "FLASHER_EROLLEDBACK", "FlasherERolledBack"), (-18, "FLASHER_ETRIAL", "FlasherETrial"),
]
ERROR_CLASSES = {}
for _code, _cname, _pyname in _CODES:
    _cls = type(_pyname, (Error,), {"code": _code, "name": _cname,
                                    "__doc__": f"{_cname} ({_code}) from libflasher."})
    globals()[_pyname] = _cls
    ERROR_CLASSES[_code] = _cls
    __all__.append(_pyname)
del _code, _cname, _pyname, _cls


def _raise(code):
    lib = load_library()
    name = lib.flasher_error_name(code).decode()
    detail = lib.flasher_error_last().decode(errors="replace")
    raise ERROR_CLASSES.get(code, Error)(code, name, detail)


def _check(code):
    if code < 0:
        _raise(code)
    return code


def _semver(v):
    return f"{v >> 24}.{(v >> 16) & 0xFF}.{v & 0xFFFF}" if v else None


# ---- C structs (flasher/*.h) -------------------------------------------------

class _Slot(ctypes.Structure):
    _fields_ = [("core", ctypes.c_int), ("primary", ctypes.c_int), ("state", ctypes.c_int),
                ("address", ctypes.c_uint32), ("size", ctypes.c_uint32), ("version", ctypes.c_uint32),
                ("payload_crc32", ctypes.c_uint32)]


class _UnitInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint), ("uid", ctypes.c_char * 25), ("serial", ctypes.c_char * 33),
                ("product", ctypes.c_char * 17), ("hw_rev", ctypes.c_char * 9),
                ("bootloader_version", ctypes.c_uint32), ("protocol_version", ctypes.c_uint32),
                ("mode", ctypes.c_int), ("state", ctypes.c_int),
                ("cm7_version", ctypes.c_uint32), ("cm4_version", ctypes.c_uint32),
                ("max_payload", ctypes.c_uint), ("window", ctypes.c_uint), ("op_timeout_ms", ctypes.c_uint32),
                ("trial_boots", ctypes.c_int), ("last_boot_error", ctypes.c_int), ("slot_count", ctypes.c_size_t),
                ("slots", _Slot * 4)]  # the _sized calls write no more than sizeof


class _Progress(ctypes.Structure):
    _fields_ = [("phase", ctypes.c_int), ("core", ctypes.c_int), ("bytes_done", ctypes.c_uint64),
                ("bytes_total", ctypes.c_uint64), ("bytes_resumed", ctypes.c_uint64), ("rate", ctypes.c_double),
                ("eta_s", ctypes.c_double)]


_ProgressCb = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Progress), ctypes.c_void_p)
_LogCb = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class _UpdateOptions(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("progress", _ProgressCb), ("payload", ctypes.c_void_p),
                ("compress", ctypes.c_int), ("no_reboot", ctypes.c_int), ("wait_confirm_ms", ctypes.c_int)]


class _UpdateResult(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint), ("old_cm7_version", ctypes.c_uint32),
                ("old_cm4_version", ctypes.c_uint32), ("new_version", ctypes.c_uint32),
                ("payload_bytes", ctypes.c_uint64), ("resumed_bytes", ctypes.c_uint64),
                ("sent_bytes", ctypes.c_uint64), ("wire_bytes", ctypes.c_uint64), ("after", _UnitInfo),
                ("retransmits", ctypes.c_uint32), ("timeouts", ctypes.c_uint32)]


class _UsbId(ctypes.Structure):
    _fields_ = [("vid", ctypes.c_uint16), ("pid", ctypes.c_uint16)]


class _DiscoveryOptions(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("usb_ids", ctypes.POINTER(_UsbId)), ("usb_id_count", ctypes.c_size_t),
                ("all", ctypes.c_int)]


class _SessionOptions(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("timeout_ms", ctypes.c_int), ("retries", ctypes.c_int),
                ("reconnect_timeout_ms", ctypes.c_int), ("record_path", ctypes.c_char_p),
                ("fault", ctypes.c_void_p), ("uid", ctypes.c_char_p), ("log", _LogCb),
                ("log_payload", ctypes.c_void_p), ("log_level", ctypes.c_int),
                ("discovery", ctypes.POINTER(_DiscoveryOptions))]


class _PortInfo(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char * 256), ("vid", ctypes.c_uint16), ("pid", ctypes.c_uint16),
                ("serial", ctypes.c_char * 64), ("description", ctypes.c_char * 128), ("bus", ctypes.c_int),
                ("address", ctypes.c_int)]


class _WatchEvent(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint), ("kind", ctypes.c_int), ("action", ctypes.c_int),
                ("port", _PortInfo)]


_WatchCb = ctypes.CFUNCTYPE(None, ctypes.POINTER(_WatchEvent), ctypes.c_void_p)


class _WatchOptions(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("discovery", ctypes.POINTER(_DiscoveryOptions)),
                ("callback", _WatchCb), ("payload", ctypes.c_void_p), ("existing", ctypes.c_int)]


class _PackageImage(ctypes.Structure):
    _fields_ = [("core", ctypes.c_int), ("header", ctypes.c_void_p), ("payload", ctypes.c_void_p),
                ("payload_size", ctypes.c_size_t), ("payload_crc32", ctypes.c_uint32),
                ("payload_sha256", ctypes.c_uint8 * 32), ("load_address", ctypes.c_uint32),
                ("compressed", ctypes.c_int), ("stored_size", ctypes.c_size_t), ("slot", ctypes.c_uint32),
                ("header_area", ctypes.c_void_p), ("header_area_size", ctypes.c_size_t)]


_StrArray = ctypes.POINTER(ctypes.c_char_p)


class _PackOptions(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("product", ctypes.c_char_p), ("fw_version", ctypes.c_char_p),
                ("hw_revs", _StrArray), ("hw_rev_count", ctypes.c_size_t), ("min_bootloader", ctypes.c_char_p),
                ("build_id", ctypes.c_char_p), ("cm7_file", ctypes.c_char_p), ("cm4_file", ctypes.c_char_p),
                ("compress", ctypes.c_int), ("cm7_b_file", ctypes.c_char_p), ("cm4_b_file", ctypes.c_char_p),
                ("sign_keys", _StrArray), ("sign_key_count", ctypes.c_size_t),
                ("security_counter", ctypes.c_uint32)]


_PHASES = {0: "connect", 1: "check", 2: "transfer", 3: "verify", 4: "activate", 5: "reboot", 6: "done"}
_CORES = {1: "cm7", 2: "cm4"}
_LOG_LEVELS = {"error": 0, "warning": 1, "info": 2, "debug": 3}


def _declare(lib):
    P = ctypes.c_void_p
    sig = {
        "flasher_version": (ctypes.c_char_p, []),
        "flasher_error_name": (ctypes.c_char_p, [ctypes.c_int]),
        "flasher_error_last": (ctypes.c_char_p, []),
        "flasher_mode_name": (ctypes.c_char_p, [ctypes.c_int]),
        "flasher_boot_state_name": (ctypes.c_char_p, [ctypes.c_int]),
        "flasher_slot_state_name": (ctypes.c_char_p, [ctypes.c_int]),
        "flasher_phase_name": (ctypes.c_char_p, [ctypes.c_int]),
        "flasher_usb_id_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_UsbId)]),
        "flasher_port_list_with": (ctypes.c_int, [ctypes.POINTER(_DiscoveryOptions),
                                                  ctypes.POINTER(ctypes.POINTER(_PortInfo)),
                                                  ctypes.POINTER(ctypes.c_size_t)]),
        "flasher_port_list_free": (None, [P]),
        "flasher_port_find_with": (ctypes.c_int, [ctypes.POINTER(_DiscoveryOptions), ctypes.c_char_p,
                                                  ctypes.c_char_p, ctypes.c_size_t]),
        "flasher_watch_open": (ctypes.c_int, [ctypes.POINTER(P), ctypes.POINTER(_WatchOptions)]),
        "flasher_watch_fd": (ctypes.c_int, [P]),
        "flasher_watch_dispatch": (ctypes.c_int, [P, ctypes.c_int]),
        "flasher_watch_interrupt": (None, [P]),
        "flasher_watch_close": (None, [P]),
        "flasher_package_open": (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_char_p]),
        "flasher_package_free": (None, [P]),
        "flasher_package_product": (ctypes.c_char_p, [P]),
        "flasher_package_version": (ctypes.c_uint32, [P]),
        "flasher_package_min_bootloader": (ctypes.c_uint32, [P]),
        "flasher_package_hw_rev_count": (ctypes.c_size_t, [P]),
        "flasher_package_hw_rev": (ctypes.c_char_p, [P, ctypes.c_size_t]),
        "flasher_package_sha256": (ctypes.POINTER(ctypes.c_uint8 * 32), [P]),
        "flasher_package_manifest_json": (ctypes.c_char_p, [P]),
        "flasher_package_image_count": (ctypes.c_size_t, [P]),
        "flasher_package_get_image": (ctypes.c_int, [P, ctypes.c_size_t, ctypes.POINTER(_PackageImage)]),
        "flasher_package_build": (ctypes.c_int, [ctypes.POINTER(_PackOptions), ctypes.c_char_p]),
        "flasher_session_open": (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_char_p,
                                                ctypes.POINTER(_SessionOptions)]),
        "flasher_session_close": (None, [P]),
        "flasher_session_info_sized": (ctypes.c_int, [P, ctypes.POINTER(_UnitInfo), ctypes.c_size_t]),
        "flasher_session_update_sized": (ctypes.c_int, [P, P, ctypes.POINTER(_UpdateOptions),
                                                        ctypes.POINTER(_UpdateResult), ctypes.c_size_t]),
        "flasher_session_confirm": (ctypes.c_int, [P]),
        "flasher_session_rollback": (ctypes.c_int, [P]),
        "flasher_session_reboot": (ctypes.c_int, [P, ctypes.c_int]),
        "flasher_session_cancel": (None, [P]),
        "flasher_session_port": (ctypes.c_char_p, [P]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def version():
    """The library's version string."""
    return load_library().flasher_version().decode()


# ---- discovery and watch ---------------------------------------------------------

def _discovery(usb_ids=None, all=False):
    """A _DiscoveryOptions (and the array it points into) from "VID:PID" strings or (vid, pid) pairs."""
    lib = load_library()
    ids = list(usb_ids or [])
    arr = (_UsbId * max(len(ids), 1))()
    for i, u in enumerate(ids):
        if isinstance(u, str):
            _check(lib.flasher_usb_id_parse(u.encode(), ctypes.byref(arr[i])))
        else:
            arr[i].vid, arr[i].pid = u
    d = _DiscoveryOptions(1, arr, len(ids), 1 if all else 0)
    d._keep = arr
    return d


def _port_dict(p):
    return {"path": p.path.decode(), "vid": p.vid, "pid": p.pid, "serial": p.serial.decode(),
            "description": p.description.decode(errors="replace"), "bus": p.bus, "address": p.address}


def list_ports(usb_ids=None, all=False):
    """The connected units (USB ids usb_ids, default 0483:5740; every USB serial port with all=True)."""
    lib = load_library()
    d = _discovery(usb_ids, all)
    out = ctypes.POINTER(_PortInfo)()
    n = ctypes.c_size_t()
    _check(lib.flasher_port_list_with(ctypes.byref(d), ctypes.byref(out), ctypes.byref(n)))
    try:
        return [_port_dict(out[i]) for i in range(n.value)]
    finally:
        lib.flasher_port_list_free(out)


def find_port(serial, usb_ids=None):
    """The port of the unit with this serial number / uid; FlasherENotFound if absent."""
    d = _discovery(usb_ids)
    buf = ctypes.create_string_buffer(256)
    _check(load_library().flasher_port_find_with(ctypes.byref(d), serial.encode(), buf, len(buf)))
    return buf.value.decode()


class Watch:
    """Units coming and going. Poll fileno() in your own loop and call
    dispatch(0), or call dispatch(timeout) directly; each event is a dict
    {"kind": "usb"|"port", "action": "added"|"removed", "port": {...}}, passed to
    callback (if given) and returned in dispatch()'s list. interrupt() (any
    thread) makes a waiting dispatch() raise FlasherECancelled."""

    def __init__(self, callback=None, usb_ids=None, existing=False):
        lib = load_library()
        self._callback = callback
        self._pending = []
        self._d = _discovery(usb_ids)

        def on_event(ev, _payload):
            e = ev.contents
            self._pending.append({"kind": {1: "usb", 2: "port"}.get(e.kind, str(e.kind)),
                                  "action": {1: "added", 2: "removed"}.get(e.action, str(e.action)),
                                  "port": _port_dict(e.port)})
        self._cb = _WatchCb(on_event)
        o = _WatchOptions(1, ctypes.pointer(self._d), self._cb, None, 1 if existing else 0)
        self._h = ctypes.c_void_p()
        _check(lib.flasher_watch_open(ctypes.byref(self._h), ctypes.byref(o)))

    def fileno(self):
        return load_library().flasher_watch_fd(self._h)

    def dispatch(self, timeout=0):
        """Wait up to timeout seconds (None = until something happens) and return the events."""
        ms = -1 if timeout is None else int(timeout * 1000)
        _check(load_library().flasher_watch_dispatch(self._h, ms))
        events, self._pending = self._pending, []
        if self._callback:
            for e in events:
                self._callback(e)
        return events

    def interrupt(self):
        load_library().flasher_watch_interrupt(self._h)

    def close(self):
        if self._h:
            load_library().flasher_watch_close(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


# ---- packages --------------------------------------------------------------------

def _strings(items):
    items = [os.fsencode(x) if not isinstance(x, bytes) else x for x in (items or [])]
    arr = (ctypes.c_char_p * (len(items) + 1))(*items, None)
    return ctypes.cast(arr, _StrArray), len(items), arr


def pack(output, product, version, cm7=None, cm4=None, hw_revs=(), min_bootloader=None, build_id=None,
         compress=True, cm7_b=None, cm4_b=None, sign_keys=(), security_counter=0):
    """Build a package (flasher_package_build) at output and return it opened as a Package."""
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    hw, nhw, keep_hw = _strings(hw_revs)
    keys, nkeys, keep_keys = _strings(sign_keys)
    o = _PackOptions(3, product.encode(), version.encode(), hw, nhw, enc(min_bootloader), enc(build_id),
                     enc(cm7), enc(cm4), 1 if compress else 0, enc(cm7_b), enc(cm4_b), keys, nkeys,
                     security_counter)
    _check(load_library().flasher_package_build(ctypes.byref(o), os.fsencode(output)))
    return Package(output)


class Package:
    """A firmware package, opened and fully verified (inspect it through the properties)."""

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
    def min_bootloader(self):
        return _semver(load_library().flasher_package_min_bootloader(self._h)) or "0.0.0"

    @property
    def hw_revs(self):
        lib = load_library()
        return [lib.flasher_package_hw_rev(self._h, i).decode() for i in range(lib.flasher_package_hw_rev_count(self._h))]

    @property
    def sha256(self):
        return bytes(load_library().flasher_package_sha256(self._h).contents).hex()

    @property
    def manifest(self):
        return json.loads(load_library().flasher_package_manifest_json(self._h).decode())

    @property
    def images(self):
        lib = load_library()
        out = []
        for i in range(lib.flasher_package_image_count(self._h)):
            img = _PackageImage()
            _check(lib.flasher_package_get_image(self._h, i, ctypes.byref(img)))
            out.append({"core": _CORES.get(img.core, str(img.core)), "size": img.payload_size,
                        "crc32": f"{img.payload_crc32:08x}", "sha256": bytes(img.payload_sha256).hex(),
                        "load_address": img.load_address, "slot": img.slot, "compressed": bool(img.compressed),
                        "stored_size": img.stored_size})
        return out

    def close(self):
        if self._h:
            load_library().flasher_package_free(self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        self.close()


# ---- sessions ----------------------------------------------------------------------

def _info_dict(i):
    lib = load_library()
    fw = {"cm7": _semver(i.cm7_version), "cm4": _semver(i.cm4_version)}
    return {
        "uid": i.uid.decode(), "serial": i.serial.decode(), "product": i.product.decode(),
        "hw_rev": i.hw_rev.decode(), "bootloader_version": _semver(i.bootloader_version),
        "protocol_version": i.protocol_version,
        "mode": lib.flasher_mode_name(i.mode).decode(), "state": lib.flasher_boot_state_name(i.state).decode(),
        "firmware": fw, "version": fw["cm7"] or fw["cm4"], "trial_boots": i.trial_boots,
        "last_boot_error": i.last_boot_error,
        "slots": [{"core": _CORES.get(s.core, str(s.core)), "primary": bool(s.primary),
                   "state": lib.flasher_slot_state_name(s.state).decode(), "address": s.address, "size": s.size,
                   "version": _semver(s.version), "crc32": f"{s.payload_crc32:08x}"}
                  for s in i.slots[:i.slot_count]],
    }


_DONE = object()


class Session:
    """One unit. Use from one thread at a time; cancel() from any thread.

    timeout_ms, retries and reconnect_timeout_ms are the session options of
    the C library (None = its defaults); uid binds the session to that unit;
    usb_ids are the ids to find it by serial number (default 0483:5740);
    record writes every byte to a file; log(level, message) receives the
    library's log lines up to log_level ("error", "warning", "info",
    "debug"), on the thread running the operation."""

    def __init__(self, port, timeout_ms=None, retries=None, reconnect_timeout_ms=None, uid=None, usb_ids=None,
                 record=None, log=None, log_level="info"):
        lib = load_library()
        self._d = _discovery(usb_ids)

        def on_log(level, message, _payload):
            try:
                log({v: k for k, v in _LOG_LEVELS.items()}.get(level, str(level)), message.decode(errors="replace"))
            except Exception:  # a logger must not break the session
                pass
        self._log = _LogCb(on_log) if log else _LogCb()
        o = _SessionOptions(3, timeout_ms or 0, -1 if retries is None else retries, reconnect_timeout_ms or 0,
                            os.fsencode(record) if record else None, None, uid.encode() if uid else None,
                            self._log, None, _LOG_LEVELS[log_level], ctypes.pointer(self._d))
        self._h = ctypes.c_void_p()
        _check(lib.flasher_session_open(ctypes.byref(self._h), port.encode(), ctypes.byref(o)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._h:
            load_library().flasher_session_close(self._h)
            self._h = ctypes.c_void_p()

    @property
    def port(self):
        return load_library().flasher_session_port(self._h).decode()

    def info(self):
        i = _UnitInfo()
        _check(load_library().flasher_session_info_sized(self._h, ctypes.byref(i), ctypes.sizeof(i)))
        return _info_dict(i)

    def update(self, package, progress=None, compress=True, no_reboot=False, wait_confirm_ms=10000):
        """Update the unit with a Package. progress(dict) runs on this thread;
        returning False cancels (FlasherECancelled). Ctrl-C cancels and raises
        KeyboardInterrupt; an exception in progress cancels and propagates."""
        lib = load_library()
        # The C call runs on a worker thread (ctypes releases the GIL), so this
        # thread stays in Python: Ctrl-C arrives here at once, and progress
        # and its exceptions are handled here, not inside a ctypes callback.
        events = queue.SimpleQueue()

        def cb(p, _payload):
            c = p.contents
            events.put({"phase": _PHASES.get(c.phase, str(c.phase)), "core": _CORES.get(c.core),
                        "bytes_done": c.bytes_done, "bytes_total": c.bytes_total,
                        "bytes_resumed": c.bytes_resumed, "rate": c.rate, "eta_s": c.eta_s})
            return 0
        cfn = _ProgressCb(cb)
        opts = _UpdateOptions(1, cfn, None, 1 if compress else 0, 1 if no_reboot else 0, wait_confirm_ms)
        res = _UpdateResult()
        rc = [None]

        def work():
            try:
                rc[0] = lib.flasher_session_update_sized(self._h, package._h, ctypes.byref(opts), ctypes.byref(res),
                                                         ctypes.sizeof(res))
            finally:
                events.put(_DONE)
        t = threading.Thread(target=work, name="flasher-update", daemon=True)
        t.start()
        try:
            while True:
                try:
                    item = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                if progress is not None and progress(item) is False:
                    lib.flasher_session_cancel(self._h)
        except BaseException:
            # Ctrl-C or the callback's own exception: stop the unit's update
            # cleanly, wait for the library to return, then let it propagate.
            lib.flasher_session_cancel(self._h)
            t.join()
            raise
        t.join()
        _check(rc[0])
        return {"payload_bytes": res.payload_bytes, "resumed_bytes": res.resumed_bytes,
                "sent_bytes": res.sent_bytes, "wire_bytes": res.wire_bytes, "retransmits": res.retransmits,
                "timeouts": res.timeouts, "old_version": {"cm7": _semver(res.old_cm7_version),
                                                          "cm4": _semver(res.old_cm4_version)},
                "new_version": _semver(res.new_version), "after": _info_dict(res.after)}

    def confirm(self):
        _check(load_library().flasher_session_confirm(self._h))

    def rollback(self):
        _check(load_library().flasher_session_rollback(self._h))

    def reboot(self, bootloader=False):
        _check(load_library().flasher_session_reboot(self._h, 1 if bootloader else 0))

    def cancel(self):
        load_library().flasher_session_cancel(self._h)
