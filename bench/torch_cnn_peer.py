#!/usr/bin/python3
"""The CNN rows of bench/compare: one network trained in PyTorch as a PyTorch user writes it.

    bench/torch_cnn_peer.py --net cnn --threads 1 --steps 200 --json out.json

The networks, each the same in digits (bench/compare gives digits the matching --layers):
  example  the PyTorch MNIST example's network: conv3x3x32, conv3x3x64, 2×2 max pool, fc128, fc10
           (its dropout left out, as digits drops out only after dense layers), batch 64
  lenet5   LeNet-5 with ReLU and max pooling: conv5x5x6 padding 2, pool, conv5x5x16, pool, fc120,
           fc84, fc10, batch 64
  cnn      digits' cnn preset: conv5x5x32, pool, conv5x5x64, pool, fc256 with dropout 0.3, fc10,
           batch 128, weight decay 5e-4
All with ReLU, cross-entropy, SGD with Nesterov momentum 0.9, float32 pixels in 0–1, no
augmentation. The first --warmup steps are not timed; the next --steps are, and the seconds per
epoch are their mean step time × the steps in an epoch of 60,000 images. Run it with Debian's
/usr/bin/python3 (python3-torch 1.13, CPU, with oneDNN).
"""
import argparse
import json
import os
import sys
import tempfile
import time

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--net", choices=["example", "lenet5", "cnn"], required=True)
parser.add_argument("--data", default=os.environ.get("DIGITS_DATA") or
                    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist"))
parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's own choice)")
parser.add_argument("--steps", type=int, default=200, help="timed training steps (default 200)")
parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (default 20)")
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--coretype", default=None,
                    help="OPENBLAS_CORETYPE for the dense layers' OpenBLAS (SkylakeX, Haswell, …); default: as installed")
parser.add_argument("--json", metavar="FILE", help="write the timing as JSON")
args = parser.parse_args()
if args.threads > 0:
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
if args.coretype:
    os.environ["OPENBLAS_CORETYPE"] = args.coretype  # read once, when OpenBLAS loads

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_ancestor import load_mnist  # noqa: E402
from sgemm_ceiling import openblas_info  # noqa: E402

NETWORKS = {  # name: (the layers, batch, weight decay)
    "example": (lambda: nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10)), 64, 0.0),
    "lenet5": (lambda: nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)), 64, 0.0),
    "cnn": (lambda: nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10)), 128, 5e-4),
}


def onednn_isa():
    """The instruction set oneDNN's convolutions run on, from its verbose line "…,isa:…" (printed by C to fd 1)."""
    if not torch.backends.mkldnn.is_available():
        return "no oneDNN"
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+") as capture:
        os.dup2(capture.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                nn.functional.conv2d(torch.ones(8, 1, 28, 28), torch.ones(4, 1, 5, 5))
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        capture.seek(0)
        for line in capture.read().splitlines():
            if ",isa:" in line:
                return line.split(",isa:", 1)[1].strip()
    return "unknown (oneDNN printed no isa line)"


def main():
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_images, train_labels, _, _ = load_mnist(args.data)
    X = torch.from_numpy(train_images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(train_labels.astype(np.int64))
    make, batch, weight_decay = NETWORKS[args.net]
    network = make()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    loss_function = nn.CrossEntropyLoss()
    order = torch.randperm(X.shape[0])
    steps_per_epoch = -(-X.shape[0] // batch)

    def step(index):
        chosen = order[(index * batch) % (X.shape[0] - batch):][:batch]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(network(X[chosen]), y[chosen])
        loss.backward()
        optimizer.step()
        return float(loss)

    for index in range(args.warmup):
        step(index)
    start = time.perf_counter()
    for index in range(args.warmup, args.warmup + args.steps):
        loss = step(index)
    seconds_per_step = (time.perf_counter() - start) / args.steps
    result = {"implementation": "torch", "net": args.net, "batch": batch, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(), "onednn_isa": onednn_isa(),
              "blas": openblas_info(), "steps": args.steps,
              "seconds_per_step": seconds_per_step, "seconds_per_epoch": seconds_per_step * steps_per_epoch,
              "last_loss": loss}
    print(f"{args.net}: {torch.get_num_threads()} thread(s), oneDNN {result['onednn_isa']}, OpenBLAS "
          f"{result['blas']['corename']}, {1e3 * seconds_per_step:.1f} ms/step, "
          f"{result['seconds_per_epoch']:.1f} s/epoch (extrapolated from {args.steps} steps)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
