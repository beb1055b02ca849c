#!/usr/bin/env python3
"""Read a digits model file with nothing but json and numpy, and predict with it.

    python3 read_model.py MODEL.safetensors               # print the metadata and the tensors
    python3 read_model.py MODEL.safetensors INPUTS.json   # predict: one JSON line per input

INPUTS.json is a JSON array of inputs, each 784 numbers: a 28x28 image, row by row, white ink
on black, raw 0-255 values, already preprocessed the way digits does it (docs/model-format.md).
The file format is described in docs/model-format.md.
"""
import json
import struct
import sys

import numpy as np


def load(path):
    """Returns (metadata, tensors): the __metadata__ dict and {name: float32 array}."""
    with open(path, "rb") as f:
        data = f.read()
    (header_size,) = struct.unpack("<Q", data[:8])  # u64, little-endian
    header = json.loads(data[8 : 8 + header_size])
    metadata = header.pop("__metadata__")
    body = data[8 + header_size :]
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", f"{name}: dtype {entry['dtype']}"
        begin, end = entry["data_offsets"]  # relative to the start of the data section
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(entry["shape"])
    return metadata, tensors


ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "identity": lambda z: z,
}


def predict_proba(metadata, tensors, pixels):
    """pixels: (n, 784) raw 0-255 values as preprocessing makes them. Returns (n, 10)."""
    assert metadata["format"] == "digits-mlp" and metadata["format_version"] == "1"
    layers = len(metadata["architecture"].split(",")) - 1
    hidden = ACTIVATIONS[metadata["hidden_activation"]]
    # float64 throughout: a reference to compare the program's float32 against.
    a = np.asarray(pixels, dtype=np.float64) * float(np.float32(metadata["input_scale"]))
    for k in range(1, layers + 1):
        W = tensors[f"fc{k}.weight"].astype(np.float64)  # [out, in], like torch.nn.Linear
        b = tensors[f"fc{k}.bias"].astype(np.float64)  # [out]
        z = a @ W.T + b
        a = hidden(z) if k < layers else z
    z = a - a.max(axis=1, keepdims=True)  # softmax, stable: subtract each row's max
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    metadata, tensors = load(argv[1])
    if len(argv) == 2:
        for key, value in sorted(metadata.items()):
            print(f"{key} = {value}")
        for name, tensor in tensors.items():
            print(f"{name}: {list(tensor.shape)}")
        return 0
    with open(argv[2]) as f:
        pixels = np.array(json.load(f), dtype=np.float64).reshape(-1, 784)
    for p in predict_proba(metadata, tensors, pixels):
        print(json.dumps({"digit": int(p.argmax()), "probabilities": [float(v) for v in p]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
