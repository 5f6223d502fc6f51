"""Argument checks of the stored sample-complexity study's tables and figures (package-private).

They serve :mod:`atf_lite.experiments.sample_complexity_study`: a study (a mapping from
``(dataset, recipe, protocol)`` to a stored result), one stored result, the rows of its tables
and a matplotlib ``Axes``.  Like :mod:`atf_lite._validation`, each raises with a message naming
the argument and the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._validation import (
    check_array,
    check_instance,
    check_mapping,
    check_option,
    check_positive_int,
    check_sequence,
    describe,
)
from ..networks.feature_models import MODEL_KINDS
from .sample_complexity_run import SampleComplexityResult

__all__ = ["check_axes", "check_result", "check_study", "check_rows", "check_ratio_rows",
           "check_cap_rows", "check_mean_curves", "check_simulated", "check_spectra"]

_RESULT = "a SampleComplexityResult"


def check_axes(ax: Any, name: str = "ax") -> Any:
    """``ax`` if it is a ``matplotlib.axes.Axes``."""
    from matplotlib.axes import Axes

    return check_instance(ax, name, Axes, "a matplotlib Axes")


def check_result(result: Any, name: str, keys: Iterable[str] = ()) -> SampleComplexityResult:
    """``result`` if it is a :class:`SampleComplexityResult` whose records are dicts holding
    ``keys``."""
    check_instance(result, name, SampleComplexityResult, _RESULT)
    keys = tuple(keys)
    records = result.results
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
        raise TypeError(f"{name}.results must be a list of run records, got {describe(records)}")
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"{name}.results[{i}] must be a dict, got {describe(record)}")
        missing = [key for key in keys if key not in record]
        if missing:
            raise ValueError(f"{name}.results[{i}] lacks the keys {missing}")
    return result


def check_study(
    study: Any, combinations: tuple[tuple[str, str, str], ...], name: str = "study",
    keys: Iterable[str] = (),
) -> dict:
    """``study`` as a dict: a non-empty mapping from combinations (``(dataset, recipe,
    protocol)`` of ``combinations``) to :class:`SampleComplexityResult` whose records hold
    ``keys``."""
    study = check_mapping(study, name, allow_empty=False)
    keys = tuple(keys)
    for key, result in study.items():
        if key not in combinations:
            raise ValueError(f"{name} must be keyed by (dataset, recipe, protocol) of "
                             f"STUDY_COMBINATIONS, got the key {describe(key)}")
        check_result(result, f"{name}[{key!r}]", keys)
    return study


def check_rows(
    rows: Any, name: str, keys: Iterable[str], combinations: tuple[tuple[str, str, str], ...]
) -> tuple[Mapping[str, Any], ...]:
    """``rows`` as a non-empty tuple of dicts, each holding ``keys`` and naming a combination
    of ``combinations`` by its ``dataset``, ``recipe`` and ``protocol``."""
    rows = check_sequence(rows, name)
    keys = ("dataset", "recipe", "protocol", *keys)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"{name}[{i}] must be a dict, got {describe(row)}")
        missing = [key for key in keys if key not in row]
        if missing:
            raise ValueError(f"{name}[{i}] lacks the keys {missing}")
        combination = (row["dataset"], row["recipe"], row["protocol"])
        if combination not in combinations:
            raise ValueError(f"{name}[{i}] names no combination of STUDY_COMBINATIONS: "
                             f"{describe(combination)}")
    return rows


def check_ratio_rows(
    rows: Any, name: str, combinations: tuple[tuple[str, str, str], ...]
) -> tuple[Mapping[str, Any], ...]:
    """``rows`` of ``study_ratios``: :func:`check_rows` with 1-D ``levels`` (finite) and
    ``ratio``, ``low``, ``high`` (NaN allowed) of one entry per level."""
    rows = check_rows(rows, name, ("levels", "ratio", "low", "high"), combinations)
    for i, row in enumerate(rows):
        levels = check_array(row["levels"], f"{name}[{i}]['levels']", ndim=1,
                             allow_empty=True, column_as_vector=False)
        for key in ("ratio", "low", "high"):
            values = check_array(row[key], f"{name}[{i}][{key!r}]", ndim=1, finite=False,
                                 allow_empty=True, column_as_vector=False)
            if values.shape != levels.shape:
                raise ValueError(f"{name}[{i}][{key!r}] must hold one entry per level "
                                 f"({len(levels)}), got shape {values.shape}")
    return rows


def check_cap_rows(
    rows: Any, name: str, combinations: tuple[tuple[str, str, str], ...]
) -> tuple[Mapping[str, Any], ...]:
    """``rows`` of ``epoch_cap_table``: :func:`check_rows` with a ``model`` of ``MODEL_KINDS``
    and ``cap``, ``longest``, ``at_cap``."""
    rows = check_rows(rows, name, ("model", "cap", "longest", "at_cap"), combinations)
    for i, row in enumerate(rows):
        check_option(row["model"], f"{name}[{i}]['model']", MODEL_KINDS)
    return rows


def check_mean_curves(
    summary: Mapping[str, Any], name: str, models: tuple, models_name: str
) -> dict[str, np.ndarray]:
    """The ``"mean"`` curve (finite, 1-D, non-empty) of each of ``models`` (strings) in the
    ``summarize`` result ``summary``, by model."""
    for i, kind in enumerate(models):
        if not isinstance(kind, str):
            raise TypeError(f"{models_name}[{i}] must be a model name, got {describe(kind)}")
    missing = [kind for kind in models if kind not in summary]
    if missing:
        raise ValueError(f"{name} lacks the models {missing} (given in {models_name})")
    means = {}
    for kind in models:
        curve = summary[kind]
        if not isinstance(curve, Mapping) or "mean" not in curve:
            raise TypeError(f"{name}[{kind!r}] must be a dict with a 'mean' curve, got "
                            f"{describe(curve)}")
        means[kind] = check_array(curve["mean"], f"{name}[{kind!r}]['mean']", ndim=1,
                                  column_as_vector=False)
    return means


def check_simulated(simulated: Any, name: str, epochs: Any, n: Any, *, most: int) -> dict:
    """``simulated`` as a dict of at most ``most`` pools ``≥ n`` (positive integers) to 1-D
    counts, one per epoch of ``epochs`` (1-D, non-negative real epoch counts); ``n`` a positive
    integer.  The arguments ``epochs`` and ``n`` are named as such."""
    epochs = check_array(epochs, "epochs", ndim=1, column_as_vector=False)
    if np.any(epochs < 0):
        raise ValueError(f"epochs must be non-negative, got minimum {epochs.min()!r}")
    n = check_positive_int(n, "n")
    simulated = check_mapping(simulated, name, allow_empty=False)
    if len(simulated) > most:
        raise ValueError(f"{name} must hold at most {most} pools, got {len(simulated)}")
    for pool, seen in simulated.items():
        check_positive_int(pool, f"{name}'s pool {pool!r}")
        if pool < n:
            raise ValueError(f"{name}'s pool {pool} must be at least n = {n}")
        seen = check_array(seen, f"{name}[{pool}]", ndim=1, column_as_vector=False)
        if seen.shape != epochs.shape:
            raise ValueError(f"{name}[{pool}] must hold one count per epoch "
                             f"({len(epochs)}), got shape {seen.shape}")
    return simulated


def check_spectra(records: Any, name: str, layer: Any) -> dict:
    """``records`` as a non-empty dict from model kinds to run records whose ``"spectra"``
    hold ``layer``'s singular values (1-D, finite, the first positive); ``layer`` is named as
    such."""
    records = check_mapping(records, name, allow_empty=False)
    for kind, record in records.items():
        check_option(kind, f"{name}' model", MODEL_KINDS)
        spectra = record.get("spectra") if isinstance(record, Mapping) else None
        if not isinstance(spectra, Mapping):
            raise TypeError(f"{name}[{kind!r}] must be a run record with 'spectra', got "
                            f"{describe(record)}")
        if not isinstance(layer, str) or layer not in spectra:
            raise ValueError(f"layer must be one of {list(spectra)}, got {describe(layer)}")
        where = f"{name}[{kind!r}]['spectra'][{layer!r}]"
        s = check_array(spectra[layer], where, ndim=1, column_as_vector=False)
        if s[0] <= 0:
            raise ValueError(f"{where} must start with a positive singular value, got {s[0]!r}")
    return records
