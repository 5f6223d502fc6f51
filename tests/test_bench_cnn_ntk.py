"""The CNN tangent-kernel benchmark compares like with like (its timings are not tested)."""

import importlib.util
import pathlib

import numpy as np
import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cnn_ntk.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_cnn_ntk", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("network", ["cnn", "cnn+dense"])
def test_methods_agree_on_the_benchmark_networks(bench, network):
    model, X, _ = bench.problem(network, 5)
    assert X.ndim == 4 and X.shape[0] == 5
    kernels = {m: bench.compute(m, model, X).detach().numpy() for m in bench.METHODS}
    reference = kernels["naive"]
    for method, K in kernels.items():
        assert np.linalg.norm(K - reference) / np.linalg.norm(reference) < 1e-5, method


def test_worker_reports_time_and_memory(bench, tmp_path):
    report = bench.worker("structured", "cnn", 4, 1, 1, str(tmp_path / "K.npy"))
    assert report["seconds"] >= 0 and report["wall_seconds"] > 0 and report["peak_extra_mib"] >= 0
    assert np.load(tmp_path / "K.npy").shape == (4, 4)
