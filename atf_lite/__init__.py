"""atf_lite: adaptive tangent features of neural networks, in small reusable solvers.

Everything the book uses can be imported from the package itself (``from atf_lite import
theorem1_solution``); each name is loaded on first use, so importing a NumPy-only function never
imports torch.  The modules, in layers from the bottom up (a module imports only from its own
layer or a lower one):

* ``linalg``, ``alignment``, ``data``, ``cache``, ``progress``, ``plotting``, ``perturbation``:
  minimum-norm interpolation and kernel regression, kernel alignment, data loaders, the result
  cache, progress bars, the figure style, the one-ulp perturbation switch;
* ``theory``: spectral and effective penalties, Theorem 1, structured closed forms;
* ``solvers``: brute-force joint solvers, the alternating structured solver, convex baselines;
* ``networks``: MLPs and CNNs, tangent features and kernels, path-averaged features,
  trainers, the fixed / adaptive / full tangent-feature models;
* ``experiments``: problem generators, the chapters' experiments, ``python -m atf_lite``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name → module that defines it.
_EXPORTS: dict[str, str] = {
    # types
    "ArrayLike": "atf_lite._types",
    "ConvergenceWarning": "atf_lite._types",
    # linear algebra and kernels
    "min_norm_interpolator": "atf_lite.linalg",
    "kernel_regression": "atf_lite.linalg",
    "relative_error": "atf_lite.linalg",
    "label_kernel": "atf_lite.alignment",
    "center_kernel": "atf_lite.alignment",
    "kernel_alignment": "atf_lite.alignment",
    "KernelDecomposition": "atf_lite.alignment",
    "decompose_kernel": "atf_lite.alignment",
    # data
    "load_digits_pair": "atf_lite.data",
    "load_digits_multiclass": "atf_lite.data",
    "load_mnist_pair": "atf_lite.data",
    "load_mnist_multiclass": "atf_lite.data",
    # figures
    "COLORS": "atf_lite.plotting",
    "use_style": "atf_lite.plotting",
    "heatmap": "atf_lite.plotting",
    "loglog_slope": "atf_lite.plotting",
    # theory
    "Penalty": "atf_lite.theory.penalties",
    "PenaltyLike": "atf_lite.theory.penalties",
    "penalty": "atf_lite.theory.penalties",
    "omega_sq": "atf_lite.theory.penalties",
    "omega_abs": "atf_lite.theory.penalties",
    "oplus": "atf_lite.theory.penalties",
    "spectral_penalty": "atf_lite.theory.penalties",
    "LAZY_THRESHOLD_ABS": "atf_lite.theory.penalties",
    "effective_penalty": "atf_lite.theory.effective",
    "adaptation_scale": "atf_lite.theory.effective",
    "effective_penalty_and_scale": "atf_lite.theory.effective",
    "Theorem1Solution": "atf_lite.theory.theorem1",
    "theorem1_solution": "atf_lite.theory.theorem1",
    "StructuredPenalty": "atf_lite.theory.structured",
    "structured_penalty": "atf_lite.theory.structured",
    "kronecker_penalty_and_scales": "atf_lite.theory.structured",
    # solvers
    "JointSolution": "atf_lite.solvers.solution",
    "reduced_objective": "atf_lite.solvers.joint",
    "solve_joint": "atf_lite.solvers.joint",
    "Theorem1Gaps": "atf_lite.solvers.joint",
    "compare_with_theorem1": "atf_lite.solvers.joint",
    "StructuredSolution": "atf_lite.solvers.alternating",
    "solve_structured": "atf_lite.solvers.alternating",
    "min_l1_interpolator": "atf_lite.solvers.convex",
    "NuclearNormSolution": "atf_lite.solvers.convex",
    "min_nuclear_norm_interpolator": "atf_lite.solvers.convex",
    # networks
    "Params": "atf_lite.networks.functional",
    "model_params": "atf_lite.networks.functional",
    "flatten_params": "atf_lite.networks.functional",
    "unflatten_params": "atf_lite.networks.functional",
    "model_output": "atf_lite.networks.functional",
    "linearize": "atf_lite.networks.functional",
    "tangent_features": "atf_lite.networks.tangent",
    "tangent_kernel": "atf_lite.networks.tangent",
    "naive_tangent_features": "atf_lite.networks.tangent",
    "naive_tangent_kernel": "atf_lite.networks.tangent",
    "layer_signals": "atf_lite.networks.tangent",
    "quadrature_rule": "atf_lite.networks.path_averaging",
    "PathAveragedFeatures": "atf_lite.networks.path_averaging",
    "path_averaged_features": "atf_lite.networks.path_averaging",
    "PathAveragedKernel": "atf_lite.networks.path_averaging",
    "path_averaged_kernel": "atf_lite.networks.path_averaging",
    "path_breakpoints": "atf_lite.networks.path_pieces",
    "layer_adapted_kernel": "atf_lite.networks.kernels",
    "weight_change_spectra": "atf_lite.networks.kernels",
    "weight_change_transforms": "atf_lite.networks.kernels",
    "eigen_overlaps": "atf_lite.networks.kernels",
    "heavy_ball_parameters": "atf_lite.networks.linear",
    "train_linearized": "atf_lite.networks.linear",
    "train_network": "atf_lite.networks.linear",
    "linearization_gap": "atf_lite.networks.linear",
    "mlp": "atf_lite.networks.mlp",
    "cnn": "atf_lite.networks.cnn",
    "cnn_layer_signals": "atf_lite.networks.conv_tangent",
    "cnn_path_averaged_features": "atf_lite.networks.conv_path_averaging",
    "train": "atf_lite.networks.training",
    "MODEL_KINDS": "atf_lite.networks.feature_models",
    "FeatureModel": "atf_lite.networks.feature_models",
    "feature_model": "atf_lite.networks.feature_models",
    "evaluate_classifier": "atf_lite.networks.classifier",
    "fit_classifier": "atf_lite.networks.classifier",
    # experiments
    "random_instance": "atf_lite.experiments.problems",
    "difficulty_targets": "atf_lite.experiments.problems",
    "sparse_recovery_instance": "atf_lite.experiments.problems",
    "matrix_sensing_instance": "atf_lite.experiments.problems",
    "SparseRecoverySettings": "atf_lite.experiments.recovery",
    "MatrixSensingSettings": "atf_lite.experiments.recovery",
    "sparse_recovery_trials": "atf_lite.experiments.recovery",
    "matrix_sensing_trials": "atf_lite.experiments.recovery",
    "format_recovery_table": "atf_lite.experiments.recovery_report",
    "plot_singular_value_penalties": "atf_lite.experiments.recovery_report",
    "plot_recovery_curves": "atf_lite.experiments.recovery_report",
    "plot_spectra": "atf_lite.experiments.recovery_report",
    "random_feature_targets": "atf_lite.experiments.alignment_run",
    "AlignmentSettings": "atf_lite.experiments.alignment_run",
    "alignment_experiment": "atf_lite.experiments.alignment_run",
    "alignment_experiment_seeds": "atf_lite.experiments.alignment_run",
    "quadrature_table": "atf_lite.experiments.alignment_quadrature",
    "quadrature_convergence": "atf_lite.experiments.alignment_quadrature",
    "format_seed_table": "atf_lite.experiments.alignment_report",
    "diagonal_quarters": "atf_lite.experiments.alignment_report",
    "binned_diagonal": "atf_lite.experiments.alignment_report",
    "plot_kernels": "atf_lite.experiments.alignment_report",
    "plot_difficulty": "atf_lite.experiments.alignment_report",
    "CNNAlignmentSettings": "atf_lite.experiments.cnn_alignment",
    "cnn_alignment_experiment": "atf_lite.experiments.cnn_alignment",
    "cnn_alignment_experiment_seeds": "atf_lite.experiments.cnn_alignment",
    "position_pair_terms": "atf_lite.experiments.cnn_report",
    "contraction_costs": "atf_lite.experiments.cnn_report",
    "kronecker_sizes": "atf_lite.experiments.cnn_report",
    "plot_position_contributions": "atf_lite.experiments.cnn_report",
    "plot_alignment_by_architecture": "atf_lite.experiments.cnn_report",
    "alignment_by_architecture": "atf_lite.experiments.cnn_report",
    "format_architecture_table": "atf_lite.experiments.cnn_report",
    "plot_quadrature_convergence": "atf_lite.experiments.alignment_report",
    "load_splits": "atf_lite.experiments.sample_complexity_data",
    "TrainSettings": "atf_lite.experiments.sample_complexity_run",
    "SampleComplexitySettings": "atf_lite.experiments.sample_complexity_run",
    "sample_complexity": "atf_lite.experiments.sample_complexity_run",
    "settings_sweep": "atf_lite.experiments.sample_complexity_run",
    "summarize": "atf_lite.experiments.sample_complexity_report",
    "format_summary": "atf_lite.experiments.sample_complexity_report",
    "plot_sample_complexity": "atf_lite.experiments.sample_complexity_report",
    "samples_needed": "atf_lite.experiments.sample_complexity_report",
    "sample_ratio": "atf_lite.experiments.sample_complexity_report",
    "sweep_table": "atf_lite.experiments.sample_complexity_report",
    "select_variants": "atf_lite.experiments.sample_complexity_report",
    "effective_rank": "atf_lite.experiments.sample_complexity_report",
    "load_study": "atf_lite.experiments.sample_complexity_study",
    "expected_distinct_examples": "atf_lite.experiments.sample_complexity_study",
    "study_ratios": "atf_lite.experiments.sample_complexity_study",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    # PEP 562: import the defining module on first access, then cache the name here.
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'atf_lite' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
