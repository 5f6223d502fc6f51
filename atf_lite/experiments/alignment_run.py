"""Kernel alignment of trained networks: the experiment behind the paper's Figures 1 and 3.

The experiment (:func:`alignment_experiment`, configured by :class:`AlignmentSettings`):

1. two classes of digits or MNIST, each image centred and scaled to unit norm;
2. targets ``y`` = the best linear fit of the ``±1`` labels on the last hidden layer of an
   independent random ReLU network (:func:`random_feature_targets`);
3. one MLP initialisation (He, biases zero), trained twice by SGD with momentum and a cosine
   schedule on the mean squared error: once on ``y`` ("regression") and once on ``sign(y)``
   ("sign");
4. for each trained network: the initial kernel ``K0``, the final kernel ``K_final``, the
   path-averaged kernel ``K̄ = Φ̄ Φ̄ᵀ`` (for which ``ŷ − ŷ0 = Φ̄ (θ1 − θ0)`` holds exactly) and the
   output-change kernel ``K_ŷ = (ŷ − ŷ0)(ŷ − ŷ0)ᵀ``; their cosine similarities, the residual of
   the path identity, and the least-squares split ``K̄ ≈ a K0 + b K_ŷ + R``.

Results are cached on disk (:mod:`atf_lite.cache`).  Tables, figures and the JSON summary are in
:mod:`atf_lite.experiments.alignment_report`, the quadrature study of ``K̄`` in
:mod:`atf_lite.experiments.alignment_quadrature`; ``python -m atf_lite alignment`` runs one seed
(:mod:`atf_lite.experiments.alignment_cli`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._threads import limit_threads
from .._validation import (
    check_array,
    check_bool,
    check_instance,
    check_nonnegative_int,
    check_positive_int,
    check_real,
    check_sequence,
    to_numpy,
)
from ..alignment import decompose_kernel, kernel_alignment, label_kernel
from ..cache import cached
from ..data import DATASETS, load_digits_pair, load_mnist_pair
from ..networks.functional import model_output
from ..networks.mlp import mlp
from ..networks.path_averaging import PATH_RULES, path_averaged_kernel
from ..networks.tangent import tangent_kernel
from ..networks.training import TrainResult, train
from ..progress import progress_bar
from ._checks import check_pair
from .alignment_checks import StageProgress, TasksCoincideWarning, task_overlap

__all__ = [
    "TASKS",
    "AlignmentSettings",
    "random_feature_targets",
    "TaskResult",
    "AlignmentResult",
    "alignment_experiment",
    "alignment_experiment_seeds",
]

TASKS = ("regression", "sign")
# Defaults: the paper's network and optimiser.  200 epochs of minibatch SGD fit both tasks to a
# training MSE of about 1e-4 or below (targets have unit scale).  K̄ is integrated exactly
# (rule "exact", residual ~1e-15); with a quadrature rule, 512 Gauss–Legendre nodes bring the
# path identity's residual to about 5e-4 (it converges like 1/nodes, see chapter 6).
DEFAULT_EPOCHS = 200
DEFAULT_BATCH_SIZE = 32
DEFAULT_NODES = 512
DEFAULT_RULE = "exact"
DEFAULT_MNIST_N = 500
# The random network that defines the targets must be independent of the trained one.
TARGET_SEED_OFFSET = 10_000
# Fixed parts of the protocol, recorded with the settings.
SCHEDULE = "cosine"
MNIST_SPLIT = "test"


@dataclass(frozen=True)
class AlignmentSettings:
    """Everything that determines one run of the alignment experiment (the cache key).

    ``dataset``: ``"digits"`` (scikit-learn, no download) or ``"mnist"`` (the test split);
    ``pair``: the two classes (first → −1); ``n``: number of images drawn with ``seed``
    (``None``: all of the two classes).  The MLP has ``depth`` hidden ReLU layers of ``width``
    units; ``seed`` fixes its initialisation, the minibatch order, the data subset and (offset
    by 10 000) the random network of the targets.  Training: ``epochs`` of SGD (``lr``,
    ``momentum``, ``batch_size``; ``None`` for full batch) with a cosine schedule.  ``K̄`` is
    integrated by ``rule``: ``"exact"`` (the default; exact for these ReLU networks, ``nodes``
    unused) or a quadrature rule with ``nodes`` points.  The targets come from
    :func:`random_feature_targets` with ``ridge`` and a random network of
    ``depth`` hidden layers of ``target_width`` units (``None``: ``width``, as in the paper;
    resolved on construction).
    """

    dataset: str = "digits"
    pair: tuple[int, int] = (2, 3)
    n: int | None = None
    width: int = 256
    depth: int = 2
    seed: int = 0
    epochs: int = DEFAULT_EPOCHS
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int | None = DEFAULT_BATCH_SIZE
    nodes: int = DEFAULT_NODES
    rule: str = DEFAULT_RULE
    ridge: float = 1e-3
    target_width: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        check_pair(self.pair, "pair", minimum=0, maximum=9,
                   what="two digit classes (a, b) in 0..9")
        if self.n is not None:
            check_positive_int(self.n, "n")
        for name in ("width", "depth", "epochs", "nodes"):
            check_positive_int(getattr(self, name), name)
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        if self.target_width is not None:
            check_positive_int(self.target_width, "target_width")
        check_nonnegative_int(self.seed, "seed")
        check_real(self.lr, "lr", low=0, low_open=True)
        check_real(self.momentum, "momentum", low=0, high=1, high_open=True)
        check_real(self.ridge, "ridge", low=0, low_open=True)
        if self.rule not in PATH_RULES:
            raise ValueError(f"rule must be one of {PATH_RULES}, got {self.rule!r}")
        # Normalise: plain ints, a tuple pair, the target width resolved.
        fix = object.__setattr__
        fix(self, "pair", (int(self.pair[0]), int(self.pair[1])))
        for name in ("width", "depth", "seed", "epochs", "nodes"):
            fix(self, name, int(getattr(self, name)))
        for name in ("n", "batch_size"):
            value = getattr(self, name)
            fix(self, name, None if value is None else int(value))
        fix(self, "lr", float(self.lr))
        fix(self, "momentum", float(self.momentum))
        fix(self, "ridge", float(self.ridge))
        target_width = self.width if self.target_width is None else int(self.target_width)
        fix(self, "target_width", target_width)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (with the fixed schedule and MNIST split)."""
        out = dataclasses.asdict(self)
        out["pair"] = list(self.pair)
        out["schedule"] = SCHEDULE
        out["mnist_split"] = MNIST_SPLIT
        return out


def random_feature_targets(
    X: torch.Tensor,
    labels: torch.Tensor,
    *,
    width: int = 256,
    depth: int = 2,
    seed: int = 0,
    ridge: float = 1e-3,
) -> torch.Tensor:
    """Targets that random network features predict well: the paper's ``y`` of Figure 1.

    Draws an independent random ReLU network (:func:`atf_lite.networks.mlp.mlp` with ``depth``
    hidden layers of ``width`` units, He initialisation, seeded by ``seed``), takes its last
    hidden layer ``F`` (``[n, width]``) on ``X`` (``[n, d]``) and returns ``y = F w`` (float32
    ``[n]``) with ``w`` the ridge-regularised least-squares fit of ``labels`` (``[n]``, real;
    integer labels such as ``±1`` are accepted):
    ``w = argmin ‖F w − labels‖² + λ ‖w‖²``.  The penalty is relative to the scale of the
    features, ``λ = ridge · ‖F‖_F² / width`` (the mean eigenvalue of ``FᵀF``), so the default
    is close to the plain least-squares fit while staying well posed when some units are
    inactive on every input.
    """
    if not isinstance(X, torch.Tensor) or X.ndim != 2:
        raise ValueError(f"X must be a [n, d] tensor, got {getattr(X, 'shape', type(X))}")
    if X.is_complex():  # X.to(float32) below would drop the imaginary part without a word
        raise TypeError(f"X must be real, got a complex tensor ({X.dtype})")
    # Integer labels (±1 as ints) are as good as float ones: only their values enter the fit.
    labels = torch.from_numpy(check_array(labels, "labels", ndim=1, column_as_vector=False))
    if labels.shape != (X.shape[0],):
        raise ValueError(
            f"labels must have shape [{X.shape[0]}] to match X, got {tuple(labels.shape)}"
        )
    if not torch.isfinite(X).all() or not torch.isfinite(labels.double()).all():
        raise ValueError("X or labels contains NaN or infinite values")
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be a positive integer (hidden layers), got {depth!r}")
    ridge = check_real(ridge, "ridge", low=0, low_open=True)
    network = mlp(X.shape[1], width, depth, seed=seed)
    with torch.no_grad():
        features = network[:-1](X.to(torch.float32)).double()  # drop the output layer
    scale = float(features.square().sum()) / width
    if scale == 0:
        raise ValueError("the random network's last hidden layer is zero on every input of X")
    gram = features.T @ features + ridge * scale * torch.eye(width, dtype=torch.float64)
    weights = torch.linalg.solve(gram, features.T @ labels.double())
    return (features @ weights).to(torch.float32)


@dataclass(frozen=True)
class TaskResult:
    """One trained network (task ``"regression"`` on ``y`` or ``"sign"`` on ``sign(y)``).

    Arrays are float64 numpy; ``n`` training points.  ``target`` ``[n]``: training targets;
    ``params0``/``params1``: parameters before/after training; ``losses`` ``[epochs]``: training
    MSE after each epoch; ``output0``/``output1`` ``[n]``: ``ŷ0``/``ŷ``; ``K_final``, ``K_bar``
    ``[n, n]``: final and path-averaged tangent kernels; ``identity_residual``: relative residual
    of ``ŷ − ŷ0 = Φ̄ (θ1 − θ0)``.  Alignments are cosine similarities with
    ``K_ŷ = (ŷ − ŷ0)(ŷ − ŷ0)ᵀ``: of ``K_bar`` (``alignment``), of ``K0``
    (``alignment_initial``), of ``K_final`` (``alignment_final``), of ``K_bar − K0``
    (``alignment_change``), and of ``K_bar`` with both kernels centred (``alignment_centered``).
    ``tangent_norm`` is ``‖β̂‖ = (rᵀ K0⁺ r)^½`` with ``r = target − ŷ0``: the norm of the
    minimum-norm tangent-feature fit, Theorem 1's measure of difficulty.  ``decomposition``:
    ``(a, b, relative_residual)`` of ``K_bar ≈ a K0 + b K_ŷ``.  ``seconds``: wall-clock times.
    ``pieces`` (``rule="exact"`` only, else ``None``): the number of pieces of each training
    input's path on which the network is polynomial (``[n]``).
    """

    target: np.ndarray
    params0: dict[str, torch.Tensor]
    params1: dict[str, torch.Tensor]
    losses: np.ndarray
    output0: np.ndarray
    output1: np.ndarray
    K_final: np.ndarray
    K_bar: np.ndarray
    identity_residual: float
    alignment: float
    alignment_initial: float
    alignment_final: float
    alignment_change: float
    alignment_centered: float
    tangent_norm: float
    decomposition: tuple[float, float, float]
    seconds: dict[str, float] = field(default_factory=dict)
    pieces: np.ndarray | None = None

    @property
    def output_change(self) -> np.ndarray:
        """``ŷ − ŷ0`` (``[n]``)."""
        return self.output1 - self.output0

    @property
    def K_output(self) -> np.ndarray:
        """The output-change kernel ``K_ŷ = (ŷ − ŷ0)(ŷ − ŷ0)ᵀ`` (``[n, n]``)."""
        return label_kernel(self.output_change)

    @property
    def train_loss(self) -> float:
        """Training MSE after the last epoch."""
        return float(self.losses[-1])

    @classmethod
    def from_kernels(
        cls,
        target: torch.Tensor,
        run: TrainResult,
        output0: np.ndarray,
        output1: np.ndarray,
        K0: np.ndarray,
        K_final: np.ndarray,
        K_bar: np.ndarray,
        *,
        identity_residual: float,
        seconds: dict[str, float],
        pieces: np.ndarray | None = None,
    ) -> TaskResult:
        """Every alignment, the decomposition and ``‖β̂‖`` of one trained network, from its
        outputs ``[n]`` and kernels ``[n, n]`` (shared by the MLP and the CNN experiments)."""
        K_output = label_kernel(output1 - output0)
        decomposition = decompose_kernel(K_bar, K0, K_output)
        target64 = to_numpy(target)
        return cls(
            target=target64,
            params0={k: v.cpu() for k, v in run.params0.items()},
            params1={k: v.cpu() for k, v in run.params1.items()},
            losses=np.asarray(run.losses, dtype=np.float64),
            output0=output0,
            output1=output1,
            K_final=K_final,
            K_bar=K_bar,
            identity_residual=float(identity_residual),
            alignment=kernel_alignment(K_bar, K_output),
            alignment_initial=kernel_alignment(K0, K_output),
            alignment_final=kernel_alignment(K_final, K_output),
            alignment_change=kernel_alignment(K_bar - K0, K_output),
            alignment_centered=kernel_alignment(K_bar, K_output, centered=True),
            tangent_norm=_tangent_norm(K0, target64 - output0),
            decomposition=(decomposition.a, decomposition.b, decomposition.relative_residual),
            seconds=seconds,
            pieces=pieces,
        )


@dataclass(frozen=True)
class AlignmentResult:
    """The whole experiment for one seed.

    ``settings``: the :class:`AlignmentSettings`; ``X`` (float32 ``[n, d]``) and ``labels``
    (``±1``, ``[n]``): the data; ``y`` (``[n]``): random-feature targets; ``K0`` (``[n, n]``):
    the initial tangent kernel, shared by both tasks; ``tasks``: ``{"regression": …,
    "sign": …}`` :class:`TaskResult`.
    """

    settings: AlignmentSettings
    X: torch.Tensor
    labels: np.ndarray
    y: np.ndarray
    K0: np.ndarray
    tasks: dict[str, TaskResult]

    def model(self) -> nn.Sequential:
        """A fresh MLP of the experiment's architecture (load ``params0``/``params1`` into it)."""
        return mlp(self.X.shape[1], self.settings.width, self.settings.depth)

    @property
    def order(self) -> np.ndarray:
        """Indices sorting the points by ``y`` (the order of the heat maps)."""
        return np.argsort(self.y, kind="stable")


def _load(settings: AlignmentSettings, mnist_root: str | os.PathLike | None) -> tuple:
    a, b = settings.pair
    if settings.dataset == "digits":
        return load_digits_pair(a, b, n=settings.n, seed=settings.seed)
    return load_mnist_pair(
        a, b, n=settings.n, root=mnist_root, split=MNIST_SPLIT, seed=settings.seed
    )


def _tangent_norm(K0: np.ndarray, residual: np.ndarray) -> float:
    # Minimum-norm solution of K0 α = r, so a (numerically) singular K0 still gives rᵀ K0⁺ r.
    alpha = np.linalg.lstsq(K0, residual, rcond=None)[0]
    return float(np.sqrt(max(residual @ alpha, 0.0)))


def _run_task(
    X: torch.Tensor,
    target: torch.Tensor,
    base: nn.Module,
    K0: np.ndarray,
    settings: AlignmentSettings,
    task: str,
    progress: StageProgress,
) -> TaskResult:
    model = copy.deepcopy(base)
    start = time.perf_counter()
    with progress.stage(f"trained on the {task} task ({settings.epochs} epochs)"):
        run = train(
            X,
            target,
            model,
            epochs=settings.epochs,
            lr=settings.lr,
            momentum=settings.momentum,
            batch_size=settings.batch_size,
            schedule=SCHEDULE,
            seed=settings.seed,
            progress=progress.bars,
        )
    trained = time.perf_counter()
    with progress.stage(f"kernels of the {task} network (rule {settings.rule})"):
        output0 = to_numpy(model_output(X, model, run.params0))
        output1 = to_numpy(model_output(X, model, run.params1))
        K_final = to_numpy(tangent_kernel(X, model, run.params1))
        path = path_averaged_kernel(
            X, model, run.params0, run.params1, nodes=settings.nodes, rule=settings.rule
        )
        K_bar = to_numpy(path.K_bar)
    seconds = {"training": trained - start, "kernels": time.perf_counter() - trained}
    return TaskResult.from_kernels(target, run, output0, output1, K0, K_final, K_bar,
                                   identity_residual=path.residual, seconds=seconds,
                                   pieces=path.pieces)


def _experiment(
    settings: AlignmentSettings,
    mnist_root: str | os.PathLike | None,
    device: torch.device,
    progress: bool | None,
) -> AlignmentResult:
    a, b = settings.pair
    report = StageProgress(progress, f"alignment {settings.dataset} {a}-{b} seed {settings.seed}")
    with report.stage("data, targets and K0"):
        X, labels = _load(settings, mnist_root)
        y = random_feature_targets(
            X,
            labels,
            width=settings.target_width,
            depth=settings.depth,
            seed=TARGET_SEED_OFFSET + settings.seed,
            ridge=settings.ridge,
        )
        X_device = X.to(device)
        base = mlp(X.shape[1], settings.width, settings.depth, seed=settings.seed).to(device)
        K0 = to_numpy(tangent_kernel(X_device, base))
    targets = {"regression": y, "sign": torch.sign(y)}
    tasks = {
        name: _run_task(X_device, targets[name].to(device), base, K0, settings, name, report)
        for name in TASKS
    }
    return AlignmentResult(
        settings=settings, X=X, labels=to_numpy(labels), y=to_numpy(y), K0=K0, tasks=tasks
    )


def alignment_experiment(
    settings: AlignmentSettings,
    *,
    mnist_root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
    progress: bool | None = None,
    threads: int | None = 1,
) -> AlignmentResult:
    """Run (or load from the cache) the kernel-alignment experiment for one seed.

    ``settings``: an :class:`AlignmentSettings` (the cache key).  Options that do not change
    the result: ``mnist_root`` (default ``$ATF_LITE_MNIST_DIR``), ``device``, ``use_cache``,
    ``progress`` (``None`` follows ``$ATF_LITE_PROGRESS``; bars on a terminal or in a notebook,
    one line per finished stage when standard error is redirected) and ``threads``: torch CPU
    threads while computing (``None``: leave torch's setting).  The default, one, is the
    fastest choice here: minibatch steps and per-node gradients are too small to gain from
    intra-op threads, and synchronising threads slows them down many times on a busy machine.
    Warns (:class:`~atf_lite.experiments.alignment_checks.TasksCoincideWarning`) when the two
    tasks nearly coincide (:func:`~atf_lite.experiments.alignment_checks.task_overlap`).
    Returns an :class:`AlignmentResult`.
    """
    if not isinstance(settings, AlignmentSettings):
        raise TypeError(f"settings must be an AlignmentSettings, got {type(settings).__name__}")
    if threads is not None:
        check_positive_int(threads, "threads")
    if progress is not None:
        check_bool(progress, "progress")

    def compute() -> AlignmentResult:
        with limit_threads(threads):
            return _experiment(settings, mnist_root, torch.device(device), progress)

    result = cached("kernel-alignment", settings.as_dict(), compute, use_cache=use_cache)
    warning = task_overlap(result.y, result.labels, result.settings.target_width)["warning"]
    if warning is not None:
        warnings.warn(warning, TasksCoincideWarning, stacklevel=2)
    return result


def alignment_experiment_seeds(
    settings: AlignmentSettings, seeds: Iterable[int], **options: Any
) -> list[AlignmentResult]:
    """:func:`alignment_experiment` for ``settings`` with each of ``seeds`` in place of its
    seed (``options`` as in :func:`alignment_experiment`)."""
    check_instance(settings, "settings", AlignmentSettings)
    seeds = check_sequence(seeds, "seeds")
    for i, seed in enumerate(seeds):
        # The same rule as AlignmentSettings.seed, but the message names the list's entry.
        check_nonnegative_int(seed, f"seeds[{i}]")
    bars = StageProgress(options.get("progress"), "seeds").bars
    results = []
    for seed in progress_bar(seeds, desc="seeds", enabled=bars):
        with warnings.catch_warnings():
            # Report each seed's warning at the caller, not here.
            warnings.simplefilter("ignore", TasksCoincideWarning)
            result = alignment_experiment(dataclasses.replace(settings, seed=seed), **options)
        results.append(result)
        warning = task_overlap(result.y, result.labels, result.settings.target_width)["warning"]
        if warning is not None:
            warnings.warn(f"seed {seed}: {warning}", TasksCoincideWarning, stacklevel=2)
    return results
