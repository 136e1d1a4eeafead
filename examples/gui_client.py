#!/usr/bin/python3
"""A GUI-style client of flasherd (Python standard library only).

It does what a desktop app does: connects to the daemon, subscribes to
events, keeps a live model of the units and jobs, and redraws a status view
whenever something changes. With a package it starts an update on the units
the user picked (or all of them) without ever blocking on the daemon.

    examples/gui_client.py [--socket PATH] [--update PKG [--unit UID]...]

See docs/daemon-api.md for the protocol.
"""
import argparse
import json
import os
import selectors
import socket
import sys
import time


def default_socket():
    if os.environ.get("FLASHERD_SOCKET"):
        return os.environ["FLASHERD_SOCKET"]
    rt = os.environ.get("XDG_RUNTIME_DIR")
    if rt and os.path.exists(os.path.join(rt, "flasherd.sock")):
        return os.path.join(rt, "flasherd.sock")
    return "/run/flasherd.sock"


class Daemon:
    """Non-blocking JSON-RPC connection: call() returns at once; answers and
    notifications are dispatched from poll(), like a GUI event loop does."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.buf = b""
        self.next_id = 1
        self.pending = {}  # id -> callback(result, error)
        self.on_notification = lambda method, params: None

    def call(self, method, params=None, callback=None):
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.pending[self.next_id] = callback or (lambda r, e: None)
        self.next_id += 1
        self.sock.setblocking(True)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        self.sock.setblocking(False)

    def poll(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        if not sel.select(timeout):
            return True
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"])(msg.get("result"), msg.get("error"))
            elif "method" in msg:
                self.on_notification(msg["method"], msg.get("params", {}))
        return True


class Model:
    def __init__(self):
        self.devices = {}  # uid -> device
        self.jobs = {}     # job id -> job
        self.messages = []

    def render(self):
        out = sys.stdout
        if out.isatty():
            out.write("\033[H\033[2J")
        out.write("Units\n")
        for uid, d in sorted(self.devices.items()):
            name = d.get("nickname") or uid
            out.write("  %-24s %-8s fw %-8s %-10s %s\n" % (name, d.get("product", ""), d.get("firmware_version", "?"),
                                                           d.get("status", ""), d.get("port", "")))
        out.write("Jobs\n")
        for jid, j in sorted(self.jobs.items()):
            pct = 100.0 * j.get("bytes", 0) / j["total"] if j.get("total") else 0.0
            extra = j.get("reason", "") if j.get("state") in ("failed", "cancelled") else ""
            out.write("  #%-4d %-24s %-10s %5.1f%% %s\n" % (jid, j.get("uid", ""), j.get("state", ""), pct, extra))
        for m in self.messages[-5:]:
            out.write("! %s\n" % m)
        out.flush()

    def notification(self, method, p):
        if method in ("device.added", "device.changed"):
            self.devices[p["uid"]] = p
        elif method == "device.removed":
            self.devices.pop(p["uid"], None)
        elif method == "job.state":
            self.jobs.setdefault(p["job"], {}).update(p)
        elif method == "job.progress":
            self.jobs.setdefault(p["job"], {}).update(p)
        self.render()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--socket", default=default_socket())
    ap.add_argument("--update", metavar="PKG")
    ap.add_argument("--unit", action="append", default=[])
    ap.add_argument("--exit-when-done", action="store_true", help="leave when every job has ended")
    args = ap.parse_args()

    d = Daemon(args.socket)
    m = Model()
    d.on_notification = m.notification

    def subscribed(result, error):
        if error:
            m.messages.append(error.get("message"))
            return
        for dev in result["devices"]:
            m.devices[dev["uid"]] = dev
        for job in result["jobs"]:
            m.jobs[job["job"]] = job
        m.render()
        if args.update:
            params = {"package": os.path.abspath(args.update)}
            if args.unit:
                params["units"] = args.unit
            else:
                params["all"] = True
            d.call("update.start", params, started)

    def started(result, error):
        if error:
            data = error.get("data", {})
            m.messages.append("update refused: %s %s" % (data.get("name", error["code"]), data.get("message", error["message"])))
        else:
            m.messages.append("batch %d started: %d job(s)" % (result["batch"], len(result["jobs"])))
        m.render()

    d.call("subscribe", {}, subscribed)
    while d.poll(0.5):
        if args.exit_when_done and m.jobs and all(j.get("state") in ("done", "failed", "cancelled") for j in m.jobs.values()):
            # A retry may follow a failure right away: give it a moment.
            deadline = time.time() + 0.5
            while time.time() < deadline and d.poll(0.1):
                pass
            if all(j.get("state") in ("done", "failed", "cancelled") for j in m.jobs.values()):
                return 0 if all(j["state"] == "done" for j in m.jobs.values()) else 1
    print("flasherd closed the connection", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
