#!/usr/bin/env python3
"""The NumPy ancestor's math on one fixed batch, as the reference for tests/golden/test_golden.cpp.

Reads a JSON case (weights W as [in][out], biases, inputs X as [batch][in], labels, learning rate,
steps) on stdin and writes, in float64: the logits, the loss, every gradient of the first step, and
the loss after each of a few plain SGD steps. The math is the ancestor's: Z = X·W + b, ReLU hidden
layers, softmax + cross-entropy averaged over the batch, dZ = (P − Y)/batch, W ← W − lr·dW.
"""
import json
import sys

import numpy as np


def forward(X, Ws, bs):
    activations, Zs = [X], []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        Z = activations[-1] @ W + b
        Zs.append(Z)
        activations.append(np.maximum(Z, 0) if i + 1 < len(Ws) else Z)
    return Zs, activations


def loss_and_gradients(X, y, Ws, bs):
    Zs, activations = forward(X, Ws, bs)
    logits = Zs[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    P = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    batch = X.shape[0]
    loss = -np.log(P[np.arange(batch), y]).mean()
    dZ = P.copy()
    dZ[np.arange(batch), y] -= 1
    dZ /= batch
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for i in reversed(range(len(Ws))):
        dWs[i] = activations[i].T @ dZ
        dbs[i] = dZ.sum(axis=0)
        if i > 0:
            dA = dZ @ Ws[i].T
            dZ = dA * (Zs[i - 1] > 0)
    return logits, loss, dWs, dbs


def main():
    case = json.load(sys.stdin)
    Ws = [np.array(W, dtype=np.float64) for W in case["W"]]
    bs = [np.array(b, dtype=np.float64) for b in case["b"]]
    X = np.array(case["X"], dtype=np.float64)
    y = np.array(case["labels"])
    logits, loss, dWs, dbs = loss_and_gradients(X, y, Ws, bs)
    losses = []
    for _ in range(case["steps"]):
        _, step_loss, step_dWs, step_dbs = loss_and_gradients(X, y, Ws, bs)
        losses.append(step_loss)
        Ws = [W - case["lr"] * dW for W, dW in zip(Ws, step_dWs)]
        bs = [b - case["lr"] * db for b, db in zip(bs, step_dbs)]
    json.dump({"logits": logits.tolist(), "loss": loss, "dW": [d.tolist() for d in dWs], "db": [d.tolist() for d in dbs],
               "losses": losses}, sys.stdout)


if __name__ == "__main__":
    main()
