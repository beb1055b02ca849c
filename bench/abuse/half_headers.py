#!/usr/bin/env python3
"""Issue 11's first measurement, by itself: 64 connections send half a request header and wait,
then one GET /api/health is timed. On loopback only; the connections close when it exits.

    bench/abuse/half_headers.py PORT"""
import socket
import sys
import time

port = int(sys.argv[1])
held = []
for _ in range(64):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
    held.append(s)
time.sleep(0.5)
start = time.monotonic()
client = socket.create_connection(("127.0.0.1", port))
client.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
client.settimeout(60)
line = client.recv(100).split(b"\r\n")[0].decode()
print(f"{line} after {1000 * (time.monotonic() - start):.1f} ms, beside 64 half headers")
