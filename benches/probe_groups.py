#!/usr/bin/env python3
"""N SUBs on one subject under N distinct queue groups, then PING; time to
PONG. Usage: python3 benches/probe_groups.py NATRIUM_BINARY N"""
import socket, subprocess, sys, time, os
binary, n = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", "-1"], stderr=subprocess.PIPE, text=True)
for line in p.stderr:
    if "Listening for client connections on" in line:
        port = int(line.strip().rsplit(":", 1)[1]); break
s = socket.create_connection(("127.0.0.1", port)); s.recv(4096)
s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n'); buf=b""
while b"PONG" not in buf: buf += s.recv(4096)
data = b"".join(b"SUB one g%d %d\r\n" % (i, i) for i in range(n)) + b"PING\r\n"
t0=time.time(); s.sendall(data); buf=b""
while b"PONG" not in buf: buf += s.recv(65536)
print(f"{os.path.basename(binary)} n={n} queue groups on one subject: PONG after {time.time()-t0:.3f} s")
p.kill()
