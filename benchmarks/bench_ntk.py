"""Benchmark: three ways to compute an MLP's empirical neural tangent kernel.

Usage: ``python benchmarks/bench_ntk.py [--n 500] [--repeats 3]``

On ``n`` inputs of dimension 784 and an MLP 784-256-256-1 in float32 it times

* ``naive``: one ``torch.autograd.grad`` call per input, then ``Φ Φᵀ`` (the baseline);
* ``jacobian``: ``tangent_kernel(method="jacobian")`` (``vmap(jacrev)`` blocks of ``Φ``);
* ``structured``: ``tangent_kernel(method="structured")`` (per-layer ``(G Gᵀ) ⊙ (H Hᵀ + 1)``).

Each method runs in its own subprocess so that its peak memory can be read from the kernel's
high-water mark of the process's resident set (``VmHWM`` in ``/proc/self/status``, reset through
``/proc/self/clear_refs`` after the set-up; Linux only).  "Extra memory" is that peak minus the
resident set before the method ran.  Times are the best of ``--repeats`` runs after one warm-up.
The script prints both, the ratios against the naive loop and the jacobian method, and checks
that the three kernels agree.

A ratio to a naive loop says little about how well the machine is used (it moved from 31.5x to
107.7x between two machines).  So the structured method's floating-point work is also counted
(:func:`structured_flops`: the forward and backward passes that give the layer signals and the
per-layer Gram matrices) and its achieved GFLOP/s compared, in the same process and with the
same threads, with a plain float32 matrix product of the same flop count: the practical limit
of the machine for this amount of work.  It exits with status 1 when a floor below is not met.
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

METHODS = ("naive", "jacobian", "structured")
# Floors this benchmark enforces.
MIN_SPEEDUP_VS_NAIVE = 20.0
MAX_MEMORY_FRACTION_OF_JACOBIAN = 0.1


def problem(n: int, seed: int = 0):
    """The benchmark's MLP 784-256-256-1 (float32) and ``n`` random unit-norm inputs."""
    from atf_lite import mlp

    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 784, generator=generator)
    X = X / X.norm(dim=1, keepdim=True)
    return mlp(784, 256, 2, seed=seed), X


def compute(method: str, model, X) -> torch.Tensor:
    """The tangent kernel of ``model`` on ``X`` by ``method`` (one of ``METHODS``)."""
    from atf_lite import naive_tangent_kernel, tangent_kernel

    if method == "naive":
        return naive_tangent_kernel(X, model)
    return tangent_kernel(X, model, method=method)


def structured_flops(n: int, sizes: list[int]) -> int:
    """Floating-point operations of the structured NTK on ``n`` inputs for an MLP with layer
    widths ``sizes`` (``[784, 256, 256, 1]``), counting multiply-adds as two:

    * forward pass ``z_l = W_l h_l``: ``2 n m_l d_l`` per layer;
    * backward pass ``g_{l-1} = W_lᵀ g_l`` (not needed below the first layer):
      ``2 n m_l d_l`` per layer but the first;
    * Gram matrices ``G_l G_lᵀ`` and ``H_l H_lᵀ``: ``2 n² (m_l + d_l)`` per layer, as full
      matrix products compute them;
    * the ``+ 1`` of the bias, the Hadamard product and the sum: ``2 n²`` per layer.
    """
    total = 0
    for index, (d, m) in enumerate(zip(sizes[:-1], sizes[1:])):
        total += 2 * n * m * d * (1 if index == 0 else 2)
        total += 2 * n * n * (m + d) + 2 * n * n
    return total


def matmul_gflops(flops: int, repeats: int) -> tuple[float, float]:
    """Seconds (best of ``repeats``) and GFLOP/s of a square float32 matrix product of about
    ``flops`` operations: the practical limit for that much work on this machine."""
    size = max(1, round((flops / 2) ** (1 / 3)))
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(size, size, generator=generator)
    B = torch.randn(size, size, generator=generator)
    A @ B  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        A @ B
        times.append(time.perf_counter() - start)
    seconds = min(times)
    return seconds, 2 * size**3 / seconds / 1e9


def worker(method: str, n: int, repeats: int, out: str) -> dict:
    """Time ``method`` in this process and report its peak extra memory (MiB); the structured
    method also reports its GFLOP/s and those of an equal-work matrix product."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, X = problem(n)
    compute(method, model, X[:8])  # warm-up: one-time initialisation is not what we measure
    times = []
    peak_extra_kib = 0
    for _ in range(repeats):
        before = status_kib("VmRSS")
        reset_peak()
        start = time.perf_counter()
        K = compute(method, model, X)
        times.append(time.perf_counter() - start)
        peak_extra_kib = max(peak_extra_kib, status_kib("VmHWM") - before)
        np.save(out, K.detach().numpy())
        del K
    report = {"method": method, "seconds": min(times), "peak_extra_mib": peak_extra_kib / 1024}
    if method == "structured":
        flops = structured_flops(n, [X.shape[1], 256, 256, 1])
        gemm_seconds, gemm_gflops = matmul_gflops(flops, max(repeats, 3))
        report.update(
            flops=flops,
            gflops=flops / min(times) / 1e9,
            gemm_seconds=gemm_seconds,
            gemm_gflops=gemm_gflops,
            threads=torch.get_num_threads(),
        )
    return report


def run(n: int, repeats: int) -> int:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            out = os.path.join(tmp, f"{method}.npy")
            command = [
                sys.executable,
                __file__,
                "--worker",
                method,
                "--n",
                str(n),
                "--repeats",
                str(repeats),
                "--out",
                out,
            ]
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                print(completed.stderr, file=sys.stderr)
                return 2
            results[method] = json.loads(completed.stdout.strip().splitlines()[-1])
            results[method]["kernel"] = np.load(out)

    reference = results["naive"]["kernel"]
    print(f"NTK of an MLP 784-256-256-1 (float32) on n = {n} inputs; best of {repeats} runs")
    print(
        f"{'method':>10}  {'time [s]':>9}  {'peak extra [MiB]':>16}  {'speed-up':>8}  "
        f"{'rel. diff':>9}"
    )
    for method in METHODS:
        r = results[method]
        speedup = results["naive"]["seconds"] / r["seconds"]
        diff = np.linalg.norm(r["kernel"] - reference) / np.linalg.norm(reference)
        r["diff"] = diff
        print(
            f"{method:>10}  {r['seconds']:9.3f}  {r['peak_extra_mib']:16.1f}  "
            f"{speedup:7.1f}x  {diff:9.1e}"
        )

    speedup = results["naive"]["seconds"] / results["structured"]["seconds"]
    speedup_jac = results["jacobian"]["seconds"] / results["structured"]["seconds"]
    memory_ratio = results["structured"]["peak_extra_mib"] / results["jacobian"]["peak_extra_mib"]
    print(f"structured vs naive loop: {speedup:.1f}x faster (floor {MIN_SPEEDUP_VS_NAIVE:.0f}x)")
    print(
        f"structured vs jacobian:   {speedup_jac:.1f}x faster, peak extra memory ratio "
        f"{memory_ratio:.3f} (floor {MAX_MEMORY_FRACTION_OF_JACOBIAN})"
    )
    s = results["structured"]
    print(
        f"structured vs the machine: {s['flops'] / 1e9:.2f} GFLOP in {s['seconds']:.3f} s = "
        f"{s['gflops']:.1f} GFLOP/s; a float32 matrix product of the same work on "
        f"{s['threads']} thread(s): {s['gemm_gflops']:.1f} GFLOP/s ({s['gemm_seconds']:.3f} s); "
        f"ratio to that limit {s['gflops'] / s['gemm_gflops']:.2f}"
    )
    ok = (
        speedup >= MIN_SPEEDUP_VS_NAIVE
        and memory_ratio <= MAX_MEMORY_FRACTION_OF_JACOBIAN
        and max(r["diff"] for r in results.values()) < 1e-4
    )
    print("floors met" if ok else "FLOOR NOT MET")
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="number of inputs (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be positive")
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.repeats, args.out)))
        return 0
    return run(args.n, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
