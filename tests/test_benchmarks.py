"""The benchmark scripts run and compare like with like (their timings are not tested)."""

import importlib.util
import pathlib

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load("bench_ntk")


@pytest.fixture(scope="module")
def bench_path():
    return load("bench_path")


def test_methods_agree_on_benchmark_problem(bench):
    model, X = bench.problem(6)
    kernels = {method: bench.compute(method, model, X).detach().numpy() for method in bench.METHODS}
    reference = kernels["naive"]
    for method, K in kernels.items():
        assert np.linalg.norm(K - reference) / np.linalg.norm(reference) < 1e-5, method


def test_worker_reports_time_and_memory(bench, tmp_path):
    report = bench.worker("structured", 6, 1, str(tmp_path / "K.npy"))
    assert report["seconds"] > 0 and report["peak_extra_mib"] >= 0
    assert np.load(tmp_path / "K.npy").shape == (6, 6)
    assert report["flops"] == bench.structured_flops(6, [784, 256, 256, 1])
    assert report["gflops"] > 0 and report["gemm_gflops"] > 0


def test_structured_flop_count_by_hand(bench):
    # One layer 3 -> 2 on n = 4 inputs: forward 2·4·2·3 = 48 (no backward below the first
    # layer), Gram matrices 2·16·(2 + 3) = 160, bias, Hadamard product and sum 2·16 = 32.
    assert bench.structured_flops(4, [3, 2]) == 48 + 160 + 32
    # A second layer 2 -> 1 adds forward and backward 2·(2·4·1·2) = 32, Grams 2·16·3 = 96, 32.
    assert bench.structured_flops(4, [3, 2, 1]) == 240 + 32 + 96 + 32
    seconds, gflops = bench.matmul_gflops(2 * 64**3, 1)
    assert seconds > 0 and gflops > 0


def test_path_benchmark_measures_exact_against_quadrature(bench_path, capsys):
    X, model, params0, params1, dataset = bench_path.trained_network(40, 3, root=None)
    assert dataset == "8x8 digits" and X.shape == (40, 64)
    results = bench_path.measure(X, model, params0, params1, nodes=(4, 16))
    rows = results["rows"]
    assert list(rows) == ["exact", "GL-4", "GL-16"]
    assert rows["exact"]["residual"] < 1e-12 and rows["GL-4"]["residual"] > 1e-6
    assert rows["GL-16"]["distance"] < rows["GL-4"]["distance"]
    assert len(results["pieces"]) == 40 and results["pieces"].min() >= 1
    assert set(results["kernel_seconds"]) == {"exact", "GL-16"}
    bench_path.report(results, largest=16)
    out = capsys.readouterr().out
    assert "pieces per input: median" in out and "exact vs Gauss-Legendre with 16 nodes" in out
    assert "kernel K_bar: exact" in out
