import warnings

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from atf_lite import ConvergenceWarning
from atf_lite.experiments.problems import matrix_sensing_instance, sparse_recovery_instance
from atf_lite.experiments.recovery import (
    MatrixSensingSettings,
    SparseRecoverySettings,
    matrix_sensing_trials,
    sparse_recovery_trials,
)
from atf_lite.linalg import min_norm_interpolator, relative_error
from atf_lite.solvers.alternating import solve_structured
from atf_lite.solvers.convex import (
    NuclearNormSolution,
    min_l1_interpolator,
    min_nuclear_norm_interpolator,
)
from atf_lite.solvers.joint import solve_joint
from atf_lite.solvers.joint_structured import (
    _factor_layout,
    _joint_objective,
    solve_joint_structured,
)
from atf_lite.solvers.solution import JointSolution
from atf_lite.theory.effective import effective_penalty
from atf_lite.theory.penalties import omega_abs, omega_sq, oplus, penalty, spectral_penalty
from atf_lite.theory.structured import kronecker_penalty_and_scales, structured_penalty

PAIRS = [(omega_sq, omega_sq), (omega_sq, omega_abs), (omega_abs, omega_sq), (omega_abs, omega_abs)]
PAIR_IDS = ["sq-sq", "sq-abs", "abs-sq", "abs-abs"]


def low_rank(shape, rank, rng, scale=2.0):
    m, d = shape
    return scale * rng.standard_normal((m, rank)) @ rng.standard_normal((rank, d))


def nuclear_norm(X):
    return float(np.linalg.svd(X, compute_uv=False).sum())


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize(("omega_a", "omega_b"), PAIRS, ids=PAIR_IDS)
def test_kronecker_penalty_is_the_effective_penalty_of_oplus(omega_a, omega_b):
    v = np.array([0.0, 1e-3, 0.3, 0.7, 1.0, 2.5, 10.0, 300.0])
    h, a, b = kronecker_penalty_and_scales(v, omega_a, omega_b)
    reference = effective_penalty(v, oplus(omega_a, omega_b))
    np.testing.assert_allclose(h, reference, rtol=1e-10, atol=1e-300)
    assert np.all(a >= 1.0) and np.all(b >= 1.0)
    # (a, b) attain h.
    np.testing.assert_allclose(omega_a.func(a) + omega_b.func(b) + (v / (a * b)) ** 2, h,
                               rtol=1e-13)


def test_kronecker_penalty_sq_sq_closed_form():
    # Symmetry gives a = b = t with stationarity t⁵(t − 1) = v².
    v = np.geomspace(1e-3, 1e3, 25)
    h, a, b = kronecker_penalty_and_scales(v, omega_sq, omega_sq)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(a**5 * (a - 1.0), v**2, rtol=1e-8)
    np.testing.assert_allclose(h, 2 * (a - 1) ** 2 + v**2 / a**4, rtol=1e-13)


def test_diagonal_penalty_closed_form_and_attaining_transform():
    theta = np.array([0.0, -0.2, 0.9, -3.0, 12.0])
    for omega in (omega_sq, omega_abs):
        pen = structured_penalty(theta, omega, structure="diagonal")
        np.testing.assert_allclose(pen.terms, effective_penalty(np.abs(theta), omega))
        assert pen.value == pytest.approx(pen.terms.sum(), rel=1e-14)
        G = pen.gamma()
        np.testing.assert_allclose(G @ pen.beta, theta, rtol=1e-14)
        cost = pen.beta @ pen.beta + spectral_penalty(G, omega)
        assert cost == pytest.approx(pen.value, rel=1e-12)
    # omega_abs below the lazy threshold: no adaptation at all.
    small = structured_penalty(np.array([0.1, -0.5]), omega_abs, structure="diagonal")
    assert np.all(small.scales == 1.0)
    assert small.value == pytest.approx(0.26, rel=1e-14)


def test_group_penalty_closed_form_and_attaining_transform():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(7) * 3
    theta[[5, 6]] = 0.0  # a zero group
    groups = [np.array([0, 3]), np.array([1, 2, 4]), np.array([5, 6])]
    pen = structured_penalty(theta, omega_sq, structure="groups", groups=groups)
    norms = [np.linalg.norm(theta[g]) for g in groups]
    np.testing.assert_allclose(pen.terms, effective_penalty(np.array(norms), omega_sq))
    G = pen.gamma()
    np.testing.assert_allclose(G @ pen.beta, theta, atol=1e-13)
    cost = pen.beta @ pen.beta + spectral_penalty(G, omega_sq)
    assert cost == pytest.approx(pen.value, rel=1e-12)
    # One group holding everything is Theorem 1: ω̃(‖θ‖).
    whole = structured_penalty(theta, omega_sq, structure="groups", groups=[np.arange(7)])
    assert whole.value == pytest.approx(effective_penalty(np.linalg.norm(theta), omega_sq))


@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (5, 3)])
@pytest.mark.parametrize(("omega_a", "omega_b"), PAIRS[:2], ids=PAIR_IDS[:2])
def test_kronecker_transforms_attain_the_closed_form(shape, omega_a, omega_b):
    rng = np.random.default_rng(1)
    Theta = low_rank(shape, 2, rng)
    pen = structured_penalty(Theta, omega_a, structure="kronecker", omega_b=omega_b)
    A, B = pen.factors()
    np.testing.assert_allclose(A @ pen.beta @ B.T, Theta, atol=1e-12)
    cost = np.sum(pen.beta**2) + spectral_penalty(A, omega_a) + spectral_penalty(B, omega_b)
    assert cost == pytest.approx(pen.value, rel=1e-12)
    sigma = np.linalg.svd(Theta, compute_uv=False)
    h = kronecker_penalty_and_scales(sigma, omega_a, omega_b)[0]
    assert pen.value == pytest.approx(h.sum(), rel=1e-14)
    # Γ = A ⊗ B acts on the row-major vec.
    np.testing.assert_allclose(pen.gamma() @ pen.beta.ravel(), Theta.ravel(), atol=1e-12)


@pytest.mark.parametrize("structure", ["diagonal", "groups", "kronecker"])
def test_apply_gamma_matches_the_dense_transform(structure):
    rng = np.random.default_rng(2)
    if structure == "kronecker":
        pen = structured_penalty(low_rank((3, 4), 2, rng), omega_sq, structure=structure)
    else:
        groups = [np.array([0, 2]), np.array([1, 3, 4, 5])] if structure == "groups" else None
        theta = 4 * rng.standard_normal(6)
        pen = structured_penalty(theta, omega_sq, structure=structure, groups=groups)
    rows = rng.standard_normal((5, pen.p))
    np.testing.assert_allclose(pen.apply_gamma(rows), rows @ pen.gamma(), atol=1e-12)


# Any factorisation costs at least the closed form (the lower-bound half of the theorems).
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), m=st.integers(1, 4), d=st.integers(1, 4),
       log_scale=st.floats(-2.0, 2.0), pair=st.sampled_from(range(4)))
def test_any_kronecker_factorisation_costs_at_least_the_closed_form(seed, m, d, log_scale, pair):
    omega_a, omega_b = PAIRS[pair]
    rng = np.random.default_rng(seed)
    A = np.eye(m) + rng.standard_normal((m, m))
    B = np.eye(d) + rng.standard_normal((d, d))
    M = 10.0**log_scale * rng.standard_normal((m, d))
    cost = np.sum(M**2) + spectral_penalty(A, omega_a) + spectral_penalty(B, omega_b)
    closed = structured_penalty(A @ M @ B.T, omega_a, structure="kronecker", omega_b=omega_b).value
    assert closed <= cost * (1 + 1e-10) + 1e-12


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), log_scale=st.floats(-2.0, 2.0))
def test_any_diagonal_or_group_factorisation_costs_at_least_the_closed_form(seed, log_scale):
    rng = np.random.default_rng(seed)
    beta = 10.0**log_scale * rng.standard_normal(5)
    gamma = rng.standard_normal(5) * 2
    for omega in (omega_sq, omega_abs):
        cost = beta @ beta + np.sum(omega.func(np.abs(gamma)))
        closed = structured_penalty(gamma * beta, omega, structure="diagonal").value
        assert closed <= cost * (1 + 1e-10) + 1e-12
    groups = [np.array([0, 1]), np.array([2, 3, 4])]
    G = np.zeros((5, 5))
    for g in groups:
        G[np.ix_(g, g)] = np.eye(len(g)) + rng.standard_normal((len(g), len(g)))
    cost = beta @ beta + spectral_penalty(G, omega_sq)
    closed = structured_penalty(G @ beta, omega_sq, structure="groups", groups=groups).value
    assert closed <= cost * (1 + 1e-10) + 1e-12


# ---------------------------------------------------------------- brute force


@pytest.mark.parametrize(("shape", "rank", "omega_b"), [
    ((3, 2), 1, omega_sq), ((3, 3), 2, omega_sq), ((3, 3), 2, omega_abs), ((2, 4), 2, omega_abs)
])
def test_kronecker_brute_force_equals_closed_form(shape, rank, omega_b):
    rng = np.random.default_rng(3)
    Theta = low_rank(shape, rank, rng, scale=1.5)
    p = Theta.size
    joint = solve_joint_structured(np.eye(p),
                                   Theta.ravel(),
                                   omega_sq,
                                   structure="kronecker",
                                   shape=shape,
                                   omega_b=omega_b,
                                   restarts=3,
                                   seed=0)
    closed = structured_penalty(Theta, omega_sq, structure="kronecker", omega_b=omega_b).value
    assert isinstance(joint, JointSolution)
    assert joint.objective == pytest.approx(closed, rel=1e-6)
    np.testing.assert_allclose(joint.theta, Theta.ravel(), atol=1e-10)
    assert joint.constraint_residual < 1e-10


def test_diagonal_and_group_brute_force_equal_closed_form():
    rng = np.random.default_rng(4)
    theta = rng.standard_normal(5) * np.array([0.1, 0.5, 1.0, 3.0, 10.0])
    for omega in (omega_sq, omega_abs):
        joint = solve_joint_structured(np.eye(5), theta, omega, structure="diagonal", restarts=2)
        closed = structured_penalty(theta, omega, structure="diagonal").value
        assert joint.objective == pytest.approx(closed, rel=1e-6)
    groups = [np.array([0, 4]), np.array([1, 2, 3])]
    joint = solve_joint_structured(np.eye(5),
                                   theta,
                                   omega_sq,
                                   structure="groups",
                                   groups=groups,
                                   restarts=3)
    closed = structured_penalty(theta, omega_sq, structure="groups", groups=groups).value
    assert joint.objective == pytest.approx(closed, rel=1e-6)


def test_solve_joint_dispatches_structures_to_this_module():
    rng = np.random.default_rng(5)
    Theta = low_rank((2, 3), 1, rng)
    joint = solve_joint(np.eye(6),
                        Theta.ravel(),
                        omega_sq,
                        structure="kronecker",
                        shape=(2, 3),
                        restarts=2,
                        seed=1)
    assert joint.structure == "kronecker"
    closed = structured_penalty(Theta, omega_sq, structure="kronecker").value
    assert joint.objective == pytest.approx(closed, rel=1e-6)


@pytest.mark.parametrize("structure", ["groups", "kronecker"])
def test_joint_objective_gradient_matches_finite_differences(structure):
    rng = np.random.default_rng(6)
    p = 6
    Phi = rng.standard_normal((4, p))
    y = rng.standard_normal(4)
    groups = (np.array([0, 3, 5]), np.array([1, 2, 4])) if structure == "groups" else None
    shape = (2, 3) if structure == "kronecker" else None
    layout = _factor_layout(structure, p, groups, shape, omega_sq, omega_abs)
    n_params = sum((f.size * (f.size - 1) // 2 if f.rotate else 0) + 2 * f.size for f in layout)
    # Interior point: scales away from the bounds and the kink of omega_abs.
    x = rng.uniform(0.1, 0.4, n_params)
    value, grad = _joint_objective(x, Phi, y, layout, structure, groups, shape)
    assert np.isfinite(value)

    def f(z):
        return _joint_objective(z, Phi, y, layout, structure, groups, shape)[0]

    numeric = scipy.optimize.approx_fprime(x, f, 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- solve_structured


@pytest.mark.parametrize("structure", ["diagonal", "groups", "kronecker"])
def test_solve_structured_is_feasible_monotone_and_consistent(structure):
    rng = np.random.default_rng(7)
    p, n = 12, 6
    A = rng.standard_normal((n, p))
    y = A @ (5 * rng.standard_normal(p))
    kwargs = {"groups": [np.arange(0, 4), np.arange(4, 12)]} if structure == "groups" else {}
    if structure == "kronecker":
        kwargs = {"shape": (3, 4), "omega_b": omega_abs}
    sol = solve_structured(A, y, omega_sq, structure=structure, **kwargs)
    assert sol.converged
    assert sol.constraint_residual <= 1e-8
    assert np.linalg.norm(A @ sol.theta - y) <= 1e-8 * np.linalg.norm(y)
    assert np.all(np.diff(sol.history) <= 1e-12 * sol.history[0])
    penalty_kwargs = {key: val for key, val in kwargs.items() if key != "shape"}
    theta = sol.matrix if structure == "kronecker" else sol.theta
    recomputed = structured_penalty(theta, omega_sq, structure=structure, **penalty_kwargs).value
    assert sol.objective == pytest.approx(recomputed, rel=1e-12)
    # Never worse than the lazy (minimum-norm) interpolator.
    theta_l2 = min_norm_interpolator(A, y)
    lazy = theta_l2.reshape(3, 4) if structure == "kronecker" else theta_l2
    lazy_penalty = structured_penalty(lazy, omega_sq, structure=structure, **penalty_kwargs)
    assert sol.objective <= lazy_penalty.value


def test_unstructured_limits_return_the_minimum_norm_interpolator():
    # One group holding every coordinate, or a 1 × p "matrix", is Theorem 1: Ω̃ depends on ‖θ‖
    # only, so the fit is the minimum-norm one.
    rng = np.random.default_rng(8)
    A = rng.standard_normal((5, 9))
    y = A @ (4 * rng.standard_normal(9))
    theta_l2 = min_norm_interpolator(A, y)
    whole = solve_structured(A, y, omega_sq, structure="groups", groups=[np.arange(9)])
    row = solve_structured(A, y, omega_sq, structure="kronecker", shape=(1, 9))
    np.testing.assert_allclose(whole.theta, theta_l2, rtol=1e-9)
    np.testing.assert_allclose(row.theta, theta_l2, rtol=1e-9)


def test_omega_abs_is_exactly_lazy_at_small_scale():
    A, y, _ = sparse_recovery_instance(30, 3, 12, 0.05, seed=1)
    theta_l2 = min_norm_interpolator(A, y)
    assert np.max(np.abs(theta_l2)) < np.sqrt(0.5)
    sol = solve_structured(A, y, omega_abs, structure="diagonal")
    np.testing.assert_allclose(sol.theta, theta_l2, rtol=1e-12)


@pytest.mark.parametrize("omega", [omega_sq, omega_abs], ids=["sq", "abs"])
def test_solve_structured_finds_the_global_minimum_on_a_line(omega):
    # With n = p − 1 the feasible set is a line θ₀ + t·u: a dense grid over t finds the global
    # minimum of the non-convex Ω̃, which the solver must match.
    rng = np.random.default_rng(9)
    p = 6
    A = rng.standard_normal((p - 1, p))
    theta_star = np.array([4.0, 0, 0, -3.0, 0, 0])
    y = A @ theta_star
    theta0 = min_norm_interpolator(A, y)
    u = np.linalg.svd(A)[2][-1]
    t = np.linspace(-30, 30, 60001)
    line = theta0[None, :] + t[:, None] * u[None, :]
    values = effective_penalty(np.abs(line), omega).sum(axis=1)
    sol = solve_structured(A, y, omega, structure="diagonal", restarts=3)
    assert sol.objective <= values.min() + 1e-9 * values.min()
    assert sol.objective >= values.min() - 1e-6 * values.min()


def test_diagonal_joint_brute_force_agrees_with_solve_structured():
    rng = np.random.default_rng(10)
    Phi = rng.standard_normal((4, 8))
    y = Phi @ np.array([3.0, 0, 0, -2.0, 0, 0, 1.0, 0])
    joint = solve_joint_structured(Phi, y, omega_sq, structure="diagonal", restarts=4, seed=2)
    sol = solve_structured(Phi, y, omega_sq, structure="diagonal", restarts=4)
    assert joint.objective == pytest.approx(sol.objective, rel=1e-6)
    # At the brute-force optimum the transformation is the closed-form one.
    at_joint = structured_penalty(joint.theta, omega_sq, structure="diagonal").value
    assert at_joint == pytest.approx(joint.objective, rel=1e-6)


def test_sparse_recovery_at_large_scale():
    A, y, theta_star = sparse_recovery_instance(60, 3, 25, 30.0, seed=0)
    sol = solve_structured(A, y, omega_abs, structure="diagonal")
    assert relative_error(sol.theta, theta_star) < 0.1
    assert relative_error(min_norm_interpolator(A, y), theta_star) > 0.5


# ---------------------------------------------------------------- convex baselines


def test_min_l1_interpolator():
    A, y, theta_star = sparse_recovery_instance(40, 2, 20, 1.0, seed=2)
    theta = min_l1_interpolator(A, y)
    assert np.linalg.norm(A @ theta - y) <= 1e-10 * np.linalg.norm(y)
    np.testing.assert_allclose(theta, theta_star, atol=1e-9)  # exact recovery, 2-sparse
    # Optimality against random feasible points.
    null = np.linalg.svd(A)[2][20:]
    rng = np.random.default_rng(0)
    for _ in range(50):
        other = theta + null.T @ rng.standard_normal(20) * 0.1
        assert np.abs(theta).sum() <= np.abs(other).sum()


def test_min_nuclear_norm_interpolator():
    A, y, Theta_star = matrix_sensing_instance((6, 5), 1, 25, 3.0, seed=3)
    result = min_nuclear_norm_interpolator(A, y, shape=(6, 5))
    assert isinstance(result, NuclearNormSolution) and result.converged
    X, iterations = result.matrix, result.iterations
    assert iterations < 5000
    assert np.linalg.norm(A @ X.ravel() - y) <= 1e-10 * np.linalg.norm(y)
    assert nuclear_norm(X) <= nuclear_norm(Theta_star) * (1 + 1e-8)
    assert nuclear_norm(X) <= nuclear_norm(min_norm_interpolator(A, y).reshape(6, 5))
    # A different step size converges to the same point (the minimiser is unique here).
    X2 = min_nuclear_norm_interpolator(A, y, shape=(6, 5), step=1.0).matrix
    np.testing.assert_allclose(X, X2, atol=1e-6 * np.linalg.norm(X))


# ---------------------------------------------------------------- errors


def test_bad_structure_and_groups_are_rejected():
    theta = np.arange(4.0)
    with pytest.raises(ValueError, match="structure must be one of"):
        structured_penalty(theta, omega_sq, structure="blocky")
    with pytest.raises(ValueError, match="needs groups"):
        structured_penalty(theta, omega_sq, structure="groups")
    with pytest.raises(ValueError, match="index 1 is in more than one group"):
        structured_penalty(theta, omega_sq, structure="groups", groups=[[0, 1], [1, 2, 3]])
    with pytest.raises(ValueError, match="index 3 is in no group"):
        structured_penalty(theta, omega_sq, structure="groups", groups=[[0, 1], [2]])
    with pytest.raises(ValueError, match="outside"):
        structured_penalty(theta, omega_sq, structure="groups", groups=[[0, 1], [2, 3, 4]])
    with pytest.raises(ValueError, match="integer indices"):
        structured_penalty(theta, omega_sq, structure="groups", groups=[[0.0, 1.0], [2, 3]])
    with pytest.raises(ValueError, match="non-empty"):
        structured_penalty(theta, omega_sq, structure="groups", groups=[[0, 1, 2, 3], []])
    with pytest.raises(ValueError, match="groups is only used"):
        structured_penalty(theta, omega_sq, structure="diagonal", groups=[[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="omega_b is only used"):
        structured_penalty(theta, omega_sq, structure="diagonal", omega_b=omega_abs)


def test_bad_shapes_and_values_are_rejected():
    rng = np.random.default_rng(11)
    with pytest.raises(ValueError, match="theta must be a 2-D"):
        structured_penalty(np.ones(4), omega_sq, structure="kronecker")
    with pytest.raises(ValueError, match="theta must be a 1-D"):
        structured_penalty(np.ones((2, 2)), omega_sq, structure="diagonal")
    with pytest.raises(ValueError, match="theta contains NaN"):
        structured_penalty(np.array([1.0, np.nan]), omega_sq, structure="diagonal")
    with pytest.raises(TypeError, match="omega must be a Penalty"):
        structured_penalty(np.ones(3), 2.0, structure="diagonal")
    A = rng.standard_normal((3, 6))
    y = A @ rng.standard_normal(6)
    with pytest.raises(ValueError, match="needs shape"):
        solve_structured(A, y, omega_sq, structure="kronecker")
    with pytest.raises(ValueError, match="does not match the 6 parameters"):
        solve_structured(A, y, omega_sq, structure="kronecker", shape=(2, 2))
    with pytest.raises(ValueError, match="shape is only used"):
        solve_structured(A, y, omega_sq, structure="diagonal", shape=(2, 3))
    with pytest.raises(ValueError, match="y must have length"):
        solve_structured(A, y[:2], omega_sq, structure="diagonal")
    with pytest.raises(ValueError, match="not in the range of Phi"):
        solve_structured(
            np.vstack([A, A[0]]), np.append(y, y[0] + 1), omega_sq, structure="diagonal"
        )
    with pytest.raises(ValueError, match="restarts must be"):
        solve_structured(A, y, omega_sq, structure="diagonal", restarts=-1)
    with pytest.raises(ValueError, match="restarts must be"):
        solve_joint_structured(A, y, omega_sq, structure="diagonal", restarts=0)
    with pytest.raises(ValueError, match="structure must be one of"):
        solve_joint_structured(A, y, omega_sq, structure="full")
    with pytest.raises(ValueError, match="do not partition"):
        solve_joint_structured(A, y, omega_sq, structure="groups", groups=[[0, 1, 2]])
    with pytest.raises(ValueError, match="v must be finite and non-negative"):
        kronecker_penalty_and_scales(np.array([-1.0]), omega_sq, omega_sq)
    with pytest.raises(ValueError, match="shape"):
        relative_error(np.ones(3), np.ones(4))


# ---------------------------------------------------------------- threads and experiments


def test_solve_structured_runs_single_threaded():
    # The solver, not only its argument check, runs with BLAS limited to one thread: a penalty
    # without closed forms is evaluated inside the solver and records the limit it sees.
    seen = []

    def omega(z):
        seen.append(max(info["num_threads"] for info in threadpool_info()))
        return (z - 1.0) ** 2

    numerical = penalty(omega, "sq")  # validated here, outside the solver
    A = np.random.default_rng(0).standard_normal((3, 6))
    y = A @ np.arange(6.0)
    with threadpool_limits(limits=2), pytest.warns(ConvergenceWarning, match="max_iter=3"):
        seen.clear()
        solve_structured(A, y, numerical, structure="diagonal", max_iter=3)
        assert max(info["num_threads"] for info in threadpool_info()) == 2
    assert seen and max(seen) == 1


def test_recovery_trials_on_small_instances():
    settings = SparseRecoverySettings(m=12, scale=30.0, trials=2, p=20, k=2, seed=3)
    trials = sparse_recovery_trials(settings, {"ω2": omega_abs})
    assert set(trials.errors) == {"min_l2", "l1", "ω2"} and trials.top_energy == {}
    for t in range(2):
        A, y, theta_star = sparse_recovery_instance(20, 2, 12, 30.0, seed=3 + t)
        assert trials.errors["min_l2"][t] == relative_error(min_norm_interpolator(A, y), theta_star)
    assert trials.median("ω2") < trials.median("min_l2")
    assert "l1" not in sparse_recovery_trials(settings, {"ω2": omega_abs}, l1=False).errors

    sensing = MatrixSensingSettings(n=14, scale=10.0, trials=1, shape=(4, 4), rank=1)
    trials = matrix_sensing_trials(sensing, {"K": (omega_sq, omega_sq)}, nuclear=False)
    assert set(trials.errors) == {"min_l2", "K"} and set(trials.top_energy) == {"min_l2", "K"}
    A, y, _ = matrix_sensing_instance((4, 4), 1, 14, 10.0, seed=0)
    s = np.linalg.svd(min_norm_interpolator(A, y).reshape(4, 4), compute_uv=False)
    assert trials.top_energy["min_l2"][0] == pytest.approx(s[0] ** 2 / np.sum(s**2))
    for bad, message in ((dict(m=0), "m must"), (dict(k=70), "k must"), (dict(scale=-1), "scale")):
        with pytest.raises(ValueError, match=message):
            SparseRecoverySettings(**{"m": 10, "scale": 1.0, "trials": 1, **bad})
    with pytest.raises(ValueError, match="rank"):
        MatrixSensingSettings(n=10, scale=1.0, trials=1, shape=(2, 3), rank=3)


# ---------------------------------------------------------------- best start, convergence


def test_solve_structured_keeps_the_best_start():
    # An instance whose starts end at different stationary points (1.2 % apart).
    A, y, _ = sparse_recovery_instance(20, 3, 9, 3.0, seed=11)
    sol = solve_structured(A, y, omega_abs, structure="diagonal", restarts=4, seed=11)
    starts = np.array(sol.start_objectives)
    assert starts.max() > starts.min() * (1 + 1e-3)  # the choice matters here
    assert sol.objective == starts.min()
    assert sol.objective == pytest.approx(
        structured_penalty(sol.theta, omega_abs, structure="diagonal").value, rel=1e-12)


def test_solve_joint_structured_keeps_the_best_restart():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 6))
    y = A @ (3 * rng.standard_normal(6) * (rng.random(6) < 0.4))
    joint = solve_joint_structured(A, y, omega_abs, structure="kronecker", shape=(2, 3),
                                   restarts=4, seed=0)
    finals = np.array(joint.restart_objectives)
    assert finals.max() > finals.min() * (1 + 1e-2)  # one restart ends 5 % higher
    assert joint.objective == pytest.approx(finals.min(), rel=1e-9)
    assert joint.constraint_residual < 1e-10


def test_unconverged_solvers_warn():
    A, y, _ = sparse_recovery_instance(20, 3, 9, 3.0, seed=11)
    with pytest.warns(ConvergenceWarning, match="solve_structured.*max_iter=2"):
        sol = solve_structured(A, y, omega_abs, structure="diagonal", max_iter=2)
    assert not sol.converged
    M, b, _ = matrix_sensing_instance((4, 4), 1, 10, 1.0, seed=0)
    with pytest.warns(ConvergenceWarning, match="min_nuclear_norm_interpolator"):
        nuc = min_nuclear_norm_interpolator(M, b, shape=(4, 4), max_iter=2)
    assert not nuc.converged
    with pytest.warns(ConvergenceWarning, match="solve_joint_structured: L-BFGS-B stopped"):
        joint = solve_joint_structured(A[:3], A[:3] @ np.ones(20), omega_sq,
                                       structure="diagonal", restarts=1, max_iter=2)
    assert not joint.converged
    with pytest.warns(ConvergenceWarning, match="kronecker_penalty_and_scales"):
        kronecker_penalty_and_scales(np.array([0.5, 3.0]), omega_sq, omega_sq, max_iter=1)
    assert issubclass(ConvergenceWarning, UserWarning)


def test_converged_solvers_do_not_warn():
    A, y, _ = sparse_recovery_instance(20, 3, 9, 3.0, seed=11)
    M, b, _ = matrix_sensing_instance((4, 4), 1, 10, 1.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert solve_structured(A, y, omega_abs, structure="diagonal").converged
        assert min_nuclear_norm_interpolator(M, b, shape=(4, 4)).converged
        kronecker_penalty_and_scales(np.array([0.5, 3.0]), omega_sq, omega_abs)


def test_kronecker_scales_need_at_least_one_sweep():
    # max_iter=0 used to return a = b = 1 (no adaptation) without a word.
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_iter"):
            kronecker_penalty_and_scales(np.array([3.0]), omega_sq, omega_sq, max_iter=bad)
    with pytest.raises(ValueError, match="tol"):
        kronecker_penalty_and_scales(np.array([3.0]), omega_sq, omega_sq, tol=np.nan)
    result = kronecker_penalty_and_scales(np.array([3.0]), omega_sq, omega_sq)
    h, a, b = result  # still unpacks like the tuple it was
    assert result[0] is result.value and a[0] > 1 and b[0] > 1


def test_nuclear_norm_with_as_many_measurements_as_unknowns():
    # One feasible point: it is the answer (the projection used to fail on a non-square factor).
    M, b, Theta = matrix_sensing_instance((3, 3), 1, 12, 1.0, seed=2)
    sol = min_nuclear_norm_interpolator(M, b, shape=(3, 3))
    np.testing.assert_allclose(sol.matrix, Theta, atol=1e-10)
    assert sol.converged and sol.iterations == 0
    theta = solve_structured(M, b, omega_sq, structure="kronecker", shape=(3, 3)).theta
    np.testing.assert_allclose(theta, Theta.ravel(), atol=1e-8)
