"""MixUp and CutMix per sample: each output image is its soft label's mixture of the inputs.

The images encode their labels: image ``k`` is the one-hot code of its class in the channels
(every pixel), so a pixel of a mixed image *is* a mixture of labels. Also checked: rows sum to
1, lambdas and partners differ across one batch, lambda's Beta law (KS), CutMix's label weight
against torchvision's law for the box (KS), torchvision's outputs for its own pairing and
lambda, gradients (float64 gradcheck), masks and the call forms.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator

import pytest
import torch
import torch._dynamo
import torchvision.transforms.v2 as T
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from torchvision import tv_tensors

import diffaug as da
from diffaug import functional as daf

CLASSES = 7


def _coded(labels: torch.Tensor, height: int = 10, width: int = 12) -> torch.Tensor:
    """Images whose channels are the one-hot code of their labels, at every pixel."""
    return daf.one_hot(labels, CLASSES).view(-1, CLASSES, 1, 1).expand(-1, CLASSES, height, width).contiguous()


@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(2, 9), alpha=st.sampled_from([0.2, 1.0, 3.0]))
def test_mixup_pixels_are_the_soft_labels(seed, batch, alpha) -> None:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (batch,), generator=generator)
    mixup = da.MixUp(alpha=alpha, num_classes=CLASSES)
    params = mixup.make_params(_coded(labels), generator=generator)
    images, soft = mixup.transform(_coded(labels), params), mixup.transform_labels(labels, params)
    # Every pixel of each output is its soft label.
    torch.testing.assert_close(images, soft.view(batch, CLASSES, 1, 1).expand_as(images))
    torch.testing.assert_close(soft.sum(1), torch.ones(batch))


@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(2, 9), alpha=st.sampled_from([0.2, 1.0, 3.0]))
def test_cutmix_image_means_are_the_soft_labels(seed, batch, alpha) -> None:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (batch,), generator=generator)
    cutmix = da.CutMix(alpha=alpha, num_classes=CLASSES)
    params = cutmix.make_params(_coded(labels), generator=generator)
    images, soft = cutmix.transform(_coded(labels), params), cutmix.transform_labels(labels, params)
    # Each pixel is one input's code (a hard paste), and the image's mean is its soft label.
    assert torch.equal(images.sum(1), torch.ones(batch, 10, 12))
    torch.testing.assert_close(images.mean((2, 3)), soft)
    torch.testing.assert_close(soft.sum(1), torch.ones(batch))
    assert torch.equal(params.boxes, params.boxes.round())


def test_one_hot_and_index_labels_give_the_same_soft_labels() -> None:
    labels = torch.randint(0, CLASSES, (6,))
    for transform in (da.MixUp(num_classes=CLASSES), da.CutMix(num_classes=CLASSES)):
        params = transform.make_params(torch.zeros(6, 3, 8, 8))
        from_index = transform.transform_labels(labels, params)
        from_rows = da.CutMix().transform_labels if isinstance(transform, da.CutMix) else da.MixUp().transform_labels
        torch.testing.assert_close(from_index, from_rows(daf.one_hot(labels, CLASSES), params))
        torch.testing.assert_close(from_index, transform.transform_labels(daf.one_hot(labels, CLASSES).long(), params))


def test_lambdas_and_partners_differ_within_a_batch() -> None:
    batch = 32
    for transform in (da.MixUp(num_classes=2), da.CutMix(num_classes=2)):
        params = transform.make_params(torch.zeros(batch, 3, 16, 16), generator=torch.Generator().manual_seed(0))
        assert params.lam.unique().numel() == batch
        # A random cycle: a permutation with no fixed point, not torchvision's roll.
        assert torch.equal(params.partner.sort().values, torch.arange(batch))
        assert not (params.partner == torch.arange(batch)).any()
        assert not torch.equal(params.partner, (torch.arange(batch) - 1) % batch)
        cycle, seen = 0, set()
        while cycle not in seen:
            seen.add(cycle)
            cycle = int(params.partner[cycle])
        assert len(seen) == batch  # one cycle through the whole batch


@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.7, 1.0, 2.5, 20.0])
def test_mixup_lambda_follows_beta(alpha) -> None:
    # float64 images draw float64 lambdas: float32 rounds the 2% of Beta(0.2, 0.2) draws within 6e-8 of 1 to 1.
    images = torch.zeros(4000, 1, 1, 1, dtype=torch.float64)
    params = da.MixUp(alpha=alpha, num_classes=2).make_params(images, torch.Generator().manual_seed(0))
    assert stats.kstest(params.lam.double().numpy(), stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    # The same test rejects a neighbouring law.
    assert stats.kstest(params.lam.double().numpy(), stats.beta(alpha * 1.5, alpha * 1.5).cdf).pvalue < 1e-3


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_cutmix_label_weight_law_matches_torchvision(alpha) -> None:
    height, width = 24, 30
    count = 3000
    params = da.CutMix(alpha=alpha, num_classes=2).make_params(
        torch.zeros(count, 1, height, width), generator=torch.Generator().manual_seed(0)
    )
    ours = 1 - daf.box_area_fraction(params.boxes, (height, width)).double().numpy()
    torch.manual_seed(0)
    theirs_transform = T.CutMix(alpha=alpha, num_classes=2)
    image = torch.zeros(1, 1, height, width)
    theirs = [theirs_transform.make_params([image])["lam_adjusted"] for _ in range(count)]
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    # The boxes' corners too (the centre is clipped the same way).
    theirs_x1 = []
    torch.manual_seed(1)
    for _ in range(count):
        theirs_x1.append(theirs_transform.make_params([image])["box"][0])
    assert stats.ks_2samp(params.boxes[:, 0].numpy(), theirs_x1).pvalue > 1e-3


def test_equals_torchvision_for_its_pairing_and_lambda() -> None:
    batch, lam = 5, 0.3
    images, labels = torch.rand(batch, 3, 8, 10), torch.randint(0, CLASSES, (batch,))
    roll = (torch.arange(batch) - 1) % batch  # torchvision mixes sample i with sample i - 1
    mixup = da.MixUp(num_classes=CLASSES)
    params = da.MixParams(lam=torch.full((batch,), lam), partner=roll, applied=torch.ones(batch), boxes=None, in_size=(8, 10))
    tv = T.MixUp(num_classes=CLASSES)
    tv_params = {"lam": lam, "labels": labels, "batch_size": batch}
    torch.testing.assert_close(mixup.transform(images, params), tv.transform(images, tv_params))
    torch.testing.assert_close(mixup.transform_labels(labels, params), tv.transform(labels, tv_params))

    cutmix = da.CutMix(num_classes=CLASSES)
    box = (2, 1, 7, 6)
    params = da.MixParams(
        lam=torch.full((batch,), lam),
        partner=roll,
        applied=torch.ones(batch),
        boxes=torch.tensor([box] * batch).float(),
        in_size=(8, 10),
    )
    tv = T.CutMix(num_classes=CLASSES)
    tv_params = {"box": box, "lam_adjusted": 1 - 25 / 80, "labels": labels, "batch_size": batch}
    assert torch.equal(cutmix.transform(images, params), tv.transform(images, tv_params))
    torch.testing.assert_close(cutmix.transform_labels(labels, params), tv.transform(labels, tv_params))


def test_gradcheck_mixup_images_and_lambda() -> None:
    images = torch.rand(4, 2, 3, 5, dtype=torch.float64, requires_grad=True)
    lam = torch.rand(4, dtype=torch.float64, requires_grad=True)
    partner = torch.tensor([2, 0, 3, 1])
    assert torch.autograd.gradcheck(lambda x, w: daf.mixup(x, partner, w), (images, lam))
    rows = torch.softmax(torch.rand(4, 3, dtype=torch.float64), 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda y, w: daf.mix_labels(y, partner, w), (rows, lam))


def test_gradcheck_cutmix_images_and_box_corners() -> None:
    images = torch.rand(3, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[1.5, 0.3, 4.4, 5.2], [-1.3, 2.6, 3.7, 9.1], [2.2, 2.2, 6.8, 4.5]], dtype=torch.float64)
    partner = torch.tensor([1, 2, 0])
    assert torch.autograd.gradcheck(lambda x, b: daf.cutmix(x, partner, b), (images, boxes.requires_grad_()))


def test_gradients_reach_the_images_with_their_weights() -> None:
    images = torch.rand(6, 3, 8, 8, requires_grad=True)
    for transform in (da.MixUp(num_classes=CLASSES), da.CutMix(num_classes=CLASSES)):
        images.grad = None
        params = transform.make_params(images)
        transform.transform(images, params).sum().backward()
        # Image j is its own output's share there, plus the share it lends to the sample it partners.
        lender = params.partner.argsort()  # lender[j]: the sample whose partner is j
        if params.boxes is None:
            own = params.lam.view(-1, 1, 1, 1).expand_as(images)
        else:
            own = (1 - daf.box_cover(params.boxes, (8, 8))).expand_as(images)
        torch.testing.assert_close(images.grad, own + (1 - own)[lender])


def test_uint8_images_and_masks_paste_exactly() -> None:
    images = torch.randint(0, 256, (6, 3, 12, 12), dtype=torch.uint8)
    masks = torch.randint(0, 5, (6, 1, 12, 12), dtype=torch.uint8)
    cutmix = da.CutMix(num_classes=CLASSES)
    params = cutmix.make_params(images)
    out, out_masks = cutmix.transform(images, params), cutmix.transform(masks, params)
    inside = daf.box_cover(params.boxes, (12, 12)).bool()
    assert torch.equal(out, torch.where(inside, images[params.partner], images))
    assert torch.equal(out_masks, torch.where(inside, masks[params.partner], masks))
    mixed = da.MixUp(num_classes=CLASSES).transform(images, da.MixUp(num_classes=CLASSES).make_params(images))
    assert mixed.dtype == torch.uint8


def test_probability_leaves_the_others_unchanged() -> None:
    images, labels = torch.rand(64, 3, 8, 8), torch.randint(0, CLASSES, (64,))
    for transform in (da.MixUp(num_classes=CLASSES, p=0.5), da.CutMix(num_classes=CLASSES, p=0.5)):
        params = transform.make_params(images, generator=torch.Generator().manual_seed(0))
        out, soft = transform.transform(images, params), transform.transform_labels(labels, params)
        kept = params.applied == 0
        assert 10 < int(kept.sum()) < 54
        assert torch.equal(out[kept], images[kept])
        assert torch.equal(soft[kept], daf.one_hot(labels, CLASSES)[kept])
    learn = da.MixUp(num_classes=CLASSES, p=0.5, learnable=True)
    mixed, _ = learn(images.requires_grad_(), labels)
    mixed.square().sum().backward()
    assert learn.p_logit is not None and learn.p_logit.grad is not None and float(learn.p_logit.grad.abs()) > 0


def test_call_forms() -> None:
    images, labels = torch.rand(4, 3, 8, 8), torch.randint(0, CLASSES, (4,))
    mixup = da.MixUp(num_classes=CLASSES)
    out = mixup((images, labels))
    assert isinstance(out, tuple) and out[1].shape == (4, CLASSES)
    out = mixup([images, labels, "kept"])
    assert isinstance(out, list) and out[2] == "kept"
    getter = da.CutMix(num_classes=CLASSES, labels_getter=lambda sample: sample[2])
    mixed, info, soft = getter(images, "kept", labels)
    assert info == "kept" and soft.shape == (4, CLASSES) and mixed.shape == images.shape


def test_bad_input() -> None:
    images, labels = torch.rand(4, 3, 8, 8), torch.randint(0, CLASSES, (4,))
    with pytest.raises(ValueError, match="num_classes must be given"):
        da.MixUp()(images, labels)
    with pytest.raises(ValueError, match="alpha"):
        da.CutMix(alpha=0.0)
    with pytest.raises(TypeError):
        da.MixUp(1.0)  # type: ignore[misc]  # keyword-only, as torchvision's
    with pytest.raises(ValueError, match="labels must have shape"):
        da.MixUp(num_classes=CLASSES)(images, labels[:3])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 7\)"):
        da.MixUp(num_classes=CLASSES)(images, labels + CLASSES)
    with pytest.raises(ValueError, match="num_classes"):
        da.MixUp(num_classes=3)(images, torch.rand(4, 5))
    with pytest.raises(ValueError, match="batch"):
        da.MixUp(num_classes=CLASSES)(images[0], labels)
    with pytest.raises(TypeError, match="labels"):
        da.CutMix(num_classes=CLASSES)(images)
    with pytest.raises(ValueError, match="Mask"):
        da.CutMix(num_classes=CLASSES)(images, labels, tv_tensors.Mask(torch.zeros(4, 8, 8)))
    with pytest.raises(ValueError, match="make_params"):
        cutmix = da.CutMix(num_classes=CLASSES)
        cutmix.transform(images, cutmix.make_params(torch.rand(4, 3, 9, 8)))


@pytest.mark.parametrize("name", ["MixUp", "CutMix"])
def test_compiles_without_graph_breaks(name) -> None:
    torch._dynamo.reset()
    transform = getattr(da, name)(num_classes=CLASSES, p=0.7)
    compiled = torch.compile(transform, fullgraph=True, backend="eager")
    images, labels = torch.rand(5, 3, 12, 12), torch.randint(0, CLASSES, (5,))
    torch.manual_seed(0)
    expected = transform(images, labels)
    torch.manual_seed(0)
    got = compiled(images, labels)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["MixUp", "CutMix"])
def test_signature_is_torchvisions_with_keyword_only_additions(name) -> None:
    ours = list(inspect.signature(getattr(da, name)).parameters.values())
    theirs = list(inspect.signature(getattr(T, name)).parameters.values())
    assert all(p.kind is p.KEYWORD_ONLY for p in ours + theirs)  # torchvision's are keyword-only too
    assert [(p.name, p.default) for p in ours[: len(theirs)]] == [(p.name, p.default) for p in theirs]
    assert [p.name for p in ours[len(theirs) :]] == ["p", "learnable", "temperature"]


def test_index_labels_scatter_their_weights() -> None:
    partner, weight = torch.tensor([1, 2, 0]), torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
    rows = daf.mix_labels(torch.tensor([2, 2, -1]), partner, weight, num_classes=3)
    # Same class twice: the shares add up; an index outside the classes adds nothing (no host read to refuse it).
    expected = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(rows, expected)
    assert torch.autograd.gradcheck(lambda w: daf.mix_labels(torch.tensor([0, 1, 2]), partner, w, num_classes=3), (weight,))


@given(corners=st.lists(st.floats(-6.0, 16.0, allow_nan=False), min_size=4, max_size=4))
def test_area_fraction_is_the_mean_cover(corners) -> None:
    # The label weight (closed form, clipped to the image) and the pixels actually pasted agree for any box.
    boxes = torch.tensor([corners], dtype=torch.float64)
    cover = daf.box_cover(boxes, (7, 9))
    torch.testing.assert_close(daf.box_area_fraction(boxes, (7, 9)), cover.mean((1, 2, 3)))


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@given(
    seed=st.integers(0, 2**31 - 1),
    corners=st.lists(st.lists(st.integers(-4, 15), min_size=4, max_size=4), min_size=3, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.uint8]),
    threads=st.sampled_from([1, 2]),
)
def test_partner_gather_equals_the_indexing_formulas_bitwise(seed, corners, dtype, threads) -> None:
    # One CPU thread gathers the partners with index_select, more with indexing: the same values, so
    # MixUp is its lerp formula and CutMix the hard paste bitwise, for boxes clipped at the edges or empty too.
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(3, 2, 7, 11, generator=generator) * 255).to(dtype)
    partner = torch.tensor([0, 0, 1]) if seed % 2 else torch.randperm(3, generator=generator)  # any indices
    boxes = torch.tensor(corners, dtype=torch.float32)
    lam = torch.rand(3, generator=generator)
    inside = daf.box_cover(boxes, (7, 11)).bool()
    with _threads(threads):
        assert torch.equal(daf.cutmix(images, partner, boxes), torch.where(inside, images[partner], images))
        if dtype == torch.float32:
            mixed = daf.mixup(images, partner, lam)
            assert torch.equal(mixed, torch.lerp(images[partner], images, lam.view(-1, 1, 1, 1)))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mixing", [da.MixUp, da.CutMix])
def test_channels_last_images_stay_channels_last(mixing, threads: int) -> None:
    # The one-thread gather returns a contiguous batch: it must not turn channels-last images into NCHW.
    images = torch.rand(4, 3, 6, 7).contiguous(memory_format=torch.channels_last)
    labels = torch.tensor([0, 1, 2, 3])
    with _threads(threads):
        out, _ = mixing(num_classes=4)(images, labels, generator=torch.Generator().manual_seed(0))
        plain, _ = mixing(num_classes=4)(images.contiguous(), labels, generator=torch.Generator().manual_seed(0))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, plain)


def test_gradcheck_on_one_thread() -> None:
    # The one-thread gather (index_select) carries gradients as indexing does.
    images = torch.rand(3, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    lam = torch.rand(3, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[1.5, 0.3, 4.4, 5.2], [-1.3, 2.6, 3.7, 9.1], [2.2, 2.2, 6.8, 4.5]], dtype=torch.float64)
    partner = torch.tensor([1, 2, 1])
    with _threads(1):
        assert torch.autograd.gradcheck(lambda x, w: daf.mixup(x, partner, w), (images, lam))
        assert torch.autograd.gradcheck(lambda x, b: daf.cutmix(x, partner, b), (images, boxes.requires_grad_()))
