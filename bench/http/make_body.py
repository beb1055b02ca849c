#!/usr/bin/env python3
"""Writes the request body the benchmark sends: {"image": "data:image/png;base64,..."} holding a
280x280 PNG of a hand-drawn-looking 7, white on black, as the page sends it; with --lean, also
"activations": false (the answer without every layer's output, docs/api.md). Standard library
only: the PNG is encoded here with zlib, so the benchmark needs no imaging package."""
import base64
import json
import math
import struct
import sys
import zlib

SIDE = 280
PEN = 18.0  # pen diameter in pixels, as the page draws at 280x280


def draw_seven():
    # The strokes of a 7 in the unit box, placed off-centre like a real drawing.
    stroke = [(0.12, 0.08), (0.86, 0.1), (0.45, 0.95)]
    left, top, width, height = 70.0, 40.0, 150.0, 200.0
    points = [(left + u * width, top + v * height) for u, v in stroke]
    pixels = bytearray(SIDE * SIDE)
    radius = PEN / 2
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        dx, dy = bx - ax, by - ay
        length2 = max(dx * dx + dy * dy, 1e-12)
        for y in range(int(min(ay, by) - radius - 1), int(max(ay, by) + radius + 2)):
            for x in range(int(min(ax, bx) - radius - 1), int(max(ax, bx) + radius + 2)):
                if not (0 <= x < SIDE and 0 <= y < SIDE):
                    continue
                px, py = x + 0.5, y + 0.5
                t = min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / length2))
                distance = math.hypot(px - (ax + t * dx), py - (ay + t * dy))
                coverage = min(1.0, max(0.0, radius + 0.5 - distance))
                pixels[y * SIDE + x] = max(pixels[y * SIDE + x], round(255 * coverage))
    return pixels


def png(gray, side):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(gray[y * side:(y + 1) * side]) for y in range(side))  # filter 0 per row
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    args = sys.argv[1:]
    lean = "--lean" in args
    if lean:
        args.remove("--lean")
    if len(args) != 1:
        sys.exit("usage: make_body.py [--lean] OUTPUT.json")
    image = "data:image/png;base64," + base64.b64encode(png(draw_seven(), SIDE)).decode("ascii")
    body = {"image": image, "activations": False} if lean else {"image": image}
    with open(args[0], "w") as out:
        json.dump(body, out)
