"""Benchmark: exact path-averaged features against Gauss–Legendre quadrature.

Usage: ``python benchmarks/bench_path.py [--n 500] [--epochs 200] [--threads 1]``

The paper's setting: an MLP 784-256-256-1 (He initialisation, biases), trained in float32 on
``n`` MNIST test images of the digits 2 and 3 for the sign task of the alignment experiment
(``sign(y)`` with ``y`` the random-feature targets; SGD with momentum 0.9, learning rate 0.1,
batch 32, cosine schedule).  MNIST is read from ``$ATF_LITE_MNIST_DIR`` or
``../shared/data/mnist``; without it the script says so and uses scikit-learn's 8×8 digits.

For the trained network it computes ``Φ̄ = ∫₀¹ ∇_θ f(x; θ0 + t(θ1 − θ0)) dt`` with
``rule="exact"`` and with Gauss–Legendre at 16, 64, 128 and 512 nodes, in one run, and prints
for each the time, the relative residual of ``ŷ − ŷ0 = Φ̄ (θ1 − θ0)``, and the distance
``‖Φ̄_N − Φ̄‖_F / ‖Φ̄‖_F`` from the exact features; then the number of pieces per input (median,
max) and the ratio of the 512-node time to the exact time.  It also times the kernel
``K̄ = Φ̄ Φ̄ᵀ`` that the alignment experiment needs: with 512 nodes, the features and their Gram
matrix; exactly, :func:`atf_lite.path_averaged_kernel`, which never forms the first layer's
block of ``Φ̄``.  Floors: the exact residual at most 1e-10 and the exact rule faster than 512
nodes (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np
import torch

NODES = (16, 64, 128, 512)
MAX_EXACT_RESIDUAL = 1e-10
_SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mnist_root() -> pathlib.Path | None:
    """The MNIST directory from ``$ATF_LITE_MNIST_DIR`` or ``../shared/data/mnist``, if any."""
    for candidate in (os.environ.get("ATF_LITE_MNIST_DIR"), _SHARED_MNIST):
        if candidate and pathlib.Path(candidate, "t10k-images-idx3-ubyte.gz").exists():
            return pathlib.Path(candidate)
    return None


def trained_network(n: int, epochs: int, *, root: pathlib.Path | None, seed: int = 0):
    """``(X, model, params0, params1, dataset)``: the sign-task network of the alignment
    experiment, trained on ``n`` images of MNIST (``root``) or, without it, of the digits."""
    from atf_lite import load_digits_pair, load_mnist_pair, mlp, train
    from atf_lite.experiments.alignment_run import TARGET_SEED_OFFSET, random_feature_targets

    if root is not None:
        X, labels = load_mnist_pair(2, 3, n=n, root=root, seed=seed)
        dataset = "MNIST"
    else:
        X, labels = load_digits_pair(2, 3, n=min(n, 360), seed=seed)
        dataset = "8x8 digits"
    y = random_feature_targets(X, labels, width=256, seed=TARGET_SEED_OFFSET + seed)
    model = mlp(X.shape[1], 256, 2, seed=seed)
    run = train(X, torch.sign(y), model, epochs=epochs, lr=0.1, momentum=0.9, batch_size=32,
                seed=seed)
    return X, model, run.params0, run.params1, dataset


def measure(X, model, params0, params1, nodes=NODES) -> dict:
    """Time, residual and distance from the exact features for ``rule="exact"`` and for
    Gauss–Legendre with each of ``nodes``; the pieces per input of the exact rule; and the time
    of the kernel ``K̄`` exactly and with the largest number of nodes."""
    from atf_lite import path_averaged_features, path_averaged_kernel

    start = time.perf_counter()
    exact = path_averaged_features(X, model, params0, params1, rule="exact")
    rows = {"exact": {"seconds": time.perf_counter() - start, "residual": exact.residual,
                      "distance": 0.0}}
    scale = torch.linalg.matrix_norm(exact.Phi_bar)
    kernel_seconds = {}
    for count in nodes:
        start = time.perf_counter()
        path = path_averaged_features(X, model, params0, params1, nodes=count)
        seconds = time.perf_counter() - start
        distance = float(torch.linalg.matrix_norm(path.Phi_bar.double() - exact.Phi_bar) / scale)
        rows[f"GL-{count}"] = {"seconds": seconds, "residual": path.residual,
                               "distance": distance}
        if count == max(nodes):
            start = time.perf_counter()
            path.Phi_bar @ path.Phi_bar.T
            kernel_seconds[f"GL-{count}"] = seconds + time.perf_counter() - start
        del path
    pieces = exact.pieces
    del exact
    start = time.perf_counter()
    path_averaged_kernel(X, model, params0, params1)
    kernel_seconds["exact"] = time.perf_counter() - start
    return {"rows": rows, "pieces": pieces, "kernel_seconds": kernel_seconds}


def report(results: dict, *, largest: int = max(NODES)) -> bool:
    """Print the table and the ratios; return whether the floors are met."""
    rows, pieces = results["rows"], results["pieces"]
    print(f"{'rule':>8}  {'time [s]':>9}  {'residual':>9}  {'distance to exact':>17}")
    for name, row in rows.items():
        print(f"{name:>8}  {row['seconds']:9.2f}  {row['residual']:9.1e}  {row['distance']:17.1e}")
    print(f"pieces per input: median {np.median(pieces):.0f}, max {np.max(pieces)}, "
          f"mean {np.mean(pieces):.1f}")
    exact = rows["exact"]
    reference = rows[f"GL-{largest}"]
    ratio = reference["seconds"] / exact["seconds"]
    print(f"exact vs Gauss-Legendre with {largest} nodes: {ratio:.1f}x faster, residual "
          f"{exact['residual']:.1e} against {reference['residual']:.1e}")
    kernel = results["kernel_seconds"]
    print(f"kernel K_bar: exact {kernel['exact']:.2f} s, Gauss-Legendre with {largest} nodes "
          f"{kernel[f'GL-{largest}']:.2f} s (features and Gram matrix): "
          f"{kernel[f'GL-{largest}'] / kernel['exact']:.1f}x")
    ok = exact["residual"] <= MAX_EXACT_RESIDUAL and ratio > 1
    print("floors met" if ok else "FLOOR NOT MET")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="training images (default 500)")
    parser.add_argument("--epochs", type=int, default=200, help="training epochs (default 200)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, as in the alignment experiment (default 1)")
    args = parser.parse_args(argv)
    if args.n < 2 or args.epochs < 1 or args.threads < 1:
        parser.error("--n must be at least 2, --epochs and --threads positive")
    torch.set_num_threads(args.threads)
    root = mnist_root()
    if root is None:
        print("MNIST not found ($ATF_LITE_MNIST_DIR or ../shared/data/mnist): using the 8x8 "
              "digits instead", file=sys.stderr)
    start = time.perf_counter()
    X, model, params0, params1, dataset = trained_network(args.n, args.epochs, root=root)
    print(f"MLP {X.shape[1]}-256-256-1 trained on {X.shape[0]} {dataset} images (sign task, "
          f"{args.epochs} epochs) in {time.perf_counter() - start:.1f} s; {args.threads} "
          f"thread(s)")
    return 0 if report(measure(X, model, params0, params1)) else 1


if __name__ == "__main__":
    sys.exit(main())
