"""The learnable Policy: shapes, one fused warp, Gumbel op choice, gradients, export and bad arguments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import diffaug as da
from diffaug.distributions import Range, relaxed_one_hot
from diffaug.search.policy import Policy, Stage, default_ops, freeze


def smooth_images(batch: int = 8, size: int = 24) -> torch.Tensor:
    coarse = torch.rand(batch, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def test_forward_shapes_and_replay() -> None:
    policy = Policy(num_subpolicies=3, depth=2, size=(12, 16))
    images = smooth_images()
    params = policy.make_params(images, generator=torch.Generator().manual_seed(1))
    out = policy.transform(images, params)
    assert out.shape == (8, 3, 12, 16)
    # One warp with the fused theta: replaying the params gives the same images.
    assert torch.equal(out, da.functional.warp(images, params.theta, (12, 16)))
    assert policy(images[0]).shape == (3, 12, 16)


def test_gradients_reach_choice_logits_ranges_and_probabilities() -> None:
    policy = Policy(num_subpolicies=2, depth=2, temperature=1.0).train()
    for op in policy.modules():
        if isinstance(op, da.GeometricTransform) and op.p_logit is not None:
            op.temperature = 1.0  # soft relaxed draws so every probability gets a gradient from few samples
    images = smooth_images(batch=32)
    target = torch.rand_like(images)
    (policy(images) - target).square().mean().backward()
    missing = [name for name, p in policy.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    zero = [name for name, p in policy.named_parameters() if name.endswith("logits") and bool((p.grad == 0).all())]
    assert not zero, zero


def test_hard_choice_is_one_hot_and_follows_the_softmax() -> None:
    logits = torch.tensor([1.5, 0.0, -1.0, 0.5])
    draws = relaxed_one_hot(logits, torch.rand(40000, 4, generator=torch.Generator().manual_seed(0)), 0.5, hard=True)
    assert bool(((draws == 0) | (draws == 1)).all()) and bool((draws.sum(-1) == 1).all())
    frequencies = draws.mean(0)
    torch.testing.assert_close(frequencies, torch.softmax(logits, 0), atol=0.01, rtol=0)


def test_choice_gradient_prefers_the_op_that_fits() -> None:
    # Two candidates: rotate by 30 or by 5 degrees; the target is rotated by 30: the logit of "rotate 30" must rise.
    # (Not 0 degrees: the identity warp samples exact pixel centres, where bilinear sampling has a kink and its
    # one-sided gradient points the wrong way on this image; see docs/learnable.md.)
    ops = {"rot30": lambda: da.RandomRotation((30.0, 30.0)), "rot5": lambda: da.RandomRotation((5.0, 5.0))}
    policy = Policy(ops, num_subpolicies=1, depth=1, temperature=1.0).double()
    images = smooth_images(batch=64).double()
    target = da.RandomRotation((30.0, 30.0)).double()(images)
    out = policy.transform(images, policy.make_params(images, generator=torch.Generator().manual_seed(0)))
    (out - target).square().mean().backward()
    grad = policy.subpolicies[0][0].logits.grad
    assert grad[0] < 0 < grad[1]


def test_soft_mixture_blends_matrices() -> None:
    ops = {"rot30": lambda: da.RandomRotation((30.0, 30.0)), "still": lambda: da.RandomRotation((0.0, 0.0))}
    stage = Stage([factory() for factory in ops.values()], temperature=1.0, hard=False)
    canvas = torch.zeros(5, 1, 8, 8)
    matrix = stage.matrix(canvas, generator=torch.Generator().manual_seed(0))
    weights = stage.weights(5, torch.Generator().manual_seed(0), canvas.device, torch.float32)
    assert bool(((weights > 0) & (weights < 1)).all())
    # The mixed rotation block is w R30 + (1 - w) I: its diagonal is w cos30 + 1 - w.
    cos = math.cos(math.radians(30.0))
    diagonal = matrix[:, 0, 0]
    assert bool(((diagonal < 1) & (diagonal > cos)).all())


def test_export_and_sample_policy_have_no_parameters_and_keep_values() -> None:
    policy = Policy(num_subpolicies=2, depth=2)
    with torch.no_grad():
        policy.subpolicies[0][0].logits.copy_(torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0]))  # "rotate" dominates
        rotate = policy.subpolicies[0][0].ops[1]
        rotate.degrees.raw.copy_(torch.tensor([-12.0, 1.0]))
    low, high = (float(v.detach()) for v in rotate.degrees.bounds())
    plain = policy.export(mode="argmax")
    assert list(plain.parameters()) == []
    first = plain.describe()[0][0]
    assert len(first) == 1 and first[0]["op"] == "rotate"
    assert first[0]["ranges"]["degrees"] == pytest.approx([low, high], abs=1e-4)
    assert first[0]["p"] == pytest.approx(0.5, abs=1e-3)
    images = smooth_images()
    assert plain(images).shape == images.shape
    sampled = policy.sample_policy(generator=torch.Generator().manual_seed(0))
    assert list(sampled.parameters()) == []
    assert sampled.describe()[0][0][0]["op"] == "rotate"  # probability 0.97 of being drawn; seed fixed
    # The original is untouched.
    assert len(policy.subpolicies[0][0].ops) == len(default_ops())


def test_freeze_keeps_the_law() -> None:
    crop = da.RandomResizedCrop(8, scale=(0.2, 0.7), learnable=True)
    frozen = freeze(crop)
    assert list(frozen.parameters()) == []
    for a, b in zip(crop.scale.bounds(), frozen.scale.bounds(), strict=True):
        assert float(a.detach()) == pytest.approx(float(b), abs=1e-6)
    images = torch.rand(4, 3, 16, 16)
    p1 = crop.make_params(images, generator=torch.Generator().manual_seed(0))
    p2 = frozen.make_params(images, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(p1.boxes.detach(), p2.boxes, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"ops": {}}, ValueError, "empty policy"),
        ({"num_subpolicies": 0}, ValueError, "num_subpolicies"),
        ({"depth": 0}, ValueError, "depth"),
        ({"ops": {"bad": lambda: torch.nn.Identity()}}, TypeError, "geometric"),
        ({"ops": [lambda: da.RandomRotation(10)]}, TypeError, "dict"),
        ({"interpolation": "nearest"}, ValueError, "nearest"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Policy(**kwargs)


def test_bad_ranges_and_temperatures_elsewhere() -> None:
    with pytest.raises(ValueError, match="temperature"):
        relaxed_one_hot(torch.zeros(3), torch.rand(2, 3), temperature=0.0, hard=False)
    with pytest.raises(ValueError, match="inside"):
        Range((0.5, 1.5), domain=(0.0, 1.0), learnable=True)
    with pytest.raises(ValueError, match="scale"):
        da.RandomResizedCrop(8, scale=(-0.1, 0.5), learnable=True)
    with pytest.raises(ValueError, match="temperature"):
        da.RandomRotation(10, p=0.5, learnable=True, temperature=0.0)
