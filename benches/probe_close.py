#!/usr/bin/env python3
"""Usage: python3 benches/probe_close.py NATRIUM_BINARY N
N SUBs on one subject from one connection, then close it; time until a
second client's PING is answered (the loop is busy removing meanwhile)."""
import socket, subprocess, sys, time, os
binary, n = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", "-1"], stderr=subprocess.PIPE, text=True)
port = None
for line in p.stderr:
    if "Listening for client connections on" in line:
        port = int(line.strip().rsplit(":", 1)[1]); break
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.recv(4096)
    s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
    buf=b""
    while b"PONG" not in buf: buf += s.recv(4096)
    return s
a = conn(); b = conn()
data = b"".join(b"SUB same.subject %d\r\n" % i for i in range(n)) + b"PING\r\n"
a.sendall(data)
buf=b""
while b"PONG" not in buf: buf += a.recv(65536)
t0 = time.time(); a.close()
time.sleep(0.001)
b.sendall(b"PING\r\n"); buf=b""
while b"PONG" not in buf: buf += b.recv(4096)
print(f"{os.path.basename(binary)} n={n}: close + PING answered after {time.time()-t0:.3f} s")
p.kill()
