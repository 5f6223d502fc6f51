"""The alignment and sample-complexity experiments with the convolutional network (tiny sizes)."""

import argparse
import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from atf_lite.alignment import kernel_alignment
from atf_lite.experiments.alignment_checks import TasksCoincideWarning
from atf_lite.experiments.alignment_cli import settings_from_args
from atf_lite.experiments.alignment_report import format_seed_table, summary
from atf_lite.experiments.alignment_run import AlignmentSettings, alignment_experiment
from atf_lite.experiments.cli import build_parser, main
from atf_lite.experiments.cnn_alignment import (
    CNNAlignmentResult,
    CNNAlignmentSettings,
    cnn_alignment_experiment,
    cnn_alignment_experiment_seeds,
)
from atf_lite.experiments.sample_complexity_cli import add_arguments as add_sc_arguments
from atf_lite.experiments.sample_complexity_cli import settings_from_args as sc_settings
from atf_lite.experiments.sample_complexity_run import (
    SampleComplexitySettings,
    TrainSettings,
    sample_complexity,
)
from atf_lite.networks.functional import flatten_params, model_output

TINY = dict(n=40, channels=(2, 3), hidden=(6,), epochs=15, nodes=32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATF_LITE_CACHE_DIR", str(tmp_path_factory.mktemp("cnn_cache")))
        return cnn_alignment_experiment(CNNAlignmentSettings(seed=1, **TINY))


def test_cnn_alignment_quantities_agree_with_their_definitions(tiny):
    assert isinstance(tiny, CNNAlignmentResult)
    model = tiny.model()
    assert any(isinstance(m, nn.Conv2d) for m in model)
    # The same targets as the MLP experiment with the same seed: y does not depend on the
    # trained architecture.  (256 target units for 40 points make the two tasks coincide.)
    with pytest.warns(TasksCoincideWarning):
        mlp_run = alignment_experiment(AlignmentSettings(seed=1, n=40, width=8, epochs=1,
                                                         nodes=2, target_width=256))
    np.testing.assert_array_equal(tiny.y, mlp_run.y)
    np.testing.assert_array_equal(tiny.X.numpy(), mlp_run.X.numpy())
    for run in tiny.tasks.values():
        out0 = model_output(tiny.X, model, run.params0).double().numpy()
        out1 = model_output(tiny.X, model, run.params1).double().numpy()
        np.testing.assert_allclose(run.output0, out0, rtol=1e-6)
        np.testing.assert_allclose(run.output1, out1, rtol=1e-6)
        assert run.alignment == pytest.approx(kernel_alignment(run.K_bar, run.K_output))
        assert run.alignment_change == pytest.approx(
            kernel_alignment(run.K_bar - tiny.K0, run.K_output))
        assert run.identity_residual < 0.05
        assert run.losses[-1] < run.losses[0]
        assert not torch.equal(flatten_params(run.params0), flatten_params(run.params1))
    np.testing.assert_allclose(tiny.K0, tiny.K0.T, atol=1e-5)
    # The MLP's report functions accept the CNN result.
    assert "alignment" in format_seed_table([tiny])
    assert summary(tiny)["config"]["arch"] == "cnn"


def test_cnn_settings_are_validated_and_cached(tiny):
    again = cnn_alignment_experiment_seeds(CNNAlignmentSettings(**TINY), [1])[0]
    np.testing.assert_array_equal(again.tasks["sign"].K_bar, tiny.tasks["sign"].K_bar)
    settings = CNNAlignmentSettings(channels=[4, 8], pair=[3, 5])
    assert settings.channels == (4, 8) and settings.as_dict()["channels"] == [4, 8]
    assert settings.as_dict()["arch"] == "cnn"
    for bad, match in (({"channels": ()}, "channels"), ({"pooling": "sum"}, "pooling"),
                       ({"lr": 0.0}, "lr"), ({"rule": "simpson"}, "rule"),
                       ({"hidden": (0,)}, "hidden"), ({"dataset": "cifar"}, "dataset")):
        with pytest.raises(ValueError, match=match):
            CNNAlignmentSettings(**bad)
    with pytest.raises(TypeError, match="CNNAlignmentSettings"):
        cnn_alignment_experiment(AlignmentSettings())
    with pytest.raises(ValueError, match="seeds"):
        cnn_alignment_experiment_seeds(CNNAlignmentSettings(), [])
    replaced = dataclasses.replace(settings, seed=4)
    assert replaced.seed == 4 and replaced.channels == (4, 8)


def test_alignment_cli_arch_cnn_writes_the_mlp_schema_plus_arch(tmp_path):
    out = tmp_path / "cnn"
    args = ["alignment", "--arch", "cnn", "--n", "30", "--channels", "2", "3", "--hidden", "4",
            "--epochs", "3", "--nodes", "4", "--seed", "2", "--out", str(out)]
    assert main(args) == 0
    payload = json.loads((out / "summary.json").read_text())
    assert payload["arch"] == "cnn" and payload["config"]["arch"] == "cnn"
    assert "--arch cnn" in payload["command"] and "--channels 2 3" in payload["command"]
    assert payload["config"]["channels"] == [2, 3] and payload["config"]["nodes"] == 4
    mlp_out = tmp_path / "mlp"
    assert main(["alignment", "--n", "30", "--width", "4", "--epochs", "2", "--nodes", "4",
                 "--out", str(mlp_out)]) == 0
    mlp_payload = json.loads((mlp_out / "summary.json").read_text())
    # Same keys as the MLP run, plus "arch"; the MLP run is unchanged (no "arch").
    assert set(payload) == set(mlp_payload) | {"arch"} and "arch" not in mlp_payload
    assert set(payload["tasks"]["sign"]) == set(mlp_payload["tasks"]["sign"])
    for name in ("kernels.png", "difficulty.png"):
        assert (out / name).stat().st_size > 1000


def test_alignment_cli_defaults_by_architecture():
    parser = build_parser()
    mlp_args = parser.parse_args(["alignment"])
    assert mlp_args.arch == "mlp" and settings_from_args(mlp_args).nodes == 512
    from atf_lite.experiments.cnn_alignment import cnn_settings_from_args

    cnn_args = parser.parse_args(["alignment", "--arch", "cnn", "--dataset", "mnist"])
    settings = cnn_settings_from_args(cnn_args)
    assert settings.nodes == 512 and settings.n == 500 and settings.hidden == (128,)
    assert settings.target_width == 256 and settings.target_depth == 2


TINY_SC = dict(arch="cnn", channels=(2,), width=8, depth=1, max_epochs=3, patience=None,
               batch_size=20)


def test_sample_complexity_with_a_cnn(tmp_path):
    result = sample_complexity(SampleComplexitySettings(sizes=[30], seeds=[0], overrides=TINY_SC))
    assert [r["model"] for r in result.results] == ["fixed", "adaptive", "full"]
    for record in result.results:
        assert 0 <= record["test_error"] <= 1 and record["epochs"] == 3
        # The convolution's change is in the spectra, as a [c_out, c_in·k·k] matrix.
        assert set(record["spectra"]) == {"1", "5", "7"}
        assert len(record["spectra"]["1"]) == 2
    adaptive = result.results[1]
    assert set(adaptive["transform_change"]) == {"1", "5", "7"}
    settings = result.config["settings"]["full"]
    assert settings["arch"] == "cnn" and settings["channels"] == [2]
    # The MLP's settings read as before: no arch, no channels.
    assert "arch" not in TrainSettings().as_dict() and "channels" not in TrainSettings().as_dict()
    with pytest.raises(ValueError, match="arch"):
        TrainSettings(arch="resnet")
    with pytest.raises(ValueError, match="channels"):
        TrainSettings(arch="cnn", channels=())


def test_sample_complexity_cli_options_for_the_cnn():
    parser = argparse.ArgumentParser()
    add_sc_arguments(parser)
    settings = sc_settings(parser.parse_args(["--arch", "cnn", "--channels", "4", "8"]))
    train = settings.resolve()[1]["adaptive"]
    assert train.arch == "cnn" and train.channels == (4, 8)
    base = train.network(784, seed=0)
    assert isinstance(base[0], nn.Unflatten) and base(torch.zeros(2, 784)).shape == (2, 10)
    plain = sc_settings(parser.parse_args([])).resolve()[1]["full"]
    assert plain.arch == "mlp" and isinstance(plain.network(64, seed=0)[0], nn.Linear)


# --- The chapter's tables and figures --------------------------------------------------------


def test_position_pair_terms_sum_to_the_layer_kernel():
    from atf_lite.experiments.cnn_report import parametrised_layers, position_pair_terms
    from atf_lite.networks.cnn import cnn
    from atf_lite.networks.kernels import layer_adapted_kernel

    model = cnn((1, 8, 8), (3, 4), hidden=(5,), flat_input=True, dtype=torch.float64, seed=1)
    X = torch.randn(2, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    layers = parametrised_layers(model)
    for index in range(len(layers)):
        # The layer's own kernel term: every other layer's output transform set to zero.
        transforms = [
            None if j == index else
            (torch.zeros(m.weight.shape[0], m.weight.shape[0], dtype=torch.float64),
             torch.eye(m.weight[0].numel() + 1, dtype=torch.float64))
            for j, (_, m) in enumerate(layers)
        ]
        K_layer = layer_adapted_kernel(X, model, transforms)
        terms = position_pair_terms(X[0], X[1], model, layer=index)
        expected = 64 if index == 0 else (16 if index == 1 else 1)
        assert terms.shape == (expected, expected)
        assert terms.sum() == pytest.approx(float(K_layer[0, 1]), rel=1e-10)
    with pytest.raises(ValueError, match="layer"):
        position_pair_terms(X[0], X[1], model, layer=9)


def test_contraction_costs_and_kronecker_sizes():
    from atf_lite.experiments.cnn_report import contraction_costs, kronecker_sizes
    from atf_lite.networks.cnn import cnn

    model = cnn((1, 28, 28), (8, 16), hidden=(128,), flat_input=True)
    rows = contraction_costs(torch.zeros(1, 784), model)
    assert [(r["kind"], r["M"], r["D"], r["P"], r["method"]) for r in rows] == [
        ("conv", 8, 9, 784, "features"), ("conv", 16, 72, 196, "features"),
        ("dense", 128, 784, 1, "gram"), ("dense", 1, 128, 1, "features"),
    ]
    assert rows[1]["features_per_pair"] == 16 * 73 and rows[1]["gram_per_pair"] == 196**2 * 90
    sizes = kronecker_sizes(model)
    assert sizes[1] == {"name": "4", "M": 16, "D": 72, "bias": True,
                        "kronecker": 16**2 + 73**2, "unstructured": (16 * 73) ** 2}


def test_chapter_figures_draw(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atf_lite.experiments.cnn_report import (
        plot_alignment_by_architecture,
        plot_position_contributions,
    )
    from atf_lite.networks.cnn import cnn

    model = cnn((1, 8, 8), (3, 4), flat_input=True)
    X = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    fig = plot_position_contributions(X, model, layer=0, image_shape=(8, 8))
    assert len(fig.axes) >= 4
    fig.savefig(tmp_path / "positions.png")
    fig, ax = plt.subplots()
    plot_alignment_by_architecture(ax, {"mlp": {"regression": [0.2, 0.3], "sign": [0.3, 0.4]},
                                        "cnn": {"regression": [0.1, 0.2], "sign": [0.2, 0.1]}})
    assert len(ax.lines) >= 4
    plt.close("all")


def test_alignment_tables_by_architecture():
    from atf_lite.experiments.cnn_report import (
        alignment_by_architecture,
        format_architecture_table,
    )

    def summary(seed, shift):
        entry = {"train_loss": 1e-3, "identity_residual": 2e-4, "tangent_norm": 3.0,
                 "alignment_initial": 0.05, "alignment": 0.2 + shift,
                 "alignment_change": 0.5 + shift}
        return {"config": {"seed": seed},
                "tasks": {"regression": entry, "sign": {**entry, "alignment": 0.3 + shift}}}

    summaries = {"mlp": [summary(0, 0.0), summary(1, 0.01)], "cnn": [summary(0, 0.1)]}
    values = alignment_by_architecture(summaries)
    assert values["mlp"]["regression"] == pytest.approx([0.2, 0.21])
    assert values["mlp"]["sign"] == pytest.approx([0.3, 0.31])
    assert values["cnn"] == {"regression": [pytest.approx(0.3)], "sign": [pytest.approx(0.4)]}
    changes = alignment_by_architecture(summaries, metric="alignment_change")
    assert changes["mlp"]["sign"] == pytest.approx([0.5, 0.51])
    table = format_architecture_table(summaries).splitlines()
    assert len(table) == 1 + 2 * 3 and table[-1].split()[:3] == ["cnn", "0", "sign"]
    assert table[-1].split()[-3:] == ["0.050", "0.400", "0.600"]


def test_chapter_figures_and_tables_name_a_bad_argument():
    import matplotlib.pyplot as plt

    from atf_lite.experiments.alignment_report import plot_quadrature_convergence
    from atf_lite.experiments.cnn_report import (
        alignment_by_architecture,
        format_architecture_table,
        plot_alignment_by_architecture,
        plot_position_contributions,
    )
    from atf_lite.networks.cnn import cnn

    model = cnn((1, 4, 4), (2,), seed=0)
    X = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    entry = {"train_loss": 1e-3, "identity_residual": 2e-4, "tangent_norm": 3.0,
             "alignment_initial": 0.05, "alignment": 0.2, "alignment_change": 0.5}
    run = {"config": {"seed": 0}, "tasks": {"regression": entry, "sign": entry}}
    values = {"mlp": {"regression": [0.2], "sign": [0.3]}}
    _, ax = plt.subplots()
    cases = [
        ("X", lambda: plot_position_contributions(X[:1], model, layer=0, image_shape=(4, 4))),
        ("model", lambda: plot_position_contributions(X, "cnn", layer=0, image_shape=(4, 4))),
        ("layer", lambda: plot_position_contributions(X, model, layer=5, image_shape=(4, 4))),
        ("image_shape", lambda: plot_position_contributions(X, model, layer=0,
                                                            image_shape=(4, 5))),
        ("titles", lambda: plot_position_contributions(X, model, layer=0, image_shape=(4, 4),
                                                       titles=("x",))),
        ("ax", lambda: plot_alignment_by_architecture("ax", values)),
        ("values", lambda: plot_alignment_by_architecture(ax, {"mlp": {"sign": [0.3]}})),
        ("values", lambda: plot_alignment_by_architecture(
            ax, {"mlp": {"regression": [0.2, 0.3], "sign": [0.3]}})),
        ("metric", lambda: alignment_by_architecture({"mlp": [run]}, metric="no-such-metric")),
        ("summaries", lambda: alignment_by_architecture({"mlp": [{"tasks": {}}]})),
        ("summaries", lambda: format_architecture_table(
            {"mlp": [{**run, "tasks": {"sign": {**entry, "alignment": "high"}}}]})),
        ("convergence", lambda: plot_quadrature_convergence({"nodes": (2, 4)})),
    ]
    for name, thunk in cases:
        with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
            thunk()
    plt.close("all")
