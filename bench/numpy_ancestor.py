#!/usr/bin/python3
"""The NumPy ancestor's recipe, re-implemented as its users ran it, for side-by-side timing.

A 784 → 50 → 20 → 10 network, ReLU hidden layers, softmax output with cross-entropy, weights
randn × 0.01 and zero biases, mini-batch gradient descent (batch 40, learning rate 0.005) on raw
0–255 pixels in float64, the training set reshuffled every epoch. Samples are rows, as in digits:
Z = X·W + b with X (batch × in) and W (in × out).

    bench/numpy_ancestor.py --epochs 3                  # time three epochs (the default run)
    bench/numpy_ancestor.py --epochs 3 --dtype float32 --threads 1
    bench/numpy_ancestor.py --epochs 100 --check        # train/test accuracy after every epoch

Only the training steps are timed (batch gather, forward, backward, update), as digits times them;
the ancestor's full-set cost pass after each epoch is timed on its own and reported beside it.
Run it with Debian's /usr/bin/python3 (numpy 1.24 on OpenBLAS).
"""
import argparse
import json
import os
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("DIGITS_DATA") or
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist"),
                        help="MNIST directory with the four uncompressed IDX files (default: $DIGITS_DATA, else data/mnist)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs to train (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the weights and the shuffles")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="float64 is what the ancestor used (NumPy's default)")
    parser.add_argument("--threads", type=int, default=0,
                        help="OpenBLAS threads (0: leave OPENBLAS_NUM_THREADS alone, i.e. one per core)")
    parser.add_argument("--coretype", default=None,
                        help="set OPENBLAS_CORETYPE (e.g. SkylakeX, Haswell) before NumPy loads")
    parser.add_argument("--check", action="store_true",
                        help="also report train and test accuracy after every epoch (not timed)")
    parser.add_argument("--json", metavar="FILE", help="write the per-epoch timings as JSON")
    return parser.parse_args()


if __name__ == "__main__":  # (bench/torch_peer.py imports this file for load_mnist)
    args = parse_args()
    # OpenBLAS reads its thread count and kernel choice once, when it is loaded: set them before NumPy.
    if args.threads > 0:
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype

import numpy as np  # noqa: E402  (after the environment above, on purpose)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sgemm_ceiling import openblas_info  # noqa: E402


def read_idx(path, offset):
    """An IDX file's payload as uint8; images have a 16-byte header, labels an 8-byte one."""
    with open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_mnist(directory):
    def images(name):
        return read_idx(os.path.join(directory, name), 16).reshape(-1, 784)

    def labels(name):
        return read_idx(os.path.join(directory, name), 8)

    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))


class NeuralNetwork:
    """A stack of dense layers trained with mini-batch gradient descent, as the ancestor wrote it."""

    def __init__(self, sizes=(784, 50, 20, 10), learning_rate=0.005, batch_size=40, seed=1, dtype=np.float64):
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.dtype = dtype
        self.random = np.random.RandomState(seed)
        # W[l] is (in × out), drawn from N(0, 1) × 0.01; b[l] is (1 × out), zero.
        self.W = [(self.random.randn(n_in, n_out) * 0.01).astype(dtype) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros((1, n_out), dtype=dtype) for n_out in sizes[1:]]

    def forward(self, X):
        """X (batch × 784) → the pre-activations Z and activations A of every layer; A[0] = X, A[-1] = P."""
        Z, A = [], [X]
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            Z.append(A[-1] @ W + b)                                     # Z = A_prev·W + b
            if l < len(self.W) - 1:
                A.append(np.maximum(Z[-1], 0))                          # A = ReLU(Z)
            else:
                E = np.exp(Z[-1] - Z[-1].max(axis=1, keepdims=True))  # subtract the row max: exp overflows
                A.append(E / E.sum(axis=1, keepdims=True))              # P = softmax(Z)
        return Z, A

    def backward(self, Z, A, Y):
        """Gradients of the mean cross-entropy over the batch; Y is one-hot (batch × 10)."""
        dW, db = [None] * len(self.W), [None] * len(self.W)
        dZ = (A[-1] - Y) / Y.shape[0]                  # softmax + cross-entropy: dZ = (P − Y) / batch
        for l in reversed(range(len(self.W))):
            dW[l] = A[l].T @ dZ                        # dW = A_prevᵀ·dZ   (in × out)
            db[l] = dZ.sum(axis=0, keepdims=True)      # db = Σ_rows dZ    (1 × out)
            if l > 0:                                  # the input needs no gradient
                dA = dZ @ self.W[l].T                  # dA_prev = dZ·Wᵀ   (batch × in)
                dZ = dA * (Z[l - 1] > 0)               # ReLU′(Z) is 1 where Z > 0, else 0
        return dW, db

    def update(self, dW, db):
        for l in range(len(self.W)):
            self.W[l] -= self.learning_rate * dW[l]
            self.b[l] -= self.learning_rate * db[l]

    def cost(self, X, Y):
        """Mean cross-entropy over a whole set: the ancestor's once-per-epoch progress number."""
        _, A = self.forward(X)
        return float(-np.mean(np.log(A[-1][Y.astype(bool)] + 1e-12)))

    def predict_proba(self, X):
        return self.forward(X)[1][-1]

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)

    def fit(self, X, Y, epochs, on_epoch=None):
        """Trains on X (n × 784) and one-hot Y (n × 10); returns one timing record per epoch."""
        records = []
        n = X.shape[0]
        for epoch in range(1, epochs + 1):
            order = self.random.permutation(n)
            start = time.perf_counter()
            for first in range(0, n, self.batch_size):
                batch = order[first:first + self.batch_size]
                Z, A = self.forward(X[batch])
                dW, db = self.backward(Z, A, Y[batch])
                self.update(dW, db)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            cost = self.cost(X, Y)
            record = {"epoch": epoch, "seconds": seconds, "cost_seconds": time.perf_counter() - start, "cost": cost}
            if on_epoch:
                on_epoch(record)
            records.append(record)
        return records


def main():
    dtype = np.dtype(args.dtype).type
    train_images, train_labels, test_images, test_labels = load_mnist(args.data)
    X = train_images.astype(dtype)           # raw 0–255 pixels, as the ancestor trained on them
    Y = np.eye(10, dtype=dtype)[train_labels]
    X_test = test_images.astype(dtype)

    network = NeuralNetwork(seed=args.seed, dtype=dtype)
    blas = openblas_info()
    print(f"numpy {np.__version__} {args.dtype}, {blas['corename']} kernels, {blas['threads']} BLAS threads; "
          f"{X.shape[0]} training and {X_test.shape[0]} test images", flush=True)

    def report(record):
        line = (f"epoch {record['epoch']:3d}  cost {record['cost']:.4f}  {record['seconds']:.3f}s"
                f"  {X.shape[0] / record['seconds']:.0f} samples/s  (cost pass {record['cost_seconds']:.3f}s)")
        if args.check:
            record["train_accuracy"] = float(np.mean(network.predict(X) == train_labels))
            record["test_accuracy"] = float(np.mean(network.predict(X_test) == test_labels))
            line += f"  train {100 * record['train_accuracy']:.2f}%  test {100 * record['test_accuracy']:.2f}%"
        print(line, flush=True)

    records = network.fit(X, Y, args.epochs, on_epoch=report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"implementation": "numpy", "dtype": args.dtype, "numpy": np.__version__, "blas": blas,
                       "epochs": records}, f, indent=1)


if __name__ == "__main__":
    main()
