#!/usr/bin/python3
"""Update every unit of a product through flasherd and print a report
(Python standard library only).

    examples/fleet_update.py PKG [--socket PATH] [--unit UID]... [--csv FILE]

It starts one batch, follows every job (retries included) to its end,
prints one line per unit and exits 0 only if every unit runs the new
firmware. With --csv it also writes the batch's history records.
"""
import argparse
import csv
import json
import os
import socket
import sys


def default_socket():
    if os.environ.get("FLASHERD_SOCKET"):
        return os.environ["FLASHERD_SOCKET"]
    rt = os.environ.get("XDG_RUNTIME_DIR")
    if rt and os.path.exists(os.path.join(rt, "flasherd.sock")):
        return os.path.join(rt, "flasherd.sock")
    return "/run/flasherd.sock"


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.backlog = []  # notifications read while waiting for an answer

    def read(self, timeout=None):
        """Next message; socket.timeout after timeout seconds."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("flasherd closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.next_id += 1
        self.sock.settimeout(None)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            m = self.read()
            if m.get("id") == msg["id"]:
                if "error" in m:
                    e = m["error"]
                    data = e.get("data", {})
                    raise RuntimeError("%s: %s (%s)" % (method, data.get("message", e["message"]), data.get("name", e["code"])))
                return m["result"]
            if "method" in m:
                self.backlog.append(m)

    def next(self, timeout=None):
        return self.backlog.pop(0) if self.backlog else self.read(timeout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("package")
    ap.add_argument("--socket", default=default_socket())
    ap.add_argument("--unit", action="append", default=[])
    ap.add_argument("--csv", metavar="FILE")
    args = ap.parse_args()

    c = Client(args.socket)
    c.call("subscribe", {"events": ["jobs"]})
    params = {"package": os.path.abspath(args.package)}
    if args.unit:
        params["units"] = args.unit
    else:
        params["all"] = True
    started = c.call("update.start", params)
    batch = started["batch"]
    # uid -> latest job id of this batch; a retry (resume_of) replaces its job.
    current = {j["uid"]: j["job"] for j in started["jobs"]}
    final = {}
    print("batch %d: %s to %d unit(s)" % (batch, started["version"], len(current)))
    while True:
        # Once every job has ended, wait a moment for a retry of the last
        # failure before calling the batch finished.
        try:
            m = c.next(1.0 if len(final) == len(current) else None)
        except (socket.timeout, TimeoutError):
            break
        p = m.get("params", {})
        if m.get("method") != "job.state" or p.get("batch") != batch:
            continue
        if p.get("resume_of") is not None and current.get(p["uid"]) == p["resume_of"]:
            current[p["uid"]] = p["job"]
            final.pop(p["uid"], None)
            print("%s: retrying as job %d" % (p["uid"], p["job"]))
        if current.get(p["uid"]) != p["job"]:
            continue
        if p["state"] in ("done", "failed", "cancelled"):
            final[p["uid"]] = p
            print("%s: %s %s" % (p["uid"], p["state"], p.get("reason", "")))
        elif p["state"] in ("running", "verifying", "rebooting"):
            print("%s: %s" % (p["uid"], p["state"]))
    records = c.call("history.list", {"batch": batch})["records"]
    if args.csv:
        cols = ["job", "batch", "uid", "nickname", "port", "old_version", "new_version", "package_sha256",
                "start", "end", "duration_s", "outcome", "code", "error", "reason", "resume_of"]
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for r in records:
                w.writerow(r)
    ok = sum(1 for p in final.values() if p["state"] == "done")
    print("batch %d: %d of %d unit(s) updated" % (batch, ok, len(current)))
    return 0 if ok == len(current) else 1


if __name__ == "__main__":
    sys.exit(main())
