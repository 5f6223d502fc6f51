"""How quadrature approximates the path-averaged features of a trained alignment network.

The exact ``Φ̄`` (``rule="exact"``, :mod:`atf_lite.networks.piecewise_path`) is the reference:

* :func:`quadrature_table`: the residual of the path identity per quadrature rule and node count;
* :func:`quadrature_convergence`: the same residuals, the distance of each quadrature ``Φ̄`` from
  the exact one, the exact rule's residual and the number of pieces of each input's path
  (:class:`QuadratureConvergence`; plotted by
  :func:`~atf_lite.experiments.alignment_report.plot_quadrature_convergence`).

Both are cached on disk (:mod:`atf_lite.cache`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from .._threads import limit_threads
from .._validation import check_positive_int
from ..cache import cached
from ..networks.kernels import quadrature_residuals
from ..networks.path_averaging import PATH_RULES, QUADRATURE_RULES, path_averaged_features
from .alignment_run import AlignmentResult

__all__ = ["quadrature_table", "QuadratureConvergence", "quadrature_convergence"]


def _check(result: AlignmentResult, task: str, nodes: Iterable[int], rules: Iterable[str],
           allowed: tuple[str, ...]) -> tuple[list[int], list[str]]:
    if not isinstance(result, AlignmentResult):
        raise TypeError(f"result must be an AlignmentResult, got {type(result).__name__}")
    if nodes is None or rules is None or isinstance(rules, str):
        raise TypeError("nodes and rules must be sequences (of node counts, of rule names), got "
                        f"nodes={nodes!r}, rules={rules!r}")
    if task not in result.tasks:
        raise ValueError(f"task must be one of {tuple(result.tasks)}, got {task!r}")
    nodes = [check_positive_int(count, "nodes") for count in nodes]
    rules = list(rules)
    if not nodes or not rules:
        raise ValueError("nodes and rules must not be empty")
    for rule in rules:
        if rule not in allowed:
            raise ValueError(f"rules must hold names from {allowed}, got {rule!r}")
    return nodes, rules


def quadrature_table(
    result: AlignmentResult,
    *,
    task: str = "sign",
    nodes: Iterable[int] = (8, 32, 128, 512),
    rules: Iterable[str] = ("riemann", "trapezoid", "gauss-legendre"),
    use_cache: bool = True,
    threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """Residual of the path identity for the network of ``task``, per rule (quadrature rules
    or ``"exact"``) and node count: ``{rule: residuals}`` (float64, one per entry of
    ``nodes``), cached on disk.

    See :func:`atf_lite.networks.kernels.quadrature_residuals`; ``threads`` as in
    :func:`~atf_lite.experiments.alignment_run.alignment_experiment`.
    """
    nodes, rules = _check(result, task, nodes, rules, PATH_RULES)
    if threads is not None:
        check_positive_int(threads, "threads")
    run = result.tasks[task]

    def compute() -> dict[str, np.ndarray]:
        with limit_threads(threads):
            return quadrature_residuals(
                result.X, result.model(), run.params0, run.params1, nodes=nodes, rules=rules
            )

    config = {**result.settings.as_dict(), "task": task, "quadrature_nodes": nodes,
              "rules": rules}
    return cached("quadrature-residuals", config, compute, use_cache=use_cache)


@dataclass(frozen=True)
class QuadratureConvergence:
    """Result of :func:`quadrature_convergence` for one trained network.

    ``nodes``: the node counts; ``residuals[rule]`` and ``feature_errors[rule]`` (float64, one
    per node count): the relative residual of ``ŷ − ŷ0 = Φ̄ (θ1 − θ0)`` and the relative
    Frobenius distance ``‖Φ̄_N − Φ̄‖ / ‖Φ̄‖`` from the exact features; ``exact_residual``: the
    exact rule's residual (float64 round-off); ``pieces`` (``[n]``): the number of pieces of each
    input's path.
    """

    nodes: tuple[int, ...]
    residuals: dict[str, np.ndarray]
    feature_errors: dict[str, np.ndarray]
    exact_residual: float
    pieces: np.ndarray


def quadrature_convergence(
    result: AlignmentResult,
    *,
    task: str = "sign",
    nodes: Iterable[int] = (8, 32, 128, 512),
    rules: Iterable[str] = QUADRATURE_RULES,
    use_cache: bool = True,
    threads: int | None = 1,
) -> QuadratureConvergence:
    """Quadrature against exact integration of ``Φ̄`` for the network of ``task``: residuals
    and distances from the exact features per rule and node count (a
    :class:`QuadratureConvergence`, cached on disk; ``threads`` as in
    :func:`~atf_lite.experiments.alignment_run.alignment_experiment`)."""
    nodes, rules = _check(result, task, nodes, rules, QUADRATURE_RULES)
    if threads is not None:
        check_positive_int(threads, "threads")
    run = result.tasks[task]
    model = result.model()

    def compute() -> QuadratureConvergence:
        with limit_threads(threads):
            exact = path_averaged_features(
                result.X, model, run.params0, run.params1, rule="exact"
            )
            scale = torch.linalg.matrix_norm(exact.Phi_bar)
            residuals, errors = {}, {}
            for rule in rules:
                residuals[rule], errors[rule] = np.empty(len(nodes)), np.empty(len(nodes))
                for j, count in enumerate(nodes):
                    path = path_averaged_features(
                        result.X, model, run.params0, run.params1, nodes=count, rule=rule
                    )
                    residuals[rule][j] = path.residual
                    distance = torch.linalg.matrix_norm(path.Phi_bar.double() - exact.Phi_bar)
                    errors[rule][j] = float(distance / scale)
                    del path
        return QuadratureConvergence(
            nodes=tuple(nodes),
            residuals=residuals,
            feature_errors=errors,
            exact_residual=exact.residual,
            pieces=exact.pieces,
        )

    config = {**result.settings.as_dict(), "task": task, "quadrature_nodes": nodes,
              "rules": rules}
    return cached("quadrature-convergence", config, compute, use_cache=use_cache)
