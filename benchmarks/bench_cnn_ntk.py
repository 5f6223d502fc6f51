"""Benchmark: the tangent kernel of a small CNN, structured against ``torch.func`` Jacobians.

Usage: ``python benchmarks/bench_cnn_ntk.py [--n 500] [--repeats 3] [--threads 1] [--json PATH]``

Data: ``n`` MNIST test images (28×28) from ``$ATF_LITE_MNIST_DIR`` or ``../shared/data/mnist``;
without MNIST, scikit-learn's 8×8 digits.  Two networks from :func:`atf_lite.networks.cnn.cnn`
(two blocks of 3×3 convolutions with 8 and 16 channels, ReLU and 2×2 average pooling), float32:

* ``cnn``: the book's network, the dense output layer right after the convolutions;
* ``cnn+dense``: a hidden dense layer of 128 units before the output, the shape of the
  preprint's CIFAR-10 network (convolution blocks, then dense layers).

For each it times ``tangent_kernel(method="structured")`` (per-layer factors from the input
patches, :mod:`atf_lite.networks.conv_tangent`), ``method="jacobian"`` (``vmap(jacrev)`` of
``torch.func``, then ``Φ Φᵀ``) and ``naive`` (one autograd call per input).  Each method runs
in its own subprocess; its peak memory is the kernel's high-water mark of the resident set
(``VmHWM``, reset through ``/proc/self/clear_refs``; Linux only) minus the resident set before
the call.  Times are the best of ``--repeats`` runs after a warm-up, on ``--threads`` CPU threads
(default one), measured as the CPU time of the process: on a machine shared with other work the
wall-clock time of a run depends on what else runs, its CPU time much less (with one thread and
an idle machine the two agree).  Wall-clock times are reported too.
It prints the table, the ratios structured vs jacobian, and checks that the kernels agree; it
exits with status 1 when the floors below are not met for ``cnn+dense``.  ``--json PATH`` also
writes the measurements (chapter 9 shows a stored copy).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

# memory.py sits beside this script; the path also serves a loader that imports the file by path.
sys.path.insert(0, os.fspath(pathlib.Path(__file__).resolve().parent))
from memory import reset_peak, status_kib  # noqa: E402

METHODS = ("structured", "jacobian", "naive")
NETWORKS = {"cnn": (), "cnn+dense": (128,)}
# Floors this benchmark enforces on the network with a hidden dense layer.
MIN_SPEEDUP_VS_JACOBIAN = 5.0
MAX_MEMORY_FRACTION_OF_JACOBIAN = 0.2
DEFAULT_MNIST = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def images(n: int) -> tuple[torch.Tensor, str]:
    """``n`` images ``[n, 1, s, s]`` (rows centred, unit norm) and the data set's name."""
    from atf_lite.data import MNIST_ENV_VAR, load_digits_multiclass, load_mnist_multiclass

    root = os.environ.get(MNIST_ENV_VAR) or (str(DEFAULT_MNIST) if DEFAULT_MNIST.is_dir() else "")
    if root:
        X, _ = load_mnist_multiclass(n=n, root=root, seed=0)
        return X.reshape(n, 1, 28, 28), "MNIST"
    X, _ = load_digits_multiclass(n=n, seed=0)
    return X.reshape(n, 1, 8, 8), "digits"


def problem(network: str, n: int) -> tuple[torch.nn.Module, torch.Tensor, str]:
    """The benchmark's network ``network`` (a key of ``NETWORKS``) and ``n`` images."""
    from atf_lite.networks.cnn import cnn

    X, name = images(n)
    return cnn(tuple(X.shape[1:]), (8, 16), hidden=NETWORKS[network], seed=0), X, name


def compute(method: str, model: torch.nn.Module, X: torch.Tensor) -> torch.Tensor:
    """The tangent kernel of ``model`` on ``X`` by ``method`` (one of ``METHODS``)."""
    from atf_lite import naive_tangent_kernel, tangent_kernel

    if method == "naive":
        return naive_tangent_kernel(X, model)
    return tangent_kernel(X, model, method=method)


def worker(method: str, network: str, n: int, repeats: int, threads: int, out: str) -> dict:
    """Time ``method`` in this process and report its peak extra memory (MiB)."""
    torch.set_num_threads(threads)
    model, X, _ = problem(network, n)
    compute(method, model, X[:8])  # warm-up: one-time initialisation is not what we measure
    times, walls, peak_extra_kib = [], [], 0
    for _ in range(repeats if method != "naive" else 1):
        before = status_kib("VmRSS")
        reset_peak()
        start, wall = time.process_time(), time.perf_counter()
        K = compute(method, model, X)
        times.append(time.process_time() - start)
        walls.append(time.perf_counter() - wall)
        peak_extra_kib = max(peak_extra_kib, status_kib("VmHWM") - before)
        np.save(out, K.detach().numpy())
        del K
    return {"seconds": min(times), "wall_seconds": min(walls),
            "peak_extra_mib": peak_extra_kib / 1024}


def _measure(network: str, n: int, repeats: int, threads: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            out = os.path.join(tmp, f"{method}.npy")
            command = [sys.executable, __file__, "--worker", method, "--network", network,
                       "--n", str(n), "--repeats", str(repeats), "--threads", str(threads),
                       "--out", out]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
            results[method] = json.loads(done.stdout.strip().splitlines()[-1])
            results[method]["kernel"] = np.load(out)
    return results


def run(n: int, repeats: int, threads: int, json_path: str | None = None) -> int:
    ok = True
    report: dict = {"n": n, "repeats": repeats, "threads": threads, "networks": {}}
    for network in NETWORKS:
        model, X, data = problem(network, n)
        p = sum(value.numel() for value in model.parameters())
        results = _measure(network, n, repeats, threads)
        reference = results["naive"]["kernel"]
        print(f"\n{network}: {data} images {tuple(X.shape[1:])}, n = {n}, p = {p:,} parameters, "
              f"float32, {threads} thread(s), best of {repeats}")
        print(f"{'method':>11}  {'CPU [s]':>8}  {'wall [s]':>8}  {'peak extra [MiB]':>16}  "
              f"{'rel. diff':>9}")
        for method in METHODS:
            r = results[method]
            r["diff"] = np.linalg.norm(r["kernel"] - reference) / np.linalg.norm(reference)
            print(f"{method:>11}  {r['seconds']:8.3f}  {r['wall_seconds']:8.3f}  "
                  f"{r['peak_extra_mib']:16.1f}  {r['diff']:9.1e}")
        speedup = results["jacobian"]["seconds"] / results["structured"]["seconds"]
        memory = results["structured"]["peak_extra_mib"] / results["jacobian"]["peak_extra_mib"]
        print(f"structured vs jacobian (torch.func): {speedup:.1f}x faster, peak extra memory "
              f"ratio {memory:.3f}")
        agree = max(r["diff"] for r in results.values()) < 1e-4
        report["data"] = data
        report["networks"][network] = {
            "p": p, "speedup": float(speedup), "memory_ratio": float(memory),
            "methods": {m: {k: float(results[m][k])
                            for k in ("seconds", "wall_seconds", "peak_extra_mib", "diff")}
                        for m in METHODS},
        }
        if network == "cnn+dense":
            ok = ok and speedup >= MIN_SPEEDUP_VS_JACOBIAN
            ok = ok and memory <= MAX_MEMORY_FRACTION_OF_JACOBIAN
        ok = ok and agree
    print(f"\nfloors on cnn+dense: >= {MIN_SPEEDUP_VS_JACOBIAN:.0f}x faster and <= "
          f"{MAX_MEMORY_FRACTION_OF_JACOBIAN} of the memory of torch.func; kernels agree to 1e-4")
    print("floors met" if ok else "FLOOR NOT MET")
    if json_path is not None:
        report["floors_met"] = bool(ok)
        pathlib.Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="number of images (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--network", choices=tuple(NETWORKS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--n, --repeats and --threads must be positive")
    if args.worker:
        report = worker(args.worker, args.network, args.n, args.repeats, args.threads, args.out)
        print(json.dumps(report))
        return 0
    return run(args.n, args.repeats, args.threads, args.json)


if __name__ == "__main__":
    sys.exit(main())
