"""Smoke tests of the figures and tables of chapters 4 and 5: they draw what they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from atf_lite.experiments.recovery import RecoveryTrials  # noqa: E402
from atf_lite.experiments.recovery_report import (  # noqa: E402
    format_recovery_table,
    plot_recovery_curves,
    plot_singular_value_penalties,
    plot_spectra,
)
from atf_lite.theory.effective import effective_penalty  # noqa: E402
from atf_lite.theory.penalties import omega_sq  # noqa: E402


def _trials(errors: dict[str, list[float]]) -> RecoveryTrials:
    """A result with the given per-trial errors (the other fields are not drawn)."""
    return RecoveryTrials({k: np.array(v) for k, v in errors.items()}, {}, {}, {}, {}, {})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_table_prints_medians_and_leaves_missing_methods_blank():
    rows = {30.0: _trials({"min_l2": [0.7, 0.8, 0.9], "l1": [0.0, 0.0, 0.1], "ω2": [0.01, 0.02,
                                                                                      0.5]}),
            0.3: _trials({"min_l2": [0.75, 0.75, 0.75], "ω2": [0.7, 0.75, 0.8]})}
    table = format_recovery_table(rows, columns={"min_l2": "min-ℓ2", "l1": "ℓ1", "ω2": "ω2"})
    header, first, second = table.splitlines()
    assert header.split() == ["scale", "min-ℓ2", "ℓ1", "ω2"]
    assert first.split() == ["30", "0.800", "0.000", "0.020"]
    assert second.split() == ["0.3", "0.750", "0.750"]  # no ℓ1 in this row
    column = first.index("0.000")
    assert second[column:column + 5] == " " * 5 and len(second) == len(first)
    # By default every method is a column, headed by its name; other row labels and digits.
    default = format_recovery_table({"n = 120": rows[30.0]}, row_name="setting", digits=2)
    assert default.splitlines()[0].split() == ["setting", "min_l2", "l1", "ω2"]
    assert default.splitlines()[1].split() == ["n", "=", "120", "0.80", "0.00", "0.02"]
    with pytest.raises(ValueError, match="rows"):
        format_recovery_table({})
    with pytest.raises(ValueError, match="columns"):
        format_recovery_table(rows, columns={})


def test_penalty_figure_draws_the_six_curves():
    fig = plot_singular_value_penalties(v_max=4.0, v_log=(1e-1, 1e3))
    linear, loglog = fig.axes
    lines = _lines(linear)
    assert len(lines) == 6 and len(loglog.get_lines()) == 6
    omega1 = lines[r"$\tilde\omega_1$ (one factor)"]
    v, value = omega1.get_data()
    assert v[0] == 0.0 and v[-1] == 4.0
    np.testing.assert_allclose(value, effective_penalty(v, omega_sq))
    assert loglog.get_xscale() == "log" and loglog.get_yscale() == "log"
    assert linear.get_legend() is not None and linear.get_xlabel() and loglog.get_ylabel()
    for bad in (dict(v_max=0.0), dict(v_log=(0.0, 1.0)), dict(v_log=(2.0, 1.0))):
        with pytest.raises(ValueError, match="v_max|v_log"):
            plot_singular_value_penalties(**bad)


def test_recovery_curves_plot_medians_and_the_scale_invariant_baseline():
    by_count = {20: _trials({"min_l2": [0.8, 0.9], "l1": [0.3, 0.5], "ω2": [0.2, 0.4]}),
                10: _trials({"min_l2": [0.9, 1.0], "l1": [0.8, 0.8], "ω2": [0.6, 0.8]})}
    by_scale = {1.0: _trials({"min_l2": [0.8, 0.9], "ω2": [0.8, 0.9]}),
                0.1: _trials({"min_l2": [0.8, 0.9], "ω2": [0.85, 0.85]})}
    fig = plot_recovery_curves(by_count, by_scale, fixed_scale=30.0, fixed_count=20,
                               labels={"ω2": "diagonal adaptive, ω2"})
    left, right = fig.axes
    lines = _lines(left)
    assert set(lines) == {"min-ℓ2 (fixed features)", "min-ℓ1", "diagonal adaptive, ω2"}
    x, y = lines["diagonal adaptive, ω2"].get_data()
    np.testing.assert_array_equal(x, [10, 20])  # sorted by the number of measurements
    np.testing.assert_allclose(y, [0.7, 0.3])
    right_lines = _lines(right)
    baseline = right_lines["min-ℓ1 (scale invariant)"]
    np.testing.assert_allclose(baseline.get_ydata(), [0.4, 0.4])  # median of l1 at count 20
    np.testing.assert_allclose(right_lines["diagonal adaptive, ω2"].get_ydata(), [0.85, 0.85])
    assert right.get_xscale() == "log"
    assert left.get_title() == "scale 30" and right.get_title() == "$m$ = 20"
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["min-ℓ1 (scale invariant)"]
    with pytest.raises(ValueError, match="empty"):
        plot_recovery_curves({}, by_scale, fixed_scale=1.0, fixed_count=20)


def test_recovery_curves_draw_a_convex_method_present_at_every_scale_as_a_curve():
    by_count = {120: _trials({"min_l2": [0.85], "nuclear": [0.35], "Kronecker": [0.14]})}
    by_scale = {s: _trials({"min_l2": [0.85], "nuclear": [0.35], "Kronecker": [e]})
                for s, e in ((0.3, 0.84), (30.0, 0.14))}
    fig = plot_recovery_curves(by_count, by_scale, count_name="n", fixed_scale=30.0,
                               fixed_count=120, scale_label="scale σ")
    left, right = fig.axes
    assert set(_lines(right)) == {"min-ℓ2 (fixed features)", "min nuclear norm",
                                  "adaptive, Kronecker"}
    assert right.get_legend() is None and right.get_xlabel() == "scale σ"
    assert left.get_xlabel() == "number of measurements $n$"


def test_spectra_are_sorted_singular_values_floored():
    rng = np.random.default_rng(0)
    truth = 3.0 * np.outer(rng.standard_normal(4), rng.standard_normal(3))
    fig = plot_spectra({"truth": truth, "min_l2": rng.standard_normal((4, 3)),
                        "Kronecker": truth + 1e-6}, floor=1e-3)
    (ax,) = fig.axes
    lines = _lines(ax)
    assert set(lines) == {"truth", "min-ℓ2 (fixed features)", "adaptive, Kronecker"}
    index, sigma = lines["truth"].get_data()
    np.testing.assert_array_equal(index, [1, 2, 3])
    np.testing.assert_allclose(sigma, [np.linalg.norm(truth, 2), 1e-3, 1e-3])
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="matrix"):
        plot_spectra({"truth": np.ones(3)})
    with pytest.raises(ValueError, match="floor"):
        plot_spectra({"truth": truth}, floor=0.0)
    with pytest.raises(ValueError, match="empty"):
        plot_spectra({})


def _bad_report_calls():
    rows = {1.0: _trials({"min_l2": [0.8], "l1": [0.1]})}
    return [
        ("rows", lambda: format_recovery_table({1.0: "trials"})),
        ("row_name", lambda: format_recovery_table(rows, row_name=3)),
        ("columns", lambda: format_recovery_table(rows, columns="min_l2")),
        ("digits", lambda: format_recovery_table(rows, digits=2.5)),
        ("by_count", lambda: plot_recovery_curves("m", rows, fixed_scale=1.0, fixed_count=1)),
        ("fixed_scale", lambda: plot_recovery_curves(rows, rows, fixed_scale=np.inf,
                                                     fixed_count=1)),
        ("fixed_count", lambda: plot_recovery_curves(rows, rows, fixed_scale=1.0,
                                                     fixed_count="1")),
        ("labels", lambda: plot_recovery_curves(rows, rows, fixed_scale=1.0, fixed_count=1,
                                                labels={"l1": 3})),
        ("v_max", lambda: plot_singular_value_penalties(v_max=True)),
        ("v_log", lambda: plot_singular_value_penalties(v_log=(1e-2, np.nan))),
        ("v_log", lambda: plot_singular_value_penalties(v_log="0.5")),
        ("matrices", lambda: plot_spectra({"truth": np.full((2, 2), np.nan)})),
        ("floor", lambda: plot_spectra({"truth": np.eye(2)}, floor="0.1")),
    ]


@pytest.mark.parametrize("case", range(len(_bad_report_calls())))
def test_report_functions_name_a_bad_argument(case):
    name, thunk = _bad_report_calls()[case]
    with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
        thunk()
    assert not plt.get_fignums(), "no figure is left open by a refused call"
