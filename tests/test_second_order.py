"""Second-order gradients through every resampling path, targets and a pipeline, and an R1 step.

GAN training that regularises the discriminator on augmented reals (R1, as StyleGAN2-ADA does)
differentiates a gradient: ``torch.autograd.grad(D(aug(x)).sum(), x, create_graph=True)``, then
``.backward()`` on a penalty of it. That needs the backward of every op on the path to be
differentiable itself. Checked in float64 with ``gradgradcheck`` (against finite differences of
the first derivative), on warps whose sample points and level weights lie away from the kinks of
bilinear interpolation and of the level map, where the second derivative exists.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import diffaug as da
from diffaug import functional as daf
from diffaug.functional import _cpu_kernels


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(seed: int, shape: tuple[int, ...] = (2, 1, 11, 10)) -> torch.Tensor:
    return torch.rand(*shape, generator=_generator(seed), dtype=torch.float64).requires_grad_()


# Images of 11 x 10 warped to 4 x 3: shrinks of about 2.5x-4.2x (between pyramid levels), rotated a
# little, partly outside the image.
THETA = torch.tensor(
    [[[0.93, 0.21, 0.113], [-0.147, 0.88, -0.061]], [[1.27, 0.031, 0.287], [0.097, 1.41, 0.023]]], dtype=torch.float64
)
# Boxes of an 11 x 10 image cut to 4 x 3: shrinks of about 2.3x-2.9x; no sample point, at any level, on a pixel
# centre (a kink of bilinear interpolation, where the second derivative does not exist).
BOXES = torch.tensor([[0.31, 1.27, 8.73, 10.61], [1.23, 0.58, 9.91, 9.69]], dtype=torch.float64)


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_gradgradcheck_plain_warp(mode, padding_mode):
    theta = (THETA * 0.4).requires_grad_()  # shrinks of at most 1.7x: the plain grid_sample

    def warp(images, theta):
        return daf.warp(images, theta, (4, 3), mode=mode, padding_mode=padding_mode)

    assert torch.autograd.gradgradcheck(warp, (_images(0), theta), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("route", ["kernel", "pyramid"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_gradgradcheck_antialiased_warp(route, padding_mode):
    """Through the CPU kernel's op (its backward is differentiated through the pyramid's ops) and
    through the pyramid itself; both to the images and to theta (grid and amount of filtering)."""
    theta = THETA.clone().requires_grad_()

    def warp(images, theta):
        if route == "pyramid":
            with _cpu_kernels.disabled():
                return daf.warp(images, theta, (4, 3), padding_mode=padding_mode, antialias=True)
        return daf.warp(images, theta, (4, 3), padding_mode=padding_mode, antialias=True)

    images = _images(1)
    name = type(warp(images, theta).grad_fn).__name__
    assert ("warp_levels" in name) is (route == "kernel")
    assert torch.autograd.gradgradcheck(warp, (images, theta), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("antialias, route", [(False, None), (True, "kernel"), (True, "pyramid")])
def test_gradgradcheck_crop_to_images_and_boxes(antialias, route):
    boxes = BOXES.clone().requires_grad_()

    def crop(images, boxes):
        if route == "pyramid":
            with _cpu_kernels.disabled():
                return daf.crop(images, boxes, (4, 3), antialias=antialias)
        return daf.crop(images, boxes, (4, 3), antialias=antialias)

    assert torch.autograd.gradgradcheck(crop, (_images(2), boxes), eps=1e-6, atol=1e-5)


def test_the_second_derivative_is_not_zero_through_the_kernel():
    """A backward that is a constant to autograd would pass a check of shapes; this one must
    carry the curvature: d/dtheta of the image gradient equals the pyramid's, and is not zero."""
    images, theta = _images(3).detach(), THETA.clone()

    def mixed(disable: bool) -> torch.Tensor:
        x, t = images.clone().requires_grad_(), theta.clone().requires_grad_()
        with _cpu_kernels.disabled() if disable else torch.enable_grad():
            out = daf.warp(x, t, (4, 3), antialias=True)
            (d_images,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
            (d_theta,) = torch.autograd.grad(d_images.square().sum(), t)
        return d_theta

    kernel, pyramid = mixed(False), mixed(True)
    torch.testing.assert_close(kernel, pyramid, rtol=0, atol=1e-10)
    assert kernel.abs().max() > 1e-3


def test_first_order_gradients_still_use_the_kernels_backward(monkeypatch):
    """Only a backward that must be differentiable leaves the kernel."""
    calls = []
    original = _cpu_kernels._pyramid_backward

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(_cpu_kernels, "_pyramid_backward", counting)
    x = _images(4)
    out = daf.warp(x, THETA, (4, 3), antialias=True)
    out.sum().backward()
    assert calls == [] and x.grad is not None
    (g,) = torch.autograd.grad(daf.warp(x, THETA, (4, 3), antialias=True).square().sum(), x, create_graph=True)
    assert calls == [1] and g.requires_grad


def _pipeline() -> da.Compose:
    steps = [
        da.RandomResizedCrop(size=8, scale=(0.4, 0.9)),  # antialiased by default
        da.RandomHorizontalFlip(p=0.5),
        da.RandomAffine(degrees=20.0, translate=(0.1, 0.1), scale=(0.8, 1.1)),
    ]
    return da.Compose(steps)


def test_gradgradcheck_through_a_compose():
    pipe = _pipeline()
    images = _images(5, (2, 1, 20, 20))
    params = pipe.make_params(images.detach(), generator=_generator(5))

    def augment(images):
        return pipe.transform(images, params)

    assert augment(images).shape == (2, 1, 8, 8)
    assert torch.autograd.gradgradcheck(augment, (images,), eps=1e-6, atol=1e-5)


def test_gradgradcheck_targets_through_theta():
    theta = THETA.clone().requires_grad_()
    boxes = torch.tensor([[[1.3, 2.1, 9.7, 12.2]], [[4.4, 0.5, 13.6, 8.8]]], dtype=torch.float64, requires_grad=True)
    points = torch.tensor([[[3.3, 4.1], [10.2, 7.7]], [[5.5, 9.9], [1.2, 2.3]]], dtype=torch.float64, requires_grad=True)

    def boxes_out(boxes, theta):
        return daf.transform_boxes(boxes, theta, (11, 10), (4, 3), clip=False)[0]

    def points_out(points, theta):
        return daf.transform_keypoints(points, theta, (11, 10), (4, 3))[0]

    assert torch.autograd.gradgradcheck(boxes_out, (boxes, theta), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(points_out, (points, theta), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(lambda b: daf.boxes_to_theta(b, (11, 10)), (BOXES.clone().requires_grad_(),))


# --------------------------------------------------------------------------- an R1 step
class _Discriminator(nn.Module):
    """Two convolutions with a smooth activation (softplus: a second derivative everywhere)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.second = nn.Conv2d(4, 1, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.second(nn.functional.softplus(self.first(images))).mean(dim=(1, 2, 3))


def _r1(disc: nn.Module, pipe: da.Compose, reals: torch.Tensor, seed: int) -> torch.Tensor:
    x = reals.detach().requires_grad_()
    augmented = pipe.transform(x, pipe.make_params(x.detach(), generator=_generator(seed)))
    (g,) = torch.autograd.grad(disc(augmented).sum(), x, create_graph=True)
    return g.pow(2).sum()


def test_r1_penalty_through_an_antialiased_compose_matches_finite_differences(monkeypatch):
    """The penalty's gradient to the discriminator's weights and to a learnable crop range, by
    double backward through the default antialiased crop (the CPU kernel's op), against central
    differences of the penalty itself."""
    crop = da.RandomResizedCrop(size=12, scale=(0.35, 0.8), learnable=True)
    pipe = da.Compose([crop, da.RandomHorizontalFlip(p=0.5), da.RandomAffine(degrees=15.0)]).double()
    disc = _Discriminator().double()
    reals = torch.rand(3, 3, 32, 32, generator=_generator(6), dtype=torch.float64)
    seed = 7
    # The crops shrink (32 -> 12 of a 0.35-0.8 area crop: 1.6x-2.4x): the kernel's op runs, and its
    # backward, asked for a graph, goes through the pyramid's ops.
    calls = []
    original = _cpu_kernels._pyramid_backward
    monkeypatch.setattr(_cpu_kernels, "_pyramid_backward", lambda *args: calls.append(1) or original(*args))
    r1 = _r1(disc, pipe, reals, seed)
    assert calls == [1]
    r1.backward()
    weight, bound = disc.first.weight, next(crop.parameters())  # a bound of the learnable crop law
    assert weight.grad is not None and bound.grad is not None

    def central(parameter: torch.Tensor, index: tuple[int, ...], eps: float = 1e-6) -> float:
        before = parameter[index].item()
        values = []
        for value in (before + eps, before - eps, before):
            with torch.no_grad():
                parameter[index] = value
            values.append(_r1(disc, pipe, reals, seed).item())
        return (values[0] - values[1]) / (2 * eps)

    for index in [(0, 0, 1, 1), (2, 1, 0, 2), (3, 2, 2, 0)]:
        assert weight.grad[index].item() == pytest.approx(central(weight, index), rel=1e-5, abs=1e-9)
    index = (0,) * bound.ndim
    expected = central(bound, index)
    assert abs(expected) > 1e-6  # the range moves the penalty: a real check of the theta path
    assert bound.grad[index].item() == pytest.approx(expected, rel=1e-4, abs=1e-8)
