import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar

from atf_lite.theory.effective import (
    adaptation_scale,
    effective_penalty,
    effective_penalty_and_scale,
)
from atf_lite.theory.penalties import (
    LAZY_THRESHOLD_ABS,
    Penalty,
    omega_abs,
    omega_sq,
    oplus,
    penalty,
)

OMEGA_3 = oplus(omega_sq, omega_abs)
# The same functions without closed-form hooks: they exercise the numerical minimisation.
SQ_NUMERIC = penalty(lambda z: (z - 1.0) ** 2, "sq numeric")
ABS_NUMERIC = penalty(lambda z: np.abs(z - 1.0), "abs numeric", smooth=False)
V_GRID = np.concatenate([np.geomspace(1e-5, 1e4, 300), np.linspace(0.69, 0.72, 61)])


def brute_force_effective(omega, v):
    """Independent reference: bounded Brent on a fine grid bracket over log z ∈ [0, log(4v+4)]."""
    t = np.linspace(0.0, np.log(4 * v + 4), 20001)
    f = omega(np.exp(t)) + v**2 * np.exp(-2 * t)
    k = int(np.argmin(f))
    lo, hi = t[max(k - 1, 0)], t[min(k + 1, t.size - 1)]
    res = minimize_scalar(
        lambda x: omega(np.exp(x)) + v**2 * np.exp(-2 * x),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-14},
    )
    return min(res.fun, f.min())


# ---------------------------------------------------------------- closed forms


def test_omega_sq_scale_solves_the_quartic():
    v = V_GRID
    s = adaptation_scale(v, omega_sq)
    # Independent check with numpy's polynomial roots of z⁴ − z³ − v² for a few v.
    for vi, si in zip(v[::37], s[::37], strict=True):
        roots = np.roots([1.0, -1.0, 0.0, 0.0, -(vi**2)])
        real = roots[np.abs(roots.imag) < 1e-9].real
        assert si == pytest.approx(real[real >= 1].max(), rel=1e-10)
    value = effective_penalty(v, omega_sq)
    np.testing.assert_allclose(value, (s - 1) ** 2 + v**2 / s**2, rtol=1e-13)


def test_omega_sq_asymptotics():
    # From s⁴ − s³ = v²: s = √v + 1/4 + 3/(32√v) + O(1/v) and ω̃1 = (s − 1)(2s − 1)
    # = 2v − 2√v + 3/4 + O(1/√v): linear growth.
    v = np.array([1e2, 1e4, 1e6])
    r = np.sqrt(v)
    assert np.all(np.abs(adaptation_scale(v, omega_sq) - (r + 0.25 + 3 / (32 * r))) < 1 / v)
    assert np.all(np.abs(effective_penalty(v, omega_sq) - (2 * v - 2 * r + 0.75)) < 1 / r)


def test_omega_abs_closed_form_and_lazy_threshold():
    v = np.array([0.0, 0.1, 0.5, LAZY_THRESHOLD_ABS, 0.8, 2.0, 10.0])
    value, s = effective_penalty_and_scale(v, omega_abs)
    lazy = v <= LAZY_THRESHOLD_ABS
    assert np.all(s[lazy] == 1.0)
    assert np.all(s[~lazy] > 1.0)
    np.testing.assert_allclose(value[lazy], v[lazy] ** 2)
    np.testing.assert_allclose(s[~lazy], (2 * v[~lazy] ** 2) ** (1 / 3), rtol=1e-14)
    np.testing.assert_allclose(value[~lazy], 1.5 * (2 * v[~lazy] ** 2) ** (1 / 3) - 1, rtol=1e-14)
    just_above = np.nextafter(LAZY_THRESHOLD_ABS, 1.0)
    assert adaptation_scale(LAZY_THRESHOLD_ABS, omega_abs) == 1.0
    assert adaptation_scale(just_above, omega_abs) > 1.0


@pytest.mark.parametrize(
    ("numeric", "closed"), [(SQ_NUMERIC, omega_sq), (ABS_NUMERIC, omega_abs)], ids=["sq", "abs"]
)
def test_numerical_path_matches_closed_forms(numeric, closed):
    value, s = effective_penalty_and_scale(V_GRID, numeric)
    value0, s0 = effective_penalty_and_scale(V_GRID, closed)
    np.testing.assert_allclose(value, value0, rtol=1e-12)
    np.testing.assert_allclose(s, s0, rtol=1e-8)


def test_numerical_path_is_exactly_lazy_for_abs():
    v = np.linspace(0.0, 0.7, 15)
    assert np.all(adaptation_scale(v, ABS_NUMERIC) == 1.0)
    assert np.all(adaptation_scale(np.array([0.72, 1.0]), ABS_NUMERIC) > 1.0)


@pytest.mark.parametrize("omega", [omega_sq, omega_abs, OMEGA_3], ids=["sq", "abs", "sq+abs"])
def test_against_dense_brute_force(omega):
    v = np.array([0.05, 0.4, 0.9, 1.7, 3.3, 5.0, 12.0])
    value = effective_penalty(v, omega)
    reference = np.array([brute_force_effective(omega, vi) for vi in v])
    np.testing.assert_allclose(value, reference, rtol=1e-8)


# ---------------------------------------------------------------- oplus


def test_oplus_matches_its_definition():
    z = np.array([0.0, 0.2, 0.7, 1.0, 1.2, 1.5, 2.0, 3.7, 9.0])
    got = OMEGA_3(z)
    for zi, gi in zip(z, got, strict=True):
        if zi == 0.0:
            # One factor must vanish; the cheaper one to send to 0 costs min(ω_a(0), ω_b(0)) = 1.
            assert gi == 1.0
            continue
        # Brute force over u on a dense log grid, then Brent: inf_u (u − 1)² + |z/u − 1|.  The
        # kink of the second term (u = z) and u = 1 are added as candidates.
        def cost(u, zi=zi):
            return (u - 1) ** 2 + np.abs(zi / u - 1)

        logu = np.linspace(-4, 4, 40001)
        f = cost(np.exp(logu))
        k = int(np.argmin(f))
        res = minimize_scalar(
            lambda x: cost(np.exp(x)),
            bounds=(logu[k - 1], logu[k + 1]),
            method="bounded",
            options={"xatol": 1e-14},
        )
        reference = min(res.fun, f.min(), cost(zi), cost(1.0))
        assert gi == pytest.approx(reference, rel=1e-10, abs=1e-15)


def test_oplus_closed_form_on_both_regimes():
    # Derived in chapter 2: near 1 the square is the cheaper factor, ω3(z) = (z − 1)², until
    # z = (1 + √3)/2; beyond, u solves 2u²(u − 1) = z and ω3 = (u − 1)² + z/u − 1.
    z_small = np.array([0.3, 0.8, 1.1, 1.3])
    np.testing.assert_allclose(OMEGA_3(z_small), (z_small - 1) ** 2, rtol=1e-12)
    for zi in (1.5, 2.0, 4.0):
        roots = np.roots([2.0, -2.0, 0.0, -zi])
        u = roots[np.abs(roots.imag) < 1e-12].real.max()
        assert OMEGA_3(zi) == pytest.approx((u - 1) ** 2 + zi / u - 1, rel=1e-12)


def test_effective_penalty_of_oplus_against_two_factor_brute_force():
    # ω̃3(v) = inf_{u, w ≥ 1} (u − 1)² + (w − 1) + v² / (uw)²: a 2-D smooth problem in log u,
    # log w solved by L-BFGS-B from several starts.
    for v in (0.3, 1.0, 2.5, 5.0):
        def f(x, v=v):
            u, w = np.exp(x)
            return (u - 1) ** 2 + (w - 1) + v**2 / (u * w) ** 2

        best = min(
            minimize(f, x0, bounds=[(0, 10), (0, 10)], method="L-BFGS-B",
                     options={"ftol": 1e-16, "gtol": 1e-13}).fun
            for x0 in ([0.0, 0.0], [0.5, 0.5], [1.0, 0.1], [0.1, 1.0])
        )
        assert effective_penalty(v, OMEGA_3) == pytest.approx(best, rel=1e-8)


# ---------------------------------------------------------------- properties

V_ARRAYS = st.lists(
    st.floats(min_value=0.0, max_value=50.0, allow_nan=False), min_size=1, max_size=12
)


@pytest.mark.parametrize("omega", [omega_sq, omega_abs, OMEGA_3], ids=["sq", "abs", "sq+abs"])
@settings(max_examples=25, deadline=None)
@given(v=V_ARRAYS)
def test_effective_penalty_properties(omega, v):
    v = np.sort(np.asarray(v))
    value, s = effective_penalty_and_scale(v, omega)
    assert np.all(value >= 0)
    assert np.all(value <= v**2 * (1 + 1e-12))
    assert np.all(s >= 1.0)
    # Non-decreasing up to the relative accuracy of the numerical minimisation.
    assert np.all(np.diff(value) >= -1e-12 * value[1:])
    assert np.all(np.diff(s) >= -1e-9 * s[1:])


# ---------------------------------------------------------------- interface and errors


def test_scalars_and_shapes():
    assert isinstance(effective_penalty(2.0, omega_sq), float)
    assert isinstance(adaptation_scale(2, omega_abs), float)
    assert effective_penalty(0.0, omega_sq) == 0.0
    assert adaptation_scale(0.0, OMEGA_3) == 1.0
    v = np.array([[0.0, 1.0], [2.0, 3.0]])
    value, s = effective_penalty_and_scale(v, OMEGA_3)
    assert value.shape == s.shape == (2, 2)
    np.testing.assert_allclose(value.ravel(), effective_penalty(v.ravel(), OMEGA_3))
    assert isinstance(omega_sq(2.0), float)
    np.testing.assert_array_equal(omega_abs(np.array([0.5, 1.0, 3.0])), [0.5, 0.0, 2.0])


def test_grad_hooks_and_finite_differences_agree():
    z = np.array([0.3, 0.9, 1.5, 4.0])
    np.testing.assert_allclose(omega_sq.grad(z), SQ_NUMERIC.grad(z), rtol=1e-8)
    np.testing.assert_allclose(omega_abs.grad(z), ABS_NUMERIC.grad(z), rtol=1e-8)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.array([1.0, -0.5]), np.inf])
def test_bad_v_raises(bad):
    with pytest.raises(ValueError, match="v"):
        effective_penalty(bad, omega_sq)
    with pytest.raises(ValueError, match="v"):
        adaptation_scale(bad, OMEGA_3)


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda z: (z - 2.0) ** 2, "minimised at 1"),
        (lambda z: (z - 1.0) ** 2 - 0.1, "non-negative"),
        (lambda z: np.where(z < 1, (z - 1.0) ** 2, np.sin(3 * (z - 1.0)) ** 2), "non-decreasing"),
        (lambda z: np.abs(z - 1.0) * (z > 0.5), "non-increasing"),
        (lambda z: np.where(z > 2, np.nan, np.abs(z - 1.0)), "NaN"),
    ],
)
def test_invalid_penalties_are_rejected(func, message):
    with pytest.raises(ValueError, match=message):
        penalty(func, "omega")
    with pytest.raises(ValueError, match=message):
        effective_penalty(1.0, func)


def test_penalty_accepts_valid_callables():
    import math

    scalar_only = penalty(lambda z: math.log(z) ** 2 if z > 0 else math.inf, "log^2")
    assert isinstance(scalar_only, Penalty)
    np.testing.assert_allclose(scalar_only(np.array([1.0, np.e])), [0.0, 1.0])
    with pytest.raises(TypeError, match="callable"):
        penalty(3.0)
    with pytest.raises(ValueError, match="z"):
        omega_sq(-1.0)


def test_slowly_growing_penalty_is_reported():
    bounded = penalty(lambda z: np.minimum(np.abs(z - 1.0), 1.0), "bounded")
    with pytest.raises(ValueError, match="grows too slowly"):
        effective_penalty(3.0, bounded)
