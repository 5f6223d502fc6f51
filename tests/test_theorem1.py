import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from atf_lite import ConvergenceWarning
from atf_lite.experiments.problems import difficulty_targets, random_instance
from atf_lite.linalg import min_norm_interpolator
from atf_lite.solvers import joint as joint_module
from atf_lite.solvers.joint import (
    Theorem1Gaps,
    _full_objective,
    compare_with_theorem1,
    reduced_objective,
    solve_joint,
)
from atf_lite.solvers.solution import JointSolution
from atf_lite.theory.effective import adaptation_scale, effective_penalty
from atf_lite.theory.penalties import Penalty, omega_abs, omega_sq, oplus, spectral_penalty
from atf_lite.theory.theorem1 import theorem1_solution


def orthogonal(p, rng):
    Q, R = np.linalg.qr(rng.standard_normal((p, p)))
    return Q * np.sign(np.diag(R))


# ---------------------------------------------------------------- minimum-norm interpolation


def test_min_norm_interpolator_is_the_pseudoinverse_solution():
    rng = np.random.default_rng(0)
    Phi = rng.standard_normal((6, 15))
    y = rng.standard_normal(6)
    beta = min_norm_interpolator(Phi, y)
    np.testing.assert_allclose(Phi @ beta, y, atol=1e-12)
    np.testing.assert_allclose(beta, np.linalg.pinv(Phi) @ y, rtol=1e-10)
    # Minimum norm ⇔ β lies in the row space of Φ: orthogonal to the null space.
    null = scipy.linalg.null_space(Phi)
    assert np.max(np.abs(null.T @ beta)) < 1e-12
    # Adding any null-space direction keeps feasibility and increases the norm.
    assert np.linalg.norm(beta + null[:, 0]) > np.linalg.norm(beta)


def test_min_norm_interpolator_accepts_torch_and_rank_deficient_consistent_systems():
    rng = np.random.default_rng(1)
    Phi = rng.standard_normal((4, 8))
    Phi = np.vstack([Phi, Phi[0] + Phi[1]])  # 5 rows, rank 4
    y = Phi @ rng.standard_normal(8)  # consistent by construction
    beta = min_norm_interpolator(torch.from_numpy(Phi), torch.from_numpy(y))
    np.testing.assert_allclose(Phi @ beta, y, atol=1e-10)
    assert np.all(min_norm_interpolator(Phi, np.zeros(5)) == 0)


def test_min_norm_interpolator_errors():
    rng = np.random.default_rng(2)
    tall = rng.standard_normal((10, 4))
    with pytest.raises(ValueError, match="not in the range of Phi"):
        min_norm_interpolator(tall, rng.standard_normal(10))
    with pytest.raises(ValueError, match="y must have length"):
        min_norm_interpolator(rng.standard_normal((3, 5)), np.ones(4))
    bad = rng.standard_normal((3, 5))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Phi contains NaN"):
        min_norm_interpolator(bad, np.ones(3))
    with pytest.raises(ValueError, match="Phi must be a 2-D"):
        min_norm_interpolator(np.ones(5), np.ones(5))


# ---------------------------------------------------------------- Theorem 1 closed form


@pytest.mark.parametrize("omega", [omega_sq, omega_abs], ids=["sq", "abs"])
@pytest.mark.parametrize("target_norm", [0.3, 2.0])
def test_theorem1_solution_is_feasible_and_self_consistent(omega, target_norm):
    Phi, y = random_instance(5, 12, target_norm, seed=3)
    sol = theorem1_solution(Phi, y, omega)
    G = sol.gamma()
    assert sol.norm == pytest.approx(target_norm, rel=1e-12)
    assert sol.s == adaptation_scale(sol.norm, omega)
    np.testing.assert_allclose(Phi @ G @ sol.beta, y, atol=1e-12)
    np.testing.assert_allclose(G @ sol.beta, sol.beta_hat, atol=1e-14)
    # The stated objective is the actual cost of the stated (β, Γ).
    direct = sol.beta @ sol.beta + spectral_penalty(G, omega)
    assert sol.objective == pytest.approx(direct, rel=1e-12)
    assert sol.objective == pytest.approx(effective_penalty(target_norm, omega), rel=1e-14)
    # Adapted kernel: rank-one form, dense form and the label-kernel form on training points.
    np.testing.assert_allclose(sol.kernel(Phi), Phi @ G @ G.T @ Phi.T, rtol=1e-12, atol=1e-14)
    K_label = Phi @ Phi.T + (sol.s**2 - 1) / sol.norm**2 * np.outer(y, y)
    np.testing.assert_allclose(sol.kernel(Phi), K_label, rtol=1e-12, atol=1e-14)
    Phi_new = np.random.default_rng(4).standard_normal((3, 12))
    np.testing.assert_allclose(sol.kernel(Phi_new, Phi), Phi_new @ G @ G.T @ Phi.T, atol=1e-12)
    np.testing.assert_allclose(sol.predict(Phi_new), Phi_new @ sol.beta_hat)


def test_theorem1_lazy_and_zero_targets():
    Phi, y = random_instance(4, 9, 0.5, seed=5)
    lazy = theorem1_solution(Phi, y, omega_abs)
    assert lazy.s == 1.0
    np.testing.assert_array_equal(lazy.gamma(), np.eye(9))
    np.testing.assert_allclose(lazy.kernel(Phi), Phi @ Phi.T)
    zero = theorem1_solution(Phi, np.zeros(4), omega_sq)
    assert zero.s == 1.0 and zero.objective == 0.0 and zero.label_coefficient == 0.0
    np.testing.assert_array_equal(zero.gamma(), np.eye(9))


@pytest.mark.parametrize("omega", [omega_sq, omega_abs], ids=["sq", "abs"])
@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    target_norm=st.floats(0.05, 8.0),
    perturbation=st.floats(0.0, 2.0),
)
def test_no_feasible_point_beats_theorem1(omega, seed, target_norm, perturbation):
    # Any Γ with the optimal β for it is feasible; its cost must not undercut the closed form.
    # Candidates: random Γ near the optimum, near the identity, and rotated optima ΓR
    # (which tie).
    rng = np.random.default_rng(seed)
    Phi, y = random_instance(3, 6, target_norm, seed=seed)
    sol = theorem1_solution(Phi, y, omega)
    G = sol.gamma()
    for Gamma in (
        G + perturbation * rng.standard_normal((6, 6)) / 6,
        np.eye(6) + perturbation * rng.standard_normal((6, 6)) / 6,
        sol.s * np.eye(6),
        G @ orthogonal(6, rng),
    ):
        value, _ = reduced_objective(Phi, y, omega, Gamma)
        assert value >= sol.objective * (1 - 1e-10)


# ---------------------------------------------------------------- brute-force joint solver


def test_gradient_of_reduced_objective():
    Phi, y = random_instance(4, 7, 1.3, seed=6)
    x0 = (np.eye(7) + 0.3 * np.random.default_rng(7).standard_normal((7, 7))).ravel()
    for omega, mu in ((omega_sq, 0.0), (omega_abs, 1e-1)):
        value = lambda x, omega=omega, mu=mu: _full_objective(x, Phi, y, omega, mu)[0]  # noqa: E731
        grad = lambda x, omega=omega, mu=mu: _full_objective(x, Phi, y, omega, mu)[1]  # noqa: E731
        error = scipy.optimize.check_grad(value, grad, x0)
        assert error < 1e-5 * np.linalg.norm(grad(x0))


@pytest.mark.parametrize("target_norm", [0.4, 1.0, 3.0])
def test_solve_joint_recovers_theorem1_for_omega_sq(target_norm):
    Phi, y = random_instance(4, 8, target_norm, seed=8)
    joint = solve_joint(Phi, y, omega_sq, restarts=2, seed=0)
    assert isinstance(joint, JointSolution)
    assert joint.constraint_residual < 1e-10
    gaps = compare_with_theorem1(Phi, y, omega_sq, joint)
    assert abs(gaps.objective) < 1e-8
    assert isinstance(gaps, Theorem1Gaps)
    assert list(gaps.as_dict()) == ["objective", "theta", "beta_norm", "gram", "kernel"]
    for key in ("theta", "beta_norm", "gram", "kernel"):
        assert getattr(gaps, key) < 1e-5, (key, gaps)
    # Predictions equal those of fixed-feature minimum-norm regression.
    Phi_new = np.random.default_rng(9).standard_normal((5, 8))
    np.testing.assert_allclose(joint.predict(Phi_new), Phi_new @ min_norm_interpolator(Phi, y),
                               rtol=1e-5, atol=1e-8)
    G = joint.gamma
    np.testing.assert_allclose(joint.kernel(Phi), Phi @ G @ G.T @ Phi.T, rtol=1e-12)


@pytest.mark.parametrize("target_norm", [0.5, 2.0])
def test_solve_joint_never_beats_theorem1_for_omega_abs(target_norm):
    Phi, y = random_instance(3, 6, target_norm, seed=10)
    joint = solve_joint(Phi, y, omega_abs, restarts=1, seed=1)
    gaps = compare_with_theorem1(Phi, y, omega_abs, joint)
    assert gaps.objective >= -1e-8
    # The smoothing continuation gets close to the optimum, not merely above it.
    assert gaps.objective < 1e-6
    assert gaps.kernel < 1e-4


def test_solve_joint_with_a_numerical_penalty():
    # oplus has no closed forms: the brute force must still meet Theorem 1's value.
    omega = oplus(omega_sq, omega_abs)
    Phi, y = random_instance(2, 4, 1.5, seed=11)
    joint = solve_joint(Phi, y, omega, restarts=1, seed=2)
    gaps = compare_with_theorem1(Phi, y, omega, joint)
    assert -1e-8 <= gaps.objective < 1e-6
    assert gaps.kernel < 1e-4


def test_solve_joint_input_errors():
    Phi, y = random_instance(3, 5, 1.0, seed=12)
    with pytest.raises(ValueError, match="n ≤ p"):
        solve_joint(Phi.T, np.ones(5), omega_sq)
    with pytest.raises(ValueError, match="restarts"):
        solve_joint(Phi, y, omega_sq, restarts=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        solve_joint(Phi, y, omega_sq, step_size=1.0)
    with pytest.raises(ValueError, match="not minimised at 1|minimised at 1"):
        solve_joint(Phi, y, lambda z: (z - 2.0) ** 2)
    with pytest.raises(ValueError, match="Gamma must have shape"):
        reduced_objective(Phi, y, omega_sq, np.eye(4))


def test_structured_variants_are_delegated(monkeypatch):
    calls = []

    def fake(Phi, y, omega, *, structure, **kwargs):
        calls.append((structure, kwargs))
        return "delegated"

    monkeypatch.setattr(joint_module, "solve_joint_structured", fake)
    Phi, y = random_instance(2, 4, 1.0, seed=13)
    assert solve_joint(Phi, y, omega_sq, structure="diagonal", restarts=2, seed=5) == "delegated"
    assert calls == [("diagonal", {"restarts": 2, "seed": 5})]


def test_random_instance_sets_the_norm_of_the_interpolator():
    Phi, y = random_instance(5, 9, 2.5, seed=14)
    assert np.linalg.norm(min_norm_interpolator(Phi, y)) == pytest.approx(2.5, rel=1e-12)
    with pytest.raises(ValueError, match="n <= p"):
        random_instance(5, 3)


def test_difficulty_targets():
    rng = np.random.default_rng(15)
    X = rng.standard_normal((60, 5))
    labels = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, 1.0, -1.0)
    targets = difficulty_targets(torch.from_numpy(X), labels, features=8, seed=1)
    assert list(targets) == ["smooth", "sign", "random"]
    for y in targets.values():
        assert y.shape == (60,)
        assert np.linalg.norm(y) == pytest.approx(np.sqrt(60))
    np.testing.assert_array_equal(np.sign(targets["sign"]), np.sign(targets["smooth"]))
    np.testing.assert_allclose(np.abs(targets["sign"]), 1.0)
    # The smooth target follows the labels; random labels do not.
    assert np.mean(np.sign(targets["smooth"]) == labels) > 0.8
    again = difficulty_targets(X, labels, features=8, seed=1)
    for name in targets:
        np.testing.assert_array_equal(targets[name], again[name])
    with pytest.raises(ValueError, match="labels must be ±1"):
        difficulty_targets(X, labels * 2, features=8)
    with pytest.raises(ValueError, match="features"):
        difficulty_targets(X, labels, features=60)


# ---------------------------------------------------------------- best restart, smoothing, gaps


def test_solve_joint_keeps_the_best_restart():
    # Stopped early (with a warning), the restarts end at different points: the best is kept.
    Phi, y = random_instance(3, 6, 2.0, seed=1)
    with pytest.warns(ConvergenceWarning, match="solve_joint: L-BFGS-B stopped"):
        joint = solve_joint(Phi, y, omega_sq, restarts=3, seed=0, max_iter=3)
    finals = np.array(joint.restart_objectives)
    assert finals.max() > finals.min() * (1 + 1e-3)
    assert joint.objective == finals.min()
    value, beta = reduced_objective(Phi, y, omega_sq, joint.gamma)  # still unpacks
    assert value == joint.objective and np.array_equal(beta, joint.beta)


def test_non_smooth_penalty_without_a_smoothing_hook_uses_the_gaussian_fallback():
    calls = []

    def func(z):
        calls.append(np.shape(z))
        return np.abs(z - 1.0)

    hookless = Penalty("|z-1| (no hook)", func, derivative=omega_abs.derivative, smooth=False)
    # The fallback: E ω(|σ + μξ|) and its derivative, ξ ~ N(0, 1), by Gauss–Hermite.
    sigma, mu = np.array([0.3, 1.0, 2.5]), 0.2
    value, grad = joint_module._penalty_and_grad(hookless, sigma, mu)
    assert calls and calls[-1] == (3, 40)

    def smoothed(s):
        return scipy.integrate.quad(
            lambda t: abs(abs(s + mu * t) - 1.0) * np.exp(-t * t / 2) / np.sqrt(2 * np.pi),
            -12, 12, points=[(1 - s) / mu, (-1 - s) / mu, -s / mu], limit=200)[0]

    # 40 Gauss–Hermite nodes integrate the kink at |σ + μξ| = 1 to about 1e-3.
    assert value == pytest.approx(sum(smoothed(s) for s in sigma), abs=2e-3)
    h = 1e-6
    numeric = [(smoothed(s + h) - smoothed(s - h)) / (2 * h) for s in sigma]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)
    # End to end: the continuation through the fallback reaches Theorem 1's value.
    Phi, y = random_instance(3, 6, 2.0, seed=10)
    calls.clear()
    joint = solve_joint(Phi, y, hookless, restarts=1, seed=1)
    assert (Phi.shape[1], 40) in calls  # the solver went through the fallback
    gaps = compare_with_theorem1(Phi, y, omega_abs, joint)
    assert -1e-8 <= gaps.objective < 1e-6


def test_theorem1_gaps_against_a_direct_computation():
    Phi, y = random_instance(3, 6, 1.5, seed=4)
    joint = solve_joint(Phi, y, omega_sq, restarts=1, seed=3, max_iter=40)
    gaps = compare_with_theorem1(Phi, y, omega_sq, joint)
    beta_hat = np.linalg.pinv(Phi) @ y
    norm = np.linalg.norm(beta_hat)
    s = adaptation_scale(norm, omega_sq)
    best = effective_penalty(norm, omega_sq)
    u = beta_hat / norm
    G = np.eye(6) + (s - 1.0) * np.outer(u, u)
    theta = joint.gamma @ joint.beta
    K = Phi @ joint.gamma @ joint.gamma.T @ Phi.T
    K_exact = Phi @ G @ G.T @ Phi.T
    assert gaps.objective == pytest.approx((joint.objective - best) / best, rel=1e-6, abs=1e-13)
    assert gaps.theta == pytest.approx(np.linalg.norm(theta - beta_hat) / norm, rel=1e-6)
    assert gaps.beta_norm == pytest.approx(
        abs(np.linalg.norm(joint.beta) - norm / s) / (norm / s), rel=1e-6, abs=1e-13)
    assert gaps.gram == pytest.approx(
        np.linalg.norm(joint.gamma @ joint.gamma.T - G @ G.T) / np.linalg.norm(G @ G.T),
        rel=1e-6)
    assert gaps.kernel == pytest.approx(
        np.linalg.norm(K - K_exact) / np.linalg.norm(K_exact), rel=1e-6)
    assert joint.constraint_residual == pytest.approx(
        np.linalg.norm(Phi @ theta - y) / np.linalg.norm(y), rel=1e-6, abs=1e-15)
