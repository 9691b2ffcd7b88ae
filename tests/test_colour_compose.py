"""Compose fuses a run of colour steps into one colour pass, equal to the steps one after the other."""

from __future__ import annotations

import pytest
import torch

import diffaug as da
from tests._counting import CountGridSample


def _images(dtype: torch.dtype = torch.float32, batch: int = 6) -> torch.Tensor:
    images = torch.rand(batch, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    return (images * 255).round().to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)


def _step_by_step(pipe: da.Compose, images: torch.Tensor, params: da.ComposeParams) -> torch.Tensor:
    out = images
    for step, step_params in zip(pipe, params.steps, strict=True):
        out = step.transform(out, step_params)
    return out


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.mark.parametrize(
    ("steps", "count"),
    [
        # uint8 in, normalised float out: one pass.
        (lambda: [da.ToDtype(torch.float32, scale=True), da.RandomGrayscale(0.5), da.RandomInvert(), da.Normalize(MEAN, STD)], 1),
        # the jitter's clamp carried through the per-channel maps after it: still one pass.
        (lambda: [da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True), da.Normalize(MEAN, STD)], 1),
        (lambda: [da.RandomChannelPermutation(), da.ColorJitter(0.5, 0.5, 0.5, fused=True, p=0.5), da.Normalize(MEAN, STD)], 1),
        # a map that mixes channels after a clamp starts a new pass.
        (lambda: [da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True), da.RandomGrayscale(0.5), da.Normalize(MEAN, STD)], 2),
        # torchvision's exact jitter (two ops: two clamped passes) is not one matrix: the steps around it fuse.
        (lambda: [da.RandomInvert(), da.ColorJitter(0.4, 0.4), da.RandomGrayscale(0.5), da.Normalize(MEAN, STD)], 4),
    ],
)
def test_a_colour_run_is_one_pass_equal_to_the_steps_in_turn(steps, count: int, passes: list[int]) -> None:
    pipe = da.Compose(steps())
    images = _images(torch.uint8 if isinstance(pipe[0], da.ToDtype) else torch.float64)
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(1))
    fused = pipe.transform(images, params)
    assert len(passes) == count
    sequential = _step_by_step(pipe, images, params)
    assert fused.dtype == sequential.dtype
    torch.testing.assert_close(fused, sequential, atol=1e-5, rtol=0)


def test_uint8_warp_then_one_colour_pass_to_normalised_float(passes: list[int]) -> None:
    """uint8 -> one warp -> one colour pass -> float; equal to the steps in turn within the uint8 rounding they do."""
    pipe = da.Compose(
        [
            da.RandomResizedCrop(8),
            da.RandomHorizontalFlip(),
            da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True, p=0.8),
            da.ToDtype(torch.float32, scale=True),
            da.Normalize(MEAN, STD),
        ]
    )
    images = _images(torch.uint8)
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(2))
    with CountGridSample() as warps:
        out = pipe.transform(images, params)
    assert (len(passes), warps.count) == (1, 1)
    assert out.dtype == torch.float32 and out.shape == (6, 3, 8, 8)
    geometric = da.Compose(list(pipe)[:2])
    warped = geometric.transform(images, da.ComposeParams(params.steps[:2], params.in_size, params.size, params.matrix, None))
    sequential = warped
    for step, step_params in zip(list(pipe)[2:], params.steps[2:], strict=True):
        sequential = step.transform(sequential, step_params)
    # The steps round to uint8 after the jitter and the warp; the fused pass does not (one level, over std).
    assert (out - sequential).abs().max() <= 1.01 / 255 / min(STD)


def test_gradients_through_a_fused_run_reach_images_and_ranges() -> None:
    jitter = da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True, learnable=True, p=0.7)
    pipe = da.Compose([jitter, da.RandomGrayscale(0.5), da.Normalize(MEAN, STD)]).double()
    images = (0.3 + 0.4 * _images(torch.float64, batch=2)).requires_grad_()
    params = pipe.make_params(images.detach(), generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(lambda x: pipe.transform(x, params), (images,))
    pipe(images).sum().backward()
    for parameter in (jitter.brightness.raw, jitter.contrast.raw, jitter.saturation.raw, jitter.hue.raw, jitter.p_logit):
        assert parameter.grad is not None and bool(torch.isfinite(parameter.grad).all())


def test_colour_steps_leave_boxes_alone() -> None:
    pipe = da.Compose([da.ColorJitter(0.4, 0.4), da.RandomInvert(), da.Normalize(MEAN, STD)])
    boxes = torch.tensor([[1.0, 2.0, 7.0, 9.0]]).expand(6, 1, 4)
    result = pipe(_images(), boxes=boxes)
    torch.testing.assert_close(result["boxes"], boxes)
    assert bool(result["boxes_valid"].all())


def test_a_fused_run_makes_the_checks_of_its_steps() -> None:
    images = _images()
    with pytest.raises(TypeError, match="floating point"):
        da.Compose([da.RandomInvert(), da.Normalize(MEAN, STD)])(_images(torch.uint8))
    with pytest.raises(ValueError, match="channels"):
        da.Compose([da.Grayscale(), da.Normalize([0.5], [0.2])])(images)
    assert da.Compose([da.Normalize(MEAN, STD), da.Grayscale()])(images).shape == (6, 1, 10, 10)
