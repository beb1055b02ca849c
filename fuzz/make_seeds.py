#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/: small inputs of each
kind a parser accepts, made here from nothing (no downloaded files). Run it again after changing
a format; scripts/fuzz --merge adds what the fuzzer found. Regression inputs of findings live
beside the seeds as finding-*, and this script leaves them alone.

    fuzz/make_seeds.py            # needs python3 and, for the JPEG seed, g++ and libstb-dev
"""
import gzip
import json
import os
import sqlite3
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def put(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / name).write_bytes(data)


# ---- a little drawing: a diagonal stroke on black, side × side, values 0–255 ----
def stroke(side=8):
    return [[255 if abs(x - y) <= 1 and 1 <= x < side - 1 else 0 for x in range(side)] for y in range(side)]


# ---- IDX ----
def idx_images(images):
    rows, cols = len(images[0]), len(images[0][0])
    head = struct.pack(">IIII", 0x803, len(images), rows, cols)
    return head + bytes(v for image in images for row in image for v in row)


def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


def idx_pair(images, labels):
    # fuzz_idx.cpp: 4 bytes (little-endian) = the image file's length, then both files.
    return struct.pack("<I", len(images)) + images + labels


def make_idx():
    three = [stroke(4), [[0] * 4] * 4, stroke(4)[::-1]]
    images, labels = idx_images(three), idx_labels([1, 0, 7])
    put("idx", "plain", idx_pair(images, labels))
    put("idx", "gzipped", idx_pair(gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)))
    put("idx", "gzipped-images-plain-labels", idx_pair(gzip.compress(images, mtime=0), labels))
    put("idx", "mnist-size", idx_pair(idx_images([stroke(28)]), idx_labels([4])))
    put("idx", "swapped-files", idx_pair(labels, images))


# ---- safetensors model files ----
def model_file(sizes, metadata=None, extra=()):
    meta = {"format": "digits-mlp", "format_version": "1", "architecture": ",".join(map(str, sizes)),
            "hidden_activation": "relu", "output": "softmax", "input_scale": "0.00392156886"}
    meta.update(metadata or {})
    header, data = {"__metadata__": meta}, b""

    def add(name, shape, count, start):
        nonlocal data
        values = [((i * 37 + start) % 19 - 9) / 10 for i in range(count)]
        begin = len(data)
        data += struct.pack("<%df" % count, *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [begin, len(data)]}

    for i in range(len(sizes) - 1):
        n_in, n_out = sizes[i], sizes[i + 1]
        add("fc%d.weight" % (i + 1), [n_out, n_in], n_out * n_in, i)
        add("fc%d.bias" % (i + 1), [n_out], n_out, i + 5)
    for name, shape in extra:
        count = 1
        for s in shape:
            count *= s
        add(name, shape, count, len(name))
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + data


def moments(sizes):
    tensors = []
    for i in range(len(sizes) - 1):
        for part, shape in (("weight", [sizes[i + 1], sizes[i]]), ("bias", [sizes[i + 1]])):
            for moment in ("m", "v"):
                tensors.append(("optimizer.fc%d.%s.%s" % (i + 1, part, moment), shape))
    return tensors


def make_models():
    put("model", "small", model_file([4, 3, 2]))
    put("model", "three-layers-tanh", model_file([6, 4, 3, 2], {"hidden_activation": "tanh", "accuracy.test": "97.50"}))
    put("model", "mnist-shape", model_file([784, 2, 10]))
    put("model", "checkpoint", model_file([4, 3, 2], {"checkpoint.epochs_done": "2", "optimizer.kind": "adam",
                                                     "optimizer.steps_taken": "12"}, moments([4, 3, 2])))
    ckpt = {"checkpoint.epochs_done": "3", "optimizer.steps_taken": "40", "training.optimizer": "momentum"}
    put("checkpoint", "adam", model_file([4, 3, 2], {"checkpoint.epochs_done": "2", "optimizer.kind": "adam",
                                                    "optimizer.steps_taken": "12"}, moments([4, 3, 2])))
    put("checkpoint", "momentum", model_file([4, 3, 2], dict(ckpt, **{"optimizer.kind": "momentum"}), moments([4, 3, 2])))
    put("checkpoint", "sgd-no-steps", model_file([4, 2], {"checkpoint.epochs_done": "0", "optimizer.kind": "sgd",
                                                         "optimizer.steps_taken": "0"}))
    put("checkpoint", "plain-model", model_file([4, 3, 2]))
    version = {"version.number": "2", "version.parent": "1", "version.validation_accuracy": "98.52",
               "version.corrections_learned": "10", "version.last_judgement_id": "42", "created": "2026-12-02T07:44:36Z",
               "accuracy.test": "99.10", "accuracy.train": "99.95"}
    put("model_version", "version-2", model_file([784, 4, 10], version))
    put("model_version", "parent-0", model_file([784, 4, 10], dict(version, **{"version.parent": "0"})))
    put("model_version", "no-version-keys", model_file([784, 4, 10]))


# ---- images ----
def png(width, height, colour_type, bit_depth, rows, palette=None, interlace=0):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\0" + row for row in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def make_images():
    s = stroke(8)
    gray = [bytes(row) for row in s]
    put("image", "gray.png", png(8, 8, 0, 8, gray))
    put("image", "gray16.png", png(8, 8, 0, 16, [b"".join(struct.pack(">H", v * 257) for v in row) for row in s]))
    put("image", "rgba.png", png(8, 8, 6, 8, [b"".join(bytes([v, v, v, 255 if v else 0]) for v in row) for row in s]))
    put("image", "gray-alpha.png", png(8, 8, 4, 8, [b"".join(bytes([0, v]) for v in row) for row in s]))
    put("image", "palette.png", png(8, 8, 3, 8, [bytes(1 if v else 0 for v in row) for row in s], palette=b"\xff\xff\xff\x00\x00\x00"))
    put("image", "dark-on-light.pgm", b"P5 8 8 255\n" + bytes(255 - v for row in s for v in row))
    put("image", "ascii.pgm", "P2\n8 8\n255\n" + "\n".join(" ".join(map(str, row)) for row in s) + "\n")
    # 24-bit BMP, bottom-up, rows padded to 4 bytes (8 × 3 = 24: no padding)
    pixels = b"".join(bytes([v, v, v]) * 1 for row in reversed(s) for v in row)
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, 8, 8, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    put("image", "rgb.bmp", header + info + pixels)
    jpeg = jpeg_of(s)
    if jpeg:
        put("image", "gray.jpg", jpeg)
    return gray


# ---- numbers: several strokes side by side, for fuzz_read ----
def make_numbers():
    def canvas(width, height, marks):
        """marks: (x0, y0, x1, y1) filled rectangles of ink on black."""
        rows = [[0] * width for _ in range(height)]
        for x0, y0, x1, y1 in marks:
            for y in range(y0, y1):
                for x in range(x0, x1):
                    rows[y][x] = 255
        return rows

    def pgm(rows):
        return b"P5 %d %d 255\n" % (len(rows[0]), len(rows)) + bytes(v for row in rows for v in row)

    # three upright strokes apart, a dash and a dot
    apart = canvas(48, 20, [(4, 3, 7, 17), (14, 3, 17, 17), (24, 3, 27, 17), (31, 9, 37, 11), (41, 15, 43, 17)])
    put("read", "apart.pgm", pgm(apart))
    # two boxes joined by a thin bridge: one component wide enough to be cut
    touching = canvas(40, 20, [(3, 3, 15, 5), (3, 15, 15, 17), (3, 3, 5, 17), (13, 3, 15, 17), (15, 9, 22, 10), (22, 3, 34, 5), (22, 3, 24, 17), (32, 3, 34, 17)])
    put("read", "touching.pgm", pgm(touching))
    # a bar over a body (a 5's detached bar), on light paper
    five = canvas(20, 24, [(5, 2, 15, 4), (5, 6, 7, 12), (5, 11, 15, 13), (13, 11, 15, 21), (5, 19, 15, 21)])
    put("read", "five-dark-on-light.pgm", pgm([[255 - v for v in row] for row in five]))
    put("read", "apart.png", png(48, 20, 0, 8, [bytes(row) for row in apart]))


def jpeg_of(s):
    """A baseline JPEG of the drawing, written by stb_image_write (libstb-dev) through g++."""
    program = r"""
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#include <cstdio>
int main(int, char** argv) {
  unsigned char p[64];
  for (int i = 0; i < 64; ++i) p[i] = (unsigned char)std::getchar();
  return stbi_write_jpg(argv[1], 8, 8, 1, p, 90) ? 0 : 1;
}
"""
    with tempfile.TemporaryDirectory() as tmp:
        source, binary, out = Path(tmp, "j.cpp"), Path(tmp, "j"), Path(tmp, "out.jpg")
        source.write_text(program)
        try:
            subprocess.run(["g++", "-I/usr/include/stb", str(source), "-o", str(binary)], check=True, capture_output=True)
            subprocess.run([str(binary), str(out)], input=bytes(v for row in s for v in row), check=True)
        except (OSError, subprocess.CalledProcessError):
            print("make_seeds: no g++ or stb: skipping the JPEG seed")
            return None
        return out.read_bytes()


# ---- request bodies and data URLs ----
def make_requests(gray_rows):
    import base64
    small_png = png(8, 8, 0, 8, gray_rows)
    url = "data:image/png;base64," + base64.b64encode(small_png).decode()
    s4 = [v for row in stroke(4) for v in row]
    image28 = [[v for v in row] for row in stroke(28)]
    bodies = {
        "predict-image": {"image": url},
        "predict-pixels": {"width": 4, "height": 4, "pixels": s4},
        "feedback-image": {"image": url, "label": 7, "client_id": "0b7c5b1e-3f6a-4c1e-9a57-2f1d8e0c4b11"},
        "feedback-pixels": {"width": 4, "height": 4, "pixels": s4, "label": 1},
        "v2-uint8-nested": {"id": "r1", "inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 28, 28], "data": image28}],
                            "outputs": [{"name": "probabilities"}]},
        "v2-fp32-flat": {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784], "data": [float(v) for row in image28 for v in row]}]},
        "rollback-version": {"version": 1},
        "rollback-empty": {},
    }
    for name, body in bodies.items():
        put("api", name, json.dumps(body, separators=(",", ":")))
    put("data_url", "png", url)
    put("data_url", "unpadded", "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n").decode().rstrip("="))
    put("data_url", "jpeg-type", "data:image/jpeg;base64,/9j/4AAQ")
    put("data_url", "not-base64", "data:image/png,raw")


# ---- feedback databases ----
SCHEMA = """
CREATE TABLE judgements (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  input         BLOB    NOT NULL CHECK (length(input) = 784),
  drawing_png   BLOB    NOT NULL,
  label         INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
  predicted     INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
  probabilities BLOB    NOT NULL CHECK (length(probabilities) = 40),
  correct       INTEGER NOT NULL CHECK (correct = (label = predicted)),
  model_version INTEGER NOT NULL CHECK (model_version >= 0),
  created_ms    INTEGER NOT NULL CHECK (created_ms >= 0),
  client_id     TEXT    NOT NULL
);
CREATE INDEX judgements_by_correct ON judgements (correct);
"""


def database(name, schema, rows, application_id=0x64677473, user_version=1):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "db")
        db = sqlite3.connect(path)
        db.execute("PRAGMA page_size = 512")
        db.executescript(schema)
        db.execute("PRAGMA application_id = %d" % application_id)
        db.execute("PRAGMA user_version = %d" % user_version)
        for row in rows:
            db.execute("INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        db.commit()
        db.execute("VACUUM")
        db.close()
        put("store", name, path.read_bytes())


def make_databases(small_png):
    probabilities = struct.pack("<10f", *([0.05] * 7 + [0.55, 0.0, 0.0]))
    image = bytes(v for row in stroke(28) for v in row)
    rows = [(image, small_png, 7, 7, probabilities, 1, 0, 1764662400000, "client-a"),
            (image, b"", 1, 7, probabilities, 0, 2, 1764662401000, "")]
    database("two-judgements", SCHEMA, rows)
    database("empty", SCHEMA, [])
    loose = SCHEMA.replace("CHECK (length(input) = 784)", "").replace("CHECK (label BETWEEN 0 AND 9)", "")
    database("written-by-another-tool", loose, [(b"\1\2\3", b"", 12, 3, probabilities, 0, 0, 0, "x")])
    database("newer-schema", SCHEMA, [], user_version=7)
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp, "db"))
        db.execute("PRAGMA page_size = 512")
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
        db.close()
        put("store", "someone-elses", Path(tmp, "db").read_bytes())


def main():
    make_idx()
    make_models()
    gray = make_images()
    make_numbers()
    make_requests(gray)
    make_databases(png(8, 8, 0, 8, gray))
    print("make_seeds: wrote", sum(1 for _ in CORPUS.rglob("*") if _.is_file()), "files under", CORPUS)


if __name__ == "__main__":
    main()
