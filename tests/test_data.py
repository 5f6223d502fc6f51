import gzip
import struct

import numpy as np
import pytest
import torch

from atf_lite import data


def write_idx(path, array, *, magic=None, compress=None):
    """Write ``array`` (uint8) as an IDX file; ``magic`` overrides the 4 magic bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    compress = str(path).endswith(".gz") if compress is None else compress
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def fake_mnist(root, split="test", n=None, gz=True, seed=0):
    """A tiny MNIST-shaped data set with the real file names (``n`` images, 28×28)."""
    stems = {
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    }
    image_stem, label_stem, full = stems[split]
    n = full if n is None else n
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 256, size=(n, 28, 28))
    suffix = ".gz" if gz else ""
    write_idx(root / f"{image_stem}{suffix}", images)
    write_idx(root / f"{label_stem}{suffix}", labels)
    return images.astype(np.uint8), labels.astype(np.uint8)


def check_preprocessed(X):
    assert X.dtype == torch.float32
    np.testing.assert_allclose(X.mean(dim=1).numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(torch.linalg.vector_norm(X, dim=1).numpy(), 1.0, atol=1e-5)


def test_digits_pair_shapes_labels_and_preprocessing():
    X, labels = data.load_digits_pair(2, 3)
    # scikit-learn's digits hold 177 twos and 183 threes.
    assert X.shape == (360, 64) and labels.shape == (360,)
    assert set(labels.tolist()) == {-1.0, 1.0}
    from sklearn.datasets import load_digits

    target = load_digits().target
    assert int((labels == -1).sum()) == int((target == 2).sum())
    assert int((labels == 1).sum()) == int((target == 3).sum())
    check_preprocessed(X)


def test_digits_pair_subset_is_seeded_and_sized():
    X1, y1 = data.load_digits_pair(4, 9, n=50, seed=3)
    X2, y2 = data.load_digits_pair(4, 9, n=50, seed=3)
    X3, _ = data.load_digits_pair(4, 9, n=50, seed=4)
    assert X1.shape == (50, 64)
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    assert not torch.equal(X1, X3)


def test_digits_multiclass():
    X, labels = data.load_digits_multiclass()
    assert X.shape == (1797, 64) and labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(10))
    check_preprocessed(X)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"a": 2, "b": 2}, "different"),
        ({"a": 10, "b": 3}, "a must be a digit"),
        ({"a": 2, "b": -1}, "b must be a digit"),
        ({"n": 10_000}, "larger than"),
        ({"n": 0}, "positive integer"),
    ],
)
def test_digits_pair_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_digits_pair(**kwargs)


def test_preprocess_rejects_constant_image():
    with pytest.raises(ValueError, match="constant image"):
        data.preprocess(np.ones((2, 3, 3)))


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    np.testing.assert_array_equal(data.read_idx(path), array)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    write_idx(path, np.zeros((2, 2)), magic=bytes([0, 0, 0x0D, 2]))  # float type code
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(path)


def test_read_idx_size_mismatch(tmp_path):
    path = tmp_path / "short.idx"
    write_idx(path, np.zeros((3, 4)))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match="holds 10 bytes"):
        data.read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "corrupt.idx.gz"
    path.write_bytes(b"this is not gzip data at all")
    with pytest.raises(ValueError, match="cannot be read"):
        data.read_idx(path)


def test_mnist_pair_from_tiny_idx_files(tmp_path, monkeypatch):
    # The loader checks the split size, so write a full-size but cheap test split.
    images, labels = fake_mnist(tmp_path, "test", gz=False)
    X, y = data.load_mnist_pair(2, 3, n=None, root=tmp_path)
    keep = (labels == 2) | (labels == 3)
    assert X.shape == (keep.sum(), 784)
    np.testing.assert_array_equal(y.numpy(), np.where(labels[keep] == 3, 1.0, -1.0))
    np.testing.assert_allclose(X.numpy(), data.preprocess(images[keep]).numpy())
    check_preprocessed(X)
    # The environment variable is the fallback for root.
    monkeypatch.setenv(data.MNIST_ENV_VAR, str(tmp_path))
    X_env, _ = data.load_mnist_pair(2, 3, n=20, seed=1)
    assert X_env.shape == (20, 784)


def test_mnist_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(data.MNIST_ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=data.MNIST_ENV_VAR):
        data.load_mnist_pair()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_mnist_pair(root=tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        data.load_mnist_pair(root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_mnist(tmp_path, split="validation")
    fake_mnist(tmp_path, "test", n=100)
    with pytest.raises(ValueError, match="should hold 10000"):
        data.load_mnist(tmp_path)
    with pytest.raises(ValueError, match="a and b must be different"):
        data.load_mnist_pair(5, 5, root=tmp_path)


def test_mnist_n_larger_than_available(tmp_path):
    fake_mnist(tmp_path, "test")
    with pytest.raises(ValueError, match="larger than the 2000 images"):
        data.load_mnist_pair(2, 3, n=2001, root=tmp_path)


def test_real_mnist_test_split(mnist_dir):
    images, labels = data.load_mnist(mnist_dir, split="test")
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert np.bincount(labels).tolist()[2:4] == [1032, 1010]
    X, y = data.load_mnist_pair(2, 3, n=500, root=mnist_dir)
    assert X.shape == (500, 784)
    check_preprocessed(X)
    X10, y10 = data.load_mnist_multiclass(n=300, root=mnist_dir)
    assert X10.shape == (300, 784) and y10.max() <= 9
