"""Data sets with the paper's preprocessing.

Every loader returns inputs as a float32 tensor ``X`` of shape ``[n, d]`` whose rows are centred
(each image minus its own mean pixel value) and scaled to unit Euclidean norm, as in the paper's
experiments.  Binary loaders return labels ``±1`` (the first class ``a`` maps to ``-1``, the
second ``b`` to ``+1``); multi-class loaders return integer labels ``0..9``.  The multi-class
loaders can instead scale raw pixels to ``[0, 1]`` (``preprocessing="pixel-scale"``), the
preprocessing of the authors' sample-complexity code.

Two sources:

* scikit-learn's bundled handwritten digits (8×8, 1 797 images, no download), the default
  everywhere in the book;
* MNIST in IDX format (``.gz`` or raw), read from a directory the caller gives or from the
  environment variable ``ATF_LITE_MNIST_DIR``.  Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct

import numpy as np
import torch

from ._validation import check_array, check_option, check_real, check_seed, describe, is_integer

__all__ = [
    "MNIST_ENV_VAR",
    "DATASETS",
    "PREPROCESSINGS",
    "preprocess",
    "scale_pixels",
    "load_digits_pair",
    "load_digits_multiclass",
    "read_idx",
    "load_mnist",
    "load_mnist_pair",
    "load_mnist_multiclass",
    "mnist_root",
]

MNIST_ENV_VAR = "ATF_LITE_MNIST_DIR"
#: The data sets the experiments run on.
DATASETS = ("digits", "mnist")

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
_IDX_UBYTE = 0x08
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}


def _check_images(images: np.ndarray) -> np.ndarray:
    """``images`` (``[n, ...]``, at least one image of at least one pixel, finite real values)
    as float64 rows ``[n, d]``."""
    X = check_array(images, "images")
    if X.ndim < 2:
        raise ValueError(f"images must have shape [n, ...] with one image per row, got {X.shape}")
    return X.reshape(len(X), -1)


def preprocess(images: np.ndarray) -> torch.Tensor:
    """Flatten ``images`` (``[n, ...]``), centre each row and scale it to unit norm (float32).

    Raises ``ValueError`` for a constant image, which has no direction after centring.
    """
    X = _check_images(images)
    X = X - X.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("images: a constant image cannot be scaled to unit norm after centring")
    return torch.from_numpy(X / norms).to(torch.float32)


PREPROCESSINGS = ("unit-norm", "pixel-scale")



def scale_pixels(images: np.ndarray, max_value: float) -> torch.Tensor:
    """Flatten ``images`` (``[n, ...]``) and divide by ``max_value`` (float32 ``[n, d]``).

    The preprocessing of the authors' sample-complexity code (MNIST pixels / 255): no centring
    and no normalisation, so every input keeps its own brightness and norm.
    """
    max_value = check_real(max_value, "max_value", low=0.0, low_open=True)
    X = _check_images(images) / max_value
    return torch.from_numpy(X).to(torch.float32)


def _prepare(images: np.ndarray, preprocessing: str, max_value: float) -> torch.Tensor:
    check_option(preprocessing, "preprocessing", PREPROCESSINGS)
    if preprocessing == "unit-norm":
        return preprocess(images)
    return scale_pixels(images, max_value)


def _check_pair(a: int, b: int) -> None:
    for name, value in (("a", a), ("b", b)):
        if not is_integer(value) or not 0 <= value <= 9:
            raise ValueError(f"{name} must be a digit class in 0..9, got {value!r}")
    if a == b:
        raise ValueError(f"a and b must be different classes, both are {a}")


def _check_n_seed(n: int | None, seed: int) -> tuple[int | None, int]:
    """``n`` (a positive integer or None) and ``seed``, checked before any file is read."""
    if n is not None and (not is_integer(n) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {describe(n)}")
    return n, check_seed(seed)


def _subset(n_available: int, n: int | None, seed: int, what: str) -> np.ndarray:
    """Indices of a seeded random subset of size ``n`` (all indices, in order, when None)."""
    n, seed = _check_n_seed(n, seed)
    if n is None:
        return np.arange(n_available)
    if n > n_available:
        raise ValueError(f"n={n} is larger than the {n_available} images available for {what}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_available, size=n, replace=False))


def _pair(
    images: np.ndarray, classes: np.ndarray, a: int, b: int, n: int | None, seed: int, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    _check_pair(a, b)
    keep = np.flatnonzero((classes == a) | (classes == b))
    keep = keep[_subset(len(keep), n, seed, f"classes {a} and {b} of {what}")]
    labels = np.where(classes[keep] == b, 1.0, -1.0)
    return preprocess(images[keep]), torch.from_numpy(labels).to(torch.float32)


def load_digits_pair(
    a: int = 2, b: int = 3, *, n: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of scikit-learn's 8×8 digits.

    Returns ``(X, labels)``: ``X`` float32 ``[n, 64]`` (rows centred, unit norm), ``labels``
    float32 ``[n]`` in ``{-1, +1}`` (``a`` → −1, ``b`` → +1).  ``n=None`` keeps every image of the
    two classes (361 for 2 vs 3); otherwise a random subset of size ``n`` drawn with ``seed``.
    """
    from sklearn.datasets import load_digits

    _check_pair(a, b)
    _check_n_seed(n, seed)
    digits = load_digits()
    return _pair(digits.images, digits.target, a, b, n, seed, "the digits data set")


def load_digits_multiclass(
    *, n: int | None = None, seed: int = 0, preprocessing: str = "unit-norm"
) -> tuple[torch.Tensor, torch.Tensor]:
    """All ten classes of scikit-learn's digits: ``X`` float32 ``[n, 64]``, labels int64 ``[n]``.

    ``preprocessing``: ``"unit-norm"`` (rows centred, unit norm; the default everywhere) or
    ``"pixel-scale"`` (pixel values 0..16 divided by 16, see :func:`scale_pixels`).
    """
    from sklearn.datasets import load_digits

    check_option(preprocessing, "preprocessing", PREPROCESSINGS)
    _check_n_seed(n, seed)
    digits = load_digits()
    keep = _subset(len(digits.target), n, seed, "the digits data set")
    X = _prepare(digits.images[keep], preprocessing, max_value=16.0)
    return X, torch.from_numpy(digits.target[keep].astype(np.int64))


def mnist_root(root: str | os.PathLike | None = None) -> pathlib.Path:
    """The MNIST directory: ``root`` when given, else ``$ATF_LITE_MNIST_DIR``."""
    if root is not None and not isinstance(root, str | os.PathLike):
        raise TypeError(f"root must be a directory path or None, got {describe(root)}")
    if root is None:
        root = os.environ.get(MNIST_ENV_VAR)
        if not root:
            raise FileNotFoundError(
                f"no MNIST directory given: pass root=... or set the environment variable "
                f"{MNIST_ENV_VAR} to a directory holding the IDX files"
            )
    path = pathlib.Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"MNIST directory {str(path)!r} does not exist (from root or {MNIST_ENV_VAR})"
        )
    return path


def _open_idx(path: pathlib.Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"path {str(path)!r} cannot be read as an IDX file ({exc})") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed when the name ends in ``.gz``).

    Checks the magic number and that the payload size matches the header; raises ``ValueError``
    naming the file otherwise.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path, got {describe(path)}")
    path = pathlib.Path(path)
    raw = _open_idx(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero1, zero2, dtype_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or dtype_code != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise ValueError(f"{path}: bad IDX magic number {raw[:4].hex()} (expected 000008 0N)")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    expected = int(np.prod(shape))
    payload = len(raw) - header_end
    if payload != expected:
        raise ValueError(
            f"{path}: IDX header announces shape {shape} ({expected} bytes) but the file holds "
            f"{payload} bytes of data"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def _find(root: pathlib.Path, stem: str) -> pathlib.Path:
    candidates = [root / f"{stem}.gz", root / stem]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file not found in {str(root)!r}: looked for {', '.join(c.name for c in candidates)}"
    )


def load_mnist(
    root: str | os.PathLike | None = None, *, split: str = "test"
) -> tuple[np.ndarray, np.ndarray]:
    """Raw MNIST: images uint8 ``[N, 28, 28]`` and labels uint8 ``[N]`` of ``split``."""
    check_option(split, "split", tuple(_MNIST_FILES))
    directory = mnist_root(root)
    image_stem, label_stem, expected = _MNIST_FILES[split]
    images = read_idx(_find(directory, image_stem))
    labels = read_idx(_find(directory, label_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"MNIST {split} files disagree: images {images.shape}, labels {labels.shape}"
        )
    if len(images) != expected:
        raise ValueError(f"MNIST {split} split should hold {expected} images, found {len(images)}")
    if labels.max(initial=0) > 9:
        raise ValueError(f"MNIST {split} labels contain a value above 9")
    return images, labels


def load_mnist_pair(
    a: int = 2,
    b: int = 3,
    *,
    n: int | None = 500,
    root: str | os.PathLike | None = None,
    split: str = "test",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two MNIST classes, preprocessed: ``X`` float32 ``[n, 784]``, labels ``±1`` (``a`` → −1).

    ``root`` defaults to ``$ATF_LITE_MNIST_DIR``; ``n`` images are drawn at random with ``seed``
    from the two classes of ``split`` (``None`` keeps them all).
    """
    _check_pair(a, b)
    _check_n_seed(n, seed)
    images, classes = load_mnist(root, split=split)
    return _pair(images, classes, a, b, n, seed, f"the MNIST {split} split")


def load_mnist_multiclass(
    *,
    n: int | None = None,
    root: str | os.PathLike | None = None,
    split: str = "test",
    seed: int = 0,
    preprocessing: str = "unit-norm",
) -> tuple[torch.Tensor, torch.Tensor]:
    """All ten MNIST classes: ``X`` float32 ``[n, 784]``, labels int64 ``[n]``.

    ``preprocessing``: ``"unit-norm"`` (rows centred, unit norm) or ``"pixel-scale"``
    (pixels / 255, see :func:`scale_pixels`).
    """
    check_option(preprocessing, "preprocessing", PREPROCESSINGS)
    _check_n_seed(n, seed)
    images, classes = load_mnist(root, split=split)
    keep = _subset(len(classes), n, seed, f"the MNIST {split} split")
    X = _prepare(images[keep], preprocessing, max_value=255.0)
    return X, torch.from_numpy(classes[keep].astype(np.int64))
