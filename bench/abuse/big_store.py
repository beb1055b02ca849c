#!/usr/bin/env python3
"""Makes a large feedback database for the memory measurements of issue 19 (F5): STATE_DIR/feedback.db
holding judgements whose drawings are incompressible random bytes of --drawing-kib each (32 KiB,
the most the server stores since drawings are re-encoded and bounded), until the file reaches
--mib. A tenth are corrections. With --considered F, it also writes STATE_DIR/learning.json saying
that the first fraction F of the ids has been considered, so that a server started on it has those
to replay and the rest to learn in its first round.

The schema, application id and schema version are read from src/feedback/store.cpp, so the file is
exactly what the server makes (--schema 1 makes the previous version's, to time its migration).
Standard library only (sqlite3).

  bench/abuse/big_store.py STATE_DIR [--mib 1024] [--drawing-kib 32] [--considered 0.5] [--schema 2]
"""
import argparse
import json
import os
import random
import re
import sqlite3
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STORE_CPP = os.path.join(HERE, "..", "..", "src", "feedback", "store.cpp")

# Version 1's schema as it was written (0888334), for --schema 1.
SCHEMA_1 = """
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


def current_schema():
    source = open(STORE_CPP, encoding="utf-8").read()
    schema = re.search(r'constexpr const char\* kSchema = R"sql\((.*?)\)sql";', source, re.S).group(1)
    application_id = int(re.search(r"constexpr int kApplicationId = (0x[0-9a-fA-F]+);", source).group(1), 16)
    version = int(re.search(r"constexpr int kSchemaVersion = (\d+);", source).group(1))
    return schema, application_id, version


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state_dir")
    parser.add_argument("--mib", type=int, default=1024, help="stop once the database is this large (MiB)")
    parser.add_argument("--drawing-kib", type=int, default=32, help="each drawing's size (KiB of random bytes)")
    parser.add_argument("--considered", type=float, default=0.5, help="fraction of ids learning.json marks as considered")
    parser.add_argument("--schema", type=int, choices=(1, 2), default=2)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()

    schema, application_id, version = current_schema()
    if args.schema == 1:
        schema, version = SCHEMA_1, 1
    os.makedirs(args.state_dir, exist_ok=True)
    path = os.path.join(args.state_dir, "feedback.db")
    if os.path.exists(path):
        sys.exit(f"big_store: {path} exists; give an empty state directory")
    rng = random.Random(args.seed)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")  # a generator: one commit a batch, no fsync each
    db.executescript(schema)
    db.execute(f"PRAGMA application_id = {application_id}")
    db.execute(f"PRAGMA user_version = {version}")

    columns = "input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id"
    if args.schema == 2:
        columns += ", client_address"
    placeholders = ", ".join("?" for _ in columns.split(","))
    insert = f"INSERT INTO judgements ({columns}) VALUES ({placeholders})"
    drawing_bytes = args.drawing_kib * 1024
    target = args.mib * 1024 * 1024
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    count = 0
    while True:
        db.execute("BEGIN")
        for _ in range(256):
            predicted = rng.randrange(10)
            correct = rng.random() >= 0.1
            label = predicted if correct else (predicted + rng.randrange(1, 10)) % 10
            probabilities = [0.01] * 10
            probabilities[predicted] = 0.91
            row = [
                rng.randbytes(784),
                b"\x89PNG\r\n\x1a\n" + os.urandom(drawing_bytes - 8),  # incompressible
                label, predicted, struct.pack("<10f", *probabilities), int(correct), 0,
                1_796_000_000_000 + count, f"generated-{count % 1000}",
            ]
            if args.schema == 2:
                row.append(f"198.51.100.{count % 250}")
            db.execute(insert, row)
            count += 1
        db.execute("COMMIT")
        if db.execute("PRAGMA page_count").fetchone()[0] * page_size >= target:
            break
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    considered = int(count * args.considered)
    with open(os.path.join(args.state_dir, "learning.json"), "w", encoding="utf-8") as out:
        json.dump({"considered_up_to": considered}, out)
    size = os.path.getsize(path)
    print(f"big_store: {path}: {count} judgements, {size / 2**20:.0f} MiB, schema {version}; learning.json: considered up to {considered}")


if __name__ == "__main__":
    main()
