"""Compose: fusion into one warp, equivalence with step-by-step warps, sharpness, replay, protocol."""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import diffaug as da
from tests._counting import CountGridSample


def smooth(height: int, width: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    y = (torch.arange(height, dtype=dtype) + 0.5)[:, None] / height
    x = (torch.arange(width, dtype=dtype) + 0.5)[None, :] / width
    planes = [
        torch.sin(2 * math.pi * (1.1 * x + 0.6 * y) + c) + torch.cos(2 * math.pi * (0.5 * x - 0.9 * y) + 2 * c) for c in range(2)
    ]
    return torch.stack(planes)


def step_by_step(pipe: da.Compose, images: torch.Tensor, params: da.ComposeParams) -> torch.Tensor:
    """The unfused reference: every step resamples its own input."""
    out = images
    for step, step_params in zip(pipe, params.steps, strict=True):
        out = step.transform(out, step_params) if step_params is not None else step(out)
    return out


@dataclasses.dataclass
class GainParams:
    factor: torch.Tensor


class Gain(nn.Module):
    """A replayable non-geometric transform (its params have no theta)."""

    def make_params(self, images, generator=None):
        batch = images.shape[0] if images.ndim == 4 else 1
        noise = torch.rand(batch, generator=generator, device=images.device, dtype=images.dtype)
        return GainParams(factor=0.5 + noise)

    def transform(self, images, params):
        return images * params.factor.view(-1, 1, 1, 1)

    def forward(self, images):
        return self.transform(images, self.make_params(images))


def make_pipeline() -> da.Compose:
    return da.Compose(
        [
            # Bilinear (torchvision's default here is nearest): the step-by-step reference interpolates as the fused warp.
            da.RandomAffine(degrees=25, translate=(0.05, 0.05), scale=(0.9, 1.2), shear=8, interpolation="bilinear"),
            da.RandomHorizontalFlip(),
            da.RandomRotation(20, interpolation="bilinear"),
            da.Resize((40, 52), antialias=False),
            da.CenterCrop((32, 40)),
        ]
    )


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31))
def test_fused_equals_step_by_step_on_band_limited_images(seed):
    pipe = make_pipeline()
    images = smooth(48, 64)[None].expand(4, -1, -1, -1)
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(seed))
    fused = pipe.transform(images, params)
    reference = step_by_step(pipe, images, params)
    # Compare where the step-by-step pipeline never sampled outside an intermediate canvas.
    inside = step_by_step(pipe, torch.ones_like(images), params) > 1 - 1e-9
    assert inside.float().mean() > 0.3
    assert fused.shape == reference.shape == (4, 2, 32, 40)
    assert (fused - reference)[inside].abs().max() < 0.02


def test_fusion_is_sharper_on_noise():
    """A chain that ends at the identity: fused, the image comes back; warped step by step, it blurs."""
    pipe = da.Compose(
        [
            da.RandomRotation((30, 30), interpolation="bilinear"),
            da.RandomAffine(0, scale=(1.3, 1.3), interpolation="bilinear"),
            da.RandomAffine(0, scale=(1 / 1.3, 1 / 1.3), interpolation="bilinear"),
            da.RandomRotation((-30, -30), interpolation="bilinear"),
        ]
    )
    noise = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    params = pipe.make_params(noise)
    fused = pipe.transform(noise, params)
    sequential = step_by_step(pipe, noise, params)
    centre = (slice(None), slice(None), slice(16, 48), slice(16, 48))
    fused_error = (fused - noise)[centre].abs().mean()
    sequential_error = (sequential - noise)[centre].abs().mean()
    assert fused_error < 1e-4
    assert sequential_error > 0.05


def test_one_grid_sample_per_run():
    images = torch.rand(3, 3, 32, 32)
    pipe = make_pipeline()
    with CountGridSample() as counter:
        pipe(images)
    assert counter.count == 1
    split = da.Compose([da.RandomAffine(10), Gain(), da.RandomHorizontalFlip(), da.CenterCrop(16)])
    with CountGridSample() as counter:
        split(images)
    assert counter.count == 2
    nested = da.Compose([da.Compose([da.RandomAffine(10), da.RandomHorizontalFlip()]), da.CenterCrop(16)])
    with CountGridSample() as counter:
        nested(images)
    assert counter.count == 1


def test_params_replay_and_generator_reproduces():
    pipe = da.Compose([da.RandomResizedCrop(24), Gain(), da.RandomHorizontalFlip(), da.RandomAffine(15)])
    images = torch.rand(4, 3, 40, 40)
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(3))
    first = pipe.transform(images, params)
    assert torch.equal(pipe.transform(images, params), first)
    again = pipe.make_params(images, generator=torch.Generator().manual_seed(3))
    assert torch.equal(pipe.transform(images, again), first)
    assert torch.equal(pipe(images, generator=torch.Generator().manual_seed(3)), first)
    # A non-geometric step in the middle ends fusion: the result equals the step-by-step pipeline
    # where that step sits (gain after the crop), to interpolation error of the later warps.
    assert params.theta is None and params.matrix.shape == (4, 3, 3)


def test_single_image_and_uint8():
    pipe = make_pipeline()
    image = torch.rand(3, 48, 64)
    assert pipe(image).shape == (3, 32, 40)
    as_bytes = (torch.rand(2, 3, 48, 64) * 255).to(torch.uint8)
    out = pipe(as_bytes)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 32, 40)


def test_sequential_like_behaviour():
    flip = da.RandomHorizontalFlip(p=1.0)
    pipe = da.Compose(da.RandomAffine(5), flip, da.CenterCrop(8))
    assert len(pipe) == 3 and pipe[1] is flip
    head = pipe[:2]
    assert isinstance(head, da.Compose) and len(head) == 2
    named = da.Compose(OrderedDict(affine=da.RandomAffine(5), flip=flip))
    assert named.flip is flip
    pipe.append(da.Resize(4))
    assert pipe(torch.rand(2, 1, 16, 16)).shape == (2, 1, 4, 4)
    assert [type(m).__name__ for m in pipe] == ["RandomAffine", "RandomHorizontalFlip", "CenterCrop", "Resize"]


def test_opaque_modules_run_and_keep_size():
    pipe = da.Compose([da.RandomHorizontalFlip(p=1.0), nn.Identity(), da.RandomVerticalFlip(p=1.0)])
    images = torch.rand(2, 1, 5, 6)
    assert torch.allclose(pipe(images), images.flip(-1).flip(-2), atol=1e-6)
    bad = da.Compose([da.RandomAffine(5), nn.Upsample(scale_factor=2)])
    with pytest.raises(ValueError, match="changed the image size"):
        bad(images)


def test_gradients_reach_learnable_params_through_the_fused_warp():
    pipe = da.Compose(
        [
            da.RandomResizedCrop(16, learnable=True),
            da.RandomAffine(10, scale=(0.9, 1.1), interpolation="bilinear", learnable=True),
        ]
    )
    images = smooth(32, 32).float()[None].expand(4, -1, -1, -1)
    (pipe(images) * torch.linspace(0, 1, 16)).sum().backward()
    grads = {name: p.grad for name, p in pipe.named_parameters()}
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_antialias_follows_the_steps_unless_overridden():
    noise = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    aa = da.Compose([da.Resize(8, antialias=True), da.RandomHorizontalFlip(p=0.0)])
    plain = da.Compose([da.Resize(8, antialias=True), da.RandomHorizontalFlip(p=0.0)], antialias=False)
    smooth_out, aliased = aa(noise), plain(noise)
    # A low-pass filter before shrinking 8x leaves far less variance of white noise.
    assert smooth_out.std() < 0.5 * aliased.std()


def test_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        da.Compose([da.RandomAffine(5), lambda x: x])
    with pytest.raises(ValueError, match="interpolation"):
        da.Compose([], interpolation="cubic")
    pipe = da.Compose([da.RandomAffine(5), da.RandomHorizontalFlip()])
    other = da.Compose([da.RandomAffine(5)])
    images = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="steps"):
        pipe.transform(images, other.make_params(images))
    with pytest.raises(TypeError, match="ComposeParams"):
        pipe.transform(images, da.RandomAffine(5).make_params(images))
    with pytest.raises(TypeError, match="labels"):
        pipe(images, labels=torch.zeros(2))
    with pytest.raises(TypeError, match="boxes"):  # BoxCrop needs its boxes: not a pipeline step
        da.Compose([da.BoxCrop(4)]).make_params(images)


def test_gradcheck_through_the_fused_warp():
    pipe = da.Compose([da.RandomAffine(20, scale=(0.8, 1.2)), da.RandomHorizontalFlip(), da.CenterCrop((4, 5))])
    images = torch.rand(2, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(5))
    theta = params.steps[0].theta.detach().clone().requires_grad_(True)

    def fused(images, theta):
        steps = [dataclasses.replace(params.steps[0], theta=theta), *params.steps[1:]]
        return pipe.transform(images, dataclasses.replace(params, steps=steps))

    assert torch.autograd.gradcheck(fused, (images, theta))
