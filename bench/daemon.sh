#!/usr/bin/env bash
# flasherd under hostile local clients: memory of the daemon and answer
# latency of one normal client under each load of issue 12, and start-up
# time against the size of the history. Prints two tables.
#
#   bench/daemon.sh [BUILD_DIR]         (default: build)
#   SIZES="1000 10000 100000" bench/daemon.sh build
#
# Loads (one at a time, each on a fresh daemon):
#   none          nothing else
#   flood x2      two clients stream devices.list requests and never read
#   idle x600     600 idle connections of one uid (nobody when run as root)
#   slowsub x200  200 subscribers that never read, 4 units updating
#   inspect x16   16 package.inspect of a 64 MiB file at once (refused unread:
#                 larger than any valid package)
#   history x64   64 history.list of a 10k-job history from one uid
# The normal client (another uid when run as root) measures 40 `version`
# calls (answered in the socket loop) and 8 `package.inspect` of a small
# package (answered by a thread).
set -euo pipefail
BUILD=${1:-build}
SIZES=${SIZES:-1000 10000 100000}
FLASHERD=$BUILD/flasherd/flasherd
DEVSIM=$BUILD/firmware/port/host/flasher-devsim
FLASHER=$BUILD/cli/flasher
for p in "$FLASHERD" "$DEVSIM" "$FLASHER"; do
  [ -x "$p" ] || { echo "missing $p (build the project first)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/flasherd-bench.XXXXXX)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
head -c 65536 /dev/urandom >"$W/cm7.bin"
head -c 16384 /dev/urandom >"$W/cm4.bin"
"$FLASHER" pack --product demo --version 2.0.0 --cm7 "$W/cm7.bin" --cm4 "$W/cm4.bin" -o "$W/p.flpkg" >/dev/null
chmod 644 "$W/p.flpkg"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$W/big.flpkg"
chmod 644 "$W/big.flpkg"

python3 - "$FLASHERD" "$DEVSIM" "$W" "$SIZES" <<'PY'
import json, os, select, signal, socket, subprocess, sys, time

FLASHERD, DEVSIM, W, SIZES = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
ROOT = os.geteuid() == 0
HOSTILE_UID = 65534 if ROOT else os.getuid()
NORMAL_UID = 65533 if ROOT else os.getuid()
procs = []

def start_daemon(name, ports=(), extra=(), history=None):
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    sock = os.path.join(d, "d.sock")
    args = [FLASHERD, "--socket", sock, "--history", history or os.path.join(d, "h.jsonl"), "--no-usb",
            "--quiet", "--rescan-ms", "500"]
    if ROOT:
        args += ["--group", "65534"]
    for p in ports:
        args += ["--port", p]
    args += list(extra)
    t0 = time.monotonic()
    p = subprocess.Popen(args)
    procs.append(p)
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(b'{"jsonrpc":"2.0","id":0,"method":"version"}\n')
            s.settimeout(600)
            if s.recv(4096):
                s.close()
                break
        except OSError:
            time.sleep(0.005)
        if p.poll() is not None:
            raise SystemExit("flasherd exited")
    return p, sock, time.monotonic() - t0

def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()

def mem_mib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0

def as_user(uid):
    if ROOT:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(uid)

class Client:
    def __init__(self, sock):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(sock)
        self.buf = b""
        self.id = 0
    def call(self, method, params=None, timeout=30):
        self.id += 1
        req = {"jsonrpc": "2.0", "id": self.id, "method": method}
        if params is not None:
            req["params"] = params
        self.s.sendall(json.dumps(req).encode() + b"\n")
        end = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                m = json.loads(line)
                if m.get("id") == self.id:
                    return m
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return None
            c = self.s.recv(1 << 20)
            if not c:
                return None
            self.buf += c

def normal_client(sock, out_fd):
    """Child: the measured client; writes its numbers as JSON to out_fd."""
    as_user(NORMAL_UID)
    c = Client(sock)
    fast, slow, errors = [], [], 0
    for _ in range(40):
        t = time.monotonic()
        r = c.call("version")
        fast.append((time.monotonic() - t) * 1000)
        errors += not (r and "result" in r)
    for _ in range(8):
        t = time.monotonic()
        r = c.call("package.inspect", {"package": os.path.join(W, "p.flpkg")})
        slow.append((time.monotonic() - t) * 1000)
        errors += not (r and "result" in r)
    os.write(out_fd, json.dumps({"fast": fast, "slow": slow, "errors": errors}).encode())
    os._exit(0)

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]

def hostile(kind, sock):
    """Child: the hostile load, until killed."""
    as_user(HOSTILE_UID)
    conns = []
    if kind == "flood":
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.setblocking(False)
        burst = b'{"jsonrpc":"2.0","id":1,"method":"devices.list"}\n' * 1000
        while True:
            try:
                s.send(burst)
            except BlockingIOError:
                time.sleep(0.001)
    if kind == "idle":
        for _ in range(600):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                conns.append(s)
            except OSError:
                pass
    if kind == "slowsub":
        for _ in range(200):
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"subscribe"}\n')
            conns.append(s)
    if kind == "inspect":
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "package.inspect",
                                  "params": {"package": os.path.join(W, "big.flpkg")}}).encode() + b"\n")
            conns.append(s)
    if kind == "history":
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"history.list"}\n' * 64)
        conns.append(s)
    while True:
        time.sleep(1)

def write_history(path, n, owner):
    t = 1795688365.0
    with open(path, "w") as f:
        for j in range(1, n + 1):
            base = {"job": j, "batch": (j + 7) // 8, "owner": owner, "uid": "%024X" % (0xA1000 + j % 16),
                    "nickname": "", "port": "/dev/ttyACM0", "old_version": "1.0.0", "new_version": "2.0.0",
                    "product": "demo", "package": "/srv/fw/demo.flpkg", "package_sha256": "0" * 64,
                    "attempt": 1, "max_attempts": 3, "no_reboot": 0, "compress": 1, "resume_of": None}
            f.write(json.dumps(dict(base, type="queued", created_unix=t)) + "\n")
            f.write(json.dumps(dict(base, type="start", start_unix=t)) + "\n")
            f.write(json.dumps({"type": "end", "job": j, "batch": base["batch"], "owner": owner, "uid": base["uid"],
                                "outcome": "done", "code": 0, "error": "", "reason": "", "bytes": 81920,
                                "total": 81920, "resumed_bytes": 0}) + "\n")

def run_load(kind):
    units = []
    ports = []
    if kind == "slowsub":
        for i in range(4):
            link = os.path.join(W, f"u{i}.pty")
            u = subprocess.Popen([DEVSIM, "--flash", os.path.join(W, f"u{i}.flash"), "--product", "demo",
                                  "--serial", "%024X" % (0xB1000 + i), "--link", link, "--link-rate", "20000",
                                  "--quiet"], stdout=subprocess.PIPE)
            u.stdout.readline()
            units.append(u)
            ports.append(link)
    hist = None
    if kind == "history":
        hist = os.path.join(W, "hist10k.jsonl")
        write_history(hist, 10000, HOSTILE_UID)
    p, sock, _ = start_daemon(kind, ports, history=hist)
    base_rss = mem_mib(p.pid, "VmRSS")
    if kind == "slowsub":
        c = Client(sock)
        for _ in range(100):
            r = c.call("devices.list")
            if len(r["result"]["devices"]) == 4:
                break
            time.sleep(0.2)
    kids = []
    n = {"flood": 2}.get(kind, 1) if kind != "none" else 0
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            hostile(kind, sock)
        kids.append(pid)
    time.sleep(1.0)
    if kind == "slowsub":
        r = c.call("update.start", {"package": os.path.join(W, "p.flpkg"), "all": True})
        time.sleep(1.0)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        normal_client(sock, wfd)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    if kind == "slowsub":
        time.sleep(4.0)  # the jobs' notifications pile up for the laggards
    rss = mem_mib(p.pid, "VmRSS")
    hwm = mem_mib(p.pid, "VmHWM")
    for k in kids:
        os.kill(k, signal.SIGKILL)
        os.waitpid(k, 0)
    stop(p)
    for u in units:
        u.terminate()
        u.wait()
    m = json.loads(data) if data else {"fast": [0], "slow": [0], "errors": -1}
    return base_rss, rss, hwm, m

names = {"none": "none", "flood": "flood x2", "idle": "idle x600", "slowsub": "slowsub x200",
         "inspect": "inspect x16", "history": "history x64"}
print("normal client beside each load (uid %d; hostile uid %d)" % (NORMAL_UID, HOSTILE_UID))
print("%-13s %8s %8s %9s %11s %11s %11s %11s %7s" % ("load", "rss0_mib", "rss_mib", "peak_mib", "fast_p50_ms",
                                                      "fast_max_ms", "slow_p50_ms", "slow_max_ms", "errors"))
for kind in ["none", "flood", "idle", "slowsub", "inspect", "history"]:
    b, r, h, m = run_load(kind)
    print("%-13s %8.1f %8.1f %9.1f %11.2f %11.2f %11.2f %11.2f %7d" % (names[kind], b, r, h, pct(m["fast"], 0.5),
          max(m["fast"]), pct(m["slow"], 0.5), max(m["slow"]), m["errors"]))
    sys.stdout.flush()

print()
print("start-up against history size (time to the first answer)")
print("%8s %10s %12s %10s" % ("jobs", "file_mib", "startup_s", "rss_mib"))
for n in SIZES:
    n = int(n)
    path = os.path.join(W, f"h{n}.jsonl")
    write_history(path, n, 0)
    p, sock, t = start_daemon(f"start{n}", history=path)
    rss = mem_mib(p.pid, "VmRSS")
    stop(p)
    print("%8d %10.1f %12.3f %10.1f" % (n, os.path.getsize(path) / 2**20, t, rss))
    sys.stdout.flush()
PY
