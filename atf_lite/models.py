"""Multi-layer perceptrons with the paper's initialisation, and a deterministic training loop.

``mlp`` builds ``nn.Sequential(Linear, ReLU, …, Linear)`` with weights drawn from
``N(0, 2 / fan_in)`` and zero biases.  ``train`` fits any torch model with a mean-squared-error
(or cross-entropy) loss by SGD with momentum and a cosine learning-rate schedule, and returns the
initial and final parameters with the loss history.

Chapter 7's three models share one interface, :class:`FeatureModel`, and are all built from the
same initial network: :class:`FullNet` (the network itself), :class:`LinearizedNet` (fixed
tangent features) and :class:`AdaptiveNet` (per-layer transformed tangent features).
:func:`fit_classifier` trains any of them by minibatch cross-entropy with early stopping on a
validation split.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .progress import progress_bar
from .tangent import is_structured_mlp, linearize

__all__ = [
    "INITS",
    "mlp",
    "TrainResult",
    "train",
    "MODEL_KINDS",
    "FeatureModel",
    "FullNet",
    "LinearizedNet",
    "AdaptiveNet",
    "feature_model",
    "FitResult",
    "evaluate_classifier",
    "fit_classifier",
]


INITS = ("he", "lecun")
# Standard deviation of a standard normal truncated to [-2, 2]; dividing by it restores unit
# variance after truncation (the constant Flax's truncated ``variance_scaling`` uses).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def _initial_weight(fan_out, fan_in, init, generator, dtype) -> torch.Tensor:
    """A ``[fan_out, fan_in]`` weight matrix drawn by the rule ``init`` (see :func:`mlp`)."""
    if init == "he":
        return torch.randn(fan_out, fan_in, generator=generator, dtype=dtype) * math.sqrt(
            2.0 / fan_in
        )
    # Truncated normal by rejection: redraw the entries outside [-2, 2] until none are left.
    sample = torch.randn(fan_out, fan_in, generator=generator, dtype=torch.float64)
    outside = sample.abs() > 2
    while outside.any():
        sample[outside] = torch.randn(int(outside.sum()), generator=generator, dtype=torch.float64)
        outside = sample.abs() > 2
    return (sample * (math.sqrt(1.0 / fan_in) / _TRUNCATED_NORMAL_STD)).to(dtype)


def mlp(
    d_in: int,
    width: int,
    depth: int,
    d_out: int = 1,
    bias: bool = True,
    seed: int = 0,
    activation: type[nn.Module] = nn.ReLU,
    dtype: torch.dtype = torch.float32,
    init: str = "he",
) -> nn.Sequential:
    """An MLP ``d_in → width (× depth hidden layers) → d_out`` with ReLU activations.

    ``depth`` counts hidden layers (the paper's Figure 1 network has ``depth=2``, ``width=256``).
    Biases are zero.  Weights follow ``init``:

    * ``"he"``: ``N(0, 2 / fan_in)``, the initialisation of the paper's Figure 1 network;
    * ``"lecun"``: variance ``1 / fan_in`` from a normal truncated at two standard deviations and
      rescaled to that variance, which is Flax's default for dense layers and therefore the
      initialisation of the authors' sample-complexity code.

    ``seed`` makes the draw reproducible without touching torch's global random state.
    """
    for name, value in (("d_in", d_in), ("width", width), ("d_out", d_out)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    sizes = [d_in] + [width] * depth + [d_out]
    generator = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(_initial_weight(fan_out, fan_in, init, generator, dtype))
            if bias:
                linear.bias.zero_()
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    ``params0``/``params1``: detached copies of the parameters before and after training;
    ``losses``: training loss after each epoch (float, ``[epochs]``).
    """

    params0: dict[str, torch.Tensor]
    params1: dict[str, torch.Tensor]
    losses: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")


def _loss_fn(loss: str):
    if loss == "mse":
        return lambda out, target: torch.mean((out.reshape(target.shape) - target) ** 2)
    if loss == "cross_entropy":
        return nn.functional.cross_entropy
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")


def train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float,
    momentum: float = 0.9,
    batch_size: int | None = None,
    schedule: str = "cosine",
    *,
    loss: str = "mse",
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``(X, y)`` with SGD and return a :class:`TrainResult`.

    ``X``: ``[n, d]``; ``y``: ``[n]`` targets (``loss="mse"``, the mean of squared errors) or
    int64 class indices (``loss="cross_entropy"``).  ``batch_size=None`` is full-batch gradient
    descent.  ``schedule``: ``"cosine"`` (learning rate ``lr · (1 + cos(π t / T)) / 2`` per step)
    or ``"constant"``.  Minibatch order is drawn from a generator seeded with ``seed``.
    """
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if schedule not in {"cosine", "constant"}:
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if X.ndim < 2 or len(X) != len(y):
        raise ValueError(
            f"X must be [n, ...] and y [n]; got X {tuple(X.shape)} and y {tuple(y.shape)}"
        )
    if not torch.isfinite(X).all() or (y.is_floating_point() and not torch.isfinite(y).all()):
        raise ValueError("X or y contains NaN or infinite values")
    n = len(X)
    batch = n if batch_size is None else int(batch_size)
    if batch < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size!r}")
    criterion = _loss_fn(loss)
    params0 = {name: value.detach().clone() for name, value in model.named_parameters()}
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    steps_per_epoch = math.ceil(n / batch)
    total_steps = epochs * steps_per_epoch
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
        )
    else:
        scheduler = None
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for _ in progress_bar(range(epochs), desc="training", enabled=progress):
        order = torch.randperm(n, generator=generator) if batch < n else torch.arange(n)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            value = criterion(model(X[index]), y[index])
            value.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        with torch.no_grad():
            epoch_loss = float(criterion(model(X), y))
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(
                f"training diverged (loss {epoch_loss}) after {len(losses) + 1} epochs; lower lr"
            )
        losses.append(epoch_loss)
    model.eval()
    params1 = {name: value.detach().clone() for name, value in model.named_parameters()}
    return TrainResult(params0=params0, params1=params1, losses=losses)


# ---------------------------------------------------------------------------------------------
# Fixed, adaptive and full tangent-feature models (chapter 7)
# ---------------------------------------------------------------------------------------------

MODEL_KINDS = ("fixed", "adaptive", "full")
OPTIMIZERS = ("sgd", "adam")


def _check_output_scale(output_scale: float) -> float:
    value = float(output_scale)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"output_scale must be a positive finite number, got {output_scale!r}")
    return value


def _key(name: str) -> str:
    # ParameterDict keys may not contain dots; "0.weight" becomes "0_weight".
    return name.replace(".", "_")


class FeatureModel(nn.Module):
    """Common interface of :class:`FullNet`, :class:`LinearizedNet` and :class:`AdaptiveNet`.

    Each is built from an initial network ``f(·; θ0)`` and maps inputs ``[n, d]`` to outputs
    ``output_scale · f(x; θ0 + δθ)`` (``[n, d_out]``) — exactly for the full network, to first
    order in ``δθ`` for the other two.  Subclasses differ in how ``δθ`` is parametrised; all
    start at ``δθ = 0``, so at initialisation every model computes ``output_scale`` times the
    initial network.  ``output_scale`` multiplies the outputs only; it is the knob of the lazy
    (large) versus rich (small) regime.
    """

    kind: str = ""

    def __init__(self, base: nn.Module, output_scale: float = 1.0):
        super().__init__()
        if not isinstance(base, nn.Module):
            raise TypeError(f"base must be a torch nn.Module, got {type(base).__name__}")
        if not any(True for _ in base.parameters()):
            raise ValueError("base has no parameters to train")
        self.output_scale = _check_output_scale(output_scale)
        # Initial parameters θ0, detached copies in the base network's order (device of base).
        self._theta0 = {name: value.detach().clone() for name, value in base.named_parameters()}

    @property
    def initial_params(self) -> dict[str, torch.Tensor]:
        """The initial parameters ``θ0`` (name → tensor, the base network's names)."""
        return dict(self._theta0)

    def parameter_change(self) -> dict[str, torch.Tensor]:
        """The current change ``δθ`` of every base parameter (name → detached tensor)."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The tensors a training loop updates."""
        return [p for p in self.parameters() if p.requires_grad]


class FullNet(FeatureModel):
    """The ordinary network: ``output_scale · f(x; θ)`` with every parameter ``θ`` trainable.

    ``base`` is copied, so training never modifies it.
    """

    kind = "full"

    def __init__(self, base: nn.Module, output_scale: float = 1.0):
        super().__init__(base, output_scale)
        self.net = copy.deepcopy(base).requires_grad_(True)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs ``output_scale · f(X; θ)`` (``[n, d_out]``) for inputs ``X`` (``[n, d]``)."""
        return self.output_scale * self.net(X)

    def parameter_change(self) -> dict[str, torch.Tensor]:
        return {
            name: value.detach() - self._theta0[name] for name, value in self.net.named_parameters()
        }


def _relu_mlp_plan(base: nn.Module) -> list[tuple[str, str | None, bool]] | None:
    """``[(weight name, bias name or None, ReLU follows)]`` per dense layer of a ReLU MLP.

    ``None`` unless ``base`` is an ``nn.Sequential`` of ``nn.Linear`` layers, each followed by
    at most one ``nn.ReLU`` (``nn.Identity`` is skipped).
    """
    if not isinstance(base, nn.Sequential):
        return None
    plan: list[tuple[str, str | None, bool]] = []
    for name, module in base.named_children():
        if isinstance(module, nn.Identity):
            continue
        if isinstance(module, nn.Linear):
            plan.append((f"{name}.weight", f"{name}.bias" if module.bias is not None else None,
                         False))
        elif isinstance(module, nn.ReLU) and plan and not plan[-1][2]:
            plan[-1] = (plan[-1][0], plan[-1][1], True)
        else:
            return None
    return plan or None


class _TangentModel(FeatureModel):
    """A model evaluated through the linearisation ``f(x; θ0) + J(θ0) δθ`` of ``base``.

    For a ReLU MLP the linearisation is propagated layer by layer in forward mode: each dense
    layer's pre-activation ``z = W0 h + b0`` travels with its tangent
    ``dz = W0 dh + (δW h + δb)``, and a ReLU passes ``dz`` where ``z > 0`` (the derivative
    torch's autograd uses, 0 at the kink).  Subclasses supply the per-layer term
    ``δW h + δb`` (:meth:`_layer_change`), so the adaptive model never needs to form its
    weight change for small batches.  Any other architecture goes through one
    Jacobian-vector product of :func:`atf_lite.tangent.linearize`.  Neither way forms
    ``J(θ0)``.
    """

    def __init__(self, base: nn.Module, output_scale: float = 1.0):
        super().__init__(base, output_scale)
        # The base module only supplies the architecture; its own tensors are never trained.
        self._plan = _relu_mlp_plan(base)
        self._linearized = linearize(base, self._theta0) if self._plan is None else None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs ``output_scale · (f(X; θ0) + J(θ0) δθ)`` (``[n, d_out]``), ``X`` ``[n, d]``."""
        if self._plan is None:
            delta = self._delta()
            params = {name: self._theta0[name] + delta[name] for name in self._theta0}
            return self.output_scale * self._linearized(params, X)
        h, dh = X, None
        for weight_name, bias_name, relu in self._plan:
            weight = self._theta0[weight_name]
            z = nn.functional.linear(h, weight, self._theta0.get(bias_name))
            dz = self._layer_change(weight_name, bias_name, h)
            if dh is not None:
                dz = dz + dh @ weight.T
            if relu:
                active = z > 0
                h, dh = z * active, dz * active
            else:
                h, dh = z, dz
        return self.output_scale * (h + dh)

    def _layer_change(
        self, weight_name: str, bias_name: str | None, h: torch.Tensor
    ) -> torch.Tensor:
        """``δW h + δb`` of one dense layer for its inputs ``h`` (``[n, d]`` → ``[n, m]``)."""
        raise NotImplementedError

    def _delta(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def parameter_change(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {name: value.detach().clone() for name, value in self._delta().items()}


class LinearizedNet(_TangentModel):
    """Fixed tangent features: ``output_scale · (f(x; θ0) + J(θ0) δ)`` with trainable ``δ``.

    ``δ`` is zero at initialisation and holds one tensor per base parameter, shaped like it
    (``self.delta``, keys with dots replaced by underscores).  Works for any ``base`` module.
    """

    kind = "fixed"

    def __init__(self, base: nn.Module, output_scale: float = 1.0):
        super().__init__(base, output_scale)
        self.delta = nn.ParameterDict(
            {
                _key(name): nn.Parameter(torch.zeros_like(value))
                for name, value in self._theta0.items()
            }
        )

    def _delta(self) -> dict[str, torch.Tensor]:
        return {name: self.delta[_key(name)] for name in self._theta0}

    def _layer_change(self, weight_name, bias_name, h):
        change = h @ self.delta[_key(weight_name)].T
        if bias_name is not None:
            change = change + self.delta[_key(bias_name)]
        return change


class AdaptiveNet(_TangentModel):
    """Adaptive tangent features: per dense layer ``δW = M1 K M2``, through the linearisation.

    For a dense layer with weight ``W`` (``[m, d]``) the change is ``M1 K M2`` with ``M1``
    (``[m, m]``) acting on the layer's back-propagated signals ``g`` and ``M2`` acting on its
    inputs ``h``; ``M1 = M2 = I`` and ``K = 0`` at initialisation.  Biases are transformed as
    the weight of a constant input 1: the layer's parameters form one matrix ``[W b]``
    (``[m, d + 1]``) and ``δ[W b] = M1 K M2`` with ``K`` ``[m, d + 1]`` and ``M2``
    ``[d + 1, d + 1]``.  This matches the tangent features of the bias, ``g`` times the constant
    input (the ``+ 1`` of :func:`atf_lite.tangent.tangent_kernel`'s structured method), so ``M2``
    may also mix the constant input with the others.  With ``M1 = M2 = I`` the model is
    :class:`LinearizedNet` with ``δ = K``.  ``base`` must be an ``nn.Sequential`` MLP.
    """

    kind = "adaptive"

    def __init__(self, base: nn.Module, output_scale: float = 1.0):
        if not is_structured_mlp(base):
            raise TypeError(
                "AdaptiveNet needs base to be an nn.Sequential of nn.Linear layers and "
                f"element-wise activations, got {type(base).__name__}"
            )
        super().__init__(base, output_scale)
        self.layers: list[tuple[str, str, str | None]] = []  # (key, weight name, bias name)
        self.M1 = nn.ParameterDict()
        self.K = nn.ParameterDict()
        self.M2 = nn.ParameterDict()
        for name, module in base.named_children():
            if not isinstance(module, nn.Linear):
                continue
            weight = self._theta0[f"{name}.weight"]
            bias_name = f"{name}.bias" if module.bias is not None else None
            m, d = weight.shape
            d_in = d + (bias_name is not None)
            like = {"dtype": weight.dtype, "device": weight.device}
            self.M1[name] = nn.Parameter(torch.eye(m, **like))
            self.K[name] = nn.Parameter(torch.zeros(m, d_in, **like))
            self.M2[name] = nn.Parameter(torch.eye(d_in, **like))
            self.layers.append((name, f"{name}.weight", bias_name))

    def _delta(self) -> dict[str, torch.Tensor]:
        delta = {}
        for key, weight_name, bias_name in self.layers:
            change = self.M1[key] @ self.K[key] @ self.M2[key]
            d = self._theta0[weight_name].shape[1]
            delta[weight_name] = change[:, :d]
            if bias_name is not None:
                delta[bias_name] = change[:, d]
        return delta

    def _layer_change(self, weight_name, bias_name, h):
        key = weight_name.removesuffix(".weight")
        M1, K, M2 = self.M1[key], self.K[key], self.M2[key]
        m, d = self._theta0[weight_name].shape
        if len(h) >= m:
            # Many inputs: forming δ[W b] = M1 K M2 once is the cheaper order.
            change = M1 @ K @ M2
            out = h @ change[:, :d].contiguous().T
            return out + change[:, d] if bias_name is not None else out
        # Few inputs (minibatches): M1 (K (M2 h̃)) with h̃ = (h, 1), never forming δ[W b].
        # At M1 = M2 = I every step is exact and the sum matches the fixed model's bit for bit.
        u = h @ M2[:, :d].T
        if bias_name is not None:
            u = u + M2[:, d]
        out = u[:, :d].contiguous() @ K[:, :d].T
        if bias_name is not None:
            out = out + u[:, d:] * K[:, d]
        return out @ M1.T

    def transform_change(self) -> dict[str, tuple[float, float]]:
        """Per layer, ``(‖M1 − I‖_F / ‖I‖_F, ‖M2 − I‖_F / ‖I‖_F)``: how far the features moved."""
        out = {}
        with torch.no_grad():
            for key, _, _ in self.layers:
                pair = []
                for M in (self.M1[key], self.M2[key]):
                    eye = torch.eye(M.shape[0], dtype=M.dtype, device=M.device)
                    pair.append(float(torch.linalg.matrix_norm(M - eye) / math.sqrt(M.shape[0])))
                out[key] = (pair[0], pair[1])
        return out


def feature_model(kind: str, base: nn.Module, output_scale: float = 1.0) -> FeatureModel:
    """Build the model ``kind`` (``"fixed"``, ``"adaptive"`` or ``"full"``) from ``base``."""
    classes = {"fixed": LinearizedNet, "adaptive": AdaptiveNet, "full": FullNet}
    if kind not in classes:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    return classes[kind](base, output_scale)


@dataclass
class FitResult:
    """Outcome of :func:`fit_classifier`.

    ``best_epoch``: the epoch (1-based) whose parameters were kept, the one with the lowest
    validation error (ties: lowest validation loss); ``epochs_run``: epochs actually trained;
    ``train_losses``, ``val_losses``, ``val_errors``: per epoch (``[epochs_run]``);
    ``distinct_examples``: how many different training examples the kept parameters were
    trained on (all ``n`` for a fixed training set; with ``epoch_subset`` the size of the union
    of the subsets drawn up to ``best_epoch``); ``distinct_examples_total``: the same up to the
    last epoch run.
    """

    best_epoch: int
    epochs_run: int
    train_losses: list[float]
    val_losses: list[float]
    val_errors: list[float]
    distinct_examples: int = 0
    distinct_examples_total: int = 0

    @property
    def best_val_error(self) -> float:
        return self.val_errors[self.best_epoch - 1]


def _check_classification_data(X, y, what: str) -> None:
    xn, yn = f"X_{what}", f"y_{what}"
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{xn} and {yn} must be torch tensors")
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(
            f"{xn} must be [n, d] and {yn} [n] with n ≥ 1; got {tuple(X.shape)} and "
            f"{tuple(y.shape)}"
        )
    if not torch.isfinite(X).all():
        raise ValueError(f"{xn} contains NaN or infinite values")
    if y.dtype != torch.int64:
        raise TypeError(f"{yn} must hold int64 class indices, got {y.dtype}")
    if int(y.min()) < 0:
        raise ValueError(f"{yn} must hold class indices ≥ 0, found {int(y.min())}")


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096
) -> tuple[float, float]:
    """``(error, loss)`` of ``model`` on ``(X, y)``: misclassified fraction, mean cross-entropy."""
    errors, loss = 0, 0.0
    for start in range(0, len(X), batch_size):
        logits = model(X[start : start + batch_size])
        target = y[start : start + batch_size]
        errors += int((logits.argmax(dim=1) != target).sum())
        loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
    return errors / len(X), loss / len(X)


def fit_classifier(
    model: nn.Module,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    optimizer: str = "sgd",
    lr: float = 0.05,
    momentum: float = 0.9,
    batch_size: int = 50,
    max_epochs: int = 200,
    patience: int | None = 30,
    seed: int = 0,
    epoch_subset: int | None = None,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` in place by minibatch cross-entropy with early stopping; keep the best epoch.

    ``X_train`` ``[n, d]``, ``y_train`` int64 ``[n]`` class indices; ``(X_val, y_val)`` is a
    validation split held out from the training data (never the test set).  ``optimizer``:
    ``"sgd"`` (with ``momentum``) or ``"adam"`` (default betas), constant learning rate ``lr``,
    over ``model``'s parameters that require gradients.  Each epoch is one pass over shuffled
    minibatches of ``min(batch_size, n)`` examples (order drawn from a generator seeded with
    ``seed``), followed by a validation check.  Training stops after ``max_epochs`` or once the
    validation error has not improved for ``patience`` epochs (``None``: never early); the
    parameters of the best epoch (lowest validation error, ties broken by validation loss) are
    restored.  Raises ``FloatingPointError`` if the training loss becomes non-finite.

    ``epoch_subset=m`` changes what an epoch is: each epoch draws a *fresh* uniformly random
    subset of ``m`` rows of ``(X_train, y_train)`` (without replacement, from the same seeded
    generator) and passes over it once.  This reproduces a data pipeline that shuffles a large
    pool and takes its first ``m`` examples anew every epoch: the model is nominally trained on
    ``m`` examples but sees many more distinct ones (``FitResult.distinct_examples``).
    """
    _check_classification_data(X_train, y_train, "train")
    _check_classification_data(X_val, y_val, "val")
    if X_val.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_val has {X_val.shape[1]} features, X_train has {X_train.shape[1]}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    for name, value in (("batch_size", batch_size), ("max_epochs", max_epochs)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if patience is not None and (not isinstance(patience, (int, np.integer)) or patience < 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
    if epoch_subset is not None and (
        not isinstance(epoch_subset, (int, np.integer))
        or not 1 <= epoch_subset <= len(X_train)
    ):
        raise ValueError(
            f"epoch_subset must be None or an integer in [1, {len(X_train)}] (the rows of "
            f"X_train), got {epoch_subset!r}"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    with torch.no_grad():
        n_out = model(X_val[:1]).shape[1]
    if int(y_train.max()) >= n_out or int(y_val.max()) >= n_out:
        raise ValueError(f"labels exceed the model's {n_out} outputs")
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    else:
        opt = torch.optim.Adam(params, lr=lr)
    n_rows = len(X_train)
    n = n_rows if epoch_subset is None else int(epoch_subset)
    batch = min(int(batch_size), n)
    generator = torch.Generator().manual_seed(seed)
    best_key, best_state, best_epoch = None, None, 0
    train_losses: list[float] = []
    val_losses: list[float] = []
    val_errors: list[float] = []
    seen = torch.zeros(n_rows, dtype=torch.bool)
    seen_at_best = n
    model.train()
    for epoch in progress_bar(
        range(1, max_epochs + 1), desc=f"fit ({n} examples)", enabled=progress
    ):
        # A permutation of all rows; its first n rows are this epoch's (fresh) subset.
        order = torch.randperm(n_rows, generator=generator)[:n]
        seen[order] = True
        total = 0.0
        for start in range(0, n, batch):
            index = order[start : start + batch]
            opt.zero_grad(set_to_none=True)
            value = nn.functional.cross_entropy(model(X_train[index]), y_train[index])
            value.backward()
            opt.step()
            total += float(value.detach()) * len(index)
        train_loss = total / n
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training diverged (loss {train_loss}) in epoch {epoch}; lower lr"
            )
        val_error, val_loss = evaluate_classifier(model, X_val, y_val)
        train_losses.append(train_loss)
        val_losses.append(val_loss)
        val_errors.append(val_error)
        key = (val_error, val_loss)
        if best_key is None or key < best_key:
            best_key, best_epoch = key, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            seen_at_best = int(seen.sum())
        elif patience is not None and epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        best_epoch=best_epoch,
        epochs_run=len(train_losses),
        train_losses=train_losses,
        val_losses=val_losses,
        val_errors=val_errors,
        distinct_examples=seen_at_best,
        distinct_examples_total=int(seen.sum()),
    )
