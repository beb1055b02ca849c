#!/usr/bin/env python3
"""Batch normalization in NumPy alone, float64: the reference for the BatchNormGolden test in
tests/golden/test_golden.cpp.

Reads a JSON case on stdin: "cases", each with the shape [C, H, W] (H = W = 1 after a dense layer),
X as [batch][C*H*W] (NCHW rows), gamma, beta, running_mean, running_var (each [C]), the upstream
gradient dY (like X), and "steps": how many training batches to run (the same X each time, so the
running statistics move step after step). Writes, per case, the training output Y, its gradients
dX, dgamma, dbeta, the running statistics after `steps` batches, and the inference output with them.

The math, written out here from the definitions (Ioffe & Szegedy 2015, with PyTorch's conventions),
independently of the C++: per channel c over its m = batch*H*W values,
  mu = mean(X),  var = mean((X - mu)^2)  (biased),  xhat = (X - mu) / sqrt(var + eps),
  Y = gamma * xhat + beta,
  running_mean <- 0.9 * running_mean + 0.1 * mu
  running_var  <- 0.9 * running_var  + 0.1 * var * m / (m - 1)  (unbiased)
  inference: Y = gamma * (X - running_mean) / sqrt(running_var + eps) + beta
The backward is the plain chain rule through mu and var (the C++ uses the compact form):
  dxhat = dY * gamma
  dvar  = sum(dxhat * (X - mu)) * -1/2 * (var + eps)^(-3/2)
  dmu   = sum(dxhat) * -1/sqrt(var + eps) + dvar * sum(-2 (X - mu)) / m
  dX    = dxhat / sqrt(var + eps) + dvar * 2 (X - mu) / m + dmu / m
"""
import json
import sys

import numpy as np

EPS = 1e-5
MOMENTUM = 0.1


def run(case):
    c, h, w = case["shape"]
    X = np.array(case["X"], dtype=np.float64).reshape(-1, c, h, w)
    dY = np.array(case["dY"], dtype=np.float64).reshape(X.shape)
    gamma = np.array(case["gamma"], dtype=np.float64)[None, :, None, None]
    beta = np.array(case["beta"], dtype=np.float64)[None, :, None, None]
    running_mean = np.array(case["running_mean"], dtype=np.float64)
    running_var = np.array(case["running_var"], dtype=np.float64)
    axes = (0, 2, 3)
    m = X.shape[0] * h * w

    mu = X.mean(axis=axes, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=axes, keepdims=True)
    xhat = (X - mu) / np.sqrt(var + EPS)
    Y = gamma * xhat + beta

    dxhat = dY * gamma
    dvar = (dxhat * (X - mu)).sum(axis=axes, keepdims=True) * -0.5 * (var + EPS) ** -1.5
    dmu = dxhat.sum(axis=axes, keepdims=True) * -1 / np.sqrt(var + EPS) + dvar * (-2 * (X - mu)).sum(axis=axes, keepdims=True) / m
    dX = dxhat / np.sqrt(var + EPS) + dvar * 2 * (X - mu) / m + dmu / m
    dgamma = (dY * xhat).sum(axis=axes)
    dbeta = dY.sum(axis=axes)

    for _ in range(case["steps"]):
        running_mean = (1 - MOMENTUM) * running_mean + MOMENTUM * mu.ravel()
        running_var = (1 - MOMENTUM) * running_var + MOMENTUM * var.ravel() * m / (m - 1)
    inferred = gamma * (X - running_mean[None, :, None, None]) / np.sqrt(running_var[None, :, None, None] + EPS) + beta

    rows = X.shape[0]
    return {
        "Y": Y.reshape(rows, -1).tolist(),
        "dX": dX.reshape(rows, -1).tolist(),
        "dgamma": dgamma.tolist(),
        "dbeta": dbeta.tolist(),
        "running_mean": running_mean.tolist(),
        "running_var": running_var.tolist(),
        "inferred": inferred.reshape(rows, -1).tolist(),
    }


def main():
    request = json.load(sys.stdin)
    json.dump({"cases": [run(case) for case in request["cases"]]}, sys.stdout)


if __name__ == "__main__":
    main()
