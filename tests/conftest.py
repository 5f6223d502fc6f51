"""Shared fixtures: the real MNIST test set when it is available beside the repository."""

from __future__ import annotations

import os
import pathlib

import pytest

from atf_lite._threads import limit_threads

REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


def _mnist_dir() -> pathlib.Path | None:
    env = os.environ.get("ATF_LITE_MNIST_DIR")
    for candidate in (env, _SHARED_MNIST):
        if candidate and pathlib.Path(candidate, "t10k-images-idx3-ubyte.gz").exists():
            return pathlib.Path(candidate)
    return None


@pytest.fixture
def mnist_dir() -> pathlib.Path:
    """Directory of the real MNIST IDX files; skips the test when there is none."""
    path = _mnist_dir()
    if path is None:
        pytest.skip(
            "MNIST not available: set ATF_LITE_MNIST_DIR or place it in ../shared/data/mnist"
        )
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's result cache."""
    monkeypatch.setenv("ATF_LITE_CACHE_DIR", str(tmp_path_factory.mktemp("atf_cache")))
    monkeypatch.setenv("ATF_LITE_PROGRESS", "0")


@pytest.fixture
def one_thread():
    """Run the test with one thread (torch, BLAS, OpenMP), restoring the limits afterwards."""
    with limit_threads(1):
        yield
