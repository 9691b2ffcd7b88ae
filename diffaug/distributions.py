"""Reparameterised ranges and relaxed choices: where randomness meets gradients.

A transform's random parameters are differentiable functions of noise drawn without gradient
(``rsample``-style): ``value = low + (high - low) * u`` with ``u ~ U(0, 1)``. With
``learnable=True`` the bounds are ``nn.Parameter``\\ s, kept valid (``low <= high``, inside
their domain) by a smooth parameterisation rather than by clamping, so gradients never die at
a bound:

* a range inside a bounded domain ``[a, b]``: ``low = a + (b - a) * sigmoid(r1)`` and
  ``high = low + (b - low) * sigmoid(r2)``;
* a range inside ``(0, inf)`` sampled log-uniformly: ``log low = r1`` and
  ``log high = r1 + softplus(r2)``;
* an unbounded range: ``low = r1``, ``high = r1 + softplus(r2)``.

Bounds given exactly on the edge of a bounded domain (e.g. ``scale=(0.08, 1.0)``) are moved
inside it by ``1e-3`` of the domain width when learnable, since the sigmoid reaches the edge
only at infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Range",
    "uniform",
    "normal",
    "integers",
    "log_gamma",
    "beta",
    "dirichlet",
    "relaxed_bernoulli",
    "relaxed_one_hot",
    "straight_through",
]

_EDGE = 1e-3


def _logit(x: float) -> float:
    return math.log(x) - math.log1p(-x)


def _softplus_inverse(x: float) -> float:
    return x + math.log(-math.expm1(-x)) if x < 30 else x


def uniform(shape: Sequence[int], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``U(0, 1)`` noise of ``shape`` on ``device``, drawn without gradient (float32 for half-precision dtypes)."""
    return _noise(torch.rand, shape, generator, device, dtype)


def normal(shape: Sequence[int], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``N(0, 1)`` noise of ``shape`` on ``device``, drawn without gradient (float32 for half-precision dtypes)."""
    return _noise(torch.randn, shape, generator, device, dtype)


def integers(high: int, shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Integers uniform in ``[0, high)`` of ``shape`` on ``device`` (int64)."""
    if generator is None:  # see _noise
        return torch.randint(high, tuple(shape), device=device)
    return torch.randint(high, tuple(shape), generator=generator, device=device)


_GAMMA_CANDIDATES = 8  # Marsaglia-Tsang candidates per gamma draw: each is accepted with probability > 0.95


def log_gamma(
    alpha: float, shape: Sequence[int], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """``log X`` for ``X ~ Gamma(alpha, 1)`` of ``shape``, from uniform and normal noise only.

    Marsaglia and Tsang's method with all candidates drawn at once and the first accepted one
    taken: only ``rand``/``randn``, so the generator is honoured on every device, nothing reads a
    value and the draw traces under ``torch.compile`` (``torch._sample_dirichlet`` has no meta
    kernel). All 8 candidates fail with probability below ``1e-10``; the draw is then the method's
    centre. For ``alpha < 1``: ``Gamma(alpha + 1) U^(1 / alpha)``, in log space, so that small
    draws do not underflow.

    Examples:
        >>> draws = log_gamma(2.0, (20000,), torch.Generator().manual_seed(0), torch.device("cpu"), torch.float64).exp()
        >>> round(float(draws.mean()), 1), round(float(draws.var()), 1)  # Gamma(2, 1): mean 2, variance 2
        (2.0, 2.0)
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    boosted = alpha + 1 if alpha < 1 else alpha
    d = boosted - 1 / 3
    c = 1 / math.sqrt(9 * d)
    normal_noise = normal((*shape, _GAMMA_CANDIDATES), generator, device, dtype)
    noise = uniform((*shape, _GAMMA_CANDIDATES + 1), generator, device, dtype)
    accept_noise, boost_noise = noise[..., :_GAMMA_CANDIDATES], noise[..., _GAMMA_CANDIDATES]
    v = (1 + c * normal_noise) ** 3
    log_v = torch.log(v.clamp(min=torch.finfo(v.dtype).tiny))
    accepted = (v > 0) & (torch.log(accept_noise) < 0.5 * normal_noise**2 + d - d * v + d * log_v)
    first = accepted.view(torch.uint8).argmax(dim=-1, keepdim=True)
    chosen = torch.where(accepted.any(dim=-1, keepdim=True), log_v.gather(-1, first), torch.zeros_like(log_v[..., :1]))
    log_x = math.log(d) + chosen.squeeze(-1)
    if alpha < 1:
        log_x = log_x + torch.log(boost_noise.clamp(min=torch.finfo(boost_noise.dtype).tiny)) / alpha
    return log_x


def beta(
    alpha: float, shape: Sequence[int], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """``Beta(alpha, alpha)`` draws of ``shape`` as ``X / (X + Y)``, ``X, Y ~ Gamma(alpha)`` (see :func:`log_gamma`)."""
    pair = log_gamma(alpha, (*shape, 2), generator, device, dtype)
    return torch.sigmoid(pair[..., 0] - pair[..., 1])


def dirichlet(
    alpha: float, shape: Sequence[int], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Symmetric ``Dirichlet(alpha, ..., alpha)`` draws over the last dimension of ``shape`` (normalised gammas)."""
    return torch.softmax(log_gamma(alpha, shape, generator, device, dtype), dim=-1)


def _noise(
    draw: Callable[..., Tensor], shape: Sequence[int], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    noise_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    if generator is None:
        # An explicit generator=None breaks torch.compile with a dynamic batch size (torch 2.14: the fake tensor
        # of rand/randn then refuses symbolic sizes), which a last, smaller batch of an epoch triggers.
        return draw(tuple(shape), device=device, dtype=noise_dtype)
    return draw(tuple(shape), generator=generator, device=device, dtype=noise_dtype)


class Range(nn.Module):
    """A range ``[low, high]`` to sample from, fixed or learnable.

    Args:
        bounds: ``(low, high)`` with ``low <= high``.
        domain: ``(a, b)`` the bounds must stay in; ``b`` may be ``math.inf``.
        log: sample log-uniformly (needs ``a >= 0``), as torchvision samples aspect ratios.
        learnable: make the bounds trainable ``nn.Parameter``\\ s.

    Examples:
        >>> import torch
        >>> r = Range((0.08, 1.0), domain=(0.0, 1.0), learnable=True)
        >>> values = r.sample(torch.rand(5))
        >>> values.shape, bool(((values >= 0.08) & (values <= 1.0)).all())
        (torch.Size([5]), True)
        >>> values.sum().backward(); r.raw.grad is not None
        True
    """

    def __init__(
        self, bounds: tuple[float, float], domain: tuple[float, float], log: bool = False, learnable: bool = False
    ) -> None:
        super().__init__()
        low, high = float(bounds[0]), float(bounds[1])
        a, b = float(domain[0]), float(domain[1])
        if low > high:
            raise ValueError(f"range must be ordered as (min, max), got {bounds!r}")
        if low < a or high > b:
            raise ValueError(f"range {bounds!r} must lie inside {domain!r}")
        if log and low <= 0:
            raise ValueError(f"a log-uniform range must be positive, got {bounds!r}")
        self.log = log
        self.learnable = learnable
        self.domain = (a, b)
        # A fixed range is its bounds as Python numbers (readable under torch.compile without a data-dependent
        # guard); a learnable one its raw parameters. Nothing else is stored.
        self.fixed_values: tuple[float, float] | None = None
        self.raw: nn.Parameter | None = None
        if not learnable:
            self.fixed_values = (low, high)
            return
        if math.isfinite(b) and not log:
            eps = _EDGE * (b - a)
            low = min(max(low, a + eps), b - 2 * eps)
            high = min(max(high, low + eps), b - eps)
            raw = [_logit((low - a) / (b - a)), _logit((high - low) / (b - low))]
        elif log:
            high = max(high, low * (1 + _EDGE))
            raw = [math.log(low), _softplus_inverse(math.log(high) - math.log(low))]
        else:
            high = max(high, low + _EDGE)
            raw = [low, _softplus_inverse(high - low)]
        self.raw = nn.Parameter(torch.tensor(raw, dtype=torch.float32))

    def bounds(self) -> tuple[Tensor, Tensor]:
        """``(low, high)`` as 0-d tensors, differentiable in the raw parameters."""
        if self.raw is None:
            low, high = torch.tensor(self.fixed_values).unbind()
            return low, high
        a, b = self.domain
        r1, r2 = self.raw[0], self.raw[1]
        if self.log:
            log_low = r1
            return torch.exp(log_low), torch.exp(log_low + F.softplus(r2))
        if math.isfinite(b):
            low = a + (b - a) * torch.sigmoid(r1)
            return low, low + (b - low) * torch.sigmoid(r2)
        return r1, r1 + F.softplus(r2)

    def sample(self, noise: Tensor) -> Tensor:
        """Map ``U(0, 1)`` noise (any shape) to values in the range, reparameterised; log-uniform for a log range."""
        value = self._uniform(noise)
        return torch.exp(value) if self.log else value

    def sample_log(self, noise: Tensor) -> Tensor:
        """``log(sample(noise))`` of a log range, computed in log space (no ``exp`` and ``log``).

        Raises:
            ValueError: the range is not a log range.
        """
        if not self.log:
            raise ValueError("sample_log needs a log range (Range(..., log=True))")
        return self._uniform(noise)

    def _uniform(self, noise: Tensor) -> Tensor:
        """The one sampler: ``start + span * noise`` over ``[low, high]``, or ``[log low, log high]`` for a log range."""
        if self.raw is None:
            low, high = self.fixed_values  # type: ignore[misc]
            start, span = (math.log(low), math.log(high) - math.log(low)) if self.log else (low, high - low)
            return noise * span + start
        if self.log:  # log low = r1, log high = r1 + softplus(r2): the parameterisation is already in log space
            start, span = self.raw[0].to(noise), F.softplus(self.raw[1]).to(noise)
            return start + span * noise
        low, high = (bound.to(noise) for bound in self.bounds())
        return low + (high - low) * noise

    def extra_repr(self) -> str:
        """The bounds to 4 significant digits; a learnable bound at its domain's edge shows as the edge.

        A learnable bound given on the edge of a bounded domain (``scale=(0.08, 1.0)``) is kept
        ``1e-3`` of the domain's width inside it (the sigmoid reaches the edge only at infinity);
        within that margin (and float32's rounding of it) it is shown as the edge it stands for:
        ``1``, not ``0.999``.
        """
        with torch.no_grad():  # display only: no autograd graph, no warning about reading a parameter
            low, high = (float(v) for v in self.bounds())
        a, b = self.domain
        if self.raw is not None and math.isfinite(b) and not self.log:
            margin = 1.01 * _EDGE * (b - a)
            low, high = (a if v - a <= margin else b if b - v <= margin else v for v in (low, high))
        return f"[{low:.4g}, {high:.4g}], log={self.log}, learnable={self.learnable}"


def relaxed_bernoulli(probability: Tensor, noise: Tensor, temperature: float, hard: bool) -> Tensor:
    """A relaxed Bernoulli draw in ``[0, 1]``, differentiable in ``probability``.

    ``sigmoid((logit(p) + logit(u)) / temperature)`` with ``u`` uniform noise (a logistic
    sample): as ``temperature -> 0`` it becomes ``u < p``. With ``hard=True`` the value is
    that hard draw in the forward pass with the relaxed gradient (straight-through).
    """
    p = probability.clamp(1e-6, 1 - 1e-6)
    u = noise.clamp(1e-6, 1 - 1e-6)
    soft = torch.sigmoid((torch.logit(p) + torch.logit(u)) / temperature)
    if not hard:
        return soft
    hard_value = (u > 1 - p).to(soft.dtype)
    return straight_through(soft, hard_value)  # exactly 0 or 1 (hard + soft - soft is not, in floating point)


def relaxed_one_hot(logits: Tensor, noise: Tensor, temperature: float, hard: bool) -> Tensor:
    """A Gumbel-softmax draw ``(..., K)`` over ``K`` choices, differentiable in ``logits``.

    ``softmax((logits + g) / temperature)`` with Gumbel noise ``g = -log(-log u)`` from the
    uniform ``noise`` (same shape as the result): one draw per row, no loop. With ``hard=True`` the
    forward value is the one-hot argmax (an exact categorical draw with probabilities
    ``softmax(logits)``) and the gradient is the relaxed one's (straight-through).

    Raises:
        ValueError: ``temperature <= 0``.

    Examples:
        >>> import torch
        >>> logits = torch.zeros(3, requires_grad=True)
        >>> draw = relaxed_one_hot(logits, torch.rand(5, 3), temperature=0.5, hard=True)
        >>> draw.sum(-1).tolist(), bool(((draw == 0) | (draw == 1)).all())
        ([1.0, 1.0, 1.0, 1.0, 1.0], True)
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    u = noise.clamp(1e-6, 1 - 1e-6)
    soft = torch.softmax((logits - torch.log(-torch.log(u))) / temperature, dim=-1)
    if not hard:
        return soft
    # A comparison, not F.one_hot, which reads the indices to check their range (a host read).
    hard_value = (soft.argmax(-1, keepdim=True) == torch.arange(soft.shape[-1], device=soft.device)).to(soft.dtype)
    return straight_through(soft, hard_value)


def straight_through(soft: Tensor, hard: Tensor) -> Tensor:
    """``hard`` forward, exactly; the output's gradient into ``soft`` backward (Faster AutoAugment's estimator).

    For an operation without a useful derivative (posterize, equalize, a hard choice), ``soft`` is
    its input and ``hard`` its exact output. Integer ``soft`` carries no gradient: ``hard`` is returned.

    Examples:
        >>> soft = torch.tensor([0.2, 0.7], requires_grad=True)
        >>> out = straight_through(soft, soft.detach().round())
        >>> out.tolist(), torch.autograd.grad(out.sum(), soft)[0].tolist()
        ([0.0, 1.0], [1.0, 1.0])
    """
    if not soft.is_floating_point():
        return hard
    return _StraightThrough.apply(soft, hard)


class _StraightThrough(torch.autograd.Function):
    """Forward ``hard`` exactly (``hard + soft - soft`` is not exactly 0/1 in floating point); backward into ``soft``."""

    @staticmethod
    def forward(ctx: object, soft: Tensor, hard: Tensor) -> Tensor:  # type: ignore[override]
        return hard

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad, None
