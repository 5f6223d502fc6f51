"""Chapter 8's three models of one initial network: full, fixed and adaptive tangent features.

They share one interface, :class:`FeatureModel`, and are all built from the same initial
network: :class:`FullNet` (the network itself), :class:`LinearizedNet` (fixed tangent features)
and :class:`AdaptiveNet` (per-layer transformed tangent features); :func:`feature_model` builds
one by name.  :func:`atf_lite.networks.classifier.fit_classifier` trains any of them.  The
initial parameters ``θ0`` are buffers of each model, so ``.to(device)``, ``.double()`` and
``state_dict()`` carry them along with the trainable tensors.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.func import functional_call, jvp

from .._validation import check_real
from .conv_linearized import conv_tangent_plan, linearized_forward
from .conv_tangent import is_structured_cnn

__all__ = [
    "MODEL_KINDS",
    "FeatureModel",
    "FullNet",
    "LinearizedNet",
    "AdaptiveNet",
    "feature_model",
]

#: The names of the three models, in the order of the book's tables.
MODEL_KINDS = ("fixed", "adaptive", "full")


def _key(name: str) -> str:
    # ParameterDict keys may not contain dots; "0.weight" becomes "0_weight".
    return name.replace(".", "_")


class FeatureModel(nn.Module):
    """Common interface of :class:`FullNet`, :class:`LinearizedNet` and :class:`AdaptiveNet`.

    Each is built from an initial network ``f(·; θ0)`` and maps inputs ``[n, d]`` (or whatever
    the network takes, e.g. images ``[n, C, H, W]``) to outputs
    ``output_scale · f(x; θ0 + δθ)`` (``[n, d_out]``) — exactly for the full network, to first
    order in ``δθ`` for the other two.  Subclasses differ in how ``δθ`` is parametrised; all
    start at ``δθ = 0``, so at initialisation every model computes ``output_scale`` times the
    initial network.  ``output_scale`` multiplies the outputs only; it is the knob of the lazy
    (large) versus rich (small) regime.  ``θ0`` is stored as buffers named ``theta0_<name>``
    (dots of the base network's parameter names replaced by underscores).
    """

    kind: str = ""

    def __init__(self, base: nn.Module, *, output_scale: float = 1.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Module):
            raise TypeError(f"base must be a torch nn.Module, got {type(base).__name__}")
        if not any(True for _ in base.parameters()):
            raise ValueError("base has no parameters to train")
        self.output_scale = check_real(output_scale, "output_scale", low=0.0, low_open=True)
        # Initial parameters θ0: detached copies, registered as buffers so that they follow the
        # module's device and dtype and are saved with it.  Base-network name → buffer name.
        self._theta0_buffers: dict[str, str] = {}
        for name, value in base.named_parameters():
            self._theta0_buffers[name] = f"theta0_{_key(name)}"
            self.register_buffer(self._theta0_buffers[name], value.detach().clone())

    @property
    def _theta0(self) -> dict[str, torch.Tensor]:
        """``θ0`` as a dict in the base network's parameter order (the buffers themselves)."""
        return {name: self._buffers[buffer] for name, buffer in self._theta0_buffers.items()}

    @property
    def initial_params(self) -> dict[str, torch.Tensor]:
        """The initial parameters ``θ0`` (name → tensor, the base network's names)."""
        return {name: value.detach() for name, value in self._theta0.items()}

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

    def __init__(self, base: nn.Module, *, output_scale: float = 1.0) -> None:
        super().__init__(base, output_scale=output_scale)
        self.net = copy.deepcopy(base).requires_grad_(True)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs ``output_scale · f(X; θ)`` (``[n, d_out]``) for inputs ``X`` (``[n, d]``)."""
        return self.output_scale * self.net(X)

    def parameter_change(self) -> dict[str, torch.Tensor]:
        theta0 = self._theta0
        return {name: value.detach() - theta0[name] for name, value in self.net.named_parameters()}


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
    weight change for small batches.  A convolutional network (convolutions, dense layers,
    ReLU, pooling, reshapes) is propagated the same way with the whole change ``δθ``
    (:func:`~atf_lite.networks.conv_linearized.linearized_forward`).  Any other architecture
    goes through one Jacobian-vector product (``torch.func.jvp``).  No way forms ``J(θ0)``.
    """

    def __init__(self, base: nn.Module, *, output_scale: float = 1.0) -> None:
        super().__init__(base, output_scale=output_scale)
        # The base module only supplies the architecture; its own tensors are never used (the
        # parameters are always given), so it is kept out of the module tree.
        self._architecture = (base,)
        self._plan = _relu_mlp_plan(base)
        self._conv_plan = conv_tangent_plan(base) if self._plan is None else None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs ``output_scale · (f(X; θ0) + J(θ0) δθ)`` (``[n, d_out]``), ``X`` ``[n, d]``."""
        if self._plan is None:
            theta0 = self._theta0
            if self._conv_plan is not None:
                out = linearized_forward(X, self._conv_plan, theta0, self._delta())
                return self.output_scale * out
            base = self._architecture[0]
            out0, change = jvp(
                lambda params: functional_call(base, params, (X,)), (theta0,), (self._delta(),)
            )
            return self.output_scale * (out0 + change)
        h, dh = X, None
        buffers, names = self._buffers, self._theta0_buffers
        for weight_name, bias_name, relu in self._plan:
            weight = buffers[names[weight_name]]
            bias = None if bias_name is None else buffers[names[bias_name]]
            z = nn.functional.linear(h, weight, bias)
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

    def __init__(self, base: nn.Module, *, output_scale: float = 1.0) -> None:
        super().__init__(base, output_scale=output_scale)
        self.delta = nn.ParameterDict(
            {
                _key(name): nn.Parameter(torch.zeros_like(value))
                for name, value in self._theta0.items()
            }
        )

    def _delta(self) -> dict[str, torch.Tensor]:
        return {name: self.delta[_key(name)] for name in self._theta0}

    def _layer_change(
        self, weight_name: str, bias_name: str | None, h: torch.Tensor
    ) -> torch.Tensor:
        change = h @ self.delta[_key(weight_name)].T
        if bias_name is not None:
            change = change + self.delta[_key(bias_name)]
        return change


class AdaptiveNet(_TangentModel):
    """Adaptive tangent features: per layer ``δW = M1 K M2``, through the linearisation.

    For a dense layer with weight ``W`` (``[m, d]``) the change is ``M1 K M2`` with ``M1``
    (``[m, m]``) acting on the layer's back-propagated signals ``g`` and ``M2`` acting on its
    inputs ``h``; ``M1 = M2 = I`` and ``K = 0`` at initialisation.  Biases are transformed as
    the weight of a constant input 1: the layer's parameters form one matrix ``[W b]``
    (``[m, d + 1]``) and ``δ[W b] = M1 K M2`` with ``K`` ``[m, d + 1]`` and ``M2``
    ``[d + 1, d + 1]``.  This matches the tangent features of the bias, ``g`` times the constant
    input (the ``+ 1`` of the structured method of
    :func:`~atf_lite.networks.tangent.tangent_kernel`), so ``M2`` may also mix the constant input
    with the others.  With ``M1 = M2 = I`` the model is
    :class:`LinearizedNet` with ``δ = K``.

    A convolution ``nn.Conv2d`` (weight ``[m, c, k_h, k_w]``) is a dense layer applied to the
    input patch at every position (:mod:`atf_lite.networks.conv_tangent`): its features are
    ``Σ_p g_p ũ_pᵀ`` with ``ũ_p`` the patch ``(c·k_h·k_w`` values``)`` and the constant 1, so
    ``M1`` (``[m, m]``) acts on the output channels, ``M2`` (``[c·k_h·k_w + 1]`` square) on
    the patch dimension and ``K`` is the weight flattened to ``[m, c·k_h·k_w + 1]``.  ``base``
    must be an ``nn.Sequential`` of ``nn.Linear`` / ``nn.Conv2d`` layers and parameter-free
    modules (see :func:`~atf_lite.networks.conv_tangent.cnn_layers`).
    """

    kind = "adaptive"

    def __init__(self, base: nn.Module, *, output_scale: float = 1.0) -> None:
        if not isinstance(base, nn.Module) or not is_structured_cnn(base):
            raise TypeError(
                "AdaptiveNet needs base to be an nn.Sequential of nn.Linear / nn.Conv2d layers "
                f"and parameter-free modules, got {type(base).__name__}"
            )
        super().__init__(base, output_scale=output_scale)
        self.layers: list[tuple[str, str, str | None]] = []  # (key, weight name, bias name)
        self.M1 = nn.ParameterDict()
        self.K = nn.ParameterDict()
        self.M2 = nn.ParameterDict()
        for name, module in base.named_children():
            if not isinstance(module, (nn.Linear, nn.Conv2d)):
                continue
            weight = self._theta0[f"{name}.weight"]
            bias_name = f"{name}.bias" if module.bias is not None else None
            m, d = weight.shape[0], weight[0].numel()
            d_in = d + (bias_name is not None)
            like = {"dtype": weight.dtype, "device": weight.device}
            self.M1[name] = nn.Parameter(torch.eye(m, **like))
            self.K[name] = nn.Parameter(torch.zeros(m, d_in, **like))
            self.M2[name] = nn.Parameter(torch.eye(d_in, **like))
            self.layers.append((name, f"{name}.weight", bias_name))

    def _delta(self) -> dict[str, torch.Tensor]:
        delta = {}
        theta0 = self._theta0
        for key, weight_name, bias_name in self.layers:
            change = self.M1[key] @ self.K[key] @ self.M2[key]
            shape = theta0[weight_name].shape
            d = theta0[weight_name][0].numel()
            delta[weight_name] = change[:, :d].reshape(shape)
            if bias_name is not None:
                delta[bias_name] = change[:, d]
        return delta

    def _layer_change(
        self, weight_name: str, bias_name: str | None, h: torch.Tensor
    ) -> torch.Tensor:
        key = weight_name.removesuffix(".weight")
        M1, K, M2 = self.M1[key], self.K[key], self.M2[key]
        m, d = self._buffers[self._theta0_buffers[weight_name]].shape
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


def feature_model(kind: str, base: nn.Module, *, output_scale: float = 1.0) -> FeatureModel:
    """Build the model ``kind`` (``"fixed"``, ``"adaptive"`` or ``"full"``) from ``base``."""
    classes = {"fixed": LinearizedNet, "adaptive": AdaptiveNet, "full": FullNet}
    if kind not in classes:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    return classes[kind](base, output_scale=output_scale)
