"""The benchmark scripts run and compare like with like (their timings are not tested)."""

import importlib.util
import pathlib

import numpy as np
import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ntk.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ntk", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
