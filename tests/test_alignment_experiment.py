"""The kernel-alignment experiment end to end (tiny sizes), its CLI, and its targets."""

import dataclasses
import importlib
import json

import numpy as np
import pytest
import torch

import atf_lite
from atf_lite.alignment import kernel_alignment as cosine
from atf_lite.alignment import label_kernel
from atf_lite.cache import cache_dir
from atf_lite.data import load_digits_pair
from atf_lite.experiments.alignment_checks import (
    StageProgress,
    TasksCoincideWarning,
    task_overlap,
)
from atf_lite.experiments.alignment_quadrature import quadrature_convergence, quadrature_table
from atf_lite.experiments.alignment_report import (
    binned_diagonal,
    diagonal_quarters,
    format_seed_table,
    plot_difficulty,
    plot_kernels,
    plot_quadrature_convergence,
    summary,
    theorem1_alignment,
)
from atf_lite.experiments.alignment_run import (
    TARGET_SEED_OFFSET,
    TASKS,
    AlignmentSettings,
    alignment_experiment,
    alignment_experiment_seeds,
    random_feature_targets,
)
from atf_lite.experiments.cli import main
from atf_lite.networks.functional import model_output
from atf_lite.networks.mlp import mlp
from atf_lite.networks.path_averaging import path_averaged_features
from atf_lite.networks.tangent import tangent_kernel

TINY = dict(n=40, width=16, epochs=30, nodes=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # Module-scoped (computed once); the autouse fixture isolates the cache per test, so point
    # this computation at its own directory explicitly.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATF_LITE_CACHE_DIR", str(tmp_path_factory.mktemp("tiny_cache")))
        return alignment_experiment(AlignmentSettings(seed=1, **TINY))


def test_public_surface_is_the_experiment():
    assert atf_lite.alignment_experiment is alignment_experiment
    assert atf_lite.AlignmentSettings is AlignmentSettings
    # The cosine similarity keeps the name kernel_alignment; the experiment does not share it.
    assert atf_lite.kernel_alignment is cosine


def test_random_feature_targets_project_labels_on_random_features():
    X, labels = load_digits_pair(n=120, seed=0)
    y = random_feature_targets(X, labels, width=32, seed=5, ridge=1e-10)
    assert y.dtype == torch.float32 and y.shape == (120,)
    # With a vanishing ridge the fit is the orthogonal projection of the labels onto the span
    # of the random network's last hidden layer.
    with torch.no_grad():
        F = mlp(64, 32, 2, seed=5)[:-1](X).double().numpy()
    coef = np.linalg.lstsq(F, labels.double().numpy(), rcond=None)[0]
    np.testing.assert_allclose(y.numpy(), F @ coef, atol=1e-4)
    # 32 features cannot reproduce 120 labels exactly, but they predict their signs well.
    assert 0 < np.mean((y.numpy() - labels.numpy()) ** 2) < 1
    assert np.mean(np.sign(y.numpy()) == labels.numpy()) > 0.9
    # A larger ridge shrinks the fit; another seed gives other features.
    shrunk = random_feature_targets(X, labels, width=32, seed=5, ridge=10.0)
    assert shrunk.norm() < y.norm()
    assert not torch.allclose(random_feature_targets(X, labels, width=32, seed=6), y)
    torch.testing.assert_close(random_feature_targets(X, labels, width=32, seed=5, ridge=1e-10), y)


def test_random_feature_targets_rejects_bad_input():
    X, labels = load_digits_pair(n=20)
    with pytest.raises(ValueError, match="labels must have shape"):
        random_feature_targets(X, labels[:10])
    with pytest.raises(ValueError, match="X must be"):
        random_feature_targets(X[0], labels)
    with pytest.raises(ValueError, match="ridge"):
        random_feature_targets(X, labels, ridge=0.0)
    with pytest.raises(ValueError, match="NaN"):
        random_feature_targets(X * np.nan, labels)
    with pytest.raises(ValueError, match="depth"):
        random_feature_targets(X, labels, depth=0)
    with pytest.raises(ValueError, match="width"):
        random_feature_targets(X, labels, width=0)


def test_experiment_quantities_agree_with_their_definitions(tiny):
    result = tiny
    n = TINY["n"]
    assert result.X.shape == (n, 64) and result.y.shape == (n,) and result.K0.shape == (n, n)
    X, labels = load_digits_pair(n=n, seed=1)
    torch.testing.assert_close(result.X, X)
    # By default the random network behind the targets has the trained network's width.
    assert result.settings.target_width == 16
    y = random_feature_targets(X, labels, width=16, seed=TARGET_SEED_OFFSET + 1)
    np.testing.assert_allclose(result.y, y.numpy())
    np.testing.assert_array_equal(result.order, np.argsort(result.y))
    model = result.model()
    regression, sign = result.tasks["regression"], result.tasks["sign"]
    np.testing.assert_allclose(regression.target, result.y)
    np.testing.assert_array_equal(sign.target, np.sign(result.y))
    for task in (regression, sign):
        # Both tasks start from the same initialisation, whose kernel is K0.
        for name, value in task.params0.items():
            torch.testing.assert_close(value, regression.params0[name])
        K0 = tangent_kernel(result.X, model, task.params0).double().numpy()
        np.testing.assert_allclose(result.K0, K0, rtol=1e-5, atol=1e-5)
        K_final = tangent_kernel(result.X, model, task.params1).double().numpy()
        np.testing.assert_allclose(task.K_final, K_final, rtol=1e-5, atol=1e-5)
        # K̄ is integrated exactly by default: the path identity holds to float64 round-off.
        path = path_averaged_features(result.X, model, task.params0, task.params1, rule="exact")
        Phi_bar, residual = path.Phi_bar, path.residual
        np.testing.assert_allclose(task.K_bar, (Phi_bar @ Phi_bar.T).numpy(), rtol=1e-10)
        assert task.identity_residual == pytest.approx(residual, rel=1e-3, abs=1e-15)
        assert task.identity_residual < 1e-12
        np.testing.assert_array_equal(task.pieces, path.pieces)
        # Outputs and kernels as stored.
        output1 = model_output(result.X, model, task.params1).double().numpy()
        np.testing.assert_allclose(task.output1, output1, rtol=1e-6)
        K_out = label_kernel(task.output1 - task.output0)
        np.testing.assert_allclose(task.K_output, K_out)
        assert task.alignment == pytest.approx(cosine(task.K_bar, K_out))
        assert task.alignment_initial == pytest.approx(cosine(result.K0, K_out))
        assert task.alignment_final == pytest.approx(cosine(task.K_final, K_out))
        assert task.alignment_change == pytest.approx(cosine(task.K_bar - result.K0, K_out))
        assert task.alignment_centered == pytest.approx(cosine(task.K_bar, K_out, centered=True))
        r = task.target - task.output0
        assert task.tangent_norm == pytest.approx(np.sqrt(r @ np.linalg.solve(result.K0, r)))
        a, b, relative = task.decomposition
        R = task.K_bar - a * result.K0 - b * K_out
        assert relative == pytest.approx(np.linalg.norm(R) / np.linalg.norm(task.K_bar))
        # Training reduced the loss; kernels are symmetric positive semi-definite.
        assert task.train_loss < task.losses[0] and len(task.losses) == TINY["epochs"]
        for K in (task.K_bar, task.K_final):
            np.testing.assert_allclose(K, K.T, rtol=1e-6, atol=1e-6)
            assert np.linalg.eigvalsh(K).min() > -1e-5 * np.abs(K).max()


def test_diagonal_quarters_and_summary(tiny):
    result = tiny
    order = np.argsort(np.abs(result.y))
    diagonal = np.diag(result.tasks["sign"].K_bar)
    small, large = diagonal_quarters(result)
    assert small == pytest.approx(diagonal[order[:10]].mean())
    assert large == pytest.approx(diagonal[order[-10:]].mean())
    with pytest.raises(ValueError, match="kernel"):
        diagonal_quarters(result, kernel="K9")
    with pytest.raises(ValueError, match="task"):
        diagonal_quarters(result, task="classification")
    payload = json.loads(json.dumps(summary(result)))
    for task in TASKS:
        entry = payload["tasks"][task]
        for key in ("alignment", "alignment_change", "identity_residual", "train_loss"):
            assert entry[key] == pytest.approx(getattr(result.tasks[task], key))
    assert payload["sign_aligns_more"] == (
        result.tasks["sign"].alignment > result.tasks["regression"].alignment
    )


def test_results_are_cached_and_deterministic():
    settings = AlignmentSettings(n=24, width=8, epochs=5, nodes=8, rule="gauss-legendre")
    first = alignment_experiment(settings)
    assert len(list(cache_dir().glob("kernel-alignment-*.pkl"))) == 1
    cached = alignment_experiment(settings)
    np.testing.assert_array_equal(cached.tasks["sign"].K_bar, first.tasks["sign"].K_bar)
    fresh = alignment_experiment(settings, use_cache=False)
    np.testing.assert_allclose(fresh.tasks["sign"].K_bar, first.tasks["sign"].K_bar, rtol=1e-5)
    assert fresh.tasks["regression"].losses.tolist() == first.tasks["regression"].losses.tolist()
    # A different setting is a different cache entry.
    alignment_experiment(dataclasses.replace(settings, nodes=4))
    assert len(list(cache_dir().glob("kernel-alignment-*.pkl"))) == 2


def test_settings_are_normalised_and_recorded():
    settings = AlignmentSettings(pair=[4, 9], width=np.int64(8), n=np.int64(30))
    assert settings.pair == (4, 9) and type(settings.width) is int and type(settings.n) is int
    # The target width defaults to the width; the record holds the fixed parts of the protocol.
    assert settings.target_width == 8
    assert settings.as_dict() == {
        "dataset": "digits", "pair": [4, 9], "n": 30, "width": 8, "depth": 2, "seed": 0,
        "epochs": 200, "lr": 0.1, "momentum": 0.9, "batch_size": 32, "nodes": 512,
        "rule": "exact", "ridge": 1e-3, "target_width": 8, "schedule": "cosine",
        "mnist_split": "test",
    }
    with pytest.raises(TypeError, match="AlignmentSettings"):
        alignment_experiment({"seed": 0})


def test_seed_table_reports_each_seed_and_mean(tiny):
    table = format_seed_table([tiny, tiny], metrics=("alignment",))
    value = tiny.tasks["sign"].alignment
    sign_row = [line for line in table.splitlines() if line.split()[:2] == ["alignment", "sign"]]
    assert len(sign_row) == 1
    assert sign_row[0].split()[2:] == [f"{value:.3f}", f"{value:.3f}", f"{value:.3f}", "±", "0.000"]
    with pytest.raises(ValueError, match="empty"):
        format_seed_table([])


def test_experiment_rejects_bad_settings():
    for kwargs, message in (
        (dict(dataset="cifar"), "dataset"),
        (dict(pair=(2,)), "pair"),
        (dict(n=0), "n must"),
        (dict(width=0), "width"),
        (dict(epochs=1.5), "epochs"),
        (dict(lr=-1.0), "lr"),
        (dict(momentum=1.0), "momentum"),
        (dict(rule="simpson"), "rule"),
        (dict(seed=-1), "seed"),
        (dict(batch_size=0), "batch_size"),
        (dict(target_width=0), "target_width"),
    ):
        with pytest.raises(ValueError, match=message):
            AlignmentSettings(**kwargs)
    with pytest.raises(ValueError, match="threads"):
        alignment_experiment(AlignmentSettings(), threads=0)
    with pytest.raises(ValueError, match="seeds"):
        alignment_experiment_seeds(AlignmentSettings(), [])


def test_cli_writes_figures_and_summary(tmp_path):
    out = tmp_path / "out"
    args = ["alignment", "--n", "30", "--width", "8", "--epochs", "5", "--nodes", "8"]
    args += ["--target-width", "4", "--pair", "4", "9", "--seed", "2", "--out", str(out)]
    assert main(args) == 0
    for name in ("kernels.png", "kernels.pdf", "difficulty.png", "difficulty.pdf"):
        assert (out / name).stat().st_size > 1000
    payload = json.loads((out / "summary.json").read_text())
    assert payload["command"].startswith("python -m atf_lite alignment --dataset digits")
    assert payload["config"]["pair"] == [4, 9] and payload["config"]["seed"] == 2
    assert payload["config"]["target_width"] == 4 and "--target-width 4" in payload["command"]
    X, labels = load_digits_pair(4, 9, n=30, seed=2)
    y = random_feature_targets(X, labels, width=4, seed=TARGET_SEED_OFFSET + 2)
    assert payload["targets"]["fraction_abs_y_below_half"] == pytest.approx(
        np.mean(np.abs(y.numpy()) < 0.5)
    )
    assert payload["n"] == 30
    for task in ("regression", "sign"):
        entry = payload["tasks"][task]
        assert set(entry) >= {"alignment", "alignment_change", "identity_residual", "train_loss"}
        assert -1 <= entry["alignment"] <= 1 and entry["train_loss"] >= 0


def test_cli_reports_missing_mnist(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code = main(["alignment", "--dataset", "mnist", "--mnist-root", str(missing)])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_mnist_end_to_end(mnist_dir, tmp_path):
    out = tmp_path / "mnist"
    args = ["alignment", "--dataset", "mnist", "--mnist-root", str(mnist_dir), "--n", "100"]
    assert main(args + ["--width", "32", "--epochs", "10", "--nodes", "32", "--out", str(out)]) == 0
    payload = json.loads((out / "summary.json").read_text())
    assert payload["n"] == 100 and payload["d"] == 784
    assert payload["config"]["dataset"] == "mnist"
    for task in ("regression", "sign"):
        entry = payload["tasks"][task]
        assert 0 < entry["alignment"] <= 1
        assert entry["identity_residual"] < 0.05
        assert np.isfinite(entry["train_loss"])


def test_quadrature_table_matches_direct_residuals(tiny):
    table = quadrature_table(tiny, task="regression", nodes=(4, 16), rules=("riemann",))
    run = tiny.tasks["regression"]
    direct = path_averaged_features(
        tiny.X, tiny.model(), run.params0, run.params1, nodes=16, rule="riemann"
    ).residual
    assert list(table) == ["riemann"] and table["riemann"][1] == pytest.approx(direct, rel=1e-5)
    assert table["riemann"][1] < table["riemann"][0]
    assert len(list(cache_dir().glob("quadrature-residuals-*.pkl"))) == 1
    with pytest.raises(ValueError, match="task"):
        quadrature_table(tiny, task="classification")
    with pytest.raises(ValueError, match="rule"):
        quadrature_table(tiny, rules=("simpson",))


def test_cli_defaults_to_the_exact_rule_and_records_it(tmp_path, capsys):
    out = tmp_path / "exact"
    args = ["alignment", "--n", "30", "--width", "8", "--epochs", "5", "--target-width", "4"]
    assert main(args + ["--out", str(out)]) == 0
    payload = json.loads((out / "summary.json").read_text())
    assert payload["config"]["rule"] == "exact" and "--rule exact" in payload["command"]
    assert "--nodes" not in payload["command"]
    for task in TASKS:
        entry = payload["tasks"][task]
        assert entry["identity_residual"] < 1e-12
        assert entry["pieces_per_input"]["max"] >= entry["pieces_per_input"]["median"] >= 1
    assert "pieces per input" in capsys.readouterr().out
    # A quadrature rule keeps its node count in the command.
    args += ["--rule", "trapezoid", "--nodes", "16", "--out", str(tmp_path / "trapezoid")]
    assert main(args) == 0
    payload = json.loads((tmp_path / "trapezoid" / "summary.json").read_text())
    assert "--rule trapezoid --nodes 16" in payload["command"]
    assert payload["tasks"]["sign"]["pieces_per_input"] is None


def test_coinciding_tasks_are_warned_about_and_recorded(tmp_path, capsys):
    # 30 digits and a random network of 32 units: its features fit the ±1 labels almost
    # exactly, so y is nearly ±1 and the two tasks nearly coincide.
    settings = AlignmentSettings(n=30, width=8, epochs=3, target_width=32)
    with pytest.warns(TasksCoincideWarning, match="target width"):
        result = alignment_experiment(settings)
    overlap = task_overlap(result.y, result.labels, 32)
    assert overlap["warning"] is not None and "0.8 n" in overlap["warning"]
    assert summary(result)["warnings"] == [overlap["warning"]]
    with pytest.warns(TasksCoincideWarning, match="seed 1"):
        alignment_experiment_seeds(settings, [1])
    out = tmp_path / "warned"
    args = ["alignment", "--n", "30", "--width", "8", "--epochs", "3", "--target-width", "32"]
    assert main(args + ["--out", str(out)]) == 0
    assert "warning: the regression and sign tasks nearly coincide" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["warnings"]
    # Separated tasks: no warning.
    y = np.linspace(-1.5, 1.5, 100)
    assert task_overlap(y, np.sign(y), 8)["warning"] is None
    assert task_overlap(np.sign(y), np.sign(y), 8)["fraction_abs_y_below_half"] == 0.0
    assert "|y| < 0.5" in task_overlap(np.sign(y), np.sign(y), 8)["warning"]


def test_progress_is_one_line_per_stage_when_stderr_is_not_a_terminal(capsys):
    # Under pytest standard error is captured, not a terminal.
    settings = AlignmentSettings(n=24, width=8, epochs=3, target_width=4)
    alignment_experiment(settings, progress=True, use_cache=False)
    lines = capsys.readouterr().err.strip().splitlines()
    stages = [line for line in lines if line.startswith("alignment digits 2-3 seed 0: ")]
    assert len(stages) == 5 and all(line.endswith(" s)") for line in stages)
    assert "\r" not in capsys.readouterr().err
    report = StageProgress(False, "quiet")
    assert not report.bars and not report.lines


def test_quadrature_convergence_against_the_exact_features(tiny):
    convergence = quadrature_convergence(tiny, task="sign", nodes=(4, 16), rules=("trapezoid",))
    run = tiny.tasks["sign"]
    model = tiny.model()
    exact = path_averaged_features(tiny.X, model, run.params0, run.params1, rule="exact")
    trapezoid = path_averaged_features(
        tiny.X, model, run.params0, run.params1, nodes=16, rule="trapezoid"
    )
    distance = np.linalg.norm(trapezoid.Phi_bar.double() - exact.Phi_bar) / np.linalg.norm(
        exact.Phi_bar
    )
    assert convergence.feature_errors["trapezoid"][1] == pytest.approx(distance, rel=1e-6)
    assert convergence.residuals["trapezoid"][1] == pytest.approx(trapezoid.residual, rel=1e-6)
    assert convergence.exact_residual < 1e-12 and convergence.nodes == (4, 16)
    np.testing.assert_array_equal(convergence.pieces, run.pieces)
    table = quadrature_table(tiny, nodes=(4, 16), rules=("exact",))
    np.testing.assert_allclose(table["exact"], convergence.exact_residual, rtol=1e-3, atol=1e-15)
    with pytest.raises(ValueError, match="rule"):
        quadrature_convergence(tiny, rules=("exact",))


def test_binned_diagonal_and_figures(tiny):
    import matplotlib.pyplot as plt

    centers, means = binned_diagonal(tiny, bins=4)
    order = np.argsort(tiny.y, kind="stable")
    diagonal = np.diag(tiny.tasks["sign"].K_bar)
    assert centers[0] == pytest.approx(tiny.y[order[:10]].mean())
    assert means[-1] == pytest.approx(diagonal[order[-10:]].mean())
    assert np.all(np.diff(centers) > 0)
    with pytest.raises(ValueError, match="bins"):
        binned_diagonal(tiny, bins=0)
    figure = plot_kernels(tiny)
    assert len(figure.axes) == 12  # six heat maps, each with its colour bar
    plt.close(figure)
    figure = plot_difficulty(tiny, bins=4)
    assert len(figure.axes) == 3 and len(figure.axes[1].lines) == 2
    plt.close(figure)
    convergence = quadrature_convergence(tiny, nodes=(4, 16), rules=("riemann", "trapezoid"))
    figure = plot_quadrature_convergence(convergence)
    reference = [line for line in figure.axes[0].lines if line.get_linestyle() == "--"]
    assert reference and reference[0].get_ydata()[0] == convergence.exact_residual
    plt.close(figure)


def test_theorem1_alignment_against_its_formula(tiny):
    from atf_lite.theory.effective import adaptation_scale
    from atf_lite.theory.penalties import omega_abs

    run = tiny.tasks["sign"]
    r = run.target - run.output0
    norm = np.sqrt(r @ np.linalg.solve(tiny.K0, r))
    for omega in (None, omega_abs):
        kwargs = {} if omega is None else {"omega": omega}
        s = adaptation_scale(norm, omega_abs if omega is not None else atf_lite.omega_sq)
        adapted = tiny.K0 + (s**2 - 1) / norm**2 * np.outer(r, r)
        expected = cosine(adapted, np.outer(r, r))
        assert theorem1_alignment(tiny, task="sign", **kwargs) == pytest.approx(expected, rel=1e-6)
    # Adaptation only adds the label kernel: the alignment can only grow from that of K0.
    assert theorem1_alignment(tiny) >= cosine(tiny.K0, np.outer(r, r)) - 1e-12
    with pytest.raises(ValueError, match="task"):
        theorem1_alignment(tiny, task="classification")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(pair=None), "pair must be two digit classes .* got None"),
        (dict(pair="23"), "pair must be two digit classes .* got '23'"),
        (dict(pair=(2.5, 3)), "pair must be two digit classes"),
        (dict(pair=(2, -1)), "pair must be two digit classes"),
        (dict(lr=None), "lr must be a real number, got None"),
        (dict(lr="0.5"), "lr must be a real number, got '0.5'"),
        (dict(lr=True), "lr must be a real number, got True"),
        (dict(lr=1 + 1j), "lr must be a real number"),
        (dict(momentum=None), "momentum must be a real number, got None"),
        (dict(momentum=1j), "momentum must be a real number"),
        (dict(ridge=None), "ridge must be a real number, got None"),
        (dict(ridge=float("nan")), "ridge must be a number, got nan"),
        (dict(ridge=float("inf")), "ridge must be finite, got inf"),
        (dict(ridge="0.5"), "ridge must be a real number, got '0.5'"),
        (dict(ridge=True), "ridge must be a real number, got True"),
    ],
)
def test_alignment_settings_refuse_bad_values_by_name(change, message):
    with pytest.raises(ValueError, match=message):
        AlignmentSettings(**change)


def test_random_feature_targets_refuse_bad_values_by_name():
    X, labels = load_digits_pair(n=20)
    with pytest.raises(TypeError, match="X must be real"):
        random_feature_targets(X.to(torch.complex64), labels)
    with pytest.raises(TypeError, match="labels must be an array, got None"):
        random_feature_targets(X, None)
    with pytest.raises(TypeError, match="labels must be real"):
        random_feature_targets(X, labels + 1j)
    for bad, message in ((None, "got None"), ("0.5", "got '0.5'"), (True, "got True"),
                         (1j, "got 1j")):
        with pytest.raises(ValueError, match=f"ridge must be a real number, {message}"):
            random_feature_targets(X, labels, ridge=bad)
    # Integer ±1 labels are the same labels: the same targets.
    torch.testing.assert_close(random_feature_targets(X, labels.long(), width=8),
                               random_feature_targets(X, labels, width=8))


@pytest.mark.parametrize(
    ("settings", "seeds", "error", "message"),
    [
        (None, [0], TypeError, "settings must be AlignmentSettings, got None"),
        ("digits", [0], TypeError, "settings must be AlignmentSettings, got 'digits'"),
        (AlignmentSettings(), None, TypeError, "seeds must be a sequence, got None"),
        (AlignmentSettings(), "0", TypeError, "seeds must be a sequence, got '0'"),
        (AlignmentSettings(), [2.5], ValueError, r"seeds\[0\] must be a non-negative integer"),
        (AlignmentSettings(), [0, -1], ValueError, r"seeds\[1\] must be a non-negative integer"),
    ],
)
def test_experiment_seeds_refuse_bad_values_by_name(settings, seeds, error, message):
    with pytest.raises(error, match=message):
        alignment_experiment_seeds(settings, seeds, use_cache=False)


@pytest.mark.parametrize("command", ["alignment_cli", "sample_complexity_cli"])
def test_command_lines_refuse_what_is_not_a_parser_or_namespace(command):
    # Both commands share one contract: a parser to fill, then a parsed namespace.
    module = importlib.import_module(f"atf_lite.experiments.{command}")
    for bad in (None, "args", 3):
        with pytest.raises(TypeError, match="parser must be an argparse.ArgumentParser"):
            module.add_arguments(bad)
        for function in (module.settings_from_args, module.command_line, module.run_cli):
            with pytest.raises(TypeError, match="args must be an argparse.Namespace"):
                function(bad)
