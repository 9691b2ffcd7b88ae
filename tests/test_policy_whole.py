"""The learnable Policy over the whole operation set: geometric, colour and straight-through pixel candidates.

Gradients reach every magnitude, probability and choice logit; hard choices apply exactly one op
per sample per stage; soft choices are the documented mixture; export() samples from the learned
probabilities; a loss that only one op can satisfy makes the policy choose that op.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

import diffaug as da
from diffaug import functional as daf
from diffaug.search.policy import Policy, Stage, all_ops, op_kind


def smooth_images(batch: int = 8, size: int = 24, low: float = 0.0, high: float = 1.0, seed: int = 0) -> torch.Tensor:
    coarse = torch.rand(batch, 3, 6, 6, generator=torch.Generator().manual_seed(seed))
    images = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return low + (high - low) * images


# Four ops whose outputs on a constant 0.6 image tell them apart: 0.3, 0.4, 128 / 255, 0.6.
def marked_ops() -> dict:
    return {
        "dark": lambda: da.ColorJitter(brightness=(0.5, 0.5), fused=True),
        "invert": lambda: da.RandomInvert(p=1.0),
        "posterize": lambda: da.RandomPosterize(1, p=1.0),
        "flip": lambda: da.RandomHorizontalFlip(p=1.0),
    }


MARKS = torch.tensor([0.3, 0.4, 128 / 255, 0.6])


def which_op(out: torch.Tensor) -> torch.Tensor:
    """``(B,)``: the index of the marked op that made each (constant) output."""
    assert bool((out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3)) < 1e-6).all())
    return (out[:, 0, 0, 0, None] - MARKS).abs().argmin(-1)


def relax_probabilities(policy: torch.nn.Module) -> None:
    # Soft relaxed draws of every learnable p, so that each p gets a gradient from a small batch.
    for op in policy.modules():
        if isinstance(op, da.RandomTransform) and op.p_logit is not None:
            op.temperature = 1.0


def test_all_ops_cover_the_three_kinds_with_randaugment_names() -> None:
    ops = all_ops()
    kinds = {name: op_kind(build()) for name, build in ops.items()}
    assert {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"} == {n for n, k in kinds.items() if k == "geometric"}
    assert {"Brightness", "Color", "Contrast", "Invert"} == {n for n, k in kinds.items() if k == "colour"}
    assert {"Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"} == {n for n, k in kinds.items() if k == "pixel"}
    translate_x = ops["TranslateX"]()
    assert translate_x.translate_y is None and translate_x.translate_x.raw is not None  # moves along x only


def test_soft_gradients_reach_every_magnitude_probability_and_logit() -> None:
    policy = Policy(all_ops(), num_subpolicies=1, depth=2, hard=False, temperature=1.0).train()
    relax_probabilities(policy)
    images = smooth_images(batch=16)
    out = policy(images, generator=torch.Generator().manual_seed(0))
    (out - torch.rand_like(out)).square().mean().backward()
    names = [name for name, _ in policy.named_parameters()]
    # Every kind has learnable magnitudes: geometric ranges, colour factors, the solarize threshold, the sharpness factor.
    for part in ("shear_x.raw", "translate_y.raw", "degrees.raw", "brightness.raw", "saturation.raw", "contrast.raw"):
        assert any(name.endswith(part) for name in names), part
    for part in ("threshold_range.raw", "factor_range.raw", "logits"):
        assert any(name.endswith(part) for name in names), part
    bad = [n for n, p in policy.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or (p.grad == 0).all()]
    assert not bad, bad
    # Straight-through pixel ops: their learnable p receives a gradient through the op's output.
    stage = policy.subpolicies[0][0]
    for name in ("Posterize", "AutoContrast", "Equalize"):
        op = stage.ops[list(all_ops()).index(name)]
        assert op.p_logit.grad is not None and float(op.p_logit.grad.abs()) > 0, name


def test_hard_choice_sends_a_straight_through_gradient_to_every_logit() -> None:
    policy = Policy(all_ops(), num_subpolicies=2, depth=2).train()
    images = smooth_images(batch=32)
    out = policy(images, generator=torch.Generator().manual_seed(1))
    (out - images.flip(-1)).square().mean().backward()
    for stages in policy.stages():
        for stage in stages:
            assert torch.isfinite(stage.logits.grad).all()
            assert bool((stage.logits.grad != 0).all()), stage.logits.grad
    finite = [n for n, p in policy.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not finite


@pytest.mark.parametrize("depth", [1, 2])
def test_hard_mode_applies_exactly_one_op_per_sample_per_stage(depth: int) -> None:
    policy = Policy(marked_ops(), num_subpolicies=2, depth=depth)
    images = smooth_images(batch=64, low=0.1, high=0.9)
    params = policy.make_params(images, generator=torch.Generator().manual_seed(2))
    out = policy.transform(images, params)
    ops = list(marked_ops().values())
    chosen = []
    for weights in params.weights:  # per stage: (B, K n), one-hot
        assert bool(((weights == 0) | (weights == 1)).all()) and bool((weights.sum(-1) == 1).all())
        chosen.append(weights.argmax(-1) % len(ops))
    chosen_t = torch.stack(chosen, 1)
    assert len(set(chosen_t[:, 0].tolist())) == len(ops)  # every kind of op was drawn in the batch
    for b in range(images.shape[0]):  # the sequence each sample chose, one op after the other
        expected = images[b : b + 1]
        for index in chosen_t[b].tolist():
            expected = ops[index]()(expected)
        torch.testing.assert_close(out[b : b + 1], expected, atol=1e-6, rtol=0)


def test_hard_forward_is_the_chosen_op_exactly() -> None:
    # A pixel op's output, not x + (P(x) - x): bit for bit.
    policy = Policy(
        {"posterize": lambda: da.RandomPosterize(2, p=1.0), "invert": lambda: da.RandomInvert(p=1.0)},
        num_subpolicies=1,
        depth=1,
    )
    images = smooth_images(batch=32)
    params = policy.make_params(images, generator=torch.Generator().manual_seed(3))
    out = policy.transform(images, params)
    posterized = params.weights[0][:, 0] == 1
    assert 0 < int(posterized.sum()) < 32
    assert torch.equal(out[posterized], da.RandomPosterize(2, p=1.0)(images[posterized]))
    assert torch.equal(out[~posterized], da.RandomInvert(p=1.0)(images[~posterized]))


def test_soft_mode_is_the_weighted_mixture() -> None:
    ops = {
        "dim": lambda: da.ColorJitter(brightness=(0.7, 0.7), fused=True),
        "contrast": lambda: da.ColorJitter(contrast=(0.5, 0.5), fused=True),  # a mean-form matrix
        "invert": lambda: da.RandomInvert(p=1.0),
        "posterize": lambda: da.RandomPosterize(2, p=1.0),
        "sharpen": lambda: da.RandomAdjustSharpness(2.0, p=1.0),
        "flip": lambda: da.RandomHorizontalFlip(p=1.0),
    }
    policy = Policy(ops, num_subpolicies=1, depth=1, hard=False, temperature=1.0)
    images = smooth_images(batch=6, low=0.1, high=0.9)
    params = policy.make_params(images, generator=torch.Generator().manual_seed(4))
    w = params.weights[0]
    assert bool(((w > 0) & (w < 1)).all())
    # By hand: the geometry is a mixed matrix (one warp), then sum_k w_k op_k on the warped images.
    flip = daf.to_square(da.RandomHorizontalFlip(p=1.0).make_params(images).theta)
    identity = daf.identity(6)
    matrix = w[:, 5, None, None] * flip + (1 - w[:, 5, None, None]) * identity
    warped = daf.warp(images, daf.to_theta(matrix), (24, 24))
    outputs = [0.7 * warped, da.ColorJitter(contrast=(0.5, 0.5))(warped), 1 - warped]
    outputs += [da.RandomPosterize(2, p=1.0)(warped), da.RandomAdjustSharpness(2.0, p=1.0)(warped), warped]
    expected = sum(w[:, k, None, None, None] * outputs[k] for k in range(6))
    torch.testing.assert_close(policy.transform(images, params), expected.clamp(0, 1), atol=1e-5, rtol=0)
    # In eval mode the same policy chooses one op per sample, as learnable probabilities draw hard there.
    chosen = policy.eval().make_params(images, generator=torch.Generator().manual_seed(4)).weights[0]
    assert bool(((chosen == 0) | (chosen == 1)).all()) and torch.equal(chosen.sum(-1), torch.ones(6))


def test_gradcheck_of_the_photometric_stage_in_float64() -> None:
    ops = {
        "brightness": lambda: da.ColorJitter(brightness=(0.6, 0.9), fused=True, learnable=True),
        "sharpness": lambda: da.RandomAdjustSharpness(1.3, p=1.0, learnable=True),
        "invert": lambda: da.RandomInvert(p=1.0),
    }
    policy = Policy(ops, num_subpolicies=1, depth=1, hard=False, temperature=1.0).double()
    images = smooth_images(batch=3, size=6, low=0.2, high=0.5).double()
    stage = policy.subpolicies[0][0]
    names = ["subpolicies.0.0.ops.0.brightness.raw", "subpolicies.0.0.ops.1.factor_range.raw", "subpolicies.0.0.logits"]
    values = dict(policy.named_parameters())
    inputs = tuple(values[name].detach().clone().requires_grad_(True) for name in names)
    assert stage.kinds == ("colour", "pixel", "colour")

    def run(*tensors: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(5)  # the same draws on every evaluation
        return torch.func.functional_call(policy, dict(zip(names, tensors, strict=True)), (images,), {"generator": generator})

    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["sample", "compose"])
def test_export_has_no_parameters_and_draws_ops_from_the_learned_probabilities(mode: str) -> None:
    policy = Policy(marked_ops(), num_subpolicies=2, depth=1)
    with torch.no_grad():
        policy.subpolicies[0][0].logits.copy_(torch.tensor([0.5, 0.25, 0.15, 0.1]).log())
        policy.subpolicies[1][0].logits.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]).log())
    plain = policy.export(mode)
    assert list(plain.parameters()) == []
    images = torch.full((4000, 3, 4, 4), 0.6)
    with torch.no_grad():
        chosen = which_op(plain(images, generator=torch.Generator().manual_seed(6)))
    expected = (torch.tensor([0.5, 0.25, 0.15, 0.1]) + torch.tensor([0.1, 0.2, 0.3, 0.4])) / 2
    observed = torch.bincount(chosen, minlength=4).double()
    assert stats.chisquare(observed.numpy(), (expected.double() * len(chosen)).numpy()).pvalue > 1e-3
    # Per sample, not per batch: the first few samples of one batch already differ.
    assert len(set(chosen[:16].tolist())) > 1


def test_export_argmax_keeps_the_most_likely_op_of_every_kind() -> None:
    policy = Policy(all_ops(), num_subpolicies=1, depth=3)
    favourites = ["Equalize", "Brightness", "Rotate"]
    with torch.no_grad():
        for stage, name in zip(policy.stages()[0], favourites, strict=True):
            stage.logits[list(all_ops()).index(name)] = 4.0
    plain = policy.export(mode="argmax")
    assert list(plain.parameters()) == []
    assert [stage[0]["op"] for stage in plain.describe()[0]] == favourites
    assert [stage[0]["kind"] for stage in plain.describe()[0]] == ["pixel", "colour", "geometric"]
    assert plain(smooth_images()).shape == (8, 3, 24, 24)


def test_exported_compose_is_made_of_ordinary_building_blocks() -> None:
    policy = Policy(all_ops(), num_subpolicies=2, depth=2)
    plain = policy.export(mode="compose")
    assert isinstance(plain, da.RandomChoice) and all(isinstance(t, da.Compose) for t in plain.transforms)
    stage = plain.transforms[0][0]
    assert isinstance(stage, da.RandomChoice) and stage.p == pytest.approx([1 / 14] * 14)
    assert plain(smooth_images()).shape == (8, 3, 24, 24)


def test_learning_moves_the_choice_to_the_only_op_that_fits() -> None:
    # The target is the images made 40 % brighter: only the brightness op can reach it.
    ops = {
        "brightness": lambda: da.ColorJitter(brightness=(0.9, 1.1), fused=True, learnable=True),
        "invert": lambda: da.RandomInvert(p=1.0),
        "posterize": lambda: da.RandomPosterize(3, p=1.0),
        "solarize": lambda: da.RandomSolarize(0.8, p=1.0, learnable=True),
        "flip": lambda: da.RandomHorizontalFlip(p=1.0),
    }
    policy = Policy(ops, num_subpolicies=1, depth=1, temperature=1.0).train()
    images = smooth_images(batch=32, low=0.1, high=0.6)
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(7)
    for _ in range(40):
        optimizer.zero_grad()
        (policy(images, generator=generator) - 1.4 * images).square().mean().backward()
        optimizer.step()
    probabilities = policy.subpolicies[0][0].probabilities()
    assert float(probabilities[0]) > 0.6, probabilities
    low, high = (float(v.detach()) for v in policy.subpolicies[0][0].ops[0].brightness.bounds())
    assert (low + high) / 2 > 1.15  # the brightness range moved towards 1.4 too


def test_whole_policy_inside_compose_and_with_targets() -> None:
    policy = Policy(all_ops(), num_subpolicies=2, depth=2)
    images = smooth_images()
    pipeline = da.Compose([policy, da.Normalize([0.5] * 3, [0.25] * 3)])
    params = pipeline.make_params(images, generator=torch.Generator().manual_seed(8))
    assert params.theta is None and params.steps[0].theta is None  # not fused into a neighbouring warp
    assert pipeline.transform(images, params).shape == images.shape
    # Alone, boxes follow the policy's one warp.
    boxes = torch.tensor([[2.0, 2.0, 10.0, 10.0]]).expand(8, 1, 4)
    out = policy(images, boxes=boxes)
    assert out["boxes"].shape == (8, 1, 4)
    # Values: a stage choosing between a flip and an invert moves the flipped samples' boxes only.
    flip_or_invert = Policy(
        {"flip": lambda: da.RandomHorizontalFlip(p=1.0), "invert": lambda: da.RandomInvert(p=1.0)}, num_subpolicies=1, depth=1
    )
    draw = flip_or_invert.make_params(images, generator=torch.Generator().manual_seed(2))
    flipped = draw.weights[0][:, 0] == 1
    assert 0 < int(flipped.sum()) < 8
    moved = flip_or_invert(images, boxes=boxes, generator=torch.Generator().manual_seed(2))["boxes"]
    mirrored = torch.tensor([[24 - 10.0, 2.0, 24 - 2.0, 10.0]])
    assert torch.allclose(moved[flipped], mirrored.expand(int(flipped.sum()), 4).unsqueeze(1), atol=1e-4)
    assert torch.allclose(moved[~flipped], boxes[~flipped], atol=1e-4)
    # Inside Compose the policy resamples by itself, to its own size, and targets follow its warp
    # composed with the steps around it: the same boxes as the policy alone, then a flip.
    sized = Policy(all_ops(), num_subpolicies=2, depth=2, size=12)
    flip_after = da.Compose([sized, da.RandomHorizontalFlip(p=1.0)])
    seed = torch.Generator().manual_seed(3)
    piped = flip_after(images, boxes=boxes, generator=seed)
    alone = sized(images, boxes=boxes, generator=torch.Generator().manual_seed(3))
    assert piped["images"].shape == (8, 3, 12, 12)
    assert torch.allclose(piped["images"], alone["images"].flip(-1), atol=1e-6)
    x1, y1, x2, y2 = alone["boxes"].unbind(-1)
    assert torch.allclose(piped["boxes"], torch.stack([12 - x2, y1, 12 - x1, y2], dim=-1), atol=1e-4)
    # A geometric-only policy still fuses inside Compose.
    geometric = da.Compose([Policy(num_subpolicies=2, depth=1), da.RandomHorizontalFlip()])
    assert geometric.make_params(images).theta is not None


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Policy({"bad": lambda: torch.nn.Identity()}), TypeError, "geometric, colour or pixel"),
        (lambda: Policy({"exact": lambda: da.ColorJitter(brightness=0.4)}), ValueError, "fused=True"),
        (lambda: Policy({"bad": 3}), TypeError, "factory"),
        (lambda: Stage("RandomInvert"), TypeError, "sequence"),
        (lambda: Stage([da.RandomInvert(), torch.nn.ReLU()]), TypeError, r"ops\[1\]"),
        (lambda: Policy(marked_ops()).export(mode="best"), ValueError, "mode"),
        (lambda: Policy(marked_ops(), size=8).export(mode="compose"), ValueError, "size"),
        (lambda: Policy().export(mode="compose"), ValueError, "zoom"),
    ],
)
def test_bad_arguments_are_refused_early(build, error: type, match: str) -> None:  # noqa: ANN001
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize(
    ("ops", "images", "error", "match"),
    [
        ({"grey": lambda: da.Grayscale(1)}, torch.rand(2, 3, 8, 8), ValueError, "keeps the channels"),
        ({"dtype": lambda: da.ToDtype(torch.float64)}, torch.rand(2, 3, 8, 8), ValueError, "dtype"),
        (marked_ops(), torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8), TypeError, "floating point"),
    ],
)
def test_bad_candidates_are_refused_at_the_first_call(ops: dict, images: torch.Tensor, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Policy(ops, num_subpolicies=1, depth=1)(images)


def test_uniform_start_and_describe_names_every_kind() -> None:
    policy = Policy(all_ops(), num_subpolicies=1, depth=1)
    rows = policy.describe()[0][0]
    assert [row["op"] for row in rows] == list(all_ops())
    assert all(row["weight"] == pytest.approx(1 / 14, abs=1e-4) for row in rows)
    assert math.isclose(sum(row["weight"] for row in rows), 1.0, abs_tol=1e-3)


@pytest.mark.parametrize("device", ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else []))
def test_forward_and_backward_read_no_values_on_the_host(device: str) -> None:
    from tests.test_no_sync import no_host_sync

    policy = Policy(all_ops(), num_subpolicies=2, depth=2).to(device)
    images = torch.rand(3, 3, 12, 12).to(device).requires_grad_(True)
    with no_host_sync(device):
        out = policy(images)
        out.sum().backward()
    assert out.device.type == device and images.grad is not None
