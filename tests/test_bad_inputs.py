"""Bad input, one argument at a time, for every public function and class of the package.

Every public module's ``__all__`` is introspected; each function or class defined there has a
valid call in ``VALID_CALLS`` (or a reason in ``NOT_SWEPT``).  From that valid call the sweep
makes one argument at a time wrong, by the kind of its valid value: a wrong number of
dimensions, no rows, NaN, infinity, complex values, strings, a wrong dtype, a bool, a float or a
numeric string where an integer is expected, a bool or a numeric string where a number is
expected, ``None`` where ``None`` is not allowed, an unknown option, a negative count.  Each bad
call ends in one of four ways:

* ``named``: it raises an exception whose message names the argument (the goal);
* ``unnamed``: it raises, but the message does not name the argument;
* ``silent``: it returns as if the input were fine;
* ``hang``: it does not return within ``TIMEOUT`` seconds (stopped by a timer).

Every bad call must end ``named``.  ``python tests/test_bad_inputs.py [NAME ...]`` sweeps all
functions (or those whose key contains a ``NAME``) and prints the counts per module and every
bad call that does not name its argument.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import io
import math
import os
import pathlib
import pkgutil
import re
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

import atf_lite  # noqa: E402
from atf_lite.theory.penalties import Penalty  # noqa: E402

TIMEOUT = 20.0  # seconds per bad call; valid calls are chosen to take well under one


# --------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------


class _Timeout(BaseException):
    """Raised by the timer; a BaseException so that no ``except Exception`` swallows it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# "a" is also the English article: it counts only where it is clearly the argument.
_SPECIAL_NAMES = {"a": r"(?:^|[\s(])a(?= must| and b|=| \(|\b is\b)"}


def names_argument(message: str, name: str) -> bool:
    """Whether ``message`` names ``name`` as a word (``X`` in ``"X must be ..."``, not in
    ``"X_train"``)."""
    pattern = _SPECIAL_NAMES.get(name, rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")
    return re.search(pattern, message) is not None


def outcome_of(func: Callable, args: tuple, kwargs: dict, name: str) -> tuple[str, str]:
    """``(outcome, detail)`` of ``func(*args, **kwargs)`` with ``name`` the wrong argument.

    A command line that exits with a non-zero status (argparse's usage error, which names the
    offending option on standard error) counts as naming it.
    """
    output = io.StringIO()
    with warnings.catch_warnings(), redirect_stdout(output), redirect_stderr(output):
        warnings.simplefilter("ignore")
        try:
            with time_limit(TIMEOUT):
                func(*args, **kwargs)
        except _Timeout:
            return "hang", f"no return within {TIMEOUT:g} s"
        except SystemExit as exc:
            if exc.code not in (0, None):
                return "named", f"exit status {exc.code}: {output.getvalue()[-150:]}"
            return "silent", "exit status 0"
        except Exception as exc:  # noqa: BLE001 - any exception counts; its message is judged
            message = f"{type(exc).__name__}: {exc}"
            return ("named" if names_argument(str(exc), name) else "unnamed"), message[:200]
    return "silent", "returned normally"


# --------------------------------------------------------------------------------------------
# Mutations: wrong values derived from a valid one
# --------------------------------------------------------------------------------------------

_SEED_NAMES = re.compile(r"seed")


def _array_mutations(value: np.ndarray) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("more-dims", value[None, ...]),
        ("strings", np.full(value.shape, "a")),
    ]
    if value.ndim >= 1:
        out.append(("fewer-dims", value[0]))
        out.append(("empty", value[:0]))
    if value.dtype.kind == "f" and value.size:
        for label, bad in (("nan", np.nan), ("inf", np.inf)):
            copy = value.copy()
            copy.flat[0] = bad
            out.append((label, copy))
        out.append(("complex", value + 1j))
    elif value.dtype.kind in "iu" and value.size:
        out.append(("float-entries", value + 0.5))
    return out


def _tensor_mutations(value: torch.Tensor) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("more-dims", value[None, ...])]
    if value.ndim >= 1:
        out.append(("fewer-dims", value[0]))
        out.append(("empty", value[:0]))
    if value.is_floating_point() and value.numel():
        for label, bad in (("nan", math.nan), ("inf", math.inf)):
            copy = value.detach().clone()
            copy.view(-1)[0] = bad
            out.append((label, copy))
        out.append(("complex", value.detach().to(torch.complex128) + 1j))
        out.append(("int-dtype", value.detach().round().long()))
    elif not value.is_floating_point() and value.numel():
        out.append(("float-dtype", value.to(torch.float32)))
        out.append(("negative-entries", value - 1000))
    return out


def _sequence_mutations(value: tuple | list) -> list[tuple[str, Any]]:
    kind = type(value)
    if value and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        first = list(value)
        return [
            ("string", "".join(str(v) for v in value)),
            ("float-entry", kind([2.5, *first[1:]])),
            ("negative-entry", kind([*first[:-1], -1])),
            ("empty", kind()),
        ]
    if value and all(isinstance(v, float) for v in value):
        return [("string", "0.5"), ("nan-entry", kind([*value[:-1], math.nan])),
                ("complex-entry", kind([*value[:-1], 1j])), ("empty", kind())]
    if value and all(isinstance(v, str) for v in value):
        return [("string", "abc"), ("unknown-entry", kind([*value[:-1], "no-such-option"])),
                ("empty", kind())]
    return [("string", "abc"), ("number", 3)]


def mutations_for(name: str, value: Any, none_ok: bool, text: bool) -> list[tuple[str, Any]]:
    """The wrong values tried for argument ``name`` whose valid value is ``value``."""
    out: list[tuple[str, Any]] = [] if none_ok else [("None", None)]
    if isinstance(value, torch.Tensor):
        out += _tensor_mutations(value)
    elif isinstance(value, np.ndarray):
        out += _array_mutations(value)
    elif isinstance(value, (bool, np.bool_)):
        out += [("string", "no"), ("int", 2)]
    elif isinstance(value, (int, np.integer)):
        if not _SEED_NAMES.search(name):
            out.append(("negative", -1))
        out += [("float", 2.5), ("bool", True), ("numeric-string", "3"), ("nan", math.nan)]
    elif isinstance(value, (float, np.floating)):
        out += [("nan", math.nan), ("inf", math.inf), ("numeric-string", "0.5"),
                ("bool", True), ("complex", 1 + 1j)]
    elif isinstance(value, str):
        out += [("number", 3)] if text else [("unknown", "no-such-option"), ("number", 3)]
    elif isinstance(value, (tuple, list)):
        out += _sequence_mutations(value)
    elif isinstance(value, Penalty):
        out += [("number", 3.0), ("string", "omega")]
    elif isinstance(value, nn.Module):
        out += [("string", "model"), ("number", 3)]
    elif isinstance(value, Mapping):
        out += [("string", "abc"), ("number", 3)]
        if value:
            out.append(("empty", type(value)() if type(value) is not dict else {}))
        if value and all(isinstance(v, torch.Tensor) for v in value.values()):
            out.append(("non-tensor-values", {k: "x" for k in value}))
    else:
        out += [("string", "abc"), ("number", 3)]
    return out


# --------------------------------------------------------------------------------------------
# The table of valid calls
# --------------------------------------------------------------------------------------------


@dataclass
class Call:
    """A valid call; ``valid``: ``"arg/label"`` mutations that are valid inputs there;
    ``text``: string arguments that are free text rather than options; ``fixed``: arguments
    not mutated (why: in a comment at the entry)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    valid: frozenset[str] = frozenset()
    text: frozenset[str] = frozenset()
    fixed: frozenset[str] = frozenset()


def call(*args: Any, valid: tuple[str, ...] = (), text: tuple[str, ...] = (),
         fixed: tuple[str, ...] = (), **kwargs: Any) -> Call:
    return Call(args, kwargs, frozenset(valid), frozenset(text), frozenset(fixed))


# Small valid inputs, built once on first use.


@functools.cache
def workdir() -> pathlib.Path:
    return pathlib.Path(tempfile.mkdtemp(prefix="atf-bad-inputs-"))


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@functools.cache
def system() -> tuple[np.ndarray, np.ndarray]:
    """A consistent system ``Φβ = y``: ``Phi`` [3, 6], ``y`` [3]."""
    rng = _rng(1)
    Phi = rng.standard_normal((3, 6))
    return Phi, Phi @ rng.standard_normal(6)


def Phi() -> np.ndarray:  # noqa: N802 - the book's name for the feature matrix
    return system()[0].copy()


def y() -> np.ndarray:
    return system()[1].copy()


def spd(n: int = 4, seed: int = 2) -> np.ndarray:
    A = _rng(seed).standard_normal((n, n))
    return A @ A.T + n * np.eye(n)


@functools.cache
def _net() -> nn.Module:
    from atf_lite.networks.mlp import mlp

    return mlp(3, 4, 1, seed=0, dtype=torch.float64)


def net() -> nn.Module:
    return _net()


def X() -> torch.Tensor:  # noqa: N802 - inputs are X throughout the package
    return torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def y_t() -> torch.Tensor:
    return torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))


def params0() -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net().named_parameters()}


def params1() -> dict[str, torch.Tensor]:
    return {k: v + 0.1 for k, v in params0().items()}


def classification() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    Xc = torch.randn(12, 4, generator=generator)
    return Xc, torch.arange(12) % 3


def classifier() -> nn.Module:
    from atf_lite.networks.feature_models import FullNet
    from atf_lite.networks.mlp import mlp

    return FullNet(mlp(4, 5, 1, d_out=3, seed=0))


@functools.cache
def alignment_result():
    from atf_lite.experiments.alignment_run import AlignmentSettings, alignment_experiment

    settings = AlignmentSettings(n=20, width=4, depth=1, epochs=2, nodes=2, target_width=4)
    return alignment_experiment(settings, use_cache=False)


def alignment_settings():
    from atf_lite.experiments.alignment_run import AlignmentSettings

    return AlignmentSettings(n=20, width=4, depth=1, epochs=2, nodes=2, target_width=4)


TINY_TRAIN = {"width": 4, "depth": 1, "max_epochs": 1, "patience": 1, "batch_size": 16}


def sc_settings(**changes: Any):
    from atf_lite.experiments.sample_complexity_run import SampleComplexitySettings

    options = {"sizes": [20, 40], "seeds": [0], "models": ("fixed", "adaptive"),
               "overrides": TINY_TRAIN, **changes}
    return SampleComplexitySettings(**options)


@functools.cache
def sc_result():
    from atf_lite.experiments.sample_complexity_run import sample_complexity

    return sample_complexity(sc_settings(), use_cache=False)


@functools.cache
def sweep_records():
    from atf_lite.experiments.sample_complexity_run import settings_sweep

    return settings_sweep(sc_settings(sizes=[20]), {"a": {"lr": 1e-2}, "b": {"lr": 1e-3}},
                          use_cache=False)


@functools.cache
def splits():
    from atf_lite.experiments.sample_complexity_data import load_splits

    return load_splits("digits")


@functools.cache
def mnist_dir() -> pathlib.Path:
    """A fake MNIST test split (10 000 random 28×28 images, labels 0..9) in IDX format."""
    import struct

    root = workdir() / "mnist"
    root.mkdir(exist_ok=True)
    rng = _rng(6)
    for stem, array in (
        ("t10k-images-idx3-ubyte", rng.integers(0, 256, size=(10_000, 28, 28))),
        ("t10k-labels-idx1-ubyte", np.arange(10_000) % 10),
    ):
        array = np.asarray(array, dtype=np.uint8)
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (root / stem).write_bytes(header + array.tobytes())
    return root


def axes():
    import matplotlib.pyplot as plt

    plt.close("all")
    return plt.subplots()[1]


@functools.cache
def joint_solution():
    from atf_lite.solvers.joint import solve_joint
    from atf_lite.theory.penalties import omega_sq

    return solve_joint(Phi(), y(), omega_sq, restarts=1)


def alignment_args(**changes: Any) -> argparse.Namespace:
    from atf_lite.experiments.alignment_cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--n", "20", "--width", "4", "--epochs", "2", "--nodes", "2", "--target-width", "4",
            "--no-cache", "--out", str(workdir() / "alignment-cli")]
    return parser.parse_args(argv)


def sc_args() -> argparse.Namespace:
    from atf_lite.experiments.sample_complexity_cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--sizes", "20", "--seeds", "0", "--models", "fixed", "--width", "4", "--depth", "1",
            "--max-epochs", "1", "--no-cache", "--out", str(workdir() / "sc-cli")]
    return parser.parse_args(argv)


# A small convolutional network and its inputs (images [n, C, H, W]).


@functools.cache
def _cnn_net() -> nn.Module:
    from atf_lite.networks.cnn import cnn

    return cnn((1, 4, 4), (2,), hidden=(3,), seed=0, dtype=torch.float64)


def cnn_net() -> nn.Module:
    return _cnn_net()


def X_img() -> torch.Tensor:  # noqa: N802 - inputs are X throughout the package
    return torch.randn(5, 1, 4, 4, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(6))


def cnn_params0() -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in cnn_net().named_parameters()}


def cnn_params1() -> dict[str, torch.Tensor]:
    return {k: v + 0.1 for k, v in cnn_params0().items()}


def cnn_transforms() -> list:
    """Identity transforms ``(A, B)`` for each layer of :func:`cnn_net` (2 + 10, 3 + 9, 1 + 4)."""
    return [(torch.eye(m, dtype=torch.float64), torch.eye(d, dtype=torch.float64))
            for m, d in ((2, 10), (3, 9), (1, 4))]


@functools.cache
def cnn_alignment_settings():
    from atf_lite.experiments.cnn_alignment import CNNAlignmentSettings

    return CNNAlignmentSettings(n=20, channels=(2,), hidden=(3,), epochs=2, nodes=2,
                                target_width=4, target_depth=1)


def cnn_alignment_args() -> argparse.Namespace:
    from atf_lite.experiments.alignment_cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--arch", "cnn", "--n", "20", "--channels", "2", "--hidden", "3", "--epochs", "1",
            "--nodes", "2", "--target-width", "4", "--no-cache",
            "--out", str(workdir() / "cnn-alignment-cli")]
    return parser.parse_args(argv)


def instance(key: str) -> Any:
    """The function or class named by ``module:qualname`` (a ``#variant`` suffix ignored)."""
    module_name, _, qualname = key.partition("#")[0].partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Target:
    """A callable that no ``module:qualname`` reaches (a method of an instance)."""

    func: Callable
    call: Call


def _omega():
    from atf_lite.theory.penalties import omega_abs, omega_sq

    return omega_sq, omega_abs


def _pairs_data():
    from atf_lite.data import load_digits_pair

    return load_digits_pair(2, 3, n=20, seed=0)


def _target(factory: Callable[[], tuple[Callable, Call]]) -> Callable[[], Target]:
    return lambda: Target(*factory())


def _linearized_forward():
    from atf_lite.networks.functional import linearize

    # inputs are [n, ...]: the model's output then has the extra dimension, as f itself would
    return linearize(net(), params0()).forward, call(X(), params1(), valid=("X/more-dims",))


def _theorem1_methods(method: str):
    from atf_lite.theory.theorem1 import theorem1_solution

    solution = theorem1_solution(Phi(), y(), _omega()[0])
    return getattr(solution, method), call(Phi()[:2])


def _joint_methods(method: str):
    return getattr(joint_solution(), method), call(Phi()[:2])


def _apply_gamma():
    from atf_lite.theory.structured import structured_penalty

    pen = structured_penalty(np.arange(6.0).reshape(2, 3), _omega()[0], structure="kronecker")
    return pen.apply_gamma, call(Phi())


def _penalty_call():
    return _omega()[0].__call__, call(np.array([0.5, 2.0]),
                                      valid=("z/more-dims", "z/fewer-dims", "z/empty", "z/inf"))


def _penalty_grad():
    return _omega()[1].grad, call(np.array([0.5, 2.0]),
                                  valid=("z/more-dims", "z/fewer-dims", "z/empty", "z/inf"))


def _gradient_steps():
    weight = torch.ones(2, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1)
    return call(optimizer, lambda batch: (weight**2).sum(), [0, 1], before_step=lambda: None,
                what="demo", first_step=0, text=("what",),
                # any iterable of batches is valid: the batches only reach loss_of
                valid=("batches/string", "batches/float-entry", "batches/negative-entry",
                       "batches/empty"))


def _optimize_result():
    import scipy.optimize

    return scipy.optimize.OptimizeResult(status=0, nit=1, message="done")


def _transforms():
    from atf_lite.networks.kernels import weight_change_transforms

    return weight_change_transforms(net(), params0(), params1(), 0.5, rank=1)


def _summary():
    from atf_lite.experiments.sample_complexity_report import summarize

    return summarize(sc_result().results)


def _train_settings():
    from atf_lite.experiments.sample_complexity_run import TrainSettings

    return TrainSettings(**TINY_TRAIN)


def _sparse_settings():
    from atf_lite.experiments.recovery import SparseRecoverySettings

    return SparseRecoverySettings(m=8, scale=1.0, trials=1, p=10, k=2, seed=0)


def _sensing_settings():
    from atf_lite.experiments.recovery import MatrixSensingSettings

    return MatrixSensingSettings(n=10, scale=1.0, trials=1, shape=(3, 3), rank=1, seed=0)


def _split_data():
    generator = torch.Generator().manual_seed(8)
    return torch.randn(60, 4, generator=generator), torch.arange(60) % 3


# fmt: off
VALID_CALLS: dict[str, Callable[[], Call | Target]] = {
    # ---- linalg, alignment
    "atf_lite.linalg:min_norm_interpolator": lambda: call(Phi(), y(), rtol=1e-8),
    # check=False skips the checks by design (inner loops of the solvers)
    "atf_lite.linalg:min_norm_weights": lambda: call(Phi(), y(), fixed=("check",), check=True),
    "atf_lite.linalg:kernel_regression": lambda: call(spd(), np.arange(4.0), spd(4, 3)[:2]),
    "atf_lite.linalg:relative_error": lambda: call(np.ones(3), np.arange(1.0, 4.0)),
    "atf_lite.alignment:label_kernel": lambda: call(np.array([1.0, -1.0, 2.0])),
    "atf_lite.alignment:center_kernel": lambda: call(spd()),
    "atf_lite.alignment:kernel_alignment": lambda: call(spd(), spd(4, 3), centered=False),
    "atf_lite.alignment:decompose_kernel": lambda: call(
        spd(4, 5), spd(4, 6), np.outer(np.arange(1.0, 5.0), np.arange(1.0, 5.0))),
    # ---- data
    # images [n, ...]: one more or one less dimension is another valid stack of images
    "atf_lite.data:preprocess": lambda: call(_rng(7).random((3, 2, 2)),
                                             valid=("images/more-dims", "images/fewer-dims")),
    "atf_lite.data:scale_pixels": lambda: call(_rng(7).random((3, 2, 2)), 16.0,
                                               valid=("images/more-dims", "images/fewer-dims")),
    "atf_lite.data:load_digits_pair": lambda: call(2, 3, n=20, seed=0),
    "atf_lite.data:load_digits_multiclass": lambda: call(n=20, seed=0, preprocessing="unit-norm"),
    "atf_lite.data:read_idx": lambda: call(mnist_dir() / "t10k-labels-idx1-ubyte"),
    "atf_lite.data:load_mnist": lambda: call(mnist_dir(), split="test"),
    "atf_lite.data:load_mnist_pair": lambda: call(2, 3, n=20, root=mnist_dir(), split="test",
                                                  seed=0),
    "atf_lite.data:load_mnist_multiclass": lambda: call(
        n=20, root=mnist_dir(), split="test", seed=0, preprocessing="unit-norm"),
    "atf_lite.data:mnist_root": lambda: call(mnist_dir()),
    # ---- cache, progress, plotting, perturbation
    # an empty config is a valid configuration
    "atf_lite.cache:cache_key": lambda: call("demo", {"a": 1}, text=("name",),
                                             valid=("config/empty",)),
    "atf_lite.cache:cached": lambda: call("demo", {"a": 1}, lambda: 1, use_cache=False,
                                          text=("name",), valid=("config/empty",)),
    # a string is an iterable (of characters)
    "atf_lite.progress:progress_bar": lambda: call(range(3), total=3, desc="x", enabled=False,
                                                   text=("desc",), valid=("iterable/string",)),
    "atf_lite.plotting:heatmap": lambda: call(axes(), spd(), title="K", order=np.arange(4),
                                              symmetric=True, text=("title",)),
    "atf_lite.plotting:loglog_slope": lambda: call(np.array([1.0, 2.0, 4.0]),
                                                   np.array([1.0, 4.0, 16.0])),
    "atf_lite.perturbation:perturb_ulp_": lambda: call(
        __import__("copy").deepcopy(net()), 1),
    # ---- theory
    "atf_lite.theory.penalties:Penalty": lambda: call("sq", lambda z: (z - 1.0) ** 2,
                                                      smooth=True, text=("name",)),
    "atf_lite.theory.penalties:penalty": lambda: call(
        lambda z: (z - 1.0) ** 2, "sq", derivative=lambda z: 2.0 * (z - 1.0), smooth=True,
        text=("name",)),
    "atf_lite.theory.penalties:as_penalty": lambda: call(_omega()[0], "omega", text=("name",)),
    "atf_lite.theory.penalties:oplus": lambda: call(*_omega()),
    "atf_lite.theory.penalties:spectral_penalty": lambda: call(2.0 * np.eye(3), _omega()[0]),
    "atf_lite.theory.penalties:Penalty.__call__": _target(_penalty_call),
    "atf_lite.theory.penalties:Penalty.grad": _target(_penalty_grad),
    # v may be a scalar or an array of any shape, also empty
    "atf_lite.theory.effective:effective_penalty": lambda: call(
        np.array([0.5, 2.0]), _omega()[0], valid=("v/more-dims", "v/fewer-dims", "v/empty")),
    "atf_lite.theory.effective:adaptation_scale": lambda: call(
        np.array([0.5, 2.0]), _omega()[1], valid=("v/more-dims", "v/fewer-dims", "v/empty")),
    "atf_lite.theory.effective:effective_penalty_and_scale": lambda: call(
        np.array([0.5, 2.0]), _omega()[0], valid=("v/more-dims", "v/fewer-dims", "v/empty")),
    "atf_lite.theory.theorem1:theorem1_solution": lambda: call(Phi(), y(), _omega()[0],
                                                               rtol=1e-8),
    "atf_lite.theory.theorem1:Theorem1Solution.kernel": _target(
        lambda: _theorem1_methods("kernel")),
    "atf_lite.theory.theorem1:Theorem1Solution.predict": _target(
        lambda: _theorem1_methods("predict")),
    "atf_lite.theory.structured:kronecker_penalty_and_scales": lambda: call(
        np.array([0.5, 2.0]), *_omega(), tol=1e-15, max_iter=2000,
        valid=("v/more-dims", "v/fewer-dims", "v/empty")),
    "atf_lite.theory.structured:structured_penalty": lambda: call(
        np.array([0.5, -2.0, 0.0, 1.0]), _omega()[0], structure="groups",
        groups=[np.array([0, 1]), np.array([2, 3])]),
    "atf_lite.theory.structured:structured_penalty#kronecker": lambda: call(
        np.arange(6.0).reshape(2, 3), _omega()[0], structure="kronecker", omega_b=_omega()[1]),
    "atf_lite.theory.structured:StructuredPenalty.identity": lambda: call(
        "kronecker", 6, shape=(2, 3)),
    "atf_lite.theory.structured:StructuredPenalty.apply_gamma": _target(_apply_gamma),
    # ---- solvers
    "atf_lite.solvers.joint:reduced_objective": lambda: call(Phi(), y(), _omega()[0], np.eye(6)),
    "atf_lite.solvers.joint:solve_joint": lambda: call(
        Phi(), y(), _omega()[0], structure="full", restarts=1, seed=0, init_scale=0.5,
        max_iter=5, gtol=1e-11),
    "atf_lite.solvers.joint:compare_with_theorem1": lambda: call(Phi(), y(), _omega()[0],
                                                                 joint_solution()),
    "atf_lite.solvers.solution:JointSolution.kernel": _target(lambda: _joint_methods("kernel")),
    "atf_lite.solvers.solution:JointSolution.predict": _target(
        lambda: _joint_methods("predict")),
    "atf_lite.solvers.solution:warn_unconverged": lambda: call(
        _optimize_result(), "solver", "max_iter", stacklevel=3, text=("solver", "limit")),
    "atf_lite.solvers.joint_structured:solve_joint_structured": lambda: call(
        Phi(), y(), _omega()[0], structure="diagonal", restarts=1, seed=0, init_scale=1.0,
        max_iter=20, gtol=1e-12),
    "atf_lite.solvers.alternating:solve_structured": lambda: call(
        Phi(), y(), _omega()[0], structure="diagonal", max_iter=50, tol=1e-11, restarts=1,
        seed=0),
    "atf_lite.solvers.alternating:solve_structured#kronecker": lambda: call(
        Phi(), y(), _omega()[0], structure="kronecker", shape=(2, 3), omega_b=_omega()[1],
        max_iter=50),
    "atf_lite.solvers.alternating:check_structured_problem": lambda: call(
        "groups", Phi(), y(), _omega()[0], None, None, [np.arange(3), np.arange(3, 6)]),
    "atf_lite.solvers.convex:min_l1_interpolator": lambda: call(Phi(), y()),
    "atf_lite.solvers.convex:min_nuclear_norm_interpolator": lambda: call(
        Phi(), y(), shape=(2, 3), max_iter=50, tol=1e-9, step=0.5),
    # ---- networks (torch)
    "atf_lite.networks.mlp:mlp": lambda: call(
        3, 4, 1, d_out=1, bias=True, seed=0, activation=nn.ReLU, dtype=torch.float64, init="he"),
    "atf_lite.networks.functional:model_params": lambda: call(net(), params0()),
    "atf_lite.networks.functional:path_endpoints": lambda: call(net(), params0(), params1()),
    "atf_lite.networks.functional:flatten_params": lambda: call(params0()),
    # the values of the vector are not checked: unflattening only reshapes
    "atf_lite.networks.functional:unflatten_params": lambda: call(
        torch.cat([v.reshape(-1) for v in params0().values()]), params0(),
        valid=("vector/nan", "vector/inf")),
    # inputs are [n, ...]: any number of dimensions from two on
    "atf_lite.networks.functional:check_inputs": lambda: call(X(), "X", text=("name",),
                                                              valid=("X/more-dims",)),
    "atf_lite.networks.functional:check_model": lambda: call(net(), "model", text=("name",)),
    # a reshaping helper: any [n] or [n, 1] tensor, whatever its values and dtype
    "atf_lite.networks.functional:scalar_output": lambda: call(
        torch.zeros(5, 1), valid=("out/fewer-dims", "out/empty", "out/nan", "out/inf",
                                  "out/int-dtype", "out/complex")),
    "atf_lite.networks.functional:model_output": lambda: call(X(), net(), params0()),
    "atf_lite.networks.functional:rows_per_block": lambda: call(5, 10, 2),
    "atf_lite.networks.functional:LinearizedModel": lambda: call(net(), params0()),
    "atf_lite.networks.functional:LinearizedModel.forward": _target(_linearized_forward),
    "atf_lite.networks.functional:linearize": lambda: call(net(), params0()),
    "atf_lite.networks.training:make_optimizer": lambda: call(
        "sgd", [torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.5, weight_decay=0.0),
    "atf_lite.networks.training:epoch_order": lambda: call(
        10, torch.Generator().manual_seed(0), take=5, shuffle=True),
    "atf_lite.networks.training:gradient_steps": _gradient_steps,
    "atf_lite.networks.training:check_finite_parameters": lambda: call(
        list(net().named_parameters()), "model", text=("what",)),
    "atf_lite.networks.training:train": lambda: call(
        X(), y_t(), __import__("copy").deepcopy(net()), epochs=2, lr=0.01, momentum=0.9,
        batch_size=2, schedule="cosine", loss="mse", weight_decay=0.0, seed=0, progress=False),
    "atf_lite.networks.classifier:evaluate_classifier": lambda: call(
        *classification(), classifier(), batch_size=4),
    "atf_lite.networks.classifier:fit_classifier": lambda: call(
        *classification(), *classification(), classifier(), optimizer="sgd", lr=0.05,
        momentum=0.9, batch_size=4, max_epochs=2, patience=1, seed=0, epoch_subset=6,
        progress=False),
    "atf_lite.networks.linear:heavy_ball_parameters": lambda: call(1.0, 4.0),
    # an integer reference vector is a valid vector of numbers
    "atf_lite.networks.linear:train_linearized": lambda: call(
        X(), y_t(), net(), params0(), steps=3, lr=0.01, momentum=0.5,
        reference=torch.ones(21, dtype=torch.float64), valid=("reference/int-dtype",)),
    "atf_lite.networks.linear:train_network": lambda: call(
        X(), y_t(), net(), params0(), steps=3, lr=0.01, momentum=0.5),
    "atf_lite.networks.linear:linearization_gap": lambda: call(
        X(), y_t(), X(), net(), steps=2, lr_scale=1.0),
    "atf_lite.networks.tangent:is_structured_mlp": lambda: call(net()),
    "atf_lite.networks.tangent:mlp_layers": lambda: call(net()),
    "atf_lite.networks.tangent:layer_signals": lambda: call(X(), net(), params0()),
    "atf_lite.networks.tangent:jacobian_block": lambda: call(X(), net(), params0()),
    "atf_lite.networks.tangent:tangent_features": lambda: call(X(), net(), params0(),
                                                               batch_size=2),
    "atf_lite.networks.tangent:tangent_kernel": lambda: call(
        X(), net(), params0(), X2=X(), method="auto", batch_size=2),
    "atf_lite.networks.tangent:naive_tangent_features": lambda: call(X(), net(), params0()),
    "atf_lite.networks.tangent:naive_tangent_kernel": lambda: call(X(), net(), params0(), X2=X()),
    "atf_lite.networks.path_averaging:quadrature_rule": lambda: call(4, rule="gauss-legendre"),
    "atf_lite.networks.path_averaging:path_averaged_features": lambda: call(
        X(), net(), params0(), params1(), nodes=4, rule="gauss-legendre", batch_size=2),
    "atf_lite.networks.path_averaging:path_averaged_kernel": lambda: call(
        X(), net(), params0(), params1(), nodes=4, rule="exact", batch_size=2),
    "atf_lite.networks.path_pieces:path_breakpoints": lambda: call(
        X(), net(), params0(), params1(), batch_size=2),
    "atf_lite.networks.piecewise_path:exact_path_features": lambda: call(
        X(), net(), params0(), params1(), batch_size=2),
    "atf_lite.networks.piecewise_path:exact_path_kernel": lambda: call(
        X(), net(), params0(), params1(), batch_size=2),
    "atf_lite.networks.kernels:dense_layer_names": lambda: call(net()),
    "atf_lite.networks.kernels:layer_adapted_kernel": lambda: call(
        X(), net(), _transforms(), params0(), X2=X()),
    "atf_lite.networks.kernels:weight_change_transforms": lambda: call(
        net(), params0(), params1(), 0.5, rank=1),
    "atf_lite.networks.kernels:weight_change_spectra": lambda: call(net(), params0(), params1()),
    "atf_lite.networks.kernels:eigen_overlaps": lambda: call(spd(), np.arange(1.0, 5.0), k=2),
    "atf_lite.networks.kernels:quadrature_residuals": lambda: call(
        X(), net(), params0(), params1(), nodes=[2, 4], rules=["riemann", "gauss-legendre"]),
    "atf_lite.networks.feature_models:FeatureModel": lambda: call(net(), output_scale=1.0),
    "atf_lite.networks.feature_models:FullNet": lambda: call(net(), output_scale=1.0),
    "atf_lite.networks.feature_models:LinearizedNet": lambda: call(net(), output_scale=1.0),
    "atf_lite.networks.feature_models:AdaptiveNet": lambda: call(net(), output_scale=1.0),
    "atf_lite.networks.feature_models:feature_model": lambda: call("fixed", net(),
                                                                   output_scale=1.0),
    # ---- experiments
    "atf_lite.experiments.alignment_checks:task_overlap": lambda: call(
        np.array([0.3, -1.2, 0.8]), np.array([1.0, -1.0, -1.0]), 4),
    "atf_lite.experiments.alignment_quadrature:quadrature_table": lambda: call(
        alignment_result(), task="sign", nodes=[2], rules=["riemann"], use_cache=False,
        threads=1),
    "atf_lite.experiments.alignment_quadrature:quadrature_convergence": lambda: call(
        alignment_result(), task="sign", nodes=[2], rules=["riemann"], use_cache=False,
        threads=1),
    "atf_lite.experiments.alignment_report:theorem1_alignment": lambda: call(
        alignment_result(), task="sign"),
    "atf_lite.experiments.alignment_report:binned_diagonal": lambda: call(
        alignment_result(), kernel="K_bar", task="sign", bins=4),
    "atf_lite.experiments.problems:random_instance": lambda: call(3, 6, 1.0, seed=0),
    "atf_lite.experiments.problems:difficulty_targets": lambda: call(
        _rng(9).standard_normal((20, 3)), np.where(np.arange(20) % 2, 1.0, -1.0), features=4,
        seed=0),
    "atf_lite.experiments.problems:sparse_recovery_instance": lambda: call(10, 2, 5, 1.0, seed=0),
    "atf_lite.experiments.problems:matrix_sensing_instance": lambda: call((3, 4), 1, 5, 1.0,
                                                                          seed=0),
    "atf_lite.experiments.recovery:SparseRecoverySettings": lambda: call(
        m=8, scale=1.0, trials=1, p=10, k=2, seed=0),
    "atf_lite.experiments.recovery:MatrixSensingSettings": lambda: call(
        n=10, scale=1.0, trials=1, shape=(3, 3), rank=1, seed=0),
    # no penalties: the baselines alone (documented; test_recovery relies on it)
    "atf_lite.experiments.recovery:sparse_recovery_trials": lambda: call(
        _sparse_settings(), {"ω": _omega()[0]}, l1=True, valid=("penalties/empty",)),
    "atf_lite.experiments.recovery:matrix_sensing_trials": lambda: call(
        _sensing_settings(), {"K": _omega()}, nuclear=True, valid=("penalties/empty",)),
    "atf_lite.experiments.foundations_report:feature_gradient_descent": lambda: call(
        Phi(), y(), steps=3, lr=0.05, momentum=0.5, reference=np.ones(6)),
    "atf_lite.experiments.foundations_report:fit_power_law": lambda: call(
        np.array([1.0, 2.0, 4.0]), np.array([3.0, 2.0, 1.5])),
    "atf_lite.experiments.foundations_report:brute_force_rows": lambda: call(
        [system()], _omega()[0], restarts=1),
    "atf_lite.experiments.foundations_report:label_weight_curve": lambda: call(
        spd(), np.array([1.0, -1.0, 2.0, 0.5]), _omega()[0], np.array([0.5, 2.0])),
    "atf_lite.experiments.alignment_run:AlignmentSettings": lambda: call(
        dataset="digits", pair=(2, 3), n=20, width=4, depth=1, seed=0, epochs=2, lr=0.1,
        momentum=0.9, batch_size=8, nodes=2, rule="gauss-legendre", ridge=1e-3, target_width=4),
    # integer ±1 labels are the same labels (documented): only their values enter the fit
    "atf_lite.experiments.alignment_run:random_feature_targets": lambda: call(
        *_pairs_data(), width=4, depth=1, seed=0, ridge=1e-3, valid=("labels/int-dtype",)),
    "atf_lite.experiments.alignment_run:alignment_experiment": lambda: call(
        alignment_settings(), mnist_root=None, device="cpu", use_cache=False, progress=False,
        threads=1),
    "atf_lite.experiments.alignment_run:alignment_experiment_seeds": lambda: call(
        alignment_settings(), [0], use_cache=False),
    "atf_lite.experiments.alignment_report:format_seed_table": lambda: call(
        [alignment_result()], metrics=("alignment",)),
    "atf_lite.experiments.alignment_report:diagonal_quarters": lambda: call(
        alignment_result(), kernel="K_bar", task="sign"),
    "atf_lite.experiments.alignment_report:plot_kernels": lambda: call(alignment_result()),
    "atf_lite.experiments.alignment_report:plot_difficulty": lambda: call(alignment_result(),
                                                                          task="sign"),
    "atf_lite.experiments.alignment_report:summary": lambda: call(alignment_result()),
    # out_dir may be a str (annotated str | os.PathLike; the command line passes --out as one)
    "atf_lite.experiments.alignment_report:write_outputs": lambda: call(
        alignment_result(), workdir() / "alignment-out", command="demo", text=("command",),
        valid=("out_dir/string",)),
    "atf_lite.experiments.alignment_cli:add_arguments": lambda: call(argparse.ArgumentParser()),
    "atf_lite.experiments.alignment_cli:settings_from_args": lambda: call(alignment_args()),
    "atf_lite.experiments.alignment_cli:command_line": lambda: call(alignment_args()),
    "atf_lite.experiments.alignment_cli:run_cli": lambda: call(alignment_args()),
    # the last word is the output directory: another word is another valid command line
    "atf_lite.experiments.cli:main": lambda: call(
        ["sample-complexity", "--sizes", "20", "--seeds", "0", "--models", "fixed", "--width",
         "4", "--depth", "1", "--max-epochs", "1", "--no-cache", "--out",
         str(workdir() / "main-cli")], valid=("argv/unknown-entry",)),
    "atf_lite.experiments.sample_complexity_data:stratified_indices": lambda: call(
        np.arange(30) % 3, 9, seed=0),
    # class labels are any integers (only their equality matters)
    "atf_lite.experiments.sample_complexity_data:split_dataset": lambda: call(
        *_split_data(), test_fraction=0.3, val_fraction=0.2, seed=0,
        valid=("y/negative-entries",)),
    "atf_lite.experiments.sample_complexity_data:load_splits": lambda: call(
        "digits", preprocessing="unit-norm"),
    "atf_lite.experiments.sample_complexity_data:default_sizes": lambda: call(1006, smallest=20),
    "atf_lite.experiments.sample_complexity_run:recipe_settings": lambda: call(
        "book", preprocessing="unit-norm", lr=0.01),
    "atf_lite.experiments.sample_complexity_run:TrainSettings": lambda: call(
        width=4, depth=1, optimizer="adam", lr=0.01, momentum=0.9, batch_size=16, max_epochs=1,
        patience=1, output_scale=1.0, init="he", small_batch=(10, 4)),
    # empty overrides are the defaults and mean "no overrides" (documented)
    "atf_lite.experiments.sample_complexity_run:SampleComplexitySettings": lambda: call(
        dataset="digits", sizes=[20], seeds=[0], models=("fixed",), recipe="book",
        protocol="fixed-subset", preprocessing="unit-norm", overrides=TINY_TRAIN,
        model_overrides={"fixed": {"max_epochs": 1}},
        valid=("overrides/empty", "model_overrides/empty")),
    "atf_lite.experiments.sample_complexity_run:run_one": lambda: call(
        splits(), _train_settings(), kind="fixed", n_train=20, seed=0, protocol="fixed-subset"),
    "atf_lite.experiments.sample_complexity_run:sample_complexity": lambda: call(
        sc_settings(sizes=[20], models=("fixed",)), mnist_root=None, use_cache=False,
        progress=False),
    "atf_lite.experiments.sample_complexity_run:settings_sweep": lambda: call(
        sc_settings(sizes=[20], models=("fixed",)), {"a": {"lr": 0.01}}, mnist_root=None,
        use_cache=False, progress=False),
    "atf_lite.experiments.sample_complexity_report:sweep_table": lambda: call(
        sweep_records(), layer=None),
    "atf_lite.experiments.sample_complexity_report:select_variants": lambda: call(
        __import__("atf_lite.experiments.sample_complexity_report", fromlist=["x"])
        .sweep_table(sweep_records())),
    "atf_lite.experiments.sample_complexity_report:summarize": lambda: call(sc_result().results),
    "atf_lite.experiments.sample_complexity_report:samples_to_reach": lambda: call(
        [20.0, 40.0], [0.5, 0.3], 0.4),
    "atf_lite.experiments.sample_complexity_report:samples_needed": lambda: call(
        _summary(), [0.9]),
    "atf_lite.experiments.sample_complexity_report:sample_ratio": lambda: call(
        sc_result().results, [0.9], numerator="fixed", denominator="adaptive", n_boot=20,
        confidence=0.9, seed=0),
    "atf_lite.experiments.sample_complexity_report:format_summary": lambda: call(
        _summary(), decimals=3),
    "atf_lite.experiments.sample_complexity_report:effective_rank": lambda: call(
        np.array([3.0, 2.0, 1.0]), energy=0.9),
    "atf_lite.experiments.sample_complexity_report:plot_sample_complexity": lambda: call(
        axes(), _summary(), title="demo", text=("title",)),
    # out_dir may be a str (annotated str | os.PathLike; the command line passes --out as one)
    "atf_lite.experiments.sample_complexity_report:write_outputs": lambda: call(
        sc_result(), workdir() / "sc-out", command="demo", text=("command",),
        valid=("out_dir/string",)),
    "atf_lite.experiments.sample_complexity_cli:add_arguments": lambda: call(
        argparse.ArgumentParser()),
    "atf_lite.experiments.sample_complexity_cli:settings_from_args": lambda: call(sc_args()),
    "atf_lite.experiments.sample_complexity_cli:command_line": lambda: call(sc_args()),
    "atf_lite.experiments.sample_complexity_cli:run_cli": lambda: call(sc_args()),
    "atf_lite.experiments.sample_complexity_study:expected_distinct_examples": lambda: call(
        600, 20, np.array([1.0, 10.0])),
    "atf_lite.experiments.sample_complexity_study:study_directory": lambda: call(
        "mnist", "book", "fixed-subset"),
    # ---- convolutional networks
    "atf_lite.networks.cnn:cnn": lambda: call(
        (1, 4, 4), (2,), hidden=(3,), d_out=1, kernel_size=3, pooling="avg", bias=True, seed=0,
        init="he", flat_input=False, valid=("hidden/empty",)),  # no hidden dense layer
    "atf_lite.networks.cnn:image_shape_for": lambda: call(64),
    "atf_lite.networks.conv_tangent:cnn_layers": lambda: call(cnn_net()),
    "atf_lite.networks.conv_tangent:is_structured_cnn": lambda: call(cnn_net()),
    "atf_lite.networks.conv_tangent:check_cnn_inputs": lambda: call(X_img(), cnn_net(), "X",
                                                                    text=("name",)),
    "atf_lite.networks.conv_tangent:cnn_layer_signals": lambda: call(X_img(), cnn_net(),
                                                                     cnn_params0()),
    "atf_lite.networks.conv_tangent:cnn_tangent_features": lambda: call(
        X_img(), cnn_net(), cnn_params0(), batch_size=2),
    "atf_lite.networks.conv_tangent:cnn_tangent_kernel": lambda: call(
        X_img(), cnn_net(), cnn_params0(), X2=X_img(), batch_size=2),
    "atf_lite.networks.conv_tangent:cnn_layer_adapted_kernel": lambda: call(
        X_img(), cnn_net(), cnn_transforms(), cnn_params0(), X2=X_img()),
    "atf_lite.networks.conv_path_averaging:cnn_path_averaged_features": lambda: call(
        X_img(), cnn_net(), cnn_params0(), cnn_params1(), nodes=4, rule="gauss-legendre",
        batch_size=2),
    "atf_lite.experiments.cnn_alignment:CNNAlignmentSettings": lambda: call(
        dataset="digits", pair=(2, 3), n=20, channels=(2,), hidden=(3,), pooling="avg", seed=0,
        epochs=2, lr=0.01, momentum=0.9, batch_size=8, nodes=2, rule="gauss-legendre",
        ridge=1e-3, target_width=4, target_depth=1, valid=("hidden/empty",)),
    "atf_lite.experiments.cnn_alignment:cnn_alignment_experiment": lambda: call(
        cnn_alignment_settings(), mnist_root=None, device="cpu", use_cache=False,
        progress=False, threads=1),
    "atf_lite.experiments.cnn_alignment:cnn_alignment_experiment_seeds": lambda: call(
        cnn_alignment_settings(), [0], use_cache=False),
    "atf_lite.experiments.cnn_alignment:add_cnn_arguments": lambda: call(
        argparse.ArgumentParser()),
    "atf_lite.experiments.cnn_alignment:cnn_settings_from_args": lambda: call(
        cnn_alignment_args()),
    "atf_lite.experiments.cnn_alignment:run_cnn_cli": lambda: call(cnn_alignment_args()),
    "atf_lite.experiments.cnn_report:parametrised_layers": lambda: call(cnn_net()),
    "atf_lite.experiments.cnn_report:position_pair_terms": lambda: call(
        X_img()[0], X_img()[1], cnn_net(), layer=0, params=cnn_params0(),
        valid=("layer/negative",)),  # counted from the output layer, as Python indexes
    "atf_lite.experiments.cnn_report:contraction_costs": lambda: call(X_img(), cnn_net()),
    "atf_lite.experiments.cnn_report:kronecker_sizes": lambda: call(cnn_net()),
}
# fmt: on

# Public names the sweep does not call, and why.
_RECORD = "a result record the package builds (validated where it is built)"
_NO_ARGUMENTS = "takes no arguments"
_INNER_STEP = ("an inner step of the convolutional kernels and models on tensors their public "
               "callers have checked; tested directly in tests/test_conv_tangent.py and "
               "tests/test_cnn_feature_models.py")
_EXACT_RULE_STEP = ("a step of the exact path rule, called by the swept public functions "
                    "on arguments they have validated; tested in tests/test_exact_path.py")
NOT_SWEPT: dict[str, str] = {
    **{f"atf_lite.{name}": _RECORD for name in (
        "alignment:KernelDecomposition", "linalg:MinNormWeights",
        "experiments.problems:InterpolationProblem", "experiments.problems:DifficultyTargets",
        "experiments.problems:RecoveryProblem", "experiments.recovery:RecoveryTrials",
        "experiments.alignment_run:TaskResult", "experiments.alignment_run:AlignmentResult",
        "experiments.sample_complexity_data:DataSplits",
        "experiments.sample_complexity_run:SampleComplexityResult",
        "networks.classifier:FitResult", "networks.classifier:ClassifierScore",
        "networks.linear:HeavyBall", "networks.linear:GradientDescentResult",
        "networks.linear:LinearizationGap", "networks.path_averaging:PathAveragedFeatures",
        "networks.training:TrainResult", "solvers.alternating:StructuredSolution",
        "solvers.convex:NuclearNormSolution", "solvers.joint:ReducedObjective",
        "solvers.joint:Theorem1Gaps", "solvers.solution:JointSolution",
        "theory.effective:PenaltyAndScale", "theory.structured:KroneckerScales",
        "theory.structured:StructuredPenalty", "theory.theorem1:Theorem1Solution",
    )},
    **{f"atf_lite.{name}": _NO_ARGUMENTS for name in (
        "cache:cache_dir", "cache:source_hash", "plotting:use_style", "progress:progress_enabled",
        "perturbation:perturbation_seed", "experiments.cli:build_parser",
    )},
    **{f"atf_lite.experiments.foundations_report:{name}": _RECORD for name in (
        "FeatureDescent", "PowerLawFit", "BruteForceRow", "LabelWeightCurve",
    )},
    **{f"atf_lite.{name}": _RECORD for name in (
        "networks.path_averaging:PathAveragedKernel", "networks.path_pieces:ForwardPieces",
        "networks.path_pieces:PathKink", "networks.path_pieces:PathLinear",
        "networks.path_pieces:PieceLevel", "networks.piecewise_path:ExactPathFeatures",
        "networks.piecewise_path:ExactPathKernel",
        "experiments.alignment_quadrature:QuadratureConvergence",
    )},
    **{f"atf_lite.{name}": _EXACT_RULE_STEP for name in (
        "networks.path_pieces:supports_exact_rule", "networks.path_pieces:layers_along_path",
        "networks.path_pieces:batch_ranges", "networks.path_pieces:follow_path",
        "networks.polynomial_roots:polyval", "networks.polynomial_roots:polyval_rows",
        "networks.polynomial_roots:to_local", "networks.polynomial_roots:sign_changes",
    )},
    "atf_lite.experiments.alignment_checks:TasksCoincideWarning": "a warning category",
    "atf_lite.experiments.alignment_checks:StageProgress": (
        "progress reporting; any enabled flag is read as a boolean"),
    "atf_lite.experiments.cnn_alignment:CNNAlignmentResult": _RECORD,
    "atf_lite.networks.functional:check_transform": (
        "the shared check of the layer transforms, swept through layer_adapted_kernel"),
    **{f"atf_lite.networks.{name}": _INNER_STEP for name in (
        "conv_tangent:conv_patches", "conv_tangent:layer_features", "conv_tangent:gram_term",
        "conv_tangent:patch_gram_is_cheaper", "conv_linearized:conv_tangent_plan",
        "conv_linearized:linearized_forward",
    )},
}


# Valid calls of the report functions (tables and figures): each builds a small result by hand.

def _width_gaps() -> list:
    from atf_lite.networks.linear import LinearizationGap

    return [LinearizationGap(0.5 / k, 0.4 / k**2, 1.2 / k, 1.0, 2.0) for k in (1, 2, 4)]


def _penalties() -> dict:
    return {r"$\omega_1$": _omega()[0], r"$\omega_2$": _omega()[1]}


@functools.cache
def _brute_rows() -> tuple:
    from atf_lite.experiments.foundations_report import brute_force_rows

    return tuple(brute_force_rows([system()], _omega()[0], restarts=1))


@functools.cache
def _weight_curves() -> dict:
    from atf_lite.experiments.foundations_report import label_weight_curve

    targets = {"a": np.array([1.0, -1.0, 2.0, 0.5]), "b": np.array([0.5, 1.0, -1.0, 1.0])}
    return {label: {name: label_weight_curve(spd(), t, omega, np.array([0.5, 1.0, 2.0]))
                    for name, t in targets.items()}
            for label, omega in zip(("omega_1", "omega_2"), _omega())}


def _recovery_trials(errors: dict[str, list[float]]):
    from atf_lite.experiments.recovery import RecoveryTrials

    return RecoveryTrials({k: np.array(v) for k, v in errors.items()}, {}, {}, {}, {}, {})


def _by_count() -> dict:
    return {20: _recovery_trials({"min_l2": [0.8, 0.9], "l1": [0.3, 0.5], "w": [0.2, 0.4]}),
            10: _recovery_trials({"min_l2": [0.9, 1.0], "l1": [0.8, 0.8], "w": [0.6, 0.8]})}


def _by_scale() -> dict:
    return {1.0: _recovery_trials({"min_l2": [0.8, 0.9], "w": [0.8, 0.9]}),
            0.1: _recovery_trials({"min_l2": [0.8, 0.9], "w": [0.85, 0.85]})}


def _convergence():
    from atf_lite.experiments.alignment_quadrature import QuadratureConvergence

    errors = {"riemann": np.array([1e-2, 5e-3]), "gauss-legendre": np.array([1e-3, 5e-4])}
    return QuadratureConvergence((2, 4), errors, dict(errors), 1e-15, np.array([1, 2]))


def _arch_summaries() -> dict:
    def summary(seed: int, shift: float) -> dict:
        entry = {"train_loss": 1e-3, "identity_residual": 2e-4, "tangent_norm": 3.0,
                 "alignment_initial": 0.05, "alignment": 0.2 + shift,
                 "alignment_change": 0.5 + shift}
        return {"config": {"seed": seed},
                "tasks": {"regression": entry, "sign": {**entry, "alignment": 0.3 + shift}}}

    return {"mlp": [summary(0, 0.0), summary(1, 0.01)], "cnn": [summary(0, 0.1)]}


# ---- foundations, recovery, alignment and convolutional reports
VALID_CALLS.update({
    "atf_lite.experiments.foundations_report:format_width_sweep": lambda: call(
        [16, 64, 256], _width_gaps()),
    "atf_lite.experiments.foundations_report:plot_descent": lambda: call(
        {"a": np.geomspace(1, 1e-3, 10), "b": np.ones(10)}, tolerance=1e-3),
    "atf_lite.experiments.foundations_report:plot_width_sweep": lambda: call(
        [16, 64, 256], _width_gaps()),
    "atf_lite.experiments.foundations_report:plot_penalties": lambda: call(
        np.linspace(0.0, 3.0, 31), _penalties(), mark=1.4),
    "atf_lite.experiments.foundations_report:plot_effective_penalties": lambda: call(
        np.linspace(0.0, 5.0, 21), _penalties(), lazy_threshold=0.7),
    "atf_lite.experiments.foundations_report:plot_effective_loglog": lambda: call(
        np.geomspace(1e-2, 1e2, 21), _penalties()),
    "atf_lite.experiments.foundations_report:format_brute_force_table": lambda: call(
        list(_brute_rows())),
    "atf_lite.experiments.foundations_report:plot_brute_force": lambda: call(
        {"w": list(_brute_rows())}, tolerance=1e-5, floor=1e-17),
    # index counts from the end when negative, as Python indexes the scales
    "atf_lite.experiments.foundations_report:format_difficulty_table": lambda: call(
        _weight_curves(), index=1, valid=("index/negative",)),
    "atf_lite.experiments.foundations_report:plot_difficulty_kinds": lambda: call(
        _weight_curves()["omega_1"], index=1, valid=("index/negative",)),
    # row labels are free text; no column headers given means every method
    "atf_lite.experiments.recovery_report:format_recovery_table": lambda: call(
        {30.0: _by_count()[20], 0.3: _by_scale()[1.0]}, row_name="scale",
        columns={"min_l2": "min-l2", "l1": "l1"}, digits=3, text=("row_name",)),
    # no label overrides (empty labels) is the default
    "atf_lite.experiments.recovery_report:plot_recovery_curves": lambda: call(
        _by_count(), _by_scale(), count_name="m", scale_label="scale", fixed_scale=30.0,
        fixed_count=20, labels={"w": "adaptive w"}, text=("count_name", "scale_label"),
        valid=("labels/empty",)),
    "atf_lite.experiments.recovery_report:plot_singular_value_penalties": lambda: call(
        v_max=4.0, v_log=(1e-1, 1e3)),
    "atf_lite.experiments.recovery_report:plot_spectra": lambda: call(
        {"truth": np.outer(np.arange(1.0, 5.0), np.ones(3)), "min_l2": _rng(10).random((4, 3))},
        floor=1e-3, labels={"min_l2": "lazy"}, valid=("labels/empty",)),
    "atf_lite.experiments.alignment_report:plot_quadrature_convergence": lambda: call(
        _convergence()),
    # layer counts from the output layer when negative; a title is free text
    "atf_lite.experiments.cnn_report:plot_position_contributions": lambda: call(
        X_img()[:2], cnn_net(), layer=0, image_shape=(4, 4), titles=("a", "b"),
        valid=("layer/negative", "titles/unknown-entry")),
    # metric is the axis label there, free text
    "atf_lite.experiments.cnn_report:plot_alignment_by_architecture": lambda: call(
        axes(), {"mlp": {"regression": [0.2, 0.3], "sign": [0.3, 0.4]},
                 "cnn": {"regression": [0.1, 0.2], "sign": [0.2, 0.1]}},
        metric="alignment", text=("metric",)),
    "atf_lite.experiments.cnn_report:alignment_by_architecture": lambda: call(
        _arch_summaries(), metric="alignment_change"),
    "atf_lite.experiments.cnn_report:format_architecture_table": lambda: call(_arch_summaries()),
})

# The sample-complexity study's tables and figures read the stored study or a small one built
# here.

# ---- the stored sample-complexity study
STUDY_ROOT = pathlib.Path(__file__).resolve().parents[1] / "book" / "data" / "sample-complexity"
_STUDY_KEYS = (("digits", "book", "fixed-subset"), ("digits", "book", "fresh-subset-per-epoch"))


@functools.cache
def _stored_study():
    from atf_lite.experiments.sample_complexity_study import load_study

    return load_study(STUDY_ROOT)


def study():
    """Two stored combinations (digits, book recipe, both protocols): 75 runs each."""
    return {key: _stored_study()[key] for key in _STUDY_KEYS}


def study_result():
    return study()[_STUDY_KEYS[0]]


@functools.cache
def _ratio_rows():
    from atf_lite.experiments.sample_complexity_study import study_ratios

    return study_ratios(study(), n_boot=20)


def ratio_rows() -> list:
    return [dict(row) for row in _ratio_rows()]


def cap_rows() -> list:
    from atf_lite.experiments.sample_complexity_study import epoch_cap_table

    return epoch_cap_table(study())


def spectrum_records() -> dict:
    spectrum = {"spectra": {"1": np.array([3.0, 2.0, 1.0])}}
    return {"fixed": spectrum, "adaptive": spectrum}


def _study_key(name: str) -> str:
    return f"atf_lite.experiments.sample_complexity_study:{name}"


VALID_CALLS.update({
    _study_key("load_study"): lambda: call(STUDY_ROOT),
    _study_key("common_levels"): lambda: call(
        __import__("atf_lite.experiments.sample_complexity_report", fromlist=["x"])
        .summarize(study_result().results), models=("fixed", "adaptive"), count=3),
    _study_key("study_ratios"): lambda: call(study(), count=2, n_boot=20, confidence=0.9,
                                             seed=0),
    _study_key("format_ratio_table"): lambda: call(ratio_rows()),
    _study_key("epoch_cap_table"): lambda: call(study()),
    _study_key("format_epoch_cap_table"): lambda: call(cap_rows()),
    _study_key("distinct_examples_table"): lambda: call(study_result()),
    _study_key("fit_summary"): lambda: call(study_result(), n_train=20),
    _study_key("format_fit_table"): lambda: call(study(), dataset="digits", recipe="book",
                                                 n_train=20),
    _study_key("format_study_table"): lambda: call(study(), decimals=3),
    _study_key("plot_study_grid"): lambda: call(study()),
    _study_key("plot_ratios"): lambda: call(axes(), ratio_rows(), claim=10.0),
    # epochs may be real numbers, as expected_distinct_examples takes them
    _study_key("plot_distinct_examples"): lambda: call(
        axes(), np.arange(1, 11), {600: np.minimum(25 * np.arange(1, 11), 600)}, n=25,
        valid=("epochs/float-entries",)),
    _study_key("plot_spectra"): lambda: call(axes(), spectrum_records(), layer="1", count=2),
})


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def public_callables() -> set[str]:
    """``module:name`` of every function and class defined in a public module's ``__all__``."""
    found = set()
    for info in pkgutil.walk_packages(atf_lite.__path__, "atf_lite."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue  # private modules (and __main__)
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            function = inspect.isfunction(inspect.unwrap(obj))  # also through lru_cache
            if (function or inspect.isclass(obj)) and obj.__module__ == info.name:
                found.add(f"{info.name}:{name}")
    return found


@dataclass(frozen=True)
class BadCall:
    key: str
    arg: str
    label: str
    outcome: str
    detail: str

    @property
    def tag(self) -> str:
        return f"{self.arg}/{self.label}"


def _resolve(key: str) -> tuple[Callable, Call]:
    made = VALID_CALLS[key]()
    if isinstance(made, Target):
        return made.func, made.call
    return instance(key), made


def _none_allowed(param: inspect.Parameter) -> bool:
    return param.default is None or "None" in str(param.annotation)


def _arguments(func: Callable, spec: Call) -> tuple[inspect.Signature, dict[str, Any]]:
    signature = inspect.signature(func)
    return signature, dict(signature.bind(*spec.args, **spec.kwargs).arguments)


def _with(signature, arguments, name, value, var_keyword) -> tuple[tuple, dict]:
    arguments = dict(arguments)
    if var_keyword is not None:
        arguments[var_keyword] = {**arguments[var_keyword], name: value}
    else:
        arguments[name] = value
    bound = inspect.BoundArguments(signature, arguments)
    return bound.args, bound.kwargs


def sweep_function(key: str) -> list[BadCall]:
    """Every bad call derived from the valid call of ``key``; the valid call must succeed."""
    func, spec = _resolve(key)
    signature, arguments = _arguments(func, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        func(*spec.args, **spec.kwargs)  # the table's call itself must be valid
    results = []
    for pname, param in signature.parameters.items():
        if param.kind is param.VAR_POSITIONAL or pname not in arguments:
            continue
        if param.kind is param.VAR_KEYWORD:
            targets = [(name, value, False, pname) for name, value in arguments[pname].items()]
        else:
            targets = [(pname, arguments[pname], _none_allowed(param), None)]
        for name, value, none_ok, var_keyword in targets:
            if name in spec.fixed or value is None:
                continue
            for label, bad in mutations_for(name, value, none_ok, name in spec.text):
                if f"{name}/{label}" in spec.valid:
                    continue
                func, spec = _resolve(key)  # fresh arguments: a call may change its inputs
                signature, arguments = _arguments(func, spec)
                args, kwargs = _with(signature, arguments, name, bad, var_keyword)
                outcome, detail = outcome_of(func, args, kwargs, name)
                results.append(BadCall(key, name, label, outcome, detail))
    return results


def run_sweep(keys: list[str] | None = None) -> list[BadCall]:
    """Sweep ``keys`` (default: all) from inside the scratch directory, so that a bad path
    that is accepted writes nothing into the working tree."""
    keys = sorted(VALID_CALLS) if keys is None else keys
    results: list[BadCall] = []
    here = os.getcwd()
    os.chdir(workdir())
    try:
        for key in keys:
            results += sweep_function(key)
    finally:
        os.chdir(here)
    return results


def unexpected(results: list[BadCall]) -> list[BadCall]:
    """Bad calls that do not end ``named``."""
    return [r for r in results if r.outcome != "named"]


def report(results: list[BadCall], seconds: float) -> str:
    counts = Counter(r.outcome for r in results)
    total = len(results)
    lines = [
        f"bad-input sweep: {len({r.key for r in results})} valid calls, {total} bad calls in "
        f"{seconds:.0f} s",
        f"  named the argument: {counts['named']} ({100 * counts['named'] / total:.1f} %)",
        f"  raised without naming it: {counts['unnamed']}",
        f"  silently accepted: {counts['silent']}",
        f"  hangs: {counts['hang']}",
    ]
    by_module: dict[str, Counter] = {}
    for r in results:
        by_module.setdefault(r.key.split(":")[0], Counter())[r.outcome] += 1
    for module, c in sorted(by_module.items()):
        n = sum(c.values())
        lines.append(f"    {module}: {c['named']}/{n} named, {c['unnamed']} unnamed, "
                     f"{c['silent']} silent, {c['hang']} hangs")
    return "\n".join(lines)


def failures_as_source(results: list[BadCall]) -> str:
    """The current failures, one line per bad call, grouped by function."""
    failing: dict[str, list[BadCall]] = {}
    for r in results:
        if r.outcome != "named":
            failing.setdefault(r.key, []).append(r)
    lines = []
    for key, calls in sorted(failing.items()):
        lines.append(f"    {key!r}: {{")
        for r in calls:
            detail = r.detail.replace("\n", " ")
            lines.append(f"        {r.tag!r},  # {r.outcome}: {detail}"[:99].rstrip())
        lines.append("    },")
    return "\n".join(lines)



# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def _nan_at(array: np.ndarray | torch.Tensor, index: tuple = (0,)):
    copy = array.clone() if isinstance(array, torch.Tensor) else np.array(array, dtype=float)
    copy[index] = math.nan
    return copy


def _listed_cases() -> list:
    """Each case the review listed: ``(id, thunk, exception, message pattern)``."""
    from atf_lite.alignment import kernel_alignment
    from atf_lite.cache import cache_key
    from atf_lite.data import preprocess
    from atf_lite.experiments.problems import (
        matrix_sensing_instance,
        random_instance,
        sparse_recovery_instance,
    )
    from atf_lite.experiments.sample_complexity_data import default_sizes
    from atf_lite.linalg import kernel_regression, relative_error
    from atf_lite.networks.classifier import evaluate_classifier, fit_classifier
    from atf_lite.networks.linear import train_linearized
    from atf_lite.networks.training import train
    from atf_lite.solvers.alternating import solve_structured
    from atf_lite.solvers.convex import min_nuclear_norm_interpolator
    from atf_lite.theory.penalties import omega_sq, spectral_penalty

    Xc, yc = classification()
    asymmetric = spd()
    asymmetric[0, 1] += 1.0
    return [
        ("spectral_penalty non-square Gamma",
         lambda: spectral_penalty(np.ones((2, 5)), omega_sq), ValueError,
         "Gamma must be a square matrix"),
        ("random_instance(2.5, 5)", lambda: random_instance(2.5, 5), ValueError, "n must be"),
        ("sparse_recovery_instance float k",
         lambda: sparse_recovery_instance(10, 2.0, 5, 1.0), ValueError, "k must be"),
        ("matrix_sensing_instance float rank",
         lambda: matrix_sensing_instance((3, 3), 1.5, 5, 1.0), ValueError, "rank must be"),
        ("random_instance target_norm=inf",
         lambda: random_instance(3, 6, np.inf), ValueError, "target_norm must be finite"),
        ("kernel_regression NaN in K_train",
         lambda: kernel_regression(_nan_at(spd()), np.ones(4)), ValueError, "K_train contains"),
        ("kernel_regression NaN in y",
         lambda: kernel_regression(spd(), _nan_at(np.ones(4))), ValueError, "y contains NaN"),
        ("kernel_regression NaN in K_test",
         lambda: kernel_regression(spd(), np.ones(4), _nan_at(spd())), ValueError,
         "K_test contains NaN"),
        ("kernel_regression asymmetric kernel",
         lambda: kernel_regression(asymmetric, np.ones(4)), ValueError,
         "K_train must be symmetric"),
        ("preprocess NaN", lambda: preprocess(_nan_at(np.ones((2, 3)) + np.eye(2, 3))),
         ValueError, "images contains NaN"),
        ("relative_error NaN estimate",
         lambda: relative_error(_nan_at(np.ones(3)), np.ones(3)), ValueError,
         "estimate contains NaN"),
        ("relative_error NaN truth",
         lambda: relative_error(np.ones(3), _nan_at(np.ones(3))), ValueError,
         "truth contains NaN"),
        ("train NaN target is not divergence",
         lambda: train(X(), _nan_at(y_t()), __import__("copy").deepcopy(net()), epochs=1,
                       lr=0.1), ValueError, "y contains NaN"),
        ("train NaN input",
         lambda: train(_nan_at(X(), (0, 0)), y_t(), __import__("copy").deepcopy(net()),
                       epochs=1, lr=0.1), ValueError, "X contains NaN"),
        ("train_linearized NaN target is not divergence",
         lambda: train_linearized(X(), _nan_at(y_t()), net(), steps=1, lr=0.1), ValueError,
         "y contains NaN"),
        ("fit_classifier NaN input",
         lambda: fit_classifier(_nan_at(Xc, (0, 0)), yc, Xc, yc, classifier()), ValueError,
         "X_train contains NaN"),
        ("evaluate_classifier on empty X",
         lambda: evaluate_classifier(Xc[:0], yc[:0], classifier()), ValueError,
         r"X must be \[n, d\]"),
        ("evaluate_classifier batch_size=-1",
         lambda: evaluate_classifier(Xc, yc, classifier(), batch_size=-1), ValueError,
         "batch_size must be at least 1"),
        ("fit_classifier batch_size=-1",
         lambda: fit_classifier(Xc, yc, Xc, yc, classifier(), batch_size=-1), ValueError,
         "batch_size must be at least 1"),
        ("kernel_alignment centered='no'",
         lambda: kernel_alignment(spd(), spd(), centered="no"), ValueError,
         "centered must be True or False"),
        ("solve_structured shape='23'",
         lambda: solve_structured(Phi(), y(), omega_sq, structure="kronecker", shape="23"),
         ValueError, "shape must be a pair"),
        ("min_nuclear_norm_interpolator shape='23'",
         lambda: min_nuclear_norm_interpolator(Phi(), y(), shape="23"), ValueError,
         "shape must be a pair"),
        ("matrix_sensing_instance shape='23'",
         lambda: matrix_sensing_instance("23", 1, 5, 1.0), ValueError, "shape must be a pair"),
        ("cache_key of a config holding an object",
         lambda: cache_key("demo", {"model": object()}), TypeError, "memory address"),
        ("default_sizes smallest=0 (looped forever)",
         lambda: default_sizes(1006, smallest=0), ValueError, "smallest must be at least 1"),
        ("default_sizes smallest=-1 (ate memory)",
         lambda: default_sizes(1006, smallest=-1), ValueError, "smallest must be at least 1"),
    ]


@pytest.mark.parametrize("case", range(len(_listed_cases())),
                         ids=[case[0] for case in _listed_cases()])
def test_listed_case_is_refused_by_name(case):
    _, thunk, error, pattern = _listed_cases()[case]
    with time_limit(TIMEOUT), pytest.raises(error, match=pattern):
        thunk()


def test_nan_size_in_samples_to_reach_is_refused():
    from atf_lite.experiments.sample_complexity_report import samples_to_reach

    with pytest.raises(ValueError, match="n"):
        samples_to_reach([20.0, math.nan, 80.0], [0.5, 0.4, 0.3], 0.35)  # returned 56.57


# Every function of the modules validated here that takes a seed, and a valid call of it.
def _seeded_calls() -> dict[str, Callable[[int], Any]]:
    from atf_lite.data import load_digits_multiclass, load_digits_pair
    from atf_lite.experiments.problems import (
        difficulty_targets,
        matrix_sensing_instance,
        random_instance,
        sparse_recovery_instance,
    )
    from atf_lite.experiments.sample_complexity_data import split_dataset, stratified_indices
    from atf_lite.networks.classifier import fit_classifier
    from atf_lite.networks.mlp import mlp
    from atf_lite.networks.training import train
    from atf_lite.solvers.alternating import solve_structured
    from atf_lite.solvers.joint import solve_joint
    from atf_lite.solvers.joint_structured import solve_joint_structured
    from atf_lite.theory.penalties import omega_sq

    Xc, yc = classification()
    return {
        "mlp": lambda seed: mlp(3, 4, 1, seed=seed),
        "random_instance": lambda seed: random_instance(3, 6, seed=seed),
        "difficulty_targets": lambda seed: difficulty_targets(
            _rng().standard_normal((10, 3)), np.where(np.arange(10) % 2, 1.0, -1.0),
            features=3, seed=seed),
        "sparse_recovery_instance": lambda seed: sparse_recovery_instance(8, 2, 4, 1.0,
                                                                          seed=seed),
        "matrix_sensing_instance": lambda seed: matrix_sensing_instance((3, 3), 1, 5, 1.0,
                                                                        seed=seed),
        "load_digits_pair": lambda seed: load_digits_pair(n=10, seed=seed),
        "load_digits_multiclass": lambda seed: load_digits_multiclass(n=10, seed=seed),
        "stratified_indices": lambda seed: stratified_indices(np.arange(12) % 3, 6, seed=seed),
        "split_dataset": lambda seed: split_dataset(*_split_data(), seed=seed),
        "solve_joint": lambda seed: solve_joint(Phi(), y(), omega_sq, restarts=1, seed=seed),
        "solve_joint_structured": lambda seed: solve_joint_structured(
            Phi(), y(), omega_sq, structure="diagonal", restarts=1, seed=seed),
        "solve_structured": lambda seed: solve_structured(
            Phi(), y(), omega_sq, structure="diagonal", restarts=1, seed=seed),
        "train": lambda seed: train(X(), y_t(), __import__("copy").deepcopy(net()), epochs=1,
                                    lr=0.01, batch_size=2, seed=seed),
        "fit_classifier": lambda seed: fit_classifier(Xc, yc, Xc, yc, classifier(),
                                                      max_epochs=1, seed=seed),
    }


@pytest.mark.parametrize("name", sorted(_seeded_calls()))
def test_any_integer_seed_is_accepted(name):
    # NumPy refuses negative seeds; torch maps them to 2**64 - 1 + seed.  Both now get the
    # mapped value, so -1 is valid everywhere and names one stream in both libraries.
    run = _seeded_calls()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in (-1, np.int64(3), 2**63):
            run(seed)
    for bad in (1.5, "1", True, None, 2**64):
        with pytest.raises(ValueError, match="seed"):
            run(bad)


def test_numpy_integer_batch_sizes_are_accepted():
    from atf_lite.networks.functional import rows_per_block
    from atf_lite.networks.tangent import tangent_features, tangent_kernel

    assert rows_per_block(10, 5, np.int64(4)) == 4
    features = tangent_features(X(), net(), batch_size=np.int64(2))
    torch.testing.assert_close(features, tangent_features(X(), net()))
    tangent_kernel(X(), net(), batch_size=np.int32(3))


def test_every_public_function_has_a_valid_call():
    public = public_callables()
    swept = {key.partition("#")[0] for key in VALID_CALLS}
    missing = public - swept - set(NOT_SWEPT)
    assert not missing, f"public callables without a valid call in VALID_CALLS: {sorted(missing)}"
    for key in swept:  # methods resolve through their class
        instance(key)
    assert not set(NOT_SWEPT) - public, "NOT_SWEPT names something that is not public"


def test_names_argument():
    assert names_argument("X must be [n, d]", "X")
    assert not names_argument("X_train must be [n, d]", "X")
    assert names_argument("a must be a digit class in 0..9, got 10", "a")
    assert not names_argument("b must be a digit class", "a")
    assert names_argument("params['0.weight'] has shape (2,)", "params")


def test_bad_input_sweep():
    start = time.perf_counter()
    results = run_sweep()
    text = report(results, time.perf_counter() - start)
    print(text)  # shown with -s or -rP; also in the failure message
    # Every bad call must name its argument: no unnamed errors, no silent acceptance, no hang.
    surprises = unexpected(results)
    assert not surprises, text + "\n\nnot named:\n" + "\n".join(
        f"{r.key} {r.tag}: {r.outcome}: {r.detail}" for r in surprises)


if __name__ == "__main__":
    only = sys.argv[1:] or None
    start = time.perf_counter()
    results = run_sweep([k for k in VALID_CALLS if only is None or any(o in k for o in only)])
    print(report(results, time.perf_counter() - start))
    print("\nThe bad calls that do not name their argument:")
    print(failures_as_source(results))
