#!/usr/bin/env python3
"""A small CNN's forward pass and one SGD step in NumPy alone, float64: the reference for the
CnnGolden test in tests/golden/test_golden.cpp.

Reads a JSON case on stdin: the input shape [C, H, W], inputs X as [batch][C*H*W] (NCHW rows),
labels, a learning rate, and the layers in order, each one of
  {"kind": "conv2d", "W": [out][in][kh][kw], "b": [out], "stride": s, "pad": p, "relu": bool}
  {"kind": "maxpool2"}
  {"kind": "flatten"}
  {"kind": "dense", "W": [out][in], "b": [out], "relu": bool}
(weights laid out as torch.nn.Conv2d and torch.nn.Linear hold them). Writes the probabilities, the
loss, every gradient of the first step (same layouts), the weights after one step of plain SGD,
and the loss after it. The math is written out here from the definitions, independently of the C++:
  conv:  Z[n,o,y,x] = b[o] + sum_{c,ky,kx} W[o,c,ky,kx] * Xpad[n,c,y*s+ky,x*s+kx]
  pool:  A[n,c,y,x] = max over the 2x2 block; the gradient goes to the first maximum
  loss:  mean cross-entropy of softmax(logits); dlogits = (P - Y) / batch
"""
import json
import sys

import numpy as np


def conv_forward(X, W, b, stride, pad):
    n, c, h, w = X.shape
    o, _, k, _ = W.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    Z = np.zeros((n, o, ho, wo)) + b[None, :, None, None]
    for ky in range(k):
        for kx in range(k):
            patch = Xp[:, :, ky : ky + stride * ho : stride, kx : kx + stride * wo : stride]  # (n, c, ho, wo)
            Z += np.einsum("nchw,oc->nohw", patch, W[:, :, ky, kx])
    return Z


def conv_backward(X, W, stride, pad, dZ):
    n, c, h, w = X.shape
    o, _, k, _ = W.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = dZ.shape[2], dZ.shape[3]
    dW = np.zeros_like(W)
    dXp = np.zeros_like(Xp)
    for ky in range(k):
        for kx in range(k):
            window = (slice(None), slice(None), slice(ky, ky + stride * ho, stride), slice(kx, kx + stride * wo, stride))
            dW[:, :, ky, kx] = np.einsum("nohw,nchw->oc", dZ, Xp[window])
            dXp[window] += np.einsum("nohw,oc->nchw", dZ, W[:, :, ky, kx])
    db = dZ.sum(axis=(0, 2, 3))
    return dW, db, dXp[:, :, pad : pad + h, pad : pad + w]


def pool_forward(X):
    n, c, h, w = X.shape
    blocks = X[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(n, c, h // 2, w // 2, 4)  # reading order: (0,0), (0,1), (1,0), (1,1)
    return blocks.max(axis=4), blocks.argmax(axis=4)  # argmax: the first maximum


def pool_backward(shape, winners, dA):
    dX = np.zeros(shape)
    n, c, ho, wo = dA.shape
    for i in range(2):
        for j in range(2):
            dX[:, :, i : 2 * ho : 2, j : 2 * wo : 2] += dA * (winners == 2 * i + j)
    return dX


def run(case, layers, X, y):
    """Forward, loss, backward. Returns (P, loss, gradients per layer)."""
    a = X
    saved = []
    for layer in layers:
        kind = layer["kind"]
        if kind == "conv2d":
            z = conv_forward(a, layer["W"], layer["b"], layer["stride"], layer["pad"])
        elif kind == "dense":
            z = a @ layer["W"].T + layer["b"]
        elif kind == "maxpool2":
            z, winners = pool_forward(a)
        elif kind == "flatten":
            z = a.reshape(a.shape[0], -1)
        saved.append((a, z, winners if kind == "maxpool2" else None))
        a = np.maximum(z, 0) if layer.get("relu") else z
    shifted = a - a.max(axis=1, keepdims=True)
    P = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    batch = X.shape[0]
    loss = -np.log(P[np.arange(batch), y]).mean()
    dA = P.copy()
    dA[np.arange(batch), y] -= 1
    dA /= batch
    gradients = [None] * len(layers)
    for i in reversed(range(len(layers))):
        layer, (a_in, z, winners) = layers[i], saved[i]
        dZ = dA * (z > 0) if layer.get("relu") else dA
        kind = layer["kind"]
        if kind == "conv2d":
            dW, db, dA = conv_backward(a_in, layer["W"], layer["stride"], layer["pad"], dZ)
            gradients[i] = (dW, db)
        elif kind == "dense":
            gradients[i] = (dZ.T @ a_in, dZ.sum(axis=0))
            dA = dZ @ layer["W"]
        elif kind == "maxpool2":
            dA = pool_backward(a_in.shape, winners, dZ)
        elif kind == "flatten":
            dA = dZ.reshape(a_in.shape)
    return P, loss, gradients


def main():
    case = json.load(sys.stdin)
    c, h, w = case["input_shape"]
    X = np.array(case["X"], dtype=np.float64).reshape(-1, c, h, w)  # NCHW rows
    y = np.array(case["labels"])
    layers = []
    for layer in case["layers"]:
        layer = dict(layer)
        for key in ("W", "b"):
            if key in layer:
                layer[key] = np.array(layer[key], dtype=np.float64)
        layers.append(layer)
    P, loss, gradients = run(case, layers, X, y)
    lr = case["lr"]
    stepped = []
    for layer, g in zip(layers, gradients):
        if g is not None:
            layer["W"] = layer["W"] - lr * g[0]
            layer["b"] = layer["b"] - lr * g[1]
            stepped.append({"W": layer["W"].ravel().tolist(), "b": layer["b"].tolist()})
    _, loss_after, _ = run(case, layers, X, y)
    json.dump({"P": P.tolist(), "loss": loss,
               "gradients": [{"dW": g[0].ravel().tolist(), "db": g[1].tolist()} for g in gradients if g is not None],
               "stepped": stepped, "loss_after": loss_after}, sys.stdout)


if __name__ == "__main__":
    main()
