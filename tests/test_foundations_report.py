"""Figures, tables and drivers of chapters 1-3 (atf_lite.experiments.foundations_report)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from atf_lite.alignment import kernel_alignment, label_kernel  # noqa: E402
from atf_lite.experiments.foundations_report import (  # noqa: E402
    brute_force_rows,
    feature_gradient_descent,
    fit_power_law,
    format_brute_force_table,
    format_difficulty_table,
    format_width_sweep,
    label_weight_curve,
    plot_brute_force,
    plot_descent,
    plot_difficulty_kinds,
    plot_effective_loglog,
    plot_effective_penalties,
    plot_penalties,
    plot_width_sweep,
)
from atf_lite.experiments.problems import random_instance  # noqa: E402
from atf_lite.linalg import min_norm_interpolator  # noqa: E402
from atf_lite.networks.linear import LinearizationGap, train_linearized  # noqa: E402
from atf_lite.networks.mlp import mlp  # noqa: E402
from atf_lite.networks.tangent import tangent_features  # noqa: E402
from atf_lite.theory.penalties import omega_abs, omega_sq  # noqa: E402
from atf_lite.theory.theorem1 import theorem1_solution  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _one_image(fig):
    assert len(plt.get_fignums()) == 1
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel()


# ---- chapter 1 -------------------------------------------------------------------------------


def test_feature_gradient_descent_matches_the_linearised_network():
    torch.manual_seed(0)
    X, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    model = mlp(3, 8, 1, seed=0, dtype=torch.float64)
    Phi = tangent_features(X, model).numpy()
    with torch.no_grad():
        r = (y - model(X)[:, 0]).numpy()
    beta_hat = min_norm_interpolator(Phi, r)
    lr = 0.5 / np.linalg.eigvalsh(Phi @ Phi.T)[-1]
    for momentum in (0.0, 0.5):
        ours = feature_gradient_descent(Phi, r, steps=20, lr=lr, momentum=momentum,
                                        reference=beta_hat)
        torch_run = train_linearized(X, y, model, steps=20, lr=lr, momentum=momentum,
                                     reference=torch.from_numpy(beta_hat))
        np.testing.assert_allclose(ours.distances, torch_run.distances, rtol=1e-9)
        np.testing.assert_allclose(ours.losses, torch_run.losses, rtol=1e-9)
        np.testing.assert_allclose(ours.beta, torch_run.delta.numpy(), rtol=1e-9, atol=1e-12)


def test_feature_gradient_descent_converges_to_the_minimum_norm_solution():
    Phi, y = random_instance(5, 12, 2.0, seed=3)
    beta_hat = min_norm_interpolator(Phi, y)
    lam = np.linalg.eigvalsh(Phi @ Phi.T)
    run = feature_gradient_descent(Phi, y, steps=3000, lr=1 / lam[-1], reference=beta_hat)
    assert run.distances[-1] < 1e-8 and run.losses.shape == (3001,)
    no_reference = feature_gradient_descent(Phi, y, steps=3, lr=1 / lam[-1])
    assert no_reference.distances is None


def test_feature_gradient_descent_rejects_bad_input_and_reports_divergence():
    Phi, y = random_instance(4, 9, 1.0, seed=0)
    with pytest.raises(ValueError, match="lr"):
        feature_gradient_descent(Phi, y, steps=3, lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        feature_gradient_descent(Phi, y, steps=3, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="steps"):
        feature_gradient_descent(Phi, y, steps=-1, lr=0.1)
    with pytest.raises(ValueError, match="reference"):
        feature_gradient_descent(Phi, y, steps=3, lr=0.1, reference=np.zeros(9))
    with pytest.raises(FloatingPointError, match="lr"):
        feature_gradient_descent(Phi, y, steps=5000, lr=1e3)


def test_fit_power_law_recovers_an_exact_power():
    x = np.array([1.0, 2.0, 8.0, 32.0])
    fit = fit_power_law(x, 3.0 * x**-0.5)
    assert fit.exponent == pytest.approx(-0.5) and fit.prefactor == pytest.approx(3.0)
    assert fit.max_deviation < 1e-12
    assert fit.predict(4.0) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1.0, 2.0], [1.0])


GAPS = [LinearizationGap(0.5 / k, 0.4 / k**2, 1.2 / k, 1.0, 2.0) for k in (1, 2, 4)]


def test_width_sweep_table_and_figure():
    table = format_width_sweep([16, 64, 256], GAPS)
    assert table.splitlines()[1].split()[0] == "16" and len(table.splitlines()) == 4
    with pytest.raises(ValueError, match="same length"):
        format_width_sweep([16], GAPS)
    fig = plot_width_sweep([16, 64, 256], GAPS)
    _one_image(fig)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert "slope -0.50" in labels[0] and "slope -1.00" in labels[1]


def test_plot_descent():
    fig = plot_descent({"a": np.geomspace(1, 1e-3, 10), "b": np.ones(10)}, tolerance=1e-3)
    _one_image(fig)
    assert len(fig.axes[0].get_lines()) == 3


# ---- chapter 2 -------------------------------------------------------------------------------


def test_penalty_figures():
    penalties = {r"$\omega_1$": omega_sq, r"$\omega_2$": omega_abs}
    _one_image(plot_penalties(np.linspace(0, 3, 31), penalties, mark=1.4))
    plt.close("all")
    fig = plot_effective_penalties(np.linspace(0, 5, 21), penalties, lazy_threshold=0.7)
    _one_image(fig)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[1] == r"$\tilde\omega_1$"
    plt.close("all")
    _one_image(plot_effective_loglog(np.geomspace(1e-2, 1e2, 21), penalties))


# ---- chapter 3 -------------------------------------------------------------------------------


def test_brute_force_rows_table_and_figure():
    instances = [random_instance(3, 6, norm, seed=seed) for seed, norm in enumerate((0.3, 3.0))]
    rows = brute_force_rows(instances, omega_sq, restarts=1)
    assert [r.n for r in rows] == [3, 3] and all(r.p == 6 for r in rows)
    for r in rows:
        assert abs(r.objective) < 1e-6 and r.kernel < 1e-5 and r.residual < 1e-10
        assert r.closed_form == pytest.approx(theorem1_solution(*instances[0 if r.norm < 1 else 1],
                                                                 omega_sq).objective)
    table = format_brute_force_table(rows)
    assert len(table.splitlines()) == 3
    _one_image(plot_brute_force({r"$\omega_1$": rows}))


def test_label_weight_curve_matches_theorem1():
    Phi, y = random_instance(6, 15, 2.0, seed=4)
    K0 = Phi @ Phi.T
    scales = np.array([0.5, 1.0, 4.0])
    curve = label_weight_curve(K0, y, omega_sq, scales)
    for t, norm, s, weight, aligned, centred in zip(scales, curve.norm, curve.s, curve.weight,
                                                    curve.alignment, curve.centred):
        exact = theorem1_solution(Phi, t * y, omega_sq)
        K = exact.kernel(Phi)
        assert norm == pytest.approx(exact.norm, rel=1e-10)
        assert s == pytest.approx(exact.s, rel=1e-10)
        assert weight == pytest.approx(np.trace(K - K0), rel=1e-8)
        assert aligned == pytest.approx(kernel_alignment(K, label_kernel(y)), rel=1e-10)
        assert centred == pytest.approx(
            kernel_alignment(K, label_kernel(y), centered=True), rel=1e-10)
    # Same direction, larger scale: the label weight and the alignment grow.
    assert np.all(np.diff(curve.weight) > 0) and np.all(np.diff(curve.alignment) > 0)
    assert curve.initial_alignment < curve.alignment[0]
    with pytest.raises(ValueError, match="K0"):
        label_weight_curve(K0[:3, :3], y, omega_sq)
    with pytest.raises(ValueError, match="scales"):
        label_weight_curve(K0, y, omega_sq, [0.0])


def test_difficulty_table_and_figure():
    Phi, _ = random_instance(6, 15, 1.0, seed=5)
    rng = np.random.default_rng(0)
    K0 = Phi @ Phi.T
    scales = np.array([0.5, 1.0, 2.0])
    targets = {"a": rng.standard_normal(6), "b": rng.standard_normal(6)}
    curves = {label: {name: label_weight_curve(K0, y, omega, scales) for name, y in targets.items()}
              for label, omega in (("omega_1", omega_sq), ("omega_2", omega_abs))}
    table = format_difficulty_table(curves, index=1)
    assert len(table.splitlines()) == 3 and "omega_2" in table.splitlines()[0]
    fig = plot_difficulty_kinds(curves["omega_1"], index=1)
    _one_image(fig)
    assert "t=1" in fig.axes[0].get_legend().get_texts()[-1].get_text()


# ---- argument checks -------------------------------------------------------------------------


def _bad_report_calls():
    penalties = {"w": omega_sq}
    Phi, _ = random_instance(4, 8, 1.0, seed=1)
    curves = {"a": label_weight_curve(Phi @ Phi.T, np.array([1.0, -1.0, 2.0, 0.5]), omega_sq,
                                      [0.5, 1.0])}
    return [
        ("widths", lambda: format_width_sweep([16, 0, 256], GAPS)),
        ("gaps", lambda: format_width_sweep([16, 64, 256], [*GAPS[:2], "gap"])),
        ("widths", lambda: plot_width_sweep("16", GAPS)),
        ("distances", lambda: plot_descent({})),
        ("tolerance", lambda: plot_descent({"a": np.ones(3)}, tolerance=np.nan)),
        ("penalties", lambda: plot_penalties(np.linspace(0, 3, 5), "omega")),
        ("penalties", lambda: plot_effective_penalties(np.linspace(0, 3, 5), {"w": 3.0})),
        ("lazy_threshold", lambda: plot_effective_penalties(np.linspace(0, 3, 5), penalties,
                                                            lazy_threshold="0.7")),
        ("mark", lambda: plot_penalties(np.linspace(0, 3, 5), penalties, mark=True)),
        ("penalties", lambda: plot_effective_loglog(np.geomspace(1, 2, 5), {})),
        ("rows", lambda: format_brute_force_table(None)),
        ("rows", lambda: plot_brute_force({"a": ["row"]})),
        ("floor", lambda: plot_brute_force(
            {"a": brute_force_rows([random_instance(3, 6, 1.0, seed=0)], omega_sq, restarts=1)},
            floor=0.0)),
        ("curves", lambda: format_difficulty_table({"w": {"a": 3}})),
        ("curves", lambda: format_difficulty_table({"w": curves, "v": {"b": curves["a"]}})),
        ("index", lambda: format_difficulty_table({"w": curves}, index=2)),
        ("index", lambda: plot_difficulty_kinds(curves, index=1.0)),
        ("curves", lambda: plot_difficulty_kinds("curves", index=0)),
    ]


@pytest.mark.parametrize("case", range(len(_bad_report_calls())))
def test_report_functions_name_a_bad_argument(case):
    name, thunk = _bad_report_calls()[case]
    with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
        thunk()
    assert not plt.get_fignums(), "no figure is left open by a refused call"


def test_negative_index_counts_from_the_end():
    Phi, _ = random_instance(4, 8, 1.0, seed=1)
    curves = {"a": label_weight_curve(Phi @ Phi.T, np.array([1.0, -1.0, 2.0, 0.5]), omega_sq,
                                      [0.5, 1.0])}
    assert format_difficulty_table({"w": curves}, index=-1) == format_difficulty_table(
        {"w": curves}, index=1)
