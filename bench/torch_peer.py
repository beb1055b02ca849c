#!/usr/bin/python3
"""The seed recipe in PyTorch, the way a PyTorch user would write it, for side-by-side timing.

784 → 50 → 20 → 10 with nn.Linear layers and ReLU, nn.CrossEntropyLoss (the mean over the batch,
so its gradient is (P − Y) / batch as in the ancestor), plain torch.optim.SGD with learning rate
0.005, batch 40, float32, raw 0–255 pixels, reshuffled every epoch.

One deliberate difference from the ancestor: the weights start from nn.Linear's default
initialisation (uniform in ±1/√in, biases too) unless --init ancestor asks for randn × 0.01 and
zero biases. Timing does not depend on it; accuracy (--check) does.

    bench/torch_peer.py --epochs 3                       # thread counts as PyTorch and OpenBLAS choose them
    bench/torch_peer.py --epochs 3 --threads 1 --blas-threads 1
    bench/torch_peer.py --epochs 20 --check --init ancestor

Only the training steps are timed (batch gather, forward, backward, optimizer step), as digits
times them. Run it with Debian's /usr/bin/python3 (python3-torch 1.13, CPU).
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
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads (0: PyTorch's own choice)")
    parser.add_argument("--blas-threads", type=int, default=0,
                        help="OpenBLAS's threads, which Debian's PyTorch does its products with (0: OpenBLAS's "
                             "own choice, one per core; with --threads 2 too, the threads oversubscribe the cores)")
    parser.add_argument("--init", choices=["default", "ancestor"], default="default",
                        help="nn.Linear's default initialisation, or the ancestor's randn × 0.01 with zero biases")
    parser.add_argument("--check", action="store_true", help="also report train and test accuracy after every epoch")
    parser.add_argument("--json", metavar="FILE", help="write the per-epoch timings as JSON")
    return parser.parse_args()


args = parse_args()
# Debian's PyTorch does its products through OpenBLAS, which reads its thread count once, at load;
# OMP_NUM_THREADS is PyTorch's own (OpenMP) default, set_num_threads below overrides it.
if args.blas_threads > 0:
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
if args.threads > 0:
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_ancestor import load_mnist  # noqa: E402
from sgemm_ceiling import openblas_info  # noqa: E402


def make_network(init):
    network = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 20), nn.ReLU(), nn.Linear(20, 10))
    if init == "ancestor":
        with torch.no_grad():
            for layer in network:
                if isinstance(layer, nn.Linear):
                    layer.weight.normal_(0.0, 0.01)
                    layer.bias.zero_()
    return network


def accuracy(network, X, y):
    with torch.no_grad():
        return float((network(X).argmax(dim=1) == y).float().mean())


def main():
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_images, train_labels, test_images, test_labels = load_mnist(args.data)
    X = torch.from_numpy(train_images.astype(np.float32))       # raw 0–255 pixels
    y = torch.from_numpy(train_labels.astype(np.int64))
    X_test = torch.from_numpy(test_images.astype(np.float32))
    y_test = torch.from_numpy(test_labels.astype(np.int64))

    network = make_network(args.init)
    loss_function = nn.CrossEntropyLoss()                        # mean over the batch
    optimizer = torch.optim.SGD(network.parameters(), lr=0.005)
    batch_size = 40
    blas = openblas_info()
    print(f"torch {torch.__version__} float32, {torch.get_num_threads()} threads, {args.init} init, "
          f"OpenBLAS {blas['corename']} kernels with {blas['threads']} threads", flush=True)

    records = []
    n = X.shape[0]
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(n)
        start = time.perf_counter()
        for first in range(0, n, batch_size):
            batch = order[first:first + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(network(X[batch]), y[batch])
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "seconds": seconds, "last_batch_loss": float(loss)}
        line = f"epoch {epoch:3d}  last batch loss {float(loss):.4f}  {seconds:.3f}s  {n / seconds:.0f} samples/s"
        if args.check:
            record["train_accuracy"] = accuracy(network, X, y)
            record["test_accuracy"] = accuracy(network, X_test, y_test)
            line += f"  train {100 * record['train_accuracy']:.2f}%  test {100 * record['test_accuracy']:.2f}%"
        print(line, flush=True)
        records.append(record)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"implementation": "torch", "dtype": "float32", "torch": torch.__version__, "blas": blas,
                       "threads": torch.get_num_threads(), "init": args.init, "epochs": records}, f, indent=1)


if __name__ == "__main__":
    main()
