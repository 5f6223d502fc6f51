"""The data protocol of the sample-complexity experiment (chapter 8): fixed splits and sizes.

The data set is split once, stratified by class and with a fixed seed, into a *test split*
(``TEST_FRACTION`` of the images), a *validation split* (``VAL_FRACTION`` of the rest) and the
*training pool* (everything else); training sets are stratified random subsets of the pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .._validation import (
    check_int,
    check_option,
    check_real,
    check_seed,
    check_tensor,
    describe,
    is_integer,
)
from ..data import DATASETS, PREPROCESSINGS, load_digits_multiclass, load_mnist_multiclass

__all__ = [
    "TEST_FRACTION",
    "VAL_FRACTION",
    "SPLIT_SEED",
    "DataSplits",
    "stratified_indices",
    "split_dataset",
    "load_splits",
    "default_sizes",
]

TEST_FRACTION = 0.3
VAL_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class DataSplits:
    """The fixed splits of one data set: training pool, validation and test (``X`` ``[n, d]``)."""

    X_pool: torch.Tensor
    y_pool: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def pool_size(self) -> int:
        """Number of images in the training pool."""
        return len(self.y_pool)


def stratified_indices(labels: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """Sorted indices of a random subset of size ``n`` with class proportions as in ``labels``.

    Each class gets ``n`` times its frequency, rounded by the largest-remainder rule (so the
    counts add up to ``n``); members are drawn uniformly without replacement with ``seed``.
    ``labels``: integer array ``[N]``; ``1 ≤ n ≤ N``.
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    if labels is None or isinstance(labels, str | bytes):
        raise TypeError(f"labels must be an integer array, got {describe(labels)}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must hold integer class labels, got dtype {labels.dtype}")
    if not is_integer(n) or not 1 <= n <= len(labels):
        raise ValueError(f"n must be an integer in [1, {len(labels)}], got {describe(n)}")
    seed = check_seed(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = n * counts / len(labels)
    take = np.floor(quota).astype(int)
    # Largest remainders first; ties go to the larger class, then the smaller label.
    order = np.lexsort((classes, -counts, -(quota - take)))
    take[order[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
        for c, k in zip(classes, take)
    ]
    return np.sort(np.concatenate(chosen))


def split_dataset(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> DataSplits:
    """Stratified split of ``(X, y)`` into test (``test_fraction``), validation (``val_fraction``
    of the remainder) and the training pool (the rest)."""
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        check_real(value, name, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_seed(seed)
    check_tensor(X, "X", ndim=2)
    check_tensor(y, "y", ndim=1, floating=False)
    if len(X) != len(y):
        raise ValueError(f"X must be [n, d] and y [n]; got {tuple(X.shape)} and {tuple(y.shape)}")
    labels = y.numpy()
    test = stratified_indices(labels, max(1, round(test_fraction * len(y))), seed=seed)
    rest = np.setdiff1d(np.arange(len(y)), test)
    val_size = max(1, round(val_fraction * len(rest)))
    val = rest[stratified_indices(labels[rest], val_size, seed=seed + 1)]
    pool = np.setdiff1d(rest, val)
    if len(pool) == 0:
        raise ValueError("the fractions leave no training pool")
    pool, val, test = (torch.from_numpy(index) for index in (pool, val, test))
    return DataSplits(X[pool], y[pool], X[val], y[val], X[test], y[test])


def load_splits(
    dataset: str = "digits",
    *,
    mnist_root: str | os.PathLike | None = None,
    preprocessing: str = "unit-norm",
) -> DataSplits:
    """The fixed splits of ``dataset``.

    ``"digits"``: scikit-learn's 1 797 digits (8×8) → 1 006 pool / 252 validation / 539 test.
    ``"mnist"``: the 10 000-image MNIST test file (the only split this project assumes
    available; read from ``mnist_root`` or ``$ATF_LITE_MNIST_DIR``) → 5 600 pool /
    1 400 validation / 3 000 test.  ``preprocessing``: ``"unit-norm"`` (the paper's: centred,
    unit norm) or ``"pixel-scale"`` (pixels scaled to [0, 1]).  The split itself does not
    depend on the preprocessing.
    """
    check_option(dataset, "dataset", DATASETS)
    check_option(preprocessing, "preprocessing", PREPROCESSINGS)
    if mnist_root is not None and not isinstance(mnist_root, str | os.PathLike):
        raise TypeError(f"mnist_root must be a directory path or None, got {describe(mnist_root)}")
    if dataset == "digits":  # mnist_root is not needed (nor read) for the bundled digits
        X, y = load_digits_multiclass(preprocessing=preprocessing)
    else:
        X, y = load_mnist_multiclass(root=mnist_root, split="test", preprocessing=preprocessing)
    return split_dataset(X, y)


def default_sizes(pool_size: int, *, smallest: int = 20) -> list[int]:
    """Training-set sizes ``smallest, 2·smallest, 4·smallest, …`` below ``pool_size``, then the
    whole pool (``pool_size`` and ``smallest``: positive integers)."""
    if not is_integer(pool_size) or pool_size < 1:
        raise ValueError(f"pool_size must be a positive integer, got {describe(pool_size)}")
    sizes, n = [], check_int(smallest, "smallest", minimum=1)
    while n < pool_size:
        sizes.append(n)
        n *= 2
    if not sizes or pool_size > sizes[-1] * 1.25:
        sizes.append(int(pool_size))
    else:
        sizes[-1] = int(pool_size)
    return sizes
