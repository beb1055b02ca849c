#!/usr/bin/python3
"""The machine's ceiling: how fast one core multiplies float32 matrices through OpenBLAS.

    bench/sgemm_ceiling.py                       # 2048×2048 SGEMM, 1 thread, OpenBLAS's own kernel choice
    bench/sgemm_ceiling.py --coretype SkylakeX   # force the AVX-512 kernels (Haswell: the AVX2 ones)
    bench/sgemm_ceiling.py --json -              # one JSON object on stdout, for bench/compare

Two numbers: a large square SGEMM (2·n³ FLOP per product; the best of the repeats is the ceiling),
and the eight small SGEMMs of one step of the seed recipe (batch 40: three forward products, three
weight gradients, two input gradients) run 1,500 times, i.e. one epoch of products alone. The
latter goes through NumPy, so it includes about a microsecond of call overhead per product.
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

SIZES = (784, 50, 20, 10)   # the seed recipe
BATCH = 40
STEPS_PER_EPOCH = 60000 // BATCH


def openblas_info():
    """Which OpenBLAS this process loaded, its kernels ("corename") and thread count; call after import numpy."""
    info = {"library": None, "corename": "unknown", "config": "unknown", "threads": None}
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "libopenblas" in line and "/" in line})
    if not paths:
        return info
    library = ctypes.CDLL(paths[0])
    library.openblas_get_corename.restype = ctypes.c_char_p
    library.openblas_get_config.restype = ctypes.c_char_p
    info.update(library=paths[0], corename=library.openblas_get_corename().decode(),
                config=library.openblas_get_config().decode(), threads=library.openblas_get_num_threads())
    return info


def large_sgemm(np, n, repeats):
    """GFLOP/s of C = A·B for n×n float32 matrices: every repeat's, best first."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    C = np.empty((n, n), dtype=np.float32)
    np.matmul(A, B, out=C)  # warm-up: page in C, spin up the BLAS
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(A, B, out=C)
        rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
    return sorted(rates, reverse=True)


def step_sgemms(np, repeats):
    """Seconds for one epoch (1,500 steps) of the seed recipe's eight SGEMMs per step: every repeat's."""
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((n_in, n_out), dtype=np.float32) for n_in, n_out in zip(SIZES[:-1], SIZES[1:])]
    A = [rng.standard_normal((BATCH, n), dtype=np.float32) for n in SIZES]     # A[0] = X
    dZ = [rng.standard_normal((BATCH, n), dtype=np.float32) for n in SIZES[1:]]
    Z = [np.empty((BATCH, n), dtype=np.float32) for n in SIZES[1:]]
    dW = [np.empty_like(w) for w in W]
    dA = [np.empty((BATCH, n), dtype=np.float32) for n in SIZES[:-1]]
    layers = range(len(W))

    def epoch():
        for _ in range(STEPS_PER_EPOCH):
            for l in layers:
                np.matmul(A[l], W[l], out=Z[l])              # Z = A_prev·W          (forward)
            for l in reversed(layers):
                np.matmul(A[l].T, dZ[l], out=dW[l])          # dW = A_prevᵀ·dZ
                if l > 0:
                    np.matmul(dZ[l], W[l].T, out=dA[l])      # dA_prev = dZ·Wᵀ       (not for the input)

    epoch()  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        seconds.append(time.perf_counter() - start)
    return sorted(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="OpenBLAS threads (default 1)")
    parser.add_argument("--coretype", default=None,
                        help="OPENBLAS_CORETYPE to force (SkylakeX, Haswell, …); default: unset, OpenBLAS detects the CPU")
    parser.add_argument("--size", type=int, default=2048, help="n of the n×n SGEMM (default 2048)")
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats of each measurement (default 10)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    args = parser.parse_args()

    # OpenBLAS reads these once, when NumPy loads it.
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.pop("OPENBLAS_CORETYPE", None)
    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype
    import numpy as np

    blas = openblas_info()
    rates = large_sgemm(np, args.size, args.repeats)
    step_seconds = step_sgemms(np, max(3, args.repeats // 2))
    result = {
        "coretype_requested": args.coretype, "blas": blas, "threads": args.threads, "size": args.size,
        "gflops_best": rates[0], "gflops_median": statistics.median(rates),
        "step_sgemms_seconds_per_epoch_best": step_seconds[0],
        "step_sgemms_seconds_per_epoch_median": statistics.median(step_seconds),
    }
    if args.json:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    else:
        print(f"OpenBLAS {blas['corename']} kernels, {args.threads} thread(s): {args.size}×{args.size} SGEMM "
              f"{rates[0]:.0f} GFLOP/s best, {statistics.median(rates):.0f} median; the seed recipe's 8 SGEMMs per step, "
              f"one epoch: {step_seconds[0]:.3f} s best, {statistics.median(step_seconds):.3f} s median")


if __name__ == "__main__":
    sys.exit(main())
