#!/usr/bin/env python3
"""The abusive clients of bench/abuse/run: IDLE connections that send nothing, and SLOW clients
that trickle a request header one byte a second, to a server on this machine's loopback only.
Whenever the server closes one (a header timeout, the connection cap), it is opened again, so that
as many as asked are open at any moment. Stops by itself after --seconds.

Prints "hoard: ready" once every connection has been opened, then a status line every few
seconds: how many are open, how often the server closed them and what it answered.
Standard library only (asyncio)."""
import argparse
import asyncio
import collections
import sys
import time

HOST = "127.0.0.1"  # loopback only: this is a tool against our own server, never anyone else's
# The hoard connects from another loopback address than the honest clients (wrk, on 127.0.0.1), so
# the server counts it as the other client it is: its share of the connections is its own.
SOURCE = ("127.0.0.2", 0)


class Tally:
    def __init__(self):
        self.open = collections.Counter()      # kind -> connections open now
        self.closed = collections.Counter()    # kind -> closed by the server
        self.answers = collections.Counter()   # first line of what the server said before closing
        self.failed = collections.Counter()    # kind -> connect() failed
        self.started = collections.Counter()   # kind -> clients that have had a connection open at least once


async def read_until_closed(reader, first_line):
    data = await reader.read(4096)
    if data:
        first_line.append(data.split(b"\r\n", 1)[0].decode("latin-1")[:40])
        while await reader.read(4096):
            pass


async def idle(tally, stop_at, start_after):
    await asyncio.sleep(start_after)
    started = False
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(HOST, ARGS.port, local_addr=SOURCE)
        except OSError:
            tally.failed["idle"] += 1
            await asyncio.sleep(0.5)
            continue
        tally.open["idle"] += 1
        if not started:
            started = True
            tally.started["idle"] += 1
        first_line = []
        try:
            await asyncio.wait_for(read_until_closed(reader, first_line), max(0.0, stop_at - time.monotonic()))
            tally.closed["idle"] += 1
            tally.answers[first_line[0] if first_line else "(closed silently)"] += 1
        except (asyncio.TimeoutError, OSError):
            pass
        finally:
            tally.open["idle"] -= 1
            writer.close()
        await asyncio.sleep(0.05)


async def slow(tally, stop_at, start_after):
    await asyncio.sleep(start_after)
    started = False
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(HOST, ARGS.port, local_addr=SOURCE)
        except OSError:
            tally.failed["slow"] += 1
            await asyncio.sleep(0.5)
            continue
        tally.open["slow"] += 1
        if not started:
            started = True
            tally.started["slow"] += 1
        header = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
        try:
            for byte in header:
                if time.monotonic() >= stop_at:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)  # one byte a second
                except asyncio.TimeoutError:
                    continue
                tally.closed["slow"] += 1
                tally.answers[data.split(b"\r\n", 1)[0].decode("latin-1")[:40] if data else "(closed silently)"] += 1
                break
        except OSError:
            tally.closed["slow"] += 1
            tally.answers["(reset)"] += 1
        finally:
            tally.open["slow"] -= 1
            writer.close()
        await asyncio.sleep(0.05)


async def report(tally, stop_at):
    ready = False
    while time.monotonic() < stop_at:
        await asyncio.sleep(0.5 if not ready else ARGS.status_every)
        # Every client has connected: from here on the server closes some each second (its header
        # deadline) and they reconnect at once, so "all open at the same instant" may never come.
        if not ready and tally.started["idle"] >= ARGS.idle and tally.started["slow"] >= ARGS.slow:
            ready = True
            print("hoard: ready", flush=True)
        if ready:
            answers = ", ".join(f"{count} {line}" for line, count in tally.answers.most_common())
            print(f"hoard: open: idle {tally.open['idle']}/{ARGS.idle}, slow {tally.open['slow']}/{ARGS.slow}; "
                  f"closed by the server: idle {tally.closed['idle']}, slow {tally.closed['slow']} ({answers or 'none'}); "
                  f"connect failures {sum(tally.failed.values())}", flush=True)


async def main():
    tally = Tally()
    stop_at = time.monotonic() + ARGS.seconds
    # Starts spread over --spread seconds, so that the server's timeouts close a few each second
    # rather than all at once, and the count open stays near the target.
    tasks = [idle(tally, stop_at, ARGS.spread * i / ARGS.idle) for i in range(ARGS.idle)]
    tasks += [slow(tally, stop_at, ARGS.spread * i / ARGS.slow) for i in range(ARGS.slow)]
    await asyncio.gather(report(tally, stop_at), *tasks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--status-every", type=float, default=5)
    parser.add_argument("--spread", type=float, default=10, help="seconds over which the connections are first opened")
    ARGS = parser.parse_args()
    if ARGS.idle + ARGS.slow > 5000 or ARGS.seconds > 1800:
        sys.exit("hoard: at most 5,000 connections for at most 30 minutes")
    asyncio.run(main())
