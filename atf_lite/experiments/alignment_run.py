"""Kernel alignment of trained networks: the paper's Figures 1 and 3.

The experiment (:func:`kernel_alignment`):

1. two classes of digits or MNIST, each image centred and scaled to unit norm;
2. targets ``y`` = the best linear fit of the ``±1`` labels on the last hidden layer of an
   independent random ReLU network (:func:`atf_lite.data.random_feature_targets`);
3. one MLP initialisation (He, biases zero), trained twice by SGD with momentum and a cosine
   schedule on the mean squared error: once on ``y`` ("regression") and once on ``sign(y)``
   ("sign");
4. for each trained network: the initial kernel ``K0``, the final kernel ``K_final``, the
   path-averaged kernel ``K̄ = Φ̄ Φ̄ᵀ`` (for which ``ŷ − ŷ0 = Φ̄ (θ1 − θ0)`` holds exactly) and the
   output-change kernel ``K_ŷ = (ŷ − ŷ0)(ŷ − ŷ0)ᵀ``; their cosine similarities, the residual of
   the path identity, and the least-squares split ``K̄ ≈ a K0 + b K_ŷ + R``.

Results are cached on disk (:mod:`atf_lite.cache`).  ``python -m atf_lite alignment`` runs one
seed and writes both figures (PNG and PDF) and a JSON summary.
"""

from __future__ import annotations

import contextlib
import copy
import json
import pathlib
import shlex
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..alignment import decompose_kernel, label_kernel
from ..alignment import kernel_alignment as cosine_alignment
from ..cache import cached
from ..data import load_digits_pair, load_mnist_pair, random_feature_targets
from ..models import mlp, train
from ..network_kernels import quadrature_residuals
from ..progress import progress_bar
from ..tangent import model_output, path_averaged_features, quadrature_rule, tangent_kernel

__all__ = [
    "CLI_HELP",
    "TASKS",
    "TaskResult",
    "AlignmentResult",
    "kernel_alignment",
    "kernel_alignment_seeds",
    "quadrature_table",
    "format_seed_table",
    "diagonal_quarters",
    "plot_kernels",
    "plot_difficulty",
    "summary",
    "write_outputs",
    "add_arguments",
    "run_cli",
]

CLI_HELP = "Kernel alignment of trained MLPs on two digit classes (the paper's Figures 1 and 3)."

TASKS = ("regression", "sign")
DATASETS = ("digits", "mnist")
# Defaults: the paper's network and optimiser.  200 epochs of minibatch SGD fit both tasks to a
# training MSE of about 1e-4 or below (targets have unit scale); 512 Gauss–Legendre nodes bring
# the path identity's residual to about 5e-4 (it converges like 1/nodes, see chapter 5).
DEFAULT_EPOCHS = 200
DEFAULT_BATCH_SIZE = 32
DEFAULT_NODES = 512
DEFAULT_MNIST_N = 500
# The random network that defines the targets must be independent of the trained one.
TARGET_SEED_OFFSET = 10_000


@dataclass
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


@dataclass
class AlignmentResult:
    """The whole experiment for one seed.

    ``config``: the settings (JSON-serialisable); ``X`` (float32 ``[n, d]``) and ``labels``
    (``±1``, ``[n]``): the data; ``y`` (``[n]``): random-feature targets; ``K0`` (``[n, n]``):
    the initial tangent kernel, shared by both tasks; ``tasks``: ``{"regression": …,
    "sign": …}`` :class:`TaskResult`.
    """

    config: dict
    X: torch.Tensor
    labels: np.ndarray
    y: np.ndarray
    K0: np.ndarray
    tasks: dict[str, TaskResult]

    def model(self) -> nn.Sequential:
        """A fresh MLP of the experiment's architecture (load ``params0``/``params1`` into it)."""
        return mlp(self.X.shape[1], self.config["width"], self.config["depth"])

    @property
    def order(self) -> np.ndarray:
        """Indices sorting the points by ``y`` (the order of the heat maps)."""
        return np.argsort(self.y, kind="stable")


def _positive_int(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _config(
    dataset,
    pair,
    n,
    width,
    depth,
    seed,
    epochs,
    lr,
    momentum,
    batch_size,
    nodes,
    rule,
    ridge,
    target_width,
) -> dict:
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if len(pair) != 2:
        raise ValueError(f"pair must be two digit classes (a, b), got {pair!r}")
    if n is not None:
        _positive_int(n, "n")
    for value, name in ((width, "width"), (depth, "depth"), (epochs, "epochs"), (nodes, "nodes")):
        _positive_int(value, name)
    if batch_size is not None:
        _positive_int(batch_size, "batch_size")
    target_width = width if target_width is None else _positive_int(target_width, "target_width")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    quadrature_rule(nodes, rule)  # validates the rule name
    return {
        "dataset": dataset,
        "pair": [int(pair[0]), int(pair[1])],
        "n": None if n is None else int(n),
        "width": int(width),
        "depth": int(depth),
        "seed": int(seed),
        "epochs": int(epochs),
        "lr": float(lr),
        "momentum": float(momentum),
        "batch_size": None if batch_size is None else int(batch_size),
        "schedule": "cosine",
        "nodes": int(nodes),
        "rule": rule,
        "ridge": float(ridge),
        "target_width": int(target_width),
        "mnist_split": "test",
    }


def _load(config: dict, mnist_root):
    a, b = config["pair"]
    if config["dataset"] == "digits":
        return load_digits_pair(a, b, n=config["n"], seed=config["seed"])
    return load_mnist_pair(
        a, b, n=config["n"], root=mnist_root, split=config["mnist_split"], seed=config["seed"]
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float64).cpu().numpy()


def _tangent_norm(K0: np.ndarray, residual: np.ndarray) -> float:
    # Minimum-norm solution of K0 α = r, so a (numerically) singular K0 still gives rᵀ K0⁺ r.
    alpha = np.linalg.lstsq(K0, residual, rcond=None)[0]
    return float(np.sqrt(max(residual @ alpha, 0.0)))


@contextlib.contextmanager
def _torch_threads(count: int | None):
    """Run torch on ``count`` CPU threads inside the block (``None``: unchanged), then restore."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_task(base, X, target, K0, config, device, progress) -> TaskResult:
    model = copy.deepcopy(base)
    start = time.perf_counter()
    run = train(
        model,
        X,
        target.to(device),
        config["epochs"],
        config["lr"],
        momentum=config["momentum"],
        batch_size=config["batch_size"],
        schedule=config["schedule"],
        seed=config["seed"],
        progress=progress,
    )
    trained = time.perf_counter()
    output0 = _numpy(model_output(model, X, run.params0))
    output1 = _numpy(model_output(model, X, run.params1))
    K_final = _numpy(tangent_kernel(model, X, params=run.params1))
    Phi_bar, residual = path_averaged_features(
        model, run.params0, run.params1, X, nodes=config["nodes"], rule=config["rule"]
    )
    K_bar = _numpy(Phi_bar @ Phi_bar.T)
    del Phi_bar
    K_output = label_kernel(output1 - output0)
    decomposition = decompose_kernel(K_bar, K0, K_output)
    target64 = _numpy(target)
    return TaskResult(
        target=target64,
        params0={k: v.cpu() for k, v in run.params0.items()},
        params1={k: v.cpu() for k, v in run.params1.items()},
        losses=np.asarray(run.losses, dtype=np.float64),
        output0=output0,
        output1=output1,
        K_final=K_final,
        K_bar=K_bar,
        identity_residual=float(residual),
        alignment=cosine_alignment(K_bar, K_output),
        alignment_initial=cosine_alignment(K0, K_output),
        alignment_final=cosine_alignment(K_final, K_output),
        alignment_change=cosine_alignment(K_bar - K0, K_output),
        alignment_centered=cosine_alignment(K_bar, K_output, centered=True),
        tangent_norm=_tangent_norm(K0, target64 - output0),
        decomposition=(decomposition.a, decomposition.b, decomposition.relative_residual),
        seconds={"training": trained - start, "kernels": time.perf_counter() - trained},
    )


def _compute(config: dict, mnist_root, device, progress, threads) -> AlignmentResult:
    with _torch_threads(threads):
        return _experiment(config, mnist_root, device, progress)


def _experiment(config: dict, mnist_root, device, progress) -> AlignmentResult:
    X, labels = _load(config, mnist_root)
    y = random_feature_targets(
        X,
        labels,
        width=config["target_width"],
        depth=config["depth"],
        seed=TARGET_SEED_OFFSET + config["seed"],
        ridge=config["ridge"],
    )
    X_device = X.to(device)
    base = mlp(X.shape[1], config["width"], config["depth"], seed=config["seed"]).to(device)
    K0 = _numpy(tangent_kernel(base, X_device))
    targets = {"regression": y, "sign": torch.sign(y)}
    tasks = {
        name: _run_task(base, X_device, targets[name], K0, config, device, progress)
        for name in TASKS
    }
    return AlignmentResult(
        config=config, X=X, labels=_numpy(labels), y=_numpy(y), K0=K0, tasks=tasks
    )


def kernel_alignment(
    dataset: str = "digits",
    pair: tuple[int, int] = (2, 3),
    n: int | None = None,
    width: int = 256,
    depth: int = 2,
    seed: int = 0,
    *,
    epochs: int = DEFAULT_EPOCHS,
    lr: float = 0.1,
    momentum: float = 0.9,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    nodes: int = DEFAULT_NODES,
    rule: str = "gauss-legendre",
    ridge: float = 1e-3,
    target_width: int | None = None,
    mnist_root=None,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
    progress: bool | None = None,
    threads: int | None = 1,
) -> AlignmentResult:
    """Run (or load from the cache) the kernel-alignment experiment for one seed.

    ``dataset``: ``"digits"`` (scikit-learn, no download) or ``"mnist"`` (the test split, read
    from ``mnist_root`` or ``$ATF_LITE_MNIST_DIR``); ``pair``: the two classes (first → −1);
    ``n``: number of images drawn with ``seed`` (``None``: all of the two classes).  The MLP has
    ``depth`` hidden ReLU layers of ``width`` units; ``seed`` fixes its initialisation, the
    minibatch order, the data subset and (offset by 10 000) the random network of the targets.
    Training: ``epochs`` of SGD (``lr``, ``momentum``, ``batch_size``; ``None`` for full batch)
    with a cosine schedule.  ``K̄`` uses ``nodes`` points of quadrature ``rule``.  The targets
    come from :func:`atf_lite.data.random_feature_targets` with ``ridge`` and a random network of
    ``depth`` hidden layers of ``target_width`` units (``None``: ``width``, as in the paper).
    ``threads``: torch CPU threads
    while computing (``None``: leave torch's setting).  The default, one, is the fastest choice
    here: minibatch steps and per-node gradients are too small to gain from intra-op threads,
    and synchronising threads slows them down many times on a busy machine.  Returns an
    :class:`AlignmentResult`.
    """
    config = _config(
        dataset,
        pair,
        n,
        width,
        depth,
        seed,
        epochs,
        lr,
        momentum,
        batch_size,
        nodes,
        rule,
        ridge,
        target_width,
    )
    if threads is not None:
        _positive_int(threads, "threads")
    return cached(
        "kernel-alignment",
        config,
        lambda: _compute(config, mnist_root, torch.device(device), progress, threads),
        use_cache=use_cache,
    )


def kernel_alignment_seeds(seeds: Iterable[int], **kwargs) -> list[AlignmentResult]:
    """:func:`kernel_alignment` for each of ``seeds`` (other arguments as keywords)."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    return [
        kernel_alignment(seed=seed, **kwargs)
        for seed in progress_bar(seeds, desc="seeds", enabled=kwargs.get("progress"))
    ]


def quadrature_table(
    result: AlignmentResult,
    task: str = "sign",
    nodes: Iterable[int] = (8, 32, 128, 512),
    rules: Iterable[str] = ("riemann", "trapezoid", "gauss-legendre"),
    *,
    use_cache: bool = True,
    threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """Residual of the path identity for the network of ``task``, per quadrature rule and node
    count: ``{rule: residuals}`` (float64, one per entry of ``nodes``), cached on disk.

    See :func:`atf_lite.network_kernels.quadrature_residuals`; ``threads`` as in
    :func:`kernel_alignment`.
    """
    if task not in result.tasks:
        raise ValueError(f"task must be one of {tuple(result.tasks)}, got {task!r}")
    nodes = [_positive_int(count, "nodes") for count in nodes]
    rules = list(rules)
    for rule in rules:
        quadrature_rule(2, rule)  # validates the rule name
    run = result.tasks[task]

    def compute():
        with _torch_threads(threads):
            return quadrature_residuals(
                result.model(), run.params0, run.params1, result.X, nodes, rules
            )

    config = {**result.config, "task": task, "quadrature_nodes": nodes, "rules": rules}
    return cached("quadrature-residuals", config, compute, use_cache=use_cache)


# Print formats of the metrics in seed tables: small positive quantities in scientific notation.
_METRIC_FORMATS = {"identity_residual": ".1e", "train_loss": ".1e", "tangent_norm": ".2f"}


def format_seed_table(
    results: list[AlignmentResult],
    metrics: Iterable[str] = ("alignment", "alignment_change", "identity_residual"),
) -> str:
    """A plain-text table: one row per metric and task, the value for each seed, mean ± sd.

    Metrics are :class:`TaskResult` attributes; ``sd`` is the sample standard deviation.
    Alignments are printed with three decimals, losses and residuals with two significant
    digits.
    """
    if not results:
        raise ValueError("results must not be empty")
    seeds = [result.config["seed"] for result in results]
    header = f"{'metric':<20}{'task':<12}" + "".join(f"{'seed ' + str(s):>10}" for s in seeds)
    lines = [header + f"{'mean ± sd':>22}"]
    for metric in metrics:
        fmt = _METRIC_FORMATS.get(metric, ".3f")
        for task in TASKS:
            values = np.array([getattr(result.tasks[task], metric) for result in results])
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells = "".join(f"{value:>10{fmt}}" for value in values)
            summary_cell = f"{values.mean():{fmt}} ± {spread:{fmt}}"
            lines.append(f"{metric:<20}{task:<12}{cells}{summary_cell:>22}")
    return "\n".join(lines)


def diagonal_quarters(result: AlignmentResult, kernel: str = "K_bar", task: str = "sign"):
    """Mean of a kernel's diagonal over the quarter of points with the smallest ``|y|`` and over
    the quarter with the largest ``|y|``: ``(mean_small, mean_large)``.

    ``kernel``: ``"K_bar"``, ``"K_final"`` (of ``task``) or ``"K0"``.
    """
    if task not in result.tasks:
        raise ValueError(f"task must be one of {tuple(result.tasks)}, got {task!r}")
    if kernel == "K0":
        K = result.K0
    elif kernel in ("K_bar", "K_final"):
        K = getattr(result.tasks[task], kernel)
    else:
        raise ValueError(f"kernel must be 'K_bar', 'K_final' or 'K0', got {kernel!r}")
    order = np.argsort(np.abs(result.y), kind="stable")
    quarter = max(1, len(order) // 4)
    diagonal = np.diag(K)
    return float(diagonal[order[:quarter]].mean()), float(diagonal[order[-quarter:]].mean())


_TASK_TITLES = {"regression": "trained on $y$", "sign": r"trained on sign$(y)$"}


def plot_kernels(result: AlignmentResult):
    """Figure 1: heat maps of ``K0``, ``K̄`` and ``K_ŷ`` per task, points ordered by ``y``.

    Titles give the cosine similarity of each kernel with ``K_ŷ``.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    from ..plotting import heatmap

    fig, axes = plt.subplots(len(TASKS), 3, figsize=(8.4, 5.8), constrained_layout=True)
    order = result.order
    for row, task in zip(axes, TASKS):
        res = result.tasks[task]
        heatmap(row[0], result.K0, order=order, title=f"$K_0$: cos = {res.alignment_initial:.3f}")
        heatmap(row[1], res.K_bar, order=order, title=rf"$\bar K$: cos = {res.alignment:.3f}")
        heatmap(
            row[2],
            res.K_output,
            order=order,
            symmetric=True,
            title=r"$K_{\hat y} = (\hat y - \hat y_0)(\hat y - \hat y_0)^\top$",
        )
        row[0].set_ylabel(_TASK_TITLES[task] + "\n(points ordered by $y$)")
    return fig


def plot_difficulty(result: AlignmentResult, task: str = "sign"):
    """Figure 3 for ``task``: left, ``ŷ`` against ``y`` with the curves ``sign(y)`` and ``y``;
    right, the residual ``sign(y) − y`` and the diagonal ``K̄(x_i, x_i)`` against ``y``.

    Returns the figure.
    """
    import matplotlib.pyplot as plt

    from ..plotting import COLORS

    if task not in result.tasks:
        raise ValueError(f"task must be one of {tuple(result.tasks)}, got {task!r}")
    res = result.tasks[task]
    y = result.y
    grid = np.sort(y)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.6), constrained_layout=True)
    left.plot(y, res.output1, "o", ms=3, alpha=0.6, color=COLORS["blue"], label=r"$\hat y_i$")
    left.plot(grid, np.sign(grid), "-", color=COLORS["green"], label=r"sign$(y)$")
    left.plot(grid, grid, ":", color=COLORS["black"], label="$y$")
    left.set_xlabel("$y_i$")
    left.set_ylabel("network output")
    left.set_title(f"network {_TASK_TITLES[task]}")
    left.legend(loc="upper left")
    right.plot(grid, np.sign(grid) - grid, "--", color=COLORS["red"], label=r"sign$(y) - y$")
    right.set_xlabel("$y_i$")
    right.set_ylabel("residual sign$(y) - y$")
    twin = right.twinx()
    twin.plot(y, np.diag(res.K_bar), "x", ms=4, color=COLORS["orange"], label=r"$\bar K(x_i, x_i)$")
    twin.set_ylabel(r"$\bar K(x_i, x_i)$")
    twin.grid(False)
    handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    right.legend(handles, [h.get_label() for h in handles], loc="upper right")
    right.set_title("what the network must learn, and where its kernel grows")
    return fig


def summary(result: AlignmentResult) -> dict:
    """JSON-serialisable summary: config, per-task alignments, residuals, losses and times."""
    tasks = {}
    for task, res in result.tasks.items():
        a, b, relative = res.decomposition
        small, large = diagonal_quarters(result, "K_bar", task)
        tasks[task] = {
            "alignment": res.alignment,
            "alignment_change": res.alignment_change,
            "alignment_initial": res.alignment_initial,
            "alignment_final": res.alignment_final,
            "alignment_centered": res.alignment_centered,
            "identity_residual": res.identity_residual,
            "train_loss": res.train_loss,
            "tangent_norm": res.tangent_norm,
            "decomposition": {"a": a, "b": b, "relative_residual": relative},
            "diagonal_smallest_abs_y_quarter": small,
            "diagonal_largest_abs_y_quarter": large,
            "seconds": res.seconds,
        }
    k0_small, k0_large = diagonal_quarters(result, "K0")
    return {
        "config": result.config,
        "n": int(result.X.shape[0]),
        "d": int(result.X.shape[1]),
        "targets": {
            "fraction_abs_y_below_half": float(np.mean(np.abs(result.y) < 0.5)),
            "fraction_sign_y_equals_label": float(np.mean(np.sign(result.y) == result.labels)),
        },
        "sign_aligns_more": bool(
            result.tasks["sign"].alignment > result.tasks["regression"].alignment
        ),
        "K0_diagonal_quarters": {"smallest_abs_y": k0_small, "largest_abs_y": k0_large},
        "tasks": tasks,
    }


def write_outputs(
    result: AlignmentResult, out_dir, command: str | None = None
) -> list[pathlib.Path]:
    """Write ``kernels.{png,pdf}`` (Figure 1), ``difficulty.{png,pdf}`` (Figure 3, sign task)
    and ``summary.json`` into ``out_dir`` (created if needed); return the paths written."""
    import matplotlib.pyplot as plt

    from ..plotting import use_style

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    use_style()
    written = []
    figures = {"kernels": plot_kernels(result), "difficulty": plot_difficulty(result)}
    for stem, figure in figures.items():
        for suffix in ("png", "pdf"):
            path = out / f"{stem}.{suffix}"
            figure.savefig(path)
            written.append(path)
        plt.close(figure)
    payload = summary(result)
    if command is not None:
        payload = {"command": command, **payload}
    path = out / "summary.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    written.append(path)
    return written


def add_arguments(parser) -> None:
    """Options of ``python -m atf_lite alignment``."""
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: scikit-learn's 8x8 digits; mnist: the MNIST test split",
    )
    parser.add_argument(
        "--mnist-root",
        default=None,
        metavar="DIR",
        help="directory holding the MNIST IDX files (default: $ATF_LITE_MNIST_DIR)",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        type=int,
        default=(2, 3),
        metavar=("A", "B"),
        help="the two digit classes; A is labelled -1 and B +1 (default: 2 3)",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"number of images (default: all for digits, {DEFAULT_MNIST_N} for mnist)",
    )
    parser.add_argument("--width", type=int, default=256, help="hidden width (default: 256)")
    parser.add_argument(
        "--target-width",
        type=int,
        default=None,
        help="width of the random network that defines the targets y (default: --width)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"training epochs (default: {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=DEFAULT_NODES,
        help=f"quadrature nodes for the path-averaged kernel (default: {DEFAULT_NODES})",
    )
    parser.add_argument(
        "--rule",
        choices=("gauss-legendre", "trapezoid", "riemann"),
        default="gauss-legendre",
        help="quadrature rule (default: gauss-legendre)",
    )
    parser.add_argument(
        "--out",
        default="alignment-results",
        metavar="DIR",
        help="output directory (default: ./alignment-results)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="recompute even when a cached result exists"
    )


def _command_line(args) -> str:
    parts = ["python", "-m", "atf_lite", "alignment", "--dataset", args.dataset]
    if args.mnist_root is not None:
        parts += ["--mnist-root", str(args.mnist_root)]
    parts += ["--pair", str(args.pair[0]), str(args.pair[1])]
    if args.n is not None:
        parts += ["--n", str(args.n)]
    parts += ["--width", str(args.width), "--seed", str(args.seed)]
    if args.target_width is not None:
        parts += ["--target-width", str(args.target_width)]
    if args.epochs != DEFAULT_EPOCHS:
        parts += ["--epochs", str(args.epochs)]
    if args.nodes != DEFAULT_NODES:
        parts += ["--nodes", str(args.nodes)]
    if args.rule != "gauss-legendre":
        parts += ["--rule", args.rule]
    parts += ["--out", str(args.out)]
    return shlex.join(parts)


def run_cli(args) -> int:
    """Run one seed of the experiment, write figures and ``summary.json``, print a summary."""
    n = args.n if args.n is not None else (DEFAULT_MNIST_N if args.dataset == "mnist" else None)
    start = time.perf_counter()
    try:
        result = kernel_alignment(
            args.dataset,
            tuple(args.pair),
            n,
            args.width,
            seed=args.seed,
            epochs=args.epochs,
            nodes=args.nodes,
            rule=args.rule,
            target_width=args.target_width,
            mnist_root=args.mnist_root,
            use_cache=not args.no_cache,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_outputs(result, args.out, _command_line(args))
    elapsed = time.perf_counter() - start
    print(
        f"{args.dataset} {args.pair[0]} vs {args.pair[1]}: n = {result.X.shape[0]}, "
        f"width {args.width}, seed {args.seed} ({elapsed:.0f} s)"
    )
    for task in TASKS:
        res = result.tasks[task]
        print(
            f"  {task:<10} alignment {res.alignment:.3f}  alignment_change "
            f"{res.alignment_change:.3f}  identity residual {res.identity_residual:.1e}  "
            f"train loss {res.train_loss:.1e}"
        )
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
