"""AutoAugment, RandAugment, TrivialAugmentWide and AugMix per sample, against torchvision v2.

* facts: signatures (names, order, defaults), operation sets, magnitude tables and the
  AutoAugment sub-policies equal torchvision's;
* parity: every operation at every magnitude bin and sign, all in ONE batched call (each sample
  its own op and magnitude), equals ``torchvision.transforms.v2.functional`` on that sample:
  float64 to 1e-6 with bilinear interpolation; uint8 within one level. Known exception, nearest
  interpolation of a rotation: a sampling position that falls on a pixel boundary may round to
  the other neighbour (the two build their grids in a different order), so there the share of
  differing pixels is bounded instead;
* laws: op, bin and sign frequencies (chi-square), AutoAugment's per-slot op frequencies from
  its table, AugMix's depths and weights; samples of one batch differ;
* the two ways (grouped on the host, masked on the device) give equal images; replay; dtypes;
  gradients (exact where the op has one, straight through for posterize and equalize); errors.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from scipy import stats

import diffaug as da
from diffaug.transforms.policies import OPERATIONS, PolicyParams, magnitude_table

SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"}
PAIRS = [
    (da.AutoAugment, T.AutoAugment),
    (da.RandAugment, T.RandAugment),
    (da.TrivialAugmentWide, T.TrivialAugmentWide),
    (da.AugMix, T.AugMix),
]


def reference(image: torch.Tensor, name: str, magnitude: float, interpolation: str) -> torch.Tensor:
    """torchvision's functional operation for a policy op with its magnitude argument (torchvision's dispatch)."""
    if name == "Identity":
        return image
    if name in ("ShearX", "ShearY"):
        degrees = math.degrees(math.atan(magnitude))
        shear = [degrees, 0.0] if name == "ShearX" else [0.0, degrees]
        return TF.affine(image, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=interpolation, center=[0, 0])
    if name in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if name == "TranslateX" else [0, int(magnitude)]
        return TF.affine(image, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0], interpolation=interpolation)
    if name == "Rotate":
        return TF.rotate(image, angle=magnitude, interpolation=interpolation)
    bound = 255.0 if image.dtype == torch.uint8 else 1.0
    ops = {
        "Brightness": lambda: TF.adjust_brightness(image, 1.0 + magnitude),
        "Color": lambda: TF.adjust_saturation(image, 1.0 + magnitude),
        "Contrast": lambda: TF.adjust_contrast(image, 1.0 + magnitude),
        "Sharpness": lambda: TF.adjust_sharpness(image, 1.0 + magnitude),
        "Posterize": lambda: TF.posterize(image, int(magnitude)),
        "Solarize": lambda: TF.solarize(image, bound * magnitude),
        "AutoContrast": lambda: TF.autocontrast(image),
        "Equalize": lambda: TF.equalize(image),
        "Invert": lambda: TF.invert(image),
    }
    return ops[name]()


def sample_image(dtype: torch.dtype, height: int = 18, width: int = 22) -> torch.Tensor:
    """A smooth colour image with a textured part (a geometric op's result then varies within a pixel)."""
    y, x = torch.meshgrid(
        torch.linspace(0, 1, height, dtype=torch.float64), torch.linspace(0, 1, width, dtype=torch.float64), indexing="ij"
    )
    noise = torch.rand(3, height, width, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    image = torch.stack([0.15 + 0.7 * x, 0.5 + 0.4 * torch.sin(4 * y + 3 * x), 0.2 + 0.6 * x * y]) * 0.8 + 0.2 * noise
    image = image.clamp(0, 1)
    return (image * 255).round().to(torch.uint8) if dtype == torch.uint8 else image.to(dtype)


def every_op_bin_sign(space: str, num_bins: int, names: tuple[str, ...], height: int, width: int):
    """(op ids, signed magnitudes, labels): every op of ``names`` at every bin, both signs for signed ops."""
    table = magnitude_table(space, num_bins, height, width)
    ops, magnitudes, labels = [], [], []
    for name in names:
        has_magnitude = name in SIGNED or name in ("Posterize", "Solarize")
        for index in range(num_bins if has_magnitude else 1):
            for sign in (1.0, -1.0) if name in SIGNED else (1.0,):
                value = float(table[OPERATIONS.index(name), index]) * sign if has_magnitude else 0.0
                ops.append(OPERATIONS.index(name))
                magnitudes.append(value)
                labels.append((name, index, sign))
    return torch.tensor(ops), torch.tensor(magnitudes, dtype=torch.float64), labels


ALL_OPS = OPERATIONS  # Identity .. Invert


@pytest.mark.parametrize(
    ("space", "num_bins", "dtype", "interpolation"),
    [
        ("wide", 31, torch.float64, "bilinear"),
        ("wide", 31, torch.uint8, "nearest"),
        ("standard", 31, torch.float64, "bilinear"),
        ("standard", 10, torch.uint8, "bilinear"),
        ("augmix", 10, torch.float64, "bilinear"),
    ],
    ids=[
        "wide-float64-bilinear",
        "wide-uint8-nearest",
        "standard-float64-bilinear",
        "standard10-uint8-bilinear",
        "augmix-float64",
    ],
)
@pytest.mark.parametrize("grouped", [True, False], ids=["grouped", "masked"])
def test_every_op_bin_and_sign_equals_torchvision_in_one_batched_call(space, num_bins, dtype, interpolation, grouped):
    image = sample_image(dtype)
    height, width = image.shape[-2:]
    op, magnitude, labels = every_op_bin_sign(space, num_bins, ALL_OPS, height, width)
    batch = len(labels)
    images = image.expand(batch, -1, -1, -1).contiguous()
    policy = da.TrivialAugmentWide(interpolation=interpolation, grouped=grouped)
    params = PolicyParams(
        op=op[:, None], magnitude=magnitude[:, None].to(torch.float64 if dtype == torch.float64 else torch.float32)
    )
    if grouped:
        params.groups = da.transforms.policies._groups(params.op, images.device)
    out = policy.transform(images, params)
    assert out.dtype == dtype and out.shape == images.shape
    rotate_nearest = []
    for index, (name, _, _) in enumerate(labels):
        expected = reference(image, name, float(magnitude[index]), interpolation)
        diff = (out[index].double() - expected.double()).abs()
        if name == "Rotate" and interpolation == "nearest":
            rotate_nearest.append(float((diff > 0).double().mean()))
            continue
        tolerance = 1e-6 if dtype == torch.float64 else 1.0
        assert float(diff.max()) <= tolerance, (labels[index], float(diff.max()))
    if rotate_nearest:
        # Pixel-boundary ties only: a small share of pixels, most rotations exact.
        assert max(rotate_nearest) < 0.03 and np.median(rotate_nearest) < 0.01, rotate_nearest


def test_exact_where_torchvision_is_exact_uint8():
    """Posterize, solarize, equalize, invert, translations and flips of sign are bitwise torchvision's on uint8."""
    image = sample_image(torch.uint8)
    names = ("Identity", "TranslateX", "TranslateY", "Posterize", "Solarize", "Equalize", "Invert")
    op, magnitude, labels = every_op_bin_sign("standard", 31, names, *image.shape[-2:])
    out = da.TrivialAugmentWide().transform(image.expand(len(labels), -1, -1, -1), _params(op, magnitude))
    for index, (name, _, _) in enumerate(labels):
        assert torch.equal(out[index], reference(image, name, float(magnitude[index]), "nearest")), labels[index]


def _params(op: torch.Tensor, magnitude: torch.Tensor, grouped: bool = True) -> PolicyParams:
    params = PolicyParams(op=op.reshape(len(op), -1), magnitude=magnitude.reshape(len(op), -1).float())
    if grouped:
        params.groups = da.transforms.policies._groups(params.op, torch.device("cpu"))
    return params


# ---------------------------------------------------------------------------------------------- facts
@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_signature_is_torchvisions_with_keyword_only_extras(ours, theirs):
    mine = inspect.signature(ours).parameters
    reference_params = inspect.signature(theirs).parameters
    positional = [name for name, p in mine.items() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional == list(reference_params)
    for name, param in reference_params.items():
        default = param.default
        assert getattr(mine[name].default, "value", mine[name].default) == getattr(default, "value", default), name
    assert [name for name, p in mine.items() if p.kind is inspect.Parameter.KEYWORD_ONLY] == ["grouped"]


@pytest.mark.parametrize(
    ("space", "theirs", "num_bins"),
    [
        ("wide", T.TrivialAugmentWide, 31),
        ("standard", T.RandAugment, 31),
        ("standard", T.AutoAugment, 10),
        ("augmix", T.AugMix, 10),
    ],
    ids=["wide", "randaugment", "autoaugment", "augmix"],
)
def test_magnitude_tables_are_torchvisions(space, theirs, num_bins):
    height, width = 37, 53
    table = magnitude_table(space, num_bins, height, width)
    for name, (values_fn, signed) in theirs._AUGMENTATION_SPACE.items():
        values = values_fn(num_bins, height, width)
        assert signed == (name in SIGNED), name
        expected = torch.zeros(num_bins, dtype=torch.float64) if values is None else values.double()
        assert torch.equal(table[OPERATIONS.index(name)], expected), name


def test_operation_sets_are_torchvisions_in_order():
    assert da.TrivialAugmentWide.operations == tuple(T.TrivialAugmentWide._AUGMENTATION_SPACE)
    assert da.RandAugment.operations == tuple(T.RandAugment._AUGMENTATION_SPACE)
    assert da.AugMix().operations == tuple(T.AugMix._AUGMENTATION_SPACE)
    assert da.AugMix(all_ops=False).operations == tuple(T.AugMix._PARTIAL_AUGMENTATION_SPACE)


@pytest.mark.parametrize("policy", list(T.AutoAugmentPolicy), ids=lambda p: p.value)
def test_autoaugment_tables_are_torchvisions(policy):
    ours = da.AutoAugment(policy)
    assert ours.policy.value == policy.value
    assert [tuple(tuple(step) for step in sub) for sub in ours.subpolicies] == T.AutoAugment(policy)._policies


# ---------------------------------------------------------------------------------------------- laws
def test_trivialaugment_draws_op_bin_and_sign_uniformly_per_sample():
    images = torch.zeros(7000, 3, 8, 8, dtype=torch.uint8)
    t = da.TrivialAugmentWide()
    params = t.make_params(images, generator=torch.Generator().manual_seed(0))
    op = params.op[:, 0]
    counts = torch.bincount(op, minlength=14)[:14]
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    # Bins: recovered from the magnitudes of Rotate samples (distinct per bin), uniform over 31.
    table = magnitude_table("wide", 31, 8, 8)[OPERATIONS.index("Rotate")].float()
    rotate = params.magnitude[op == OPERATIONS.index("Rotate"), 0]
    bins = (rotate.abs()[:, None] - table[None]).abs().argmin(1)
    assert stats.chisquare(torch.bincount(bins, minlength=31).numpy()).pvalue > 1e-3
    # Signs: half negative for signed ops (bin 0 has magnitude 0, so only bins > 0 show the sign).
    signed_ops = torch.tensor([OPERATIONS.index(n) for n in SIGNED])
    mask = torch.isin(op, signed_ops) & (params.magnitude[:, 0] != 0)
    negative = int((params.magnitude[mask, 0] < 0).sum())
    assert stats.binomtest(negative, int(mask.sum()), 0.5).pvalue > 1e-3
    # Unsigned ops never negative; ops without a magnitude carry 0.
    no_magnitude = torch.isin(op, torch.tensor([0, OPERATIONS.index("AutoContrast"), OPERATIONS.index("Equalize")]))
    assert bool((params.magnitude[no_magnitude] == 0).all())


def test_randaugment_slots_are_independent_and_uniform_with_the_fixed_bin():
    images = torch.zeros(5000, 3, 8, 8)
    params = da.RandAugment(num_ops=3, magnitude=5).make_params(images, generator=torch.Generator().manual_seed(1))
    assert params.op.shape == (5000, 3)
    for slot in range(3):
        assert stats.chisquare(torch.bincount(params.op[:, slot], minlength=14)[:14].numpy()).pvalue > 1e-3
    table = magnitude_table("standard", 31, 8, 8)
    expected = table[params.op, 5].float()
    assert torch.equal(params.magnitude.abs(), expected.abs())
    # Independence of two slots: a 14 x 14 contingency table.
    joint = torch.zeros(14, 14)
    joint.index_put_((params.op[:, 0], params.op[:, 1]), torch.ones(5000), accumulate=True)
    assert stats.chi2_contingency(joint.numpy()).pvalue > 1e-3


@pytest.mark.parametrize("policy", list(da.AutoAugmentPolicy), ids=lambda p: p.value)
def test_autoaugment_op_frequencies_follow_the_policy_probabilities(policy):
    t = da.AutoAugment(policy)
    batch = 6000
    params = t.make_params(torch.zeros(batch, 3, 8, 8, dtype=torch.uint8), generator=torch.Generator().manual_seed(2))
    for slot in range(2):
        expected = torch.zeros(len(OPERATIONS), dtype=torch.float64)
        for sub in t.subpolicies:
            name, probability, _ = sub[slot]
            expected[OPERATIONS.index(name)] += probability / len(t.subpolicies)
            expected[0] += (1 - probability) / len(t.subpolicies)
        observed = torch.bincount(params.op[:, slot], minlength=len(OPERATIONS)).double()
        keep = expected > 0
        assert bool((observed[~keep] == 0).all())
        assert stats.chisquare(observed[keep].numpy(), expected[keep].numpy() * batch).pvalue > 1e-3


def test_autoaugment_steps_come_from_one_subpolicy_with_its_bins():
    t = da.AutoAugment(da.AutoAugmentPolicy.IMAGENET)
    params = t.make_params(torch.zeros(2000, 3, 8, 8, dtype=torch.uint8), generator=torch.Generator().manual_seed(3))
    table = magnitude_table("standard", 10, 8, 8)
    allowed = set()
    for sub in t.subpolicies:
        for first in (sub[0], ("Identity", 1.0, None)):
            for second in (sub[1], ("Identity", 1.0, None)):
                allowed.add(
                    tuple(
                        (OPERATIONS.index(s[0]), round(float(table[OPERATIONS.index(s[0]), s[2] or 0]), 4))
                        for s in (first, second)
                    )
                )
    seen = {
        tuple((int(o), round(abs(float(m)), 4)) for o, m in zip(ops, mags, strict=True))
        for ops, mags in zip(params.op, params.magnitude, strict=True)
    }
    assert seen <= allowed


def test_augmix_depths_ops_and_weights():
    t = da.AugMix(severity=4, mixture_width=3)
    batch = 4000
    params = t.make_params(torch.zeros(batch, 3, 8, 8), generator=torch.Generator().manual_seed(4))
    op = params.op.view(batch, 3, 3)
    depth = (op != 0).sum(-1)  # AugMix has no Identity op: inactive steps are Identity
    assert bool(((op[..., 1] == 0) <= (op[..., 2] == 0)).all())  # steps are a prefix
    assert stats.chisquare(torch.bincount(depth.flatten(), minlength=4)[1:].numpy()).pvalue > 1e-3
    active = op[op != 0]
    ids = [OPERATIONS.index(n) for n in t.operations]
    assert stats.chisquare(torch.bincount(active, minlength=15)[ids].numpy()).pvalue > 1e-3
    # Bins below severity only: every active step's magnitude is one of the first `severity` table entries.
    table = magnitude_table("augmix", 10, 8, 8).float()
    flat_op, flat_mag = params.op.flatten(), params.magnitude.abs().flatten()
    member = (flat_mag[:, None] == table[flat_op, :4]).any(1)
    assert bool(member[flat_op != 0].all())
    assert bool((flat_mag[flat_op == 0] == 0).all())
    weights = params.weights
    assert torch.allclose(weights.sum(1), torch.ones(batch))
    # The original's weight is Beta(1, 1): uniform.
    assert stats.kstest(weights[:, 0].numpy(), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("cls", [da.TrivialAugmentWide, da.RandAugment, da.AutoAugment, da.AugMix])
def test_samples_of_one_batch_draw_different_ops(cls):
    params = cls().make_params(torch.zeros(64, 3, 16, 16), generator=torch.Generator().manual_seed(5))
    assert len({tuple(row.tolist()) for row in params.op}) > 8


# ---------------------------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("cls", [da.TrivialAugmentWide, da.RandAugment, da.AutoAugment, da.AugMix])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_grouped_and_masked_agree_replay_and_keep_dtype(cls, dtype):
    shift = 0.08 * (torch.arange(24, dtype=torch.float64) % 4).view(-1, 1, 1, 1)  # not all alike
    images = (sample_image(torch.float64, 20, 24) + shift).clamp(0, 1)
    images = (images * 255).round().to(dtype) if dtype == torch.uint8 else images.to(dtype)
    grouped, masked = cls(), cls(grouped=False)
    params = grouped.make_params(images, generator=torch.Generator().manual_seed(6))
    again = grouped.make_params(images, generator=torch.Generator().manual_seed(6))
    assert torch.equal(params.op, again.op) and torch.equal(params.magnitude, again.magnitude)
    out = grouped.transform(images, params)
    assert out.dtype == dtype and out.shape == images.shape
    assert torch.equal(out, grouped.transform(images, again))
    masked_params = masked.make_params(images, generator=torch.Generator().manual_seed(6))
    assert masked_params.groups is None and torch.equal(masked_params.op, params.op)
    assert torch.equal(masked.transform(images, masked_params), out)
    assert torch.equal(grouped(images, generator=torch.Generator().manual_seed(6)), out)


@pytest.mark.parametrize("cls", [da.TrivialAugmentWide, da.RandAugment, da.AutoAugment, da.AugMix])
def test_grouped_and_masked_give_the_same_gradients(cls):
    # The masked way runs every stage on every sample; a sample that skips a stage must keep its gradient too,
    # also at pixels on the ends of the range, where the stages' clamps have a zero derivative.
    shift = 0.08 * (torch.arange(24, dtype=torch.float64) % 4).view(-1, 1, 1, 1)
    images = (sample_image(torch.float64, 20, 24) + shift).clamp(0, 1)
    images[..., :2, :], images[..., -2:, :] = 0.0, 1.0
    weight = torch.rand(images.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    params = cls().make_params(images, generator=torch.Generator().manual_seed(6))
    gradients = []
    for grouped in (True, False):
        leaf = images.clone().requires_grad_()
        replay = params if grouped else dataclasses.replace(params, groups=None)
        (cls(grouped=grouped).transform(leaf, replay) * weight).sum().backward()
        gradients.append(leaf.grad)
    assert torch.allclose(gradients[0], gradients[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_grouped_slots_write_in_place_only_into_the_batch_they_made(layout):
    # After the first slot the grouped way writes into its own batch: the caller's images stay as they were.
    # Distinct samples, so that reading another sample's pixels in a later slot would show.
    shift = 0.05 * (torch.arange(12, dtype=torch.float64) % 6).view(-1, 1, 1, 1)
    images = ((sample_image(torch.float64, 20, 24) + shift).clamp(0, 1) * 255).round().to(torch.uint8)
    images = images.contiguous(memory_format=layout)
    before = images.clone()
    grouped, masked = da.RandAugment(num_ops=4), da.RandAugment(num_ops=4, grouped=False)
    params = grouped.make_params(images, generator=torch.Generator().manual_seed(2))
    out = grouped.transform(images, params)
    assert torch.equal(images, before)
    assert torch.equal(out, masked.transform(images, dataclasses.replace(params, groups=None)))
    assert out.is_contiguous(memory_format=layout)  # the caller's memory format is kept
    floats = (images.double() / 255).requires_grad_()
    grouped.transform(floats, params).sum().backward()  # no in-place write where autograd holds the batch
    assert floats.grad is not None and floats.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("width", [16, 17])  # a sample of 16-byte words, and one of bytes only
def test_samples_are_written_into_their_places_bit_for_bit(dtype, width):
    # The grouped way writes blocks as 16- or 8-byte words: every bit pattern must survive, signalling NaNs included.
    raw = torch.randint(0, 256, (5, 3, 4, width * torch.finfo(dtype).bits // 8 if dtype.is_floating_point else width))
    raw = raw.to(torch.uint8)
    raw.view(5, -1)[:, :16] = torch.tensor([1, 0, 0, 0, 0, 0, 0xF0, 0x7F] * 2, dtype=torch.uint8)  # an sNaN double
    samples = raw.view(dtype)
    out = torch.zeros(9, *samples.shape[1:], dtype=dtype)
    index = torch.tensor([7, 0, 3, 8, 5])
    da.transforms.policies._put_samples(out, index, samples)
    expected = torch.zeros_like(out)
    expected[index] = samples
    assert torch.equal(out.view(torch.uint8), expected.view(torch.uint8))


@pytest.mark.parametrize("cls", [da.TrivialAugmentWide, da.RandAugment])
def test_masked_way_traces_in_one_graph_on_uint8(cls):
    # The uint8 kernels (casts through int16, integer solarize, sharpness blended in place) stay traceable.
    images = (sample_image(torch.float64, 16, 16) * 255).round().to(torch.uint8).repeat(6, 1, 1, 1)
    policy = cls(grouped=False)
    params = policy.make_params(images, generator=torch.Generator().manual_seed(3))
    params.op[:, 0] = torch.arange(6) + 8  # Contrast, Sharpness, Posterize, Solarize, AutoContrast, Equalize among them
    compiled = torch.compile(policy.transform, fullgraph=True, backend="eager")
    assert torch.equal(compiled(images, params), policy.transform(images, params))


def test_single_image_and_forward():
    image = sample_image(torch.uint8)
    out = da.TrivialAugmentWide()(image, generator=torch.Generator().manual_seed(0))
    assert out.shape == image.shape and out.dtype == torch.uint8
    assert da.RandAugment()(image.float() / 255).dtype == torch.float32


def test_accepts_torchvision_enums_and_fill():
    t = da.RandAugment(interpolation=T.InterpolationMode.BILINEAR, fill=[10, 20, 30])
    assert t.mode == "bilinear" and t.fill == (10.0, 20.0, 30.0)
    image = torch.full((1, 3, 12, 12), 200, dtype=torch.uint8)
    op, magnitude = torch.tensor([OPERATIONS.index("TranslateX")]), torch.tensor([6.0])
    out = t.transform(image, _params(op, magnitude))
    assert torch.equal(out[0], TF.affine(image[0], angle=0.0, translate=[6, 0], scale=1.0, shear=[0.0, 0.0], fill=[10, 20, 30]))
    assert da.AutoAugment(T.AutoAugmentPolicy.CIFAR10).policy is da.AutoAugmentPolicy.CIFAR10


def test_augmix_output_is_the_weighted_mixture_of_its_chains():
    image = sample_image(torch.float64)
    names = [("Rotate", 10.0), ("Solarize", 0.4), ("Brightness", -0.3)]
    op = torch.tensor(
        [
            [
                OPERATIONS.index("Posterize"),
                0,
                OPERATIONS.index(names[0][0]),
                OPERATIONS.index(names[2][0]),
                OPERATIONS.index(names[1][0]),
                0,
            ]
        ]
    )
    magnitude = torch.tensor([[3.0, 0.0, names[0][1], names[2][1], names[1][1], 0.0]], dtype=torch.float64)
    weights = torch.tensor([[0.4, 0.1, 0.2, 0.3]], dtype=torch.float64)
    # Three chains of two steps: (Posterize 3), (Rotate 10, Brightness -0.3), (Solarize 0.4).
    t = da.AugMix(mixture_width=3, chain_depth=2)
    out = t.transform(image[None], PolicyParams(op=op, magnitude=magnitude, weights=weights, width=3))
    chains = [
        reference(image, "Posterize", 3, "bilinear"),
        reference(reference(image, "Rotate", 10.0, "bilinear"), "Brightness", -0.3, "bilinear"),
        reference(image, "Solarize", 0.4, "bilinear"),
    ]
    expected = 0.4 * image + 0.1 * chains[0] + 0.2 * chains[1] + 0.3 * chains[2]
    assert torch.allclose(out[0], expected, atol=1e-6)


def test_augmix_uint8_is_truncated_as_torchvision():
    image = sample_image(torch.uint8)
    op = torch.tensor([[0]])
    out = da.AugMix(mixture_width=1, chain_depth=1).transform(
        image[None], PolicyParams(op=op, magnitude=torch.zeros(1, 1), weights=torch.tensor([[0.5, 0.49]]), width=1)
    )
    assert torch.equal(out[0], (0.5 * image + 0.49 * image).to(torch.uint8))


# ---------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ["Equalize", "Posterize"])
def test_straight_through_ops_pass_the_gradient_to_the_images(name):
    image = sample_image(torch.float64)[None].requires_grad_(True)
    op, magnitude = torch.tensor([OPERATIONS.index(name)]), torch.tensor([4.0])
    out = da.TrivialAugmentWide().transform(image, _params(op, magnitude))
    weight = torch.rand(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (out * weight).sum().backward()
    assert torch.equal(image.grad, weight)


GRAD_CASES = [("Rotate", 17.0), ("ShearX", 0.2), ("Brightness", -0.3), ("Contrast", 0.4), ("Sharpness", 0.5), ("Solarize", 0.6)]


@pytest.mark.parametrize(
    ("name", "value", "grouped"),
    [(name, value, True) for name, value in GRAD_CASES] + [("Rotate", 17.0, False), ("Contrast", 0.4, False)],
    ids=[f"grouped-{name}" for name, _ in GRAD_CASES] + ["masked-Rotate", "masked-Contrast"],
)
def test_differentiable_ops_pass_gradcheck(name, value, grouped):
    t = da.RandAugment(interpolation="bilinear", grouped=grouped)
    op = torch.tensor([OPERATIONS.index(name), 0])
    params = _params(op, torch.tensor([value, 0.0]), grouped)
    params.magnitude = params.magnitude.double()
    # Inside (0, 1) so that no clamp or solarize threshold is met at a pixel.
    image = (0.25 + 0.5 * sample_image(torch.float64, 6, 7)).expand(2, -1, -1, -1).clone().requires_grad_(True)
    if name == "Solarize":
        image = (image.detach() * 0.9 + 0.02 * (image.detach() > 0.6)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: t.transform(x, params), (image,))


# ---------------------------------------------------------------------------------------------- errors
def test_bad_arguments_fail_early_naming_them():
    with pytest.raises(ValueError, match="policy"):
        da.AutoAugment("mnist")
    with pytest.raises(ValueError, match="num_ops"):
        da.RandAugment(num_ops=-1)
    with pytest.raises(ValueError, match="magnitude"):
        da.RandAugment(magnitude=31)
    with pytest.raises(ValueError, match="severity"):
        da.AugMix(severity=0)
    with pytest.raises(ValueError, match="alpha"):
        da.AugMix(alpha=0.0)
    with pytest.raises(ValueError, match="interpolation"):
        da.TrivialAugmentWide(interpolation="lanczos")
    with pytest.raises(TypeError, match="fill"):
        da.TrivialAugmentWide(fill={"image": 0})
    with pytest.raises(TypeError, match="channels"):
        da.TrivialAugmentWide()(torch.rand(2, 4, 8, 8))
    with pytest.raises(TypeError, match="targets"):
        da.TrivialAugmentWide()(torch.rand(2, 3, 8, 8), boxes=torch.zeros(2, 1, 4))
    t = da.TrivialAugmentWide()
    with pytest.raises(ValueError, match="make_params"):
        t.transform(torch.rand(3, 3, 8, 8), t.make_params(torch.rand(2, 3, 8, 8)))


def test_params_dataclass_replays_a_copy():
    t = da.RandAugment()
    images = torch.rand(4, 3, 8, 8)
    params = t.make_params(images, generator=torch.Generator().manual_seed(0))
    assert torch.equal(t.transform(images, dataclasses.replace(params)), t.transform(images, params))


def test_augmix_mixture_passes_gradcheck():
    op = torch.tensor([[OPERATIONS.index("Rotate"), OPERATIONS.index("Contrast"), OPERATIONS.index("Brightness"), 0]])
    magnitude = torch.tensor([[12.0, 0.3, -0.2, 0.0]], dtype=torch.float64)
    params = PolicyParams(op=op, magnitude=magnitude, weights=torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64), width=2)
    t = da.AugMix(mixture_width=2, chain_depth=2)
    image = (0.25 + 0.5 * sample_image(torch.float64, 6, 7))[None].requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: t.transform(x, params), (image,))


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped", "masked"])
def test_slots_apply_in_order_as_torchvision_chains_its_ops(grouped):
    pairs = [("Rotate", 20.0, "Solarize", 0.5), ("Posterize", 3.0, "TranslateX", -7.0), ("Contrast", 0.6, "Equalize", 0.0)]
    pairs += [("ShearY", 0.2, "Brightness", 0.4), ("Identity", 0.0, "Sharpness", -0.5), ("AutoContrast", 0.0, "Rotate", -30.0)]
    op = torch.tensor([[OPERATIONS.index(a), OPERATIONS.index(b)] for a, _, b, _ in pairs])
    magnitude = torch.tensor([[x, y] for _, x, _, y in pairs], dtype=torch.float64)
    image = sample_image(torch.float64)
    params = PolicyParams(op=op, magnitude=magnitude)
    if grouped:
        params.groups = da.transforms.policies._groups(op, torch.device("cpu"))
    out = da.RandAugment(interpolation="bilinear", grouped=grouped).transform(image.expand(len(pairs), -1, -1, -1), params)
    for index, (first, x, second, y) in enumerate(pairs):
        expected = reference(reference(image, first, x, "bilinear"), second, y, "bilinear")
        assert torch.allclose(out[index], expected, atol=1e-6), (first, second)
