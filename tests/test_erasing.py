"""RandomErasing: torchvision's law per sample, exact hard erasing, soft corners with gradients.

* the law against torchvision's own ``make_params`` called repeatedly: the erased area, the
  aspect ratio h / w and the position (two-sample Kolmogorov-Smirnov), the no-fit rate;
* pixels outside the box bitwise unchanged (any box, any dtype); integer boxes equal
  torchvision's ``erase`` on each sample;
* gradcheck (float64) with respect to the box corners and to the learnable ranges.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch._dynamo
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from torch.func import functional_call

import diffaug as da
from diffaug import functional as daf

HEIGHT, WIDTH = 40, 60  # not square, so a swapped h / w shows


def _torchvision_draws(count: int, **kwargs) -> np.ndarray:
    """``(count, 4)`` torchvision boxes (x1, y1, x2, y2); zeros where it erases nothing."""
    torch.manual_seed(0)
    transform = T.RandomErasing(p=1.0, **kwargs)
    image = torch.zeros(3, HEIGHT, WIDTH)
    boxes = np.zeros((count, 4))
    for k in range(count):
        params = transform.make_params([image])
        if params["v"] is not None:
            i, j, h, w = params["i"], params["j"], params["h"], params["w"]
            boxes[k] = (j, i, j + w, i + h)
    return boxes


def _diffaug_draws(count: int, **kwargs) -> np.ndarray:
    transform = da.RandomErasing(p=1.0, **kwargs)
    params = transform.make_params(torch.zeros(count, 3, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(1))
    return params.boxes.double().numpy()


def _statistics(boxes: np.ndarray) -> dict[str, np.ndarray]:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    erased = (w > 0) & (h > 0)
    w, h, x1, y1 = w[erased], h[erased], boxes[erased, 0], boxes[erased, 1]
    return {
        "erased": erased,
        "area": w * h / (HEIGHT * WIDTH),
        "log_ratio": np.log(h / w),
        # Uniform on [0, 1] exactly when the integer offset is uniform on 0..W-w: (x1 + V) / (W - w + 1).
        "x": (x1 + np.random.default_rng(0).random(x1.shape)) / (WIDTH - w + 1),
        "y": (y1 + np.random.default_rng(1).random(y1.shape)) / (HEIGHT - h + 1),
    }


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"scale": (0.1, 0.6), "ratio": (0.5, 4.0)}],
    ids=["defaults", "wide"],
)
def test_law_matches_torchvision(kwargs) -> None:
    count = 3000
    ours, theirs = _statistics(_diffaug_draws(count, **kwargs)), _statistics(_torchvision_draws(count, **kwargs))
    # The rate of samples where no try fits (nothing erased): Fisher's exact test on the two counts.
    table = [[ours["erased"].sum(), count - ours["erased"].sum()], [theirs["erased"].sum(), count - theirs["erased"].sum()]]
    assert stats.fisher_exact(table).pvalue > 1e-3
    for name in ("area", "log_ratio", "x", "y"):
        result = stats.ks_2samp(ours[name], theirs[name])
        assert result.pvalue > 1e-3, (name, result)


def test_law_test_rejects_a_swapped_ratio() -> None:
    # The same statistics see h / w taken as w / h (RandomResizedCrop's convention) with an asymmetric range.
    count = 3000
    ours = _statistics(_diffaug_draws(count, ratio=(0.3, 1.0)))
    theirs = _statistics(_torchvision_draws(count, ratio=(1.0, 1 / 0.3)))
    assert stats.ks_2samp(ours["log_ratio"], theirs["log_ratio"]).pvalue < 1e-6


def test_no_try_fits_erases_nothing_as_torchvision() -> None:
    # Boxes taller than the image on every try: torchvision returns the input.
    transform = da.RandomErasing(p=1.0, scale=(0.9, 1.0), ratio=(3.0, 3.3))
    images = torch.rand(16, 3, 20, 20)
    params = transform.make_params(images)
    assert torch.equal(params.boxes, torch.zeros(16, 4))
    assert torch.equal(transform.transform(images, params), images)
    assert T.RandomErasing(p=1.0, scale=(0.9, 1.0), ratio=(3.0, 3.3)).make_params([images[0]])["v"] is None


def test_boxes_are_integer_inside_and_differ_across_samples() -> None:
    params = da.RandomErasing(p=1.0).make_params(torch.zeros(64, 3, HEIGHT, WIDTH))
    boxes = params.boxes
    assert torch.equal(boxes, boxes.round())
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= WIDTH).all() and (boxes[:, 3] <= HEIGHT).all()
    assert boxes.unique(dim=0).shape[0] > 32


def _outside(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, 1, H, W)`` pixels that no part of the box touches."""
    ys = torch.arange(height).view(1, height, 1).double()
    xs = torch.arange(width).view(1, 1, width).double()
    x1, y1, x2, y2 = (boxes[:, k].double().view(-1, 1, 1) for k in range(4))
    touched = (xs + 1 > x1) & (xs < x2) & (ys + 1 > y1) & (ys < y2)
    return (~touched).unsqueeze(1)


@given(
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.uint8, torch.bfloat16]),
    value=st.sampled_from([0.0, (0.2, 0.5, 0.9), "random"]),
)
def test_pixels_outside_the_box_are_bitwise_unchanged(seed, dtype, value) -> None:
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(4, 3, 9, 11, generator=generator) * 255).to(dtype)
    transform = da.RandomErasing(p=1.0, value=value, learnable=True)  # learnable: fractional boxes
    params = transform.make_params(images, generator=generator)
    out = transform.transform(images, params)
    keep = _outside(params.boxes, 9, 11).expand_as(images)
    assert out.dtype == images.dtype
    assert torch.equal(out[keep], images[keep])
    assert not torch.equal(out, images) or bool(keep.all())


@given(seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float32, torch.uint8, torch.bfloat16, torch.float16]))
def test_integer_boxes_equal_torchvision_erase(seed, dtype) -> None:
    generator = torch.Generator().manual_seed(seed)
    # Wider than 256 pixels: bfloat16 does not hold the corners there, the cover is computed in float32.
    images = (torch.rand(5, 3, 12, 300, generator=generator) * 255).to(dtype)
    value = (7.0, 100.0, 255.0)
    transform = da.RandomErasing(p=1.0, value=value)
    params = transform.make_params(images, generator=generator)
    out = transform.transform(images, params)
    for k in range(images.shape[0]):
        x1, y1, x2, y2 = (int(v) for v in params.boxes[k])
        expected = TF.erase(images[k], i=y1, j=x1, h=y2 - y1, w=x2 - x1, v=torch.tensor(value).view(3, 1, 1).to(dtype))
        assert torch.equal(out[k], expected)


def test_random_value_is_normal_noise_and_replays() -> None:
    transform = da.RandomErasing(p=1.0, value="random", scale=(0.3, 0.3), ratio=(1.0, 1.0))
    images = torch.zeros(8, 3, 32, 32)
    params = transform.make_params(images, generator=torch.Generator().manual_seed(0))
    out = transform.transform(images, params)
    assert torch.equal(out, transform.transform(images, params))  # the noise is in the params
    inside = ~_outside(params.boxes, 32, 32).expand_as(images)
    erased = out[inside]
    assert erased.numel() > 1000
    assert abs(float(erased.mean())) < 0.1 and abs(float(erased.std()) - 1.0) < 0.1
    assert stats.kstest(erased.numpy(), "norm").pvalue > 1e-3


def test_probability_and_single_images() -> None:
    images = torch.rand(200, 1, 16, 16)
    params = da.RandomErasing(p=0.3).make_params(images, generator=torch.Generator().manual_seed(0))
    out = da.RandomErasing(p=0.3).transform(images, params)
    changed = (out != images).flatten(1).any(1).float()
    assert torch.equal(changed, params.applied)  # every applied sample has a box (scale >= 0.02 of 256 pixels)
    assert 40 < int(params.applied.sum()) < 80
    single = torch.rand(3, 16, 16)
    out = da.RandomErasing(p=1.0, value=1.0)(single)
    assert out.shape == single.shape and bool((out == 1.0).any())
    assert torch.equal(da.RandomErasing(p=0.0)(single), single)


def test_targets_pass_through_unchanged() -> None:
    images, boxes = torch.rand(2, 3, 16, 16), torch.tensor([[[1.0, 2.0, 5.0, 6.0]], [[0.0, 0.0, 3.0, 3.0]]])
    result = da.RandomErasing(p=1.0, value=2.0)(images, boxes=boxes)
    assert torch.equal(result["boxes"], boxes) and bool((result["images"] == 2.0).any())


def test_inplace_writes_into_the_images() -> None:
    images = torch.rand(4, 3, 16, 16)
    expected = da.RandomErasing(p=1.0)
    params = expected.make_params(images)
    reference = expected.transform(images, params)
    out = da.RandomErasing(p=1.0, inplace=True).transform(images, params)
    assert out is images and torch.equal(images, reference)


def _soft_erase(boxes: torch.Tensor, images: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return daf.erase(images, boxes, value)


def test_gradcheck_box_corners_images_and_value() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 2, 6, 7, dtype=torch.float64, generator=generator, requires_grad=True)
    # Fractional corners, one partly outside the image.
    boxes = torch.tensor([[1.3, 0.6, 4.7, 3.2], [-0.4, 2.25, 3.6, 7.5]], dtype=torch.float64, requires_grad=True)
    value = torch.tensor([0.3, -0.7], dtype=torch.float64).view(2, 1, 1).requires_grad_()
    assert torch.autograd.gradcheck(_soft_erase, (boxes, images, value))


def test_gradient_at_integer_corners_is_the_mean_of_the_one_sided_ones() -> None:
    images = torch.rand(1, 1, 5, 6, dtype=torch.float64)
    boxes = torch.tensor([[1.0, 1.0, 4.0, 3.0]], dtype=torch.float64, requires_grad=True)
    daf.erase(images, boxes, 0.0).sum().backward()
    step = 1e-6
    for k in range(4):
        plus, minus = boxes.detach().clone(), boxes.detach().clone()
        plus[0, k] += step
        minus[0, k] -= step
        base = daf.erase(images, boxes.detach(), 0.0).sum()
        right = (daf.erase(images, plus, 0.0).sum() - base) / step
        left = (base - daf.erase(images, minus, 0.0).sum()) / step
        assert torch.allclose(boxes.grad[0, k], (right + left) / 2, atol=1e-6)


def test_gradcheck_learnable_ranges() -> None:
    transform = da.RandomErasing(p=1.0, learnable=True, scale=(0.1, 0.3), ratio=(0.5, 2.0)).double()
    images = torch.rand(4, 2, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    names = ["scale.raw", "ratio.raw"]

    def erased(scale_raw: torch.Tensor, ratio_raw: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)  # the same noise on every call: the output is a function of the bounds
        return functional_call(transform, dict(zip(names, (scale_raw, ratio_raw), strict=True)), (images,))

    raws = tuple(transform.get_parameter(name).detach().clone().requires_grad_() for name in names)
    assert torch.autograd.gradcheck(erased, raws)
    out = erased(*raws)
    out.sum().backward()
    assert all(float(raw.grad.abs().sum()) > 0 for raw in raws)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scale"):
        da.RandomErasing(scale=(0.5, 1.5))
    with pytest.raises(ValueError, match="ratio"):
        da.RandomErasing(ratio=(0.0, 1.0))
    with pytest.raises(ValueError, match="random"):
        da.RandomErasing(value="noise")
    with pytest.raises(TypeError, match="value"):
        da.RandomErasing(value=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one per channel"):
        da.RandomErasing(value=(1.0, 2.0))(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="make_params"):
        transform = da.RandomErasing()
        transform.transform(torch.rand(3, 3, 8, 8), transform.make_params(torch.rand(2, 3, 8, 8)))
    with pytest.raises(TypeError, match="images"):
        da.RandomErasing()(np.zeros((3, 8, 8)))


@pytest.mark.parametrize(
    "kwargs",
    [{"p": 0.5, "value": (0.1, 0.2, 0.3)}, {"p": 0.5, "value": "random", "learnable": True}],
    ids=["per-channel", "random-learnable"],
)
def test_compiles_without_graph_breaks(kwargs) -> None:
    torch._dynamo.reset()
    transform = da.RandomErasing(**kwargs)
    compiled = torch.compile(transform, fullgraph=True, backend="eager")
    images = torch.rand(3, 3, 12, 12)
    outputs = []
    for seed in range(2):
        torch.manual_seed(seed)
        expected = transform(images)
        torch.manual_seed(seed)
        outputs.append(compiled(images))
        torch.testing.assert_close(outputs[-1], expected, rtol=0, atol=0)
    assert not torch.equal(outputs[0], outputs[1])  # new draws per call, not constants of the graph


def test_signature_is_torchvisions_with_keyword_only_additions() -> None:
    ours = list(inspect.signature(da.RandomErasing).parameters.values())
    theirs = list(inspect.signature(T.RandomErasing).parameters.values())
    positional = [p for p in ours if p.kind is not p.KEYWORD_ONLY]
    assert [(p.name, p.kind, p.default) for p in positional] == [(p.name, p.kind, p.default) for p in theirs]
    assert [p.name for p in ours if p.kind is p.KEYWORD_ONLY] == ["learnable", "temperature"]


def test_in_a_pipeline_after_a_crop() -> None:
    pipeline = da.Compose([da.RandomResizedCrop(16), da.RandomErasing(p=1.0, value="random")])
    images = torch.rand(4, 3, 32, 32)
    params = pipeline.make_params(images, generator=torch.Generator().manual_seed(0))
    out = pipeline.transform(images, params)
    assert out.shape == (4, 3, 16, 16)
    assert torch.equal(out, pipeline.transform(images, params))  # the noise replays from the params
    erasing = params.steps[1]
    assert erasing.noise.shape == (4, 3, 16, 16) and erasing.in_size == (16, 16)
    cropped = pipeline[0].transform(images, params.steps[0])
    assert torch.equal(out, pipeline[1].transform(cropped, erasing))


def test_learnable_probability_gets_gradients() -> None:
    transform = da.RandomErasing(p=0.5, value=1.0, learnable=True, temperature=1.0)
    assert transform.p_logit is not None
    transform(torch.zeros(16, 1, 12, 12)).sum().backward()
    assert float(transform.p_logit.grad.abs()) > 0
    assert transform.scale.raw is not None and float(transform.scale.raw.grad.abs().sum()) > 0
