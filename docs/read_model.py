#!/usr/bin/env python3
"""Read a digits model file with nothing but json and numpy, and predict with it.

    python3 read_model.py MODEL.safetensors               # print the metadata and the tensors
    python3 read_model.py MODEL.safetensors INPUTS.json   # predict: one JSON line per input

INPUTS.json is a JSON array of inputs, each 784 numbers: a 28x28 image, row by row, white ink
on black, raw 0-255 values, already preprocessed the way digits does it (docs/model-format.md).
The file format is described in docs/model-format.md.
"""
import json
import re
import struct
import sys

import numpy as np


def load(path):
    """Returns (metadata, tensors): the __metadata__ dict and {name: array}, float32 but for a
    batch norm's num_batches_tracked, an int64 count (I64, shape [], as torch keeps it)."""
    with open(path, "rb") as f:
        data = f.read()
    (header_size,) = struct.unpack("<Q", data[:8])  # u64, little-endian
    header = json.loads(data[8 : 8 + header_size])
    metadata = header.pop("__metadata__")
    body = data[8 + header_size :]
    tensors = {}
    for name, entry in header.items():
        dtype = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}[entry["dtype"]]  # F16 halves the file
        begin, end = entry["data_offsets"]  # relative to the start of the data section
        values = np.frombuffer(body[begin:end], dtype=dtype).reshape(entry["shape"])
        # F16 widens exactly, as the program reads it; the I64 count stays an integer.
        tensors[name] = values if entry["dtype"] == "I64" else values.astype(np.float32)
    return metadata, tensors


ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "identity": lambda z: z,
}


def conv2d(a, W, b, stride, pad):
    """a: (n, C, H, W) maps; W: [out, in, k, k] as torch.nn.Conv2d; zero padding `pad` around."""
    n, c, h, w = a.shape
    k = W.shape[2]
    a = np.pad(a, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    z = np.zeros((n, W.shape[0], ho, wo)) + b[None, :, None, None]
    for ky in range(k):  # each kernel offset: one product over the input channels
        for kx in range(k):
            patch = a[:, :, ky : ky + stride * ho : stride, kx : kx + stride * wo : stride]
            z += np.einsum("nchw,oc->nohw", patch, W[:, :, ky, kx])
    return z


def maxpool2(a):
    """The largest of each 2x2 block; an odd last row or column is dropped."""
    n, c, h, w = a.shape
    a = a[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    return a.max(axis=(3, 5))


def batchnorm(a, tensors, name):
    """Batch norm with its running statistics, per channel (axis 1) of a map or a vector."""
    per_channel = (1, -1) + (1,) * (a.ndim - 2)  # [C] spread over (n, C, H, W) or (n, C)
    mean, var = (tensors[f"{name}.{key}"].astype(np.float64).reshape(per_channel) for key in ("running_mean", "running_var"))
    gamma, beta = (tensors[f"{name}.{key}"].astype(np.float64).reshape(per_channel) for key in ("weight", "bias"))
    return (a - mean) / np.sqrt(var + 1e-5) * gamma + beta  # eps 1e-5, as torch.nn.BatchNorm


def parse_layer(word):
    """One word of a version-2 architecture: convKxKxN[s1|s2][same], pool2, flatten, bn, fcN or N."""
    match = re.fullmatch(r"conv(\d+)x(\d+)x(\d+)(?:s([12]))?(same)?", word)
    if match:
        k = int(match.group(1))
        return ("conv", k, int(match.group(4) or 1), (k - 1) // 2 if match.group(5) else 0)
    if word in ("pool2", "flatten", "bn"):
        return (word,)
    return ("fc",)


def predict_proba(metadata, tensors, pixels):
    """pixels: (n, 784) raw 0-255 values as preprocessing makes them. Returns (n, 10)."""
    assert metadata["format"] == "digits-mlp" and metadata["format_version"] in ("1", "2")
    if metadata["format_version"] == "1":  # dense layers only: architecture is the sizes
        layers = [("fc",)] * (len(metadata["architecture"].split(",")) - 1)
        shape = (-1,)
    else:  # layers of any kind over an input of input_shape, e.g. 1,28,28
        layers = [parse_layer(word) for word in metadata["architecture"].split(",")]
        shape = tuple(int(v) for v in metadata["input_shape"].split(","))
    hidden = ACTIVATIONS[metadata["hidden_activation"]]
    # float64 throughout: a reference to compare the program's float32 against.
    a = np.asarray(pixels, dtype=np.float64) * float(np.float32(metadata["input_scale"]))
    a = a.reshape((a.shape[0],) + shape)  # each row is C*H*W values, channel by channel (NCHW)
    convs = fcs = bns = 0
    for i, layer in enumerate(layers):
        last = i + 1 == len(layers)
        # A layer followed by bn hands it its sums; bn applies the hidden activation.
        activate = hidden if not last and layers[i + 1][0] != "bn" else ACTIVATIONS["identity"]
        if layer[0] == "conv":
            convs += 1
            _, k, stride, pad = layer
            a = activate(conv2d(a, tensors[f"conv{convs}.weight"], tensors[f"conv{convs}.bias"], stride, pad))
        elif layer[0] == "bn":
            bns += 1
            a = hidden(batchnorm(a, tensors, f"bn{bns}"))
        elif layer[0] == "pool2":
            a = maxpool2(a)
        elif layer[0] == "flatten":
            a = a.reshape(a.shape[0], -1)
        else:
            fcs += 1
            W = tensors[f"fc{fcs}.weight"].astype(np.float64)  # [out, in], like torch.nn.Linear
            b = tensors[f"fc{fcs}.bias"].astype(np.float64)  # [out]
            a = a.reshape(a.shape[0], -1)  # a map read flattened, with or without "flatten" written
            a = activate(a @ W.T + b)
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
        # An eleventh output is "not a digit": the answer is no digit when it is the most probable
        # (a tie goes to the digit), and the ten digits' probabilities are kept, as digits gives them.
        digit = int(p[:10].argmax())
        answer = {"digit": digit, "probabilities": [float(v) for v in p[:10]]}
        if len(p) == 11:
            answer["not_a_digit_probability"] = float(p[10])
            if p[10] > p[digit]:
                answer["digit"] = None
        print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
