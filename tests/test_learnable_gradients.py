"""Gradients of every learnable parameter of every transform, against central finite differences with fixed noise.

The transforms are discovered from ``diffaug.__all__``: every geometric transform that takes
``learnable`` is built with ``learnable=True`` (and ``p < 1`` when it takes ``p``, so the
probability is learnable too). A new transform with a required argument missing from
``REQUIRED`` fails here instead of being skipped.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

import diffaug as da
from diffaug.search import check_gradient_path

# Values for required constructor arguments, and ranges wide enough for every sampler to move.
REQUIRED = {"size": 12, "degrees": (-25.0, 35.0)}
EXTRA = {
    "RandomAffine": {"translate": (0.1, 0.2), "scale": (0.8, 1.2), "shear": (-10.0, 5.0, -4.0, 8.0)},
    "RandomResizedCrop": {"scale": (0.3, 0.9)},
    "ZoomCrop": {"zoom": (1.2, 2.5)},
}


def learnable_transforms() -> list[str]:
    names = []
    for name in da.__all__:
        cls = getattr(da, name)
        if inspect.isclass(cls) and issubclass(cls, da.GeometricTransform) and cls is not da.GeometricTransform:
            if "learnable" not in inspect.signature(cls).parameters:
                continue
            names.append(name)
    return sorted(names)


def build(name: str) -> da.GeometricTransform:
    cls = getattr(da, name)
    kwargs: dict[str, object] = {"learnable": True}
    for param in inspect.signature(cls).parameters.values():
        if param.default is inspect.Parameter.empty and param.kind is param.POSITIONAL_OR_KEYWORD:
            assert param.name in REQUIRED, f"{name} needs {param.name!r}: add a value to REQUIRED"
            kwargs[param.name] = REQUIRED[param.name]
    if "p" in inspect.signature(cls).parameters:
        kwargs["p"] = 0.7
    if "interpolation" in inspect.signature(cls).parameters:
        kwargs["interpolation"] = "bilinear"  # torchvision's nearest default (rotation, affine) has no warp gradient
    if "temperature" in inspect.signature(cls).parameters:
        kwargs["temperature"] = 1.0  # a soft relaxation: at 0.1 most draws saturate and p's gradient is ~0
    kwargs.update(EXTRA.get(name, {}))
    return cls(**kwargs).double().train()


def smooth_images(batch: int = 3, size: int = 20) -> torch.Tensor:
    """Low-frequency images (bilinear-upsampled noise): finite differences stay away from kinks' effects."""
    coarse = torch.rand(batch, 2, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return F.interpolate(coarse, size=(size, size + 4), mode="bicubic", align_corners=False)


def objective(transform: da.GeometricTransform, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    # The same seed every call: the noise is fixed, only the parameters move.
    params = transform.make_params(images, generator=torch.Generator().manual_seed(7))
    return (transform.transform(images, params) * weights).sum()


def test_discovery_finds_the_geometric_family() -> None:
    names = learnable_transforms()
    assert {"RandomResizedCrop", "ZoomCrop", "RandomRotation", "RandomAffine", "RandomHorizontalFlip"} <= set(names)


@pytest.mark.parametrize("name", learnable_transforms())
def test_every_learnable_parameter_matches_central_differences(name: str) -> None:
    transform = build(name)
    images = smooth_images()
    out_shape = transform(images).shape
    weights = torch.randn(out_shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    parameters = dict(transform.named_parameters())
    assert parameters, f"{name}(learnable=True) has no parameters"
    loss = objective(transform, images, weights)
    grads = torch.autograd.grad(loss, list(parameters.values()), allow_unused=True)
    eps = 1e-6
    for (pname, param), grad in zip(parameters.items(), grads, strict=True):
        assert grad is not None, f"{name}.{pname} gets no gradient"
        numeric = torch.zeros_like(param)
        with torch.no_grad():
            for index in range(param.numel()):
                flat = param.view(-1)
                original = flat[index].item()
                flat[index] = original + eps
                up = objective(transform, images, weights)
                flat[index] = original - eps
                down = objective(transform, images, weights)
                flat[index] = original
                numeric.view(-1)[index] = (up - down) / (2 * eps)
        assert numeric.abs().max() > 1e-4, f"{name}.{pname}: the objective does not depend on it (test would be vacuous)"
        torch.testing.assert_close(grad, numeric, rtol=2e-3, atol=1e-5, msg=f"{name}.{pname}")


@pytest.mark.parametrize("target_rotated", [True, False])
def test_relaxed_probability_gradient_has_the_right_sign(target_rotated: bool) -> None:
    # Toy objective: match images rotated by 30 degrees (p should rise) or unrotated (p should fall).
    images = smooth_images(batch=64)
    fixed = da.RandomRotation((30.0, 30.0), "bilinear").double()
    target = fixed(images) if target_rotated else images
    transform = da.RandomRotation((30.0, 30.0), "bilinear", p=0.5, learnable=True).double().train()
    out = transform.transform(images, transform.make_params(images, generator=torch.Generator().manual_seed(0)))
    loss = (out - target).square().mean()
    (grad,) = torch.autograd.grad(loss, [transform.p_logit])
    assert torch.isfinite(grad)
    assert (grad < 0) if target_rotated else (grad > 0)


def test_nearest_mode_gives_zero_warp_gradient_and_is_refused() -> None:
    images = smooth_images()
    for mode, expect_zero in (("nearest", True), ("bilinear", False)):
        crop = da.RandomResizedCrop(12, scale=(0.3, 0.9), learnable=True, antialias=False).double()
        crop.mode = mode  # past the constructor's refusal, to show what it prevents
        weights = torch.randn(crop(images).shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        (grad,) = torch.autograd.grad(objective(crop, images, weights), [crop.scale.raw])
        assert bool((grad == 0).all()) == expect_zero
    with pytest.raises(ValueError, match="nearest"):
        da.RandomResizedCrop(12, interpolation="nearest", learnable=True)
    with pytest.raises(ValueError, match="nearest"):
        crop.mode = "nearest"
        check_gradient_path(crop)
    check_gradient_path(da.RandomResizedCrop(12, learnable=True))  # bilinear: fine


def test_bilinear_gradient_is_one_sided_at_integer_positions() -> None:
    # A box edge exactly on a pixel boundary: autograd gives the forward difference, not the backward one.
    row = torch.tensor([0.0, 0.0, 4.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    image = row.expand(1, 1, 1, 8).contiguous()
    x1 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)

    def value(left: torch.Tensor) -> torch.Tensor:
        box = torch.stack([left, left.new_tensor(0.0), left + 4.0, left.new_tensor(1.0)]).unsqueeze(0)
        return da.functional.crop(image, box, (1, 4))[0, 0, 0, 1]

    (grad,) = torch.autograd.grad(value(x1), [x1])
    h = 1e-4
    with torch.no_grad():
        forward = (value(x1 + h) - value(x1)) / h
        backward = (value(x1) - value(x1 - h)) / h
    assert abs(float(forward - backward)) > 1.0  # a kink: the two one-sided slopes differ
    assert float(grad) == pytest.approx(float(forward), abs=1e-6)
    # Away from the integer position, the gradient is the (unique) slope.
    x1_off = torch.tensor(1.25, dtype=torch.float64, requires_grad=True)
    (grad_off,) = torch.autograd.grad(value(x1_off), [x1_off])
    with torch.no_grad():
        central = (value(x1_off + h) - value(x1_off - h)) / (2 * h)
    assert float(grad_off) == pytest.approx(float(central), abs=1e-6)
