#!/usr/bin/env python3
"""Issue 19's attacks on a `digits serve` on this machine's loopback, one at a time, each while an
honest client measures what others still get. Run by `bench/abuse/run --attacks`.

Each attack comes from 127.0.0.2 (the honest client is 127.0.0.1, in a process of its own: the server counts them apart, as it
would two machines). For --seconds it runs the attack; meanwhile the honest client sends
GET /api/health every 20 ms and POST /api/predict (the page's 280x280 drawing) every 50 ms, each on
its own connection, and the server's peak RSS is sampled. Prints one line of JSON per attack.

  F1  chunked bodies whose chunk-size line never ends (endless extension, endless zeros)
  F2  2,500 connections each sending a 4 MiB body slowly
  F3  costly requests (a large PNG) from 300 connections that then hang up, again and again
  F4  the costliest image the server accepts, as fast as 8 connections can send it (--image FILE)
  F5  judgements with rotating client_ids, each with a 2.9 MB PNG carrying a private chunk
  F6  Transfer-Encoding: xchunked with a request hidden in the body
  F8  as many connections from one address as the server lets it open (up to 12,000)

Standard library only. Loopback only; every loop is bounded in time and stops by itself."""
import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import struct
import sys
import time
import zlib

HONEST = "127.0.0.1"
ATTACKER = "127.0.0.2"


def png(width, height, rows, chunk=b""):
    """An 8-bit gray PNG of `rows` (a bytes per row function), with an optional extra chunk."""
    def block(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + rows(y) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + block(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk +
            block(b"IDAT", zlib.compress(raw, 6)) + block(b"IEND", b""))


def drawing_png(side=280):
    """A bar of ink on black: enough for the server to read a digit."""
    def row(y):
        return bytes(255 if side // 3 < x < side // 3 + 30 and side // 5 < y < 4 * side // 5 else 0 for x in range(side))
    return png(side, side, row)


def request(method, path, body=b"", headers=()):
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    if body or method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return int(head[9:12])


class Honest:
    """Measures what an honest client gets while an attack runs."""
    def __init__(self, port, predict_body):
        self.port, self.predict_body = port, predict_body
        self.latencies = {"health": [], "predict": []}
        self.failures = {"health": 0, "predict": 0}

    async def probe(self, kind, message, every, stop_at):
        conn = None
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(ARGS.host, self.port, local_addr=(HONEST, 0)), 5)
                reader, writer = conn
                writer.write(message)
                status = await asyncio.wait_for(read_answer(reader), 5)
                if status != 200:
                    self.failures[kind] += 1
                    conn = None
                else:
                    self.latencies[kind].append(1000 * (time.monotonic() - started))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                self.failures[kind] += 1
                conn = None
            await asyncio.sleep(max(0, every - (time.monotonic() - started)))

    def summary(self):
        out = {}
        for kind, values in self.latencies.items():
            values = sorted(values)
            p99 = values[min(len(values) - 1, int(0.99 * len(values)))] if values else None
            out[kind] = {"answered": len(values), "failed": self.failures[kind], "p99_ms": round(p99, 1) if p99 is not None else None}
        return out


async def connect():
    return await asyncio.open_connection(ARGS.host, ARGS.port, local_addr=(ATTACKER, 0))


async def forever(stop_at, one, pause=0.01):
    """Runs `one` again and again until stop_at, whatever it meets; after a refusal or a closed
    connection it waits `pause` seconds (1: as the server's Retry-After asks)."""
    while time.monotonic() < stop_at:
        try:
            await one()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            await asyncio.sleep(pause)


async def f1(stop_at, tally):
    async def one():
        reader, writer = await connect()
        writer.write(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;")
        piece = b"e" * 65536
        while time.monotonic() < stop_at and not reader.at_eof():
            writer.write(piece)
            await writer.drain()
            tally["sent_mib"] = tally.get("sent_mib", 0) + 1 / 16
        writer.close()
    await asyncio.gather(*(forever(stop_at, one) for _ in range(20)))


async def f2(stop_at, tally):
    async def one():
        reader, writer = await connect()
        writer.write(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n{\"image\":\"")
        while time.monotonic() < stop_at:
            writer.write(b"A" * 1024)
            await writer.drain()
            if reader.at_eof():
                break
            await asyncio.sleep(1)
        writer.close()
        await asyncio.sleep(1)  # refused: again after the Retry-After second
    await asyncio.gather(*(forever(stop_at, one, pause=1) for _ in range(2500)))


async def f3(stop_at, tally):
    big = request("POST", "/api/predict", json.dumps({"image": "data:image/png;base64," + base64.b64encode(ARGS.costly).decode()}).encode())
    async def one():
        reader, writer = await connect()
        writer.write(big)
        await writer.drain()
        writer.close()  # hang up without waiting for the answer
        tally["sent"] = tally.get("sent", 0) + 1
    await asyncio.gather(*(forever(stop_at, one) for _ in range(300)))


async def f4(stop_at, tally):
    big = request("POST", "/api/predict", json.dumps({"image": "data:image/png;base64," + base64.b64encode(ARGS.costly).decode()}).encode())
    async def one():
        reader, writer = await connect()
        while time.monotonic() < stop_at:
            writer.write(big)
            status = await asyncio.wait_for(read_answer(reader), 10)
            tally[str(status)] = tally.get(str(status), 0) + 1
    await asyncio.gather(*(forever(stop_at, one) for _ in range(8)))


async def f5(stop_at, tally):
    # 2.9 MB of incompressible private chunk beside a small drawing.
    private = os.urandom(2_900_000)
    chunk = struct.pack(">I", len(private)) + b"prVt" + private + struct.pack(">I", zlib.crc32(b"prVt" + private) & 0xFFFFFFFF)
    image = png(280, 280, lambda y: bytes(255 if 100 < x < 130 and 60 < y < 220 else 0 for x in range(280)), chunk)
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    counter = [0]
    async def one():
        reader, writer = await connect()
        while time.monotonic() < stop_at:
            counter[0] += 1
            body = json.dumps({"image": url, "label": 1, "client_id": f"rotating-{counter[0]}"}).encode()
            writer.write(request("POST", "/api/feedback", body))
            status = await asyncio.wait_for(read_answer(reader), 10)
            tally[str(status)] = tally.get(str(status), 0) + 1
    await asyncio.gather(*(forever(stop_at, one) for _ in range(4)))


async def f6(stop_at, tally):
    async def one():
        reader, writer = await connect()
        writer.write(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\nGET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        answers = data.count(b"HTTP/1.1 ")
        tally["answers"] = tally.get("answers", 0) + answers
        tally["requests"] = tally.get("requests", 0) + 1
        tally["first_status"] = data[9:12].decode(errors="replace")
    await asyncio.gather(*(forever(stop_at, one) for _ in range(4)))


async def f8(stop_at, tally):
    held = []
    refused = 0
    for _ in range(12000):
        if time.monotonic() > stop_at:
            break
        try:
            reader, writer = await asyncio.wait_for(connect(), 2)
            held.append((reader, writer))
        except (OSError, asyncio.TimeoutError):
            refused += 1
    await asyncio.sleep(1)
    open_now = sum(1 for reader, _ in held if not reader.at_eof())
    tally["opened"], tally["connect_failed"] = len(held), refused
    while time.monotonic() < stop_at:
        await asyncio.sleep(1)
        tally["still_open"] = sum(1 for reader, _ in held if not reader.at_eof())
    for _, writer in held:
        writer.close()


ATTACKS = {"F1": f1, "F2": f2, "F3": f3, "F4": f4, "F5": f5, "F6": f6, "F8": f8}


def rss_peak_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def honest_client(seconds, results):
    """The honest client, in a process of its own: its timings must not wait on the attacker's
    event loop."""
    async def probe():
        stop_at = time.monotonic() + seconds
        honest = Honest(ARGS.port, request("POST", "/api/predict", open(ARGS.body, "rb").read()))
        await asyncio.gather(honest.probe("health", request("GET", "/api/health"), 0.02, stop_at),
                             honest.probe("predict", honest.predict_body, 0.05, stop_at))
        results.put(honest.summary())
    asyncio.run(probe())


async def attack():
    stop_at = time.monotonic() + ARGS.seconds
    tally = {}
    await ATTACKS[ARGS.attack](stop_at, tally)
    return tally


def main():
    results = multiprocessing.Queue()
    honest = multiprocessing.Process(target=honest_client, args=(ARGS.seconds, results))
    honest.start()
    tally = asyncio.run(attack())
    summary = results.get(timeout=ARGS.seconds + 30)
    honest.join()
    print(json.dumps({"attack": ARGS.attack, "seconds": ARGS.seconds, "rss_peak_mib": round(rss_peak_kib(ARGS.pid) / 1024, 1),
                      "honest": summary, "attacker": tally}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attack", choices=sorted(ATTACKS), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process, for its peak RSS")
    parser.add_argument("--body", required=True, help="the honest /api/predict body (bench/http/make_body.py)")
    parser.add_argument("--image", help="the costly image for F3 and F4 (default: a 1000x1000 8-bit gray PNG of noise)")
    parser.add_argument("--seconds", type=float, default=20)
    ARGS = parser.parse_args()
    ARGS.host = "127.0.0.1"
    if ARGS.image:
        ARGS.costly = open(ARGS.image, "rb").read()
    else:
        ARGS.costly = png(1000, 1000, lambda y: os.urandom(1000))
    main()
