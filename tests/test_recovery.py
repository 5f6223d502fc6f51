"""The recovery experiments of chapter 5, checked against an independent computation.

Every reported number (relative errors, distances from the lazy solution, constraint residuals,
the comparison with the truth's penalty, top-``rank`` energies) is recomputed here on small
instances by other means: pseudo-inverses instead of QR, a linear programme set up here,
eigenvalues of ``ΘᵀΘ`` instead of singular values, sums of squares instead of norms.
"""

import dataclasses
import math

import numpy as np
import pytest
import scipy.optimize

from atf_lite.experiments.problems import matrix_sensing_instance, sparse_recovery_instance
from atf_lite.experiments.recovery import (
    MatrixSensingSettings,
    RecoveryTrials,
    SparseRecoverySettings,
    matrix_sensing_trials,
    sparse_recovery_trials,
)
from atf_lite.solvers.alternating import solve_structured
from atf_lite.solvers.convex import min_nuclear_norm_interpolator
from atf_lite.theory.effective import effective_penalty
from atf_lite.theory.penalties import omega_abs, omega_sq
from atf_lite.theory.structured import kronecker_penalty_and_scales


def _rel(estimate, truth):
    """``‖estimate − truth‖ / ‖truth‖`` from sums of squares (not ``np.linalg.norm``)."""
    diff = np.asarray(estimate, dtype=float) - truth
    return math.sqrt(float(np.sum(diff * diff)) / float(np.sum(truth * truth)))


def _top_energy(X, rank):
    """Energy fraction of the top ``rank`` singular values from the eigenvalues of ``XᵀX``."""
    eig = np.sort(np.linalg.eigvalsh(X.T @ X))[::-1]
    return float(np.sum(eig[:rank]) / np.sum(X * X))


def _l1(Phi, y):
    """Basis pursuit as a linear programme in ``(θ, t)``: min Σ t s.t. −t ≤ θ ≤ t, Φθ = y."""
    n, p = Phi.shape
    eye = np.eye(p)
    result = scipy.optimize.linprog(
        np.concatenate([np.zeros(p), np.ones(p)]),
        A_ub=np.block([[eye, -eye], [-eye, -eye]]),
        b_ub=np.zeros(2 * p),
        A_eq=np.hstack([Phi, np.zeros((n, p))]),
        b_eq=y,
        bounds=[(None, None)] * p + [(0, None)] * p,
        method="highs",
    )
    assert result.status == 0
    return result.x[:p]


# ------------------------------------------------------------------------- sparse recovery


def test_sparse_recovery_trials_agree_with_an_independent_computation():
    settings = SparseRecoverySettings(m=14, scale=30.0, trials=3, p=24, k=2, seed=5)
    penalties = {"ω1": omega_sq, "ω2": omega_abs}
    trials = sparse_recovery_trials(settings, penalties)
    assert isinstance(trials, RecoveryTrials)
    assert set(trials.errors) == {"min_l2", "l1", "ω1", "ω2"}
    for field in (trials.gaps, trials.residuals, trials.below_truth, trials.converged):
        assert set(field) == {"ω1", "ω2"}
        assert all(values.shape == (3,) for values in field.values())
    assert trials.top_energy == {}
    for t in range(settings.trials):
        Phi, y, theta_star = sparse_recovery_instance(24, 2, 14, 30.0, seed=5 + t)
        assert np.count_nonzero(theta_star) == 2
        theta_l2 = np.linalg.pinv(Phi) @ y
        assert trials.errors["min_l2"][t] == pytest.approx(_rel(theta_l2, theta_star), rel=1e-10)
        # 2-sparse with 14 measurements: basis pursuit is exact, so any LP solution agrees.
        assert trials.errors["l1"][t] == pytest.approx(_rel(_l1(Phi, y), theta_star), abs=1e-8)
        for label, omega in penalties.items():
            sol = solve_structured(Phi, y, omega, structure="diagonal")
            assert trials.errors[label][t] == pytest.approx(_rel(sol.theta, theta_star), rel=1e-9)
            assert trials.gaps[label][t] == pytest.approx(_rel(sol.theta, theta_l2), rel=1e-8)
            residual = math.sqrt(np.sum((Phi @ sol.theta - y) ** 2) / np.sum(y * y))
            assert trials.residuals[label][t] == pytest.approx(residual, rel=1e-6, abs=1e-15)
            truth = float(np.sum(effective_penalty(np.abs(theta_star), omega)))
            assert trials.below_truth[label][t] == (sol.objective <= truth)
            assert trials.converged[label][t] == sol.converged
    # The medians are medians of those errors; at scale 30 adaptation beats fixed features.
    for method, errors in trials.errors.items():
        assert trials.median(method) == pytest.approx(float(np.median(errors)))
        assert isinstance(trials.median(method), float)
    assert trials.median("ω2") < 0.1 < 0.5 < trials.median("min_l2")


def test_sparse_recovery_options_and_the_lazy_regime():
    settings = SparseRecoverySettings(m=10, scale=0.05, trials=2, p=20, k=2, seed=1)
    trials = sparse_recovery_trials(settings, {"ω2": omega_abs}, l1=False)
    assert set(trials.errors) == {"min_l2", "ω2"}
    # Small scale: every min-ℓ2 entry is below 1/√2, so ω2 returns the lazy solution itself.
    np.testing.assert_allclose(trials.gaps["ω2"], 0.0, atol=1e-13)
    np.testing.assert_allclose(trials.errors["ω2"], trials.errors["min_l2"], rtol=1e-12)
    # No adaptive penalty at all: only the baselines are reported.
    baselines = sparse_recovery_trials(settings, {})
    assert set(baselines.errors) == {"min_l2", "l1"}
    assert baselines.gaps == baselines.residuals == baselines.below_truth == {}
    assert baselines.converged == baselines.top_energy == {}
    np.testing.assert_array_equal(baselines.errors["min_l2"], trials.errors["min_l2"])


def test_sparse_recovery_is_deterministic_and_instances_follow_the_seed():
    settings = SparseRecoverySettings(m=8, scale=3.0, trials=2, p=12, k=1, seed=2)
    first = sparse_recovery_trials(settings, {"ω1": omega_sq})
    again = sparse_recovery_trials(settings, {"ω1": omega_sq})
    for name in ("errors", "gaps", "residuals", "below_truth", "converged"):
        for label, values in getattr(first, name).items():
            np.testing.assert_array_equal(values, getattr(again, name)[label])
    # Trial t uses seed + t: the second trial of seed 2 is the first of seed 3.
    shifted = sparse_recovery_trials(dataclasses.replace(settings, seed=3, trials=1),
                                     {"ω1": omega_sq})
    assert shifted.errors["ω1"][0] == first.errors["ω1"][1]


# ---------------------------------------------------------------------- matrix sensing


@pytest.mark.parametrize(("nuclear", "trials", "pairs"), [(True, 2, 2), (False, 1, 1)])
def test_matrix_sensing_trials_agree_with_an_independent_computation(nuclear, trials, pairs):
    shape, rank, n, scale = (5, 4), 2, 16, 10.0
    settings = MatrixSensingSettings(n=n, scale=scale, trials=trials, shape=shape, rank=rank,
                                     seed=7)
    all_pairs = {"K11": (omega_sq, omega_sq), "K12": (omega_sq, omega_abs)}
    penalties = dict(list(all_pairs.items())[:pairs])
    trials = matrix_sensing_trials(settings, penalties, nuclear=nuclear)
    baselines = {"min_l2", "nuclear"} if nuclear else {"min_l2"}
    assert set(trials.errors) == set(trials.top_energy) == baselines | set(penalties)
    for t in range(settings.trials):
        Phi, y, Theta_star = matrix_sensing_instance(shape, rank, n, scale, seed=7 + t)
        # The truth: rank 2, both non-zero singular values equal to the scale.
        np.testing.assert_allclose(np.linalg.svd(Theta_star, compute_uv=False),
                                   [scale, scale, 0, 0], atol=1e-12)
        Theta_l2 = (np.linalg.pinv(Phi) @ y).reshape(shape)
        estimates = {"min_l2": Theta_l2}
        if nuclear:
            estimates["nuclear"] = min_nuclear_norm_interpolator(Phi, y, shape=shape).matrix
        for label, (omega_a, omega_b) in penalties.items():
            sol = solve_structured(Phi, y, omega_a, structure="kronecker", shape=shape,
                                   omega_b=omega_b)
            estimates[label] = sol.matrix
            assert trials.gaps[label][t] == pytest.approx(_rel(sol.matrix, Theta_l2), rel=1e-8)
            residual = math.sqrt(np.sum((Phi @ sol.theta - y) ** 2) / np.sum(y * y))
            assert trials.residuals[label][t] == pytest.approx(residual, rel=1e-6, abs=1e-15)
            # Ω̃(Θ*) = rank · h(scale): the truth's singular values are all equal to the scale.
            truth = rank * float(kronecker_penalty_and_scales(scale, omega_a, omega_b)[0])
            assert trials.below_truth[label][t] == (sol.objective <= truth)
            assert trials.converged[label][t] == sol.converged
        for method, estimate in estimates.items():
            assert trials.errors[method][t] == pytest.approx(_rel(estimate, Theta_star), rel=1e-8)
            energy = _top_energy(estimate, rank)
            assert trials.top_energy[method][t] == pytest.approx(energy, rel=1e-9)
    # The minimum-norm solution is spread over all singular values: its energy fraction is
    # far from what the unsquared singular values would give, so a missing square is caught.
    s = np.linalg.svd(Theta_l2, compute_uv=False)
    assert abs(np.sum(s[:rank]) / np.sum(s) - _top_energy(Theta_l2, rank)) > 0.02
    assert np.all(trials.top_energy["min_l2"] < 0.99)


def test_top_energy_of_an_exactly_recovered_matrix_is_one():
    # As many measurements as entries: every interpolator is the truth, of rank exactly 1.
    settings = MatrixSensingSettings(n=9, scale=2.0, trials=1, shape=(3, 3), rank=1, seed=0)
    trials = matrix_sensing_trials(settings, {"K": (omega_sq, omega_sq)})
    for method in ("min_l2", "nuclear", "K"):
        assert trials.errors[method][0] < 1e-6
        assert trials.top_energy[method][0] == pytest.approx(1.0, abs=1e-10)


# -------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(m=0), "m must"),
        (dict(m=2.5), "m must"),
        (dict(trials=0), "trials must"),
        (dict(p=0), "p must"),
        (dict(k=0), "k must"),
        (dict(k=70), "k must be at most p = 60"),
        (dict(seed=-1), "seed must"),
        (dict(scale=0.0), "scale must be a positive number"),
        (dict(scale=-1.0), "scale must be a positive number"),
        (dict(scale=float("nan")), "scale must be a positive number"),
        (dict(scale=float("inf")), "scale must be a positive number"),
        (dict(scale=True), "scale must be a positive number, got True"),
        (dict(scale="0.5"), "scale must be a positive number, got '0.5'"),
        (dict(scale=None), "scale must be a positive number, got None"),
        (dict(scale=1 + 1j), "scale must be a positive number"),
    ],
)
def test_sparse_settings_reject_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        SparseRecoverySettings(**{"m": 10, "scale": 1.0, "trials": 1, **change})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(n=0), "n must"),
        (dict(trials=-2), "trials must"),
        (dict(rank=0), "rank must"),
        (dict(seed=-3), "seed must"),
        (dict(scale=-0.5), "scale must be a positive number"),
        (dict(shape=(4,)), "shape must be a pair"),
        (dict(shape=(4, 0)), "shape must"),
        (dict(shape=None), "shape must be a pair .* got None"),
        (dict(shape="44"), "shape must be a pair .* got '44'"),
        (dict(shape=(2, 3), rank=3), "rank must be at most min"),
    ],
)
def test_sensing_settings_reject_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        MatrixSensingSettings(**{"n": 10, "scale": 1.0, "trials": 1, **change})


def test_settings_are_frozen_with_the_documented_defaults():
    sparse = SparseRecoverySettings(m=25, scale=30.0, trials=9)
    assert (sparse.p, sparse.k, sparse.seed) == (60, 3, 0)
    sensing = MatrixSensingSettings(n=120, scale=30.0, trials=3)
    assert (sensing.shape, sensing.rank, sensing.seed) == ((20, 20), 2, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sparse.m = 3  # type: ignore[misc]


def _tiny_sparse():
    return SparseRecoverySettings(m=8, scale=1.0, trials=1, p=10, k=2)


def _tiny_sensing():
    return MatrixSensingSettings(n=10, scale=1.0, trials=1, shape=(3, 3), rank=1)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(settings=None), TypeError, "settings must be SparseRecoverySettings, got None"),
        (dict(settings="s"), TypeError, "settings must be SparseRecoverySettings, got 's'"),
        (dict(penalties=None), TypeError, "penalties must be a mapping, got None"),
        (dict(penalties="ω"), TypeError, "penalties must be a mapping, got 'ω'"),
        (dict(l1=None), ValueError, "l1 must be True or False, got None"),
        (dict(l1="no"), ValueError, "l1 must be True or False, got 'no'"),
        (dict(l1=2), ValueError, "l1 must be True or False, got 2"),
    ],
)
def test_sparse_recovery_trials_refuse_bad_arguments(change, error, message):
    arguments = {"settings": _tiny_sparse(), "penalties": {"ω": omega_abs}, "l1": True, **change}
    with pytest.raises(error, match=message):
        sparse_recovery_trials(arguments.pop("settings"), arguments.pop("penalties"), **arguments)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(settings=3), TypeError, "settings must be MatrixSensingSettings, got 3"),
        (dict(penalties=3), TypeError, "penalties must be a mapping, got 3"),
        (dict(penalties={"K": omega_sq}), ValueError, r"penalties\['K'\] must be a pair"),
        (dict(nuclear="yes"), ValueError, "nuclear must be True or False, got 'yes'"),
        (dict(nuclear=None), ValueError, "nuclear must be True or False, got None"),
    ],
)
def test_matrix_sensing_trials_refuse_bad_arguments(change, error, message):
    arguments = {"settings": _tiny_sensing(), "penalties": {"K": (omega_sq, omega_sq)},
                 "nuclear": True, **change}
    with pytest.raises(error, match=message):
        matrix_sensing_trials(arguments.pop("settings"), arguments.pop("penalties"), **arguments)


def test_matrix_sensing_without_penalties_reports_the_baselines():
    trials = matrix_sensing_trials(_tiny_sensing(), {}, nuclear=False)
    assert set(trials.errors) == {"min_l2"}
