"""RandomApply, RandomChoice, RandomOrder: per-sample laws, each sample equal to its chosen inner result, fusion into
Compose's one warp and one colour pass, per-sample orders, gradients, signatures and named errors."""

from __future__ import annotations

import inspect
import itertools

import pytest
import torch
import torchvision.transforms.v2 as T
from scipy import stats
from torch.func import functional_call

import diffaug as da
from diffaug import functional as daf
from tests._counting import CountGridSample

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _images(batch: int = 8, size: int = 12, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=dtype)


def _seed(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------- laws
def test_apply_frequency_follows_p_per_sample():
    t = da.RandomApply([da.RandomHorizontalFlip(p=1.0)], p=0.3)
    applied = t.make_params(torch.zeros(4000, 1, 2, 2), generator=_seed()).applied
    counts = torch.stack([(applied == 1).sum(), (applied == 0).sum()]).double()
    assert stats.chisquare(counts.numpy(), [0.3 * 4000, 0.7 * 4000]).pvalue > 1e-3
    first = t.make_params(torch.zeros(16, 1, 2, 2), generator=_seed(5)).applied
    assert 0 < first.sum() < 16  # samples of one batch differ


@pytest.mark.parametrize("p", [None, [1.0, 2.0, 5.0]])
def test_choice_frequency_follows_p_per_sample(p):
    t = da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.RandomVerticalFlip(p=1.0), da.RandomInvert(p=1.0)], p=p)
    choice = t.make_params(torch.zeros(6000, 3, 2, 2), generator=_seed()).choice
    expected = torch.tensor([1.0, 1.0, 1.0] if p is None else p)
    expected = expected / expected.sum() * 6000
    assert stats.chisquare(torch.bincount(choice, minlength=3).numpy(), expected.numpy()).pvalue > 1e-3
    assert len(set(t.make_params(torch.zeros(16, 3, 2, 2), generator=_seed(2)).choice.tolist())) > 1


def test_order_is_a_uniform_permutation_per_sample():
    t = da.RandomOrder([da.RandomInvert(p=1.0), da.RandomGrayscale(p=1.0), da.RandomChannelPermutation()])
    order = t.make_params(torch.zeros(6000, 3, 2, 2), generator=_seed()).order
    assert torch.equal(order.sort(dim=1).values, torch.arange(3).expand(6000, 3))
    perms = list(itertools.permutations(range(3)))
    counts = [int((order == torch.tensor(perm)).all(dim=1).sum()) for perm in perms]
    assert stats.chisquare(counts).pvalue > 1e-3
    assert len({tuple(row) for row in order[:16].tolist()}) > 1


# ----------------------------------------------------------------------- each sample: its chosen result
def _geometric() -> list[torch.nn.Module]:
    return [
        da.RandomRotation(40, "bilinear"),
        da.RandomHorizontalFlip(p=1.0),
        da.RandomAffine(0, (0.2, 0.1), None, None, "bilinear"),
    ]


def _exact_geometric() -> list[torch.nn.Module]:
    """Warps that move whole pixels of a square image: one warp of the product equals the warps in turn."""
    return [da.RandomRotation((90, 90), "bilinear"), da.RandomHorizontalFlip(p=1.0), da.RandomVerticalFlip(p=0.5)]


@pytest.mark.parametrize(
    ("inner", "kind"),
    [
        (_geometric, "theta"),
        (lambda: [da.RandomInvert(p=1.0), da.RandomGrayscale(p=1.0), da.Normalize(MEAN, STD)], "colour"),
        (lambda: [da.GaussianBlur(3, sigma=(0.5, 2.0)), da.RandomInvert(p=1.0), da.RandomSolarize(0.4, p=1.0)], None),
    ],
)
def test_choice_gives_each_sample_its_chosen_transforms_output(inner, kind):
    t = da.RandomChoice(inner())
    images = _images()
    params = t.make_params(images, generator=_seed(3))
    assert (params.theta is not None, params.colour is not None) == (kind == "theta", kind == "colour")
    out = t.transform(images, params)
    for b, index in enumerate(params.choice.tolist()):
        expected = t.transforms[index].transform(images, params.steps[index])[b]
        assert torch.allclose(out[b], expected, atol=1e-5) if kind else torch.equal(out[b], expected)
    assert len(set(params.choice.tolist())) > 1


@pytest.mark.parametrize(
    ("inner", "kind"),
    [
        (_exact_geometric, "theta"),
        (lambda: [da.RandomInvert(p=1.0), da.ColorJitter(0.5, 0.5, 0.5, fused=True)], "colour"),
        (lambda: [da.GaussianBlur(3, sigma=(0.5, 2.0)), da.RandomRotation(30, "bilinear")], None),
    ],
)
def test_apply_gives_each_sample_the_sequence_or_its_input(inner, kind):
    t = da.RandomApply(inner(), p=0.5)
    images = _images()
    params = t.make_params(images, generator=_seed(4))
    assert (params.theta is not None, params.colour is not None) == (kind == "theta", kind == "colour")
    out = t.transform(images, params)
    sequence = images
    for step, step_params in zip(t.transforms, params.steps, strict=True):
        sequence = step.transform(sequence, step_params)
    applied = params.applied.bool()
    assert 0 < applied.sum() < len(applied)
    if kind is None:
        assert torch.equal(out[applied], sequence[applied]) and torch.equal(out[~applied], images[~applied])
    else:  # one warp / one pass of the product against the steps one by one
        assert torch.allclose(out[applied], sequence[applied], atol=1e-5)
        assert torch.allclose(out[~applied], images[~applied], atol=1e-5)


def test_apply_geometric_product_is_the_steps_matrices():
    t = da.RandomApply(_geometric(), p=0.5)
    images = _images()
    params = t.make_params(images, generator=_seed(4))
    expected = daf.to_square(params.steps[0].theta)
    for step in params.steps[1:]:
        expected = expected @ daf.to_square(step.theta)
    applied = params.applied.bool()
    assert 0 < applied.sum() < len(applied)
    assert torch.allclose(params.theta[applied], daf.to_theta(expected)[applied], atol=1e-6)
    assert torch.equal(params.theta[~applied], torch.eye(2, 3).expand(int((~applied).sum()), 2, 3))
    assert torch.equal(params.matrix, daf.to_square(params.theta))


def _in_turn(t: da.RandomOrder, images: torch.Tensor, params: da.ContainerParams, order: tuple[int, ...]) -> torch.Tensor:
    out = images
    for index in order:
        out = t.transforms[index].transform(out, params.steps[index])
    return out


@pytest.mark.parametrize(
    ("inner", "kind", "atol"),
    [
        (lambda: [da.RandomRotation((90, 90), "bilinear"), da.RandomHorizontalFlip(p=1.0)], "theta", 1e-5),
        (lambda: [da.Normalize(MEAN, STD), da.RandomInvert(p=1.0)], "colour", 1e-5),
        (lambda: [da.GaussianNoise(sigma=(0.1, 0.1), clip=False), da.RandomInvert(p=1.0)], None, 0.0),
    ],
)
def test_order_gives_the_product_in_each_samples_order(inner, kind, atol):
    t = da.RandomOrder(inner())
    images = _images()
    params = t.make_params(images, generator=_seed(6))
    assert (params.theta is not None, params.colour is not None) == (kind == "theta", kind == "colour")
    out = t.transform(images, params)
    first, second = _in_turn(t, images, params, (0, 1)), _in_turn(t, images, params, (1, 0))
    assert not torch.allclose(first, second, atol=1e-2)  # the two orders differ
    forward = params.order[:, 0] == 0
    assert 0 < forward.sum() < len(forward)
    assert torch.allclose(out[forward], first[forward], atol=atol, rtol=0)
    assert torch.allclose(out[~forward], second[~forward], atol=atol, rtol=0)


def test_order_of_clamping_colour_steps_is_exact_not_fused():
    t = da.RandomOrder([da.ColorJitter(brightness=(1.6, 1.6), fused=True), da.ColorJitter(contrast=(0.3, 0.3), fused=True)])
    images = _images()
    params = t.make_params(images, generator=_seed(7))
    assert params.colour is None  # a clamp between the steps: not one pass
    out = t.transform(images, params)
    forward = params.order[:, 0] == 0
    assert torch.equal(out[forward], _in_turn(t, images, params, (0, 1))[forward])
    assert torch.equal(out[~forward], _in_turn(t, images, params, (1, 0))[~forward])


# ----------------------------------------------------------------------------------------------- fusion
def test_geometric_containers_fuse_into_composes_one_warp():
    pipe = da.Compose(
        [
            da.RandomResizedCrop(16),
            da.RandomApply([da.RandomRotation(30, "bilinear")], p=0.5),
            da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.RandomVerticalFlip(p=1.0)]),
            da.RandomOrder([da.RandomAffine(10, None, (0.9, 1.1)), da.RandomHorizontalFlip()]),
        ]
    )
    images = _images(4, 24)
    with CountGridSample() as counter:
        out = pipe(images)
    assert counter.count == 1 and out.shape == (4, 3, 16, 16)
    params = pipe.make_params(images, generator=_seed())
    expected = params.steps[0].theta
    for step in params.steps[1:]:
        expected = daf.compose_theta(expected, step.theta)
    assert torch.allclose(params.theta, expected)


def test_colour_containers_fuse_into_composes_one_pass(passes):
    pipe = da.Compose(
        [
            da.RandomApply([da.RandomInvert(p=1.0)], p=0.5),
            da.RandomChoice([da.RandomGrayscale(p=1.0), da.RandomChannelPermutation()]),
            da.RandomOrder([da.RandomInvert(p=1.0), da.RandomGrayscale(p=1.0)]),
            da.Normalize(MEAN, STD),
        ]
    )
    images = _images()
    params = pipe.make_params(images, generator=_seed())
    out = pipe.transform(images, params)
    assert len(passes) == 1
    sequence = images
    for step, step_params in zip(pipe, params.steps, strict=True):
        sequence = step.transform(sequence, step_params)
    assert torch.allclose(out, sequence, atol=1e-5)


def test_mixed_container_falls_back_and_targets_follow_the_per_sample_matrix():
    t = da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.GaussianBlur(3)])
    images = _images()
    keypoints = torch.tensor([[[1.0, 2.0]]]).expand(8, 1, 2)
    out = t(images, keypoints=keypoints, generator=_seed(2))
    params = t.make_params(images, generator=_seed(2))
    assert params.theta is None and params.matrix is not None
    flipped = params.choice == 0
    assert 0 < flipped.sum() < 8
    assert torch.allclose(out["keypoints"][flipped], torch.tensor([[11.0, 2.0]]))
    assert torch.allclose(out["keypoints"][~flipped], keypoints[~flipped])


def test_inside_compose_targets_follow_a_mixed_container_and_the_steps_around_it():
    # The container resamples by itself (it does not fuse), yet the pipeline's matrix includes it.
    choice = da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.GaussianBlur(3)])
    pipe = da.Compose([da.RandomVerticalFlip(p=1.0), choice, da.Resize(20)])
    images = _images()  # (8, 3, 12, 12)
    keypoints = torch.tensor([[[1.0, 2.0]]]).expand(8, 1, 2)
    out = pipe(images, keypoints=keypoints, generator=_seed(2))
    params = pipe.make_params(images, generator=_seed(2))
    flipped = params.steps[1].choice == 0
    assert 0 < flipped.sum() < 8
    # Vertical flip: y -> 12 - y; the chosen horizontal flip: x -> 12 - x; Resize(20): x 20 / 12.
    scale = 20 / 12
    flipped_point, kept_point = torch.tensor([[[11 * scale, 10 * scale]]]), torch.tensor([[[1 * scale, 10 * scale]]])
    expected = torch.where(flipped.view(8, 1, 1), flipped_point, kept_point)
    assert torch.allclose(out["keypoints"], expected, atol=1e-5)
    assert out["images"].shape == (8, 3, 20, 20)


def test_replay_is_pure_and_a_generator_reproduces():
    t = da.RandomOrder([da.RandomRotation(20, "bilinear"), da.GaussianNoise(sigma=(0.05, 0.1))])
    images = _images()
    params = t.make_params(images, generator=_seed(9))
    assert torch.equal(t.transform(images, params), t.transform(images, params))
    assert torch.equal(t(images, generator=_seed(9)), t.transform(images, params))
    single = t.transform(images[0], t.make_params(images[0], generator=_seed(9)))
    assert single.shape == images[0].shape


# ----------------------------------------------------------------------------------------------- learnable
def _relaxed(t: da.RandomApply, images: torch.Tensor):  # noqa: ANN202
    def run(logit: torch.Tensor) -> torch.Tensor:
        return functional_call(t, {"p_logit": logit}, (images,), {"generator": _seed(11)})

    return run


@pytest.mark.parametrize(
    "inner",
    [
        lambda: [da.RandomRotation(30, "bilinear")],
        lambda: [da.RandomInvert(p=1.0)],
        lambda: [da.GaussianBlur(3, sigma=(1.0, 1.0))],
    ],
)
def test_gradcheck_through_a_learnable_p(inner):
    t = da.RandomApply(inner(), p=0.4, learnable=True, temperature=0.5).double().train()
    images = _images(4, 6, torch.float64)
    logit = t.p_logit.detach().clone().requires_grad_(True)
    weights = t.make_params(images, generator=_seed(11)).applied
    assert ((weights > 0.01) & (weights < 0.99)).any()  # relaxed: the gradient is not zero
    assert torch.autograd.gradcheck(_relaxed(t, images), (logit,))


def test_inner_learnable_parameters_and_p_receive_gradients():
    rotation = da.RandomRotation(30, "bilinear", learnable=True)
    t = da.RandomApply([rotation], p=0.5, learnable=True, temperature=0.5).train()
    weight = torch.rand(8, 3, 12, 12, generator=_seed(3))
    (t(_images(), generator=_seed(1)) * weight).sum().backward()
    assert t.p_logit.grad is not None and t.p_logit.grad.abs() > 0
    grads = [p.grad for name, p in rotation.named_parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    assert {name for name, _ in t.named_parameters()} >= {
        "p_logit",
        *(f"transforms.0.{n}" for n, _ in rotation.named_parameters()),
    }


# ----------------------------------------------------------------------------------------------- signatures, errors
@pytest.mark.parametrize("name", ["RandomApply", "RandomChoice", "RandomOrder"])
def test_positional_parameters_are_torchvisions(name):
    ours = [p for p in inspect.signature(getattr(da, name)).parameters.values() if p.kind is not p.KEYWORD_ONLY]
    theirs = list(inspect.signature(getattr(T, name)).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs]
    keyword_only = [p.name for p in inspect.signature(getattr(da, name)).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == (["learnable", "temperature"] if name == "RandomApply" else [])


def test_bad_input_is_refused_by_name():
    with pytest.raises(TypeError, match="transforms"):
        da.RandomApply(da.RandomHorizontalFlip())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="transforms"):
        da.RandomOrder([])
    with pytest.raises(TypeError, match=r"transforms\[1\]"):
        da.RandomChoice([da.RandomHorizontalFlip(), T.RandomHorizontalFlip()])
    with pytest.raises(TypeError, match=r"transforms\[0\]"):
        da.RandomApply([torch.nn.Identity()])
    with pytest.raises(ValueError, match="p"):
        da.RandomApply([da.RandomHorizontalFlip()], p=1.5)
    with pytest.raises(ValueError, match="p must hold one probability"):
        da.RandomChoice([da.RandomHorizontalFlip(), da.RandomVerticalFlip()], p=[1.0])
    with pytest.raises(ValueError, match="p must be non-negative"):
        da.RandomChoice([da.RandomHorizontalFlip(), da.RandomVerticalFlip()], p=[1.0, -1.0])
    images = _images()
    with pytest.raises(ValueError, match="RandomApply: the transforms change the image size"):
        da.RandomApply([da.RandomResizedCrop(8)]).make_params(images)
    with pytest.raises(ValueError, match="RandomChoice: the transforms give different output sizes"):
        da.RandomChoice([da.RandomResizedCrop(8), da.RandomHorizontalFlip()]).make_params(images)
    with pytest.raises(ValueError, match=r"RandomOrder: transforms\[1\] changes the image size"):
        da.RandomOrder([da.RandomHorizontalFlip(), da.CenterCrop(6)]).make_params(images)
    t = da.RandomChoice([da.RandomHorizontalFlip(), da.RandomVerticalFlip()])
    with pytest.raises(ValueError, match="params were drawn for 8 samples"):
        t.transform(images[:4], t.make_params(images))
    with pytest.raises(TypeError, match="params must be the ContainerParams"):
        t.transform(images, da.RandomHorizontalFlip().make_params(images))


def test_resize_around_a_container_keeps_one_warp():
    # Same-size choices of a crop: every sample cropped to 8x8 by one of two transforms, still one warp with the resize.
    pipe = da.Compose([da.RandomChoice([da.RandomResizedCrop(8), da.CenterCrop(8)]), da.RandomApply([da.RandomVerticalFlip()])])
    with CountGridSample() as counter:
        out = pipe(_images())
    assert counter.count == 1 and out.shape == (8, 3, 8, 8)


@pytest.mark.parametrize(
    "build",
    [
        lambda: da.RandomApply([da.RandomSolarize(128, p=1.0)], p=0.5),
        lambda: da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.RandomInvert(p=1.0)]),
        lambda: da.RandomOrder([da.RandomInvert(p=1.0), da.RandomGrayscale(p=1.0)]),
    ],
)
def test_uint8_images_stay_uint8_and_each_sample_is_its_chosen_result(build):
    t = build()
    images = (_images() * 255).to(torch.uint8)
    params = t.make_params(images, generator=_seed(8))
    out = t.transform(images, params)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    if isinstance(t, da.RandomApply):
        applied = params.applied.bool()
        expected = torch.where(applied[:, None, None, None], t.transforms[0].transform(images, params.steps[0]), images)
    elif isinstance(t, da.RandomChoice):
        outputs = [step.transform(images, s) for step, s in zip(t.transforms, params.steps, strict=True)]
        expected = torch.stack([outputs[c][b] for b, c in enumerate(params.choice.tolist())])
    else:
        forward = (params.order[:, 0] == 0)[:, None, None, None]
        expected = torch.where(forward, _in_turn(t, images, params, (0, 1)), _in_turn(t, images, params, (1, 0)))
    assert (out.int() - expected.int()).abs().max() <= 1  # one fused pass against two truncating ones: within a level


@pytest.mark.parametrize(
    "build",
    [
        # a sample that chose Normalize must not be clamped: the choice does not fuse
        lambda: da.RandomChoice([da.ColorJitter(brightness=(1.8, 1.8), fused=True), da.Normalize(MEAN, STD)]),
        # the jitter's clamp before the invert would move to the end: the sequence does not fuse
        lambda: da.RandomApply([da.ColorJitter(brightness=(1.8, 1.8), fused=True), da.Normalize(MEAN, STD)], p=0.5),
    ],
)
def test_colour_steps_whose_clamp_would_move_run_exactly(build):
    t = build()
    images = _images()
    params = t.make_params(images, generator=_seed(12))
    assert params.colour is None
    out = t.transform(images, params)
    if isinstance(t, da.RandomChoice):
        outputs = [step.transform(images, s) for step, s in zip(t.transforms, params.steps, strict=True)]
        expected = torch.stack([outputs[c][b] for b, c in enumerate(params.choice.tolist())])
        assert len(set(params.choice.tolist())) == 2
    else:
        sequence = t.transforms[1].transform(t.transforms[0].transform(images, params.steps[0]), params.steps[1])
        expected = torch.where(params.applied.bool()[:, None, None, None], sequence, images)
    assert torch.equal(out, expected)
    assert out.min() < 0  # Normalize's output kept unclamped
