"""Malformed calls fail early, raised by diffaug itself, with a message naming the argument."""

import os
import re
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffaug as da
import diffaug.functional as daf

IMAGES = torch.rand(2, 3, 8, 8)
BOXES = torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 2.0, 7.5, 8.0]])
META = torch.device("meta")  # a second device on any machine


def crop_with_index(*index):
    return lambda: daf.crop(IMAGES, BOXES, 4, batch_index=torch.tensor(*index))


def raises_from_diffaug(call, error, *names):
    """``call()`` raises ``error`` from diffaug's own code, its message naming every one of ``names``."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for name in names:
        assert name in message, (name, message)
    assert f"{os.sep}diffaug{os.sep}" in str(info.traceback[-1].path), f"raised outside diffaug: {info.traceback[-1]}"


CROP_CASES = {
    "images not a tensor": (lambda: daf.crop([[0.0]], BOXES, 4), TypeError, "images"),
    "images rank 2": (lambda: daf.crop(torch.rand(8, 8), BOXES, 4), ValueError, "images", "(B, C, H, W)"),
    "images rank 5": (lambda: daf.crop(torch.rand(1, 2, 3, 8, 8), BOXES, 4), ValueError, "images"),
    "images int32": (lambda: daf.crop(IMAGES.int(), BOXES, 4), TypeError, "images"),
    "images bool": (lambda: daf.crop(IMAGES.bool(), BOXES, 4), TypeError, "images"),
    "images zero height": (lambda: daf.crop(torch.rand(2, 3, 0, 8), BOXES, 4), ValueError, "images"),
    "boxes not a tensor": (lambda: daf.crop(IMAGES, [[0, 0, 4, 4]] * 2, 4), TypeError, "boxes"),
    "boxes (B, 3)": (lambda: daf.crop(IMAGES, BOXES[:, :3], 4), ValueError, "boxes", "4"),
    "boxes 0-d": (lambda: daf.crop(IMAGES, torch.tensor(1.0), 4), ValueError, "boxes"),
    "boxes (1, B, 4)": (lambda: daf.crop(IMAGES, BOXES[None], 4), ValueError, "boxes"),
    "boxes (4,) for a batch": (lambda: daf.crop(IMAGES, BOXES[0], 4), ValueError, "boxes", "(B, 4)"),
    "boxes integer": (lambda: daf.crop(IMAGES, BOXES.long(), 4), TypeError, "boxes", "floating"),
    "boxes batch disagrees": (lambda: daf.crop(IMAGES, BOXES[:1], 4), ValueError, "boxes", "(2, 4)"),
    "boxes on another device": (lambda: daf.crop(IMAGES, BOXES.to(META), 4), ValueError, "boxes", "meta"),
    "size zero": (lambda: daf.crop(IMAGES, BOXES, 0), ValueError, "size", "positive"),
    "size negative": (lambda: daf.crop(IMAGES, BOXES, (4, -2)), ValueError, "size"),
    "size float": (lambda: daf.crop(IMAGES, BOXES, 4.5), TypeError, "size"),
    "size bool": (lambda: daf.crop(IMAGES, BOXES, True), TypeError, "size"),
    "size triple": (lambda: daf.crop(IMAGES, BOXES, (2, 3, 4)), TypeError, "size"),
    "mode unknown": (lambda: daf.crop(IMAGES, BOXES, 4, mode="area"), ValueError, "mode", "bilinear"),
    "padding_mode unknown": (lambda: daf.crop(IMAGES, BOXES, 4, padding_mode="constant"), ValueError, "padding_mode", "zeros"),
    "batch_index float": (crop_with_index([0.0, 1.0]), TypeError, "batch_index", "integer"),
    "batch_index bool": (crop_with_index([True, False]), TypeError, "batch_index"),
    "batch_index list": (lambda: daf.crop(IMAGES, BOXES, 4, batch_index=[0, 1]), TypeError, "batch_index"),
    "batch_index too high": (crop_with_index([0, 2]), IndexError, "batch_index", "2"),
    "batch_index negative": (crop_with_index([-1, 0]), IndexError, "batch_index"),
    "batch_index length": (crop_with_index([0, 1, 1]), ValueError, "batch_index", "K"),
    "batch_index 2-d": (crop_with_index([[0, 1]]), ValueError, "batch_index"),
    "batch_index device": (
        lambda: daf.crop(IMAGES, BOXES, 4, batch_index=torch.tensor([0, 1], device=META)),
        ValueError,
        "batch_index",
        "meta",
    ),
    "batch_index with a single image": (
        lambda: daf.crop(IMAGES[0], BOXES, 4, batch_index=torch.tensor([0, 0])),
        ValueError,
        "batch_index",
    ),
}

WARP_CASES = {
    "theta not a tensor": (lambda: daf.warp(IMAGES, [[1, 0, 0], [0, 1, 0]], 4), TypeError, "theta"),
    "theta (B, 3, 3)": (lambda: daf.warp(IMAGES, torch.eye(3).expand(2, 3, 3), 4), ValueError, "theta", "(B, 2, 3)"),
    "theta integer": (lambda: daf.warp(IMAGES, torch.zeros(2, 2, 3, dtype=torch.long), 4), TypeError, "theta"),
    "theta batch disagrees": (lambda: daf.warp(IMAGES, torch.eye(2, 3).expand(3, 2, 3), 4), ValueError, "theta", "3"),
    "theta device": (lambda: daf.warp(IMAGES, torch.eye(2, 3, device=META).expand(2, 2, 3), 4), ValueError, "theta", "meta"),
}

TRANSFORM_CASES = {
    "RRC size zero": (lambda: da.RandomResizedCrop(0), ValueError, "size"),
    "RRC size negative": (lambda: da.RandomResizedCrop((8, -1)), ValueError, "size"),
    "RRC scale reversed": (lambda: da.RandomResizedCrop(8, scale=(1.0, 0.5)), ValueError, "scale", "min <= max"),
    "RRC scale zero": (lambda: da.RandomResizedCrop(8, scale=(0.0, 0.5)), ValueError, "scale", "> 0"),
    "RRC scale negative": (lambda: da.RandomResizedCrop(8, scale=(-0.5, 0.5)), ValueError, "scale"),
    "RRC scale nan": (lambda: da.RandomResizedCrop(8, scale=(float("nan"), 0.5)), ValueError, "scale"),
    "RRC scale not a pair": (lambda: da.RandomResizedCrop(8, scale=(0.1, 0.2, 0.3)), TypeError, "scale"),
    "RRC scale a string": (lambda: da.RandomResizedCrop(8, scale="0.1"), TypeError, "scale"),
    "RRC ratio reversed": (lambda: da.RandomResizedCrop(8, ratio=(2.0, 0.5)), ValueError, "ratio", "min <= max"),
    "RRC ratio zero": (lambda: da.RandomResizedCrop(8, ratio=(0.0, 2.0)), ValueError, "ratio"),
    "RRC ratio infinite": (lambda: da.RandomResizedCrop(8, ratio=(1.0, float("inf"))), ValueError, "ratio"),
    "RRC interpolation": (lambda: da.RandomResizedCrop(8, interpolation="lanczos"), ValueError, "interpolation"),
    "RRC padding_mode": (lambda: da.RandomResizedCrop(8, padding_mode="wrap"), ValueError, "padding_mode"),
    "RRC p above 1": (lambda: da.RandomResizedCrop(8, p=1.5), ValueError, "p"),
    "RRC temperature": (lambda: da.RandomResizedCrop(8, temperature=0.0), ValueError, "temperature"),
    "RRC make_params images rank": (lambda: da.RandomResizedCrop(8).make_params(torch.rand(8, 8)), ValueError, "images"),
    "RRC make_params images type": (lambda: da.RandomResizedCrop(8).make_params(None), TypeError, "images"),
    "RRC params for another batch": (
        lambda: da.RandomResizedCrop(8).transform(torch.rand(3, 3, 8, 8), da.RandomResizedCrop(8).make_params(IMAGES)),
        ValueError,
        "params",
        "make_params",
    ),
    "Zoom reversed": (lambda: da.ZoomCrop(8, zoom=(2.0, 1.0)), ValueError, "zoom"),
    "Zoom zero": (lambda: da.ZoomCrop(8, zoom=(0.0, 1.0)), ValueError, "zoom"),
    "Zoom size": (lambda: da.ZoomCrop(-3), ValueError, "size"),
    "Zoom given zoom shape": (lambda: da.ZoomCrop(8)(IMAGES, zoom=torch.ones(3)), ValueError, "zoom", "(2,)"),
    "Zoom given zoom integer": (lambda: da.ZoomCrop(8)(IMAGES, zoom=torch.ones(2, dtype=torch.long)), TypeError, "zoom"),
    "Zoom given zoom device": (lambda: da.ZoomCrop(8)(IMAGES, zoom=torch.ones(2, device=META)), ValueError, "zoom", "meta"),
    "Zoom given center shape": (lambda: da.ZoomCrop(8)(IMAGES, center=torch.zeros(2, 3)), ValueError, "center", "(2, 2)"),
    "Zoom given center list": (lambda: da.ZoomCrop(8)(IMAGES, center=[[0.0, 0.0]] * 2), TypeError, "center"),
    "BoxCrop size": (lambda: da.BoxCrop((0, 4)), ValueError, "size"),
    "BoxCrop interpolation": (lambda: da.BoxCrop(4, interpolation="box"), ValueError, "interpolation"),
    "BoxCrop boxes per image": (lambda: da.BoxCrop(4)(IMAGES, BOXES[:1]), ValueError, "boxes", "batch_index"),
    "BoxCrop boxes shape": (lambda: da.BoxCrop(4)(IMAGES, BOXES[:, :2]), ValueError, "boxes"),
    "BoxCrop boxes device": (lambda: da.BoxCrop(4)(IMAGES, BOXES.to(META)), ValueError, "boxes", "meta"),
    "BoxCrop batch_index range": (
        lambda: da.BoxCrop(4)(IMAGES, BOXES, batch_index=torch.tensor([0, 5])),
        IndexError,
        "batch_index",
    ),
    "BoxCrop batch_index float": (
        lambda: da.BoxCrop(4)(IMAGES, BOXES, batch_index=torch.tensor([0.0, 1.0])),
        TypeError,
        "batch_index",
    ),
    "BoxCrop batch_index length": (
        lambda: da.BoxCrop(4)(IMAGES, BOXES, batch_index=torch.tensor([0])),
        ValueError,
        "batch_index",
    ),
    "BoxCrop batch_index with (K, 1, 4) boxes": (
        lambda: da.BoxCrop(4)(IMAGES, BOXES[:, None], batch_index=torch.tensor([0, 1])),
        ValueError,
        "boxes",
    ),
}

ALL_CASES = {**CROP_CASES, **WARP_CASES, **TRANSFORM_CASES}


@pytest.mark.parametrize("name", list(ALL_CASES))
def test_malformed_call_fails_early_naming_the_argument(name):
    call, error, *names = ALL_CASES[name]
    raises_from_diffaug(call, error, *names)


@given(st.lists(st.integers(1, 4), min_size=0, max_size=6).filter(lambda shape: len(shape) not in (3, 4)))
def test_any_wrong_image_rank_is_refused(shape):
    raises_from_diffaug(lambda: daf.crop(torch.zeros(shape), BOXES, 4), ValueError, "images")
    raises_from_diffaug(lambda: da.RandomResizedCrop(4).make_params(torch.zeros(shape)), ValueError, "images")


@given(st.integers(-5, 0), st.integers(1, 5), st.booleans())
def test_any_non_positive_size_is_refused(bad, good, first):
    size = (bad, good) if first else (good, bad)
    for call in (lambda: daf.crop(IMAGES, BOXES, size), lambda: da.RandomResizedCrop(size), lambda: da.ZoomCrop(size)):
        raises_from_diffaug(call, ValueError, "size")


@given(st.floats(0.01, 10.0), st.floats(0.01, 10.0), st.sampled_from(["scale", "ratio"]))
def test_reversed_ranges_are_refused(a, b, name):
    assume(a != b)
    low, high = min(a, b), max(a, b)
    raises_from_diffaug(lambda: da.RandomResizedCrop(4, **{name: (high, low)}), ValueError, name)


@given(st.integers(-10, 10), st.integers(1, 4))
def test_batch_index_out_of_range_is_an_index_error(value, batch):
    images = torch.zeros(batch, 1, 4, 4)
    index = torch.tensor([0, value])
    boxes = BOXES
    if 0 <= value < batch:
        assert daf.crop(images, boxes, 2, batch_index=index).shape == (2, 1, 2, 2)
    else:
        raises_from_diffaug(lambda: daf.crop(images, boxes, 2, batch_index=index), IndexError, "batch_index")


# ---------------------------------------------------------------- channels-last images
CHANNELS_LAST = [(2, 32, 32, 3), (32, 32, 3), (1, 64, 48, 1), (2, 16, 16, 4), (224, 224, 3)]


@pytest.mark.parametrize("shape", CHANNELS_LAST, ids=str)
def test_channels_last_images_are_refused_with_the_permutation(shape):
    images = torch.zeros(shape)
    permute = "permute(0, 3, 1, 2)" if len(shape) == 4 else "permute(2, 0, 1)"
    for call in (
        lambda: da.RandomResizedCrop(8)(images),
        lambda: da.Compose([da.RandomHorizontalFlip(), da.ColorJitter(0.2)])(images),
        lambda: daf.warp(images, torch.eye(2, 3).expand(*shape[:-3], 2, 3), 8),
    ):
        raises_from_diffaug(call, ValueError, "images", "channels-last", permute)
    # The permutation the message names is the fix.
    fixed = images.permute(0, 3, 1, 2) if len(shape) == 4 else images.permute(2, 0, 1)
    assert da.RandomResizedCrop(8)(fixed).shape[-3:] == (shape[-1], 8, 8)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([1, 3, 4]), st.integers(16, 64), st.integers(16, 64), st.booleans())
def test_every_channels_last_image_is_refused_and_its_channels_first_form_accepted(channels, height, width, batched):
    image = torch.zeros(channels, height, width)
    images = image[None].expand(2, -1, -1, -1) if batched else image
    last = images.movedim(-3, -1)
    raises_from_diffaug(lambda: da.RandomHorizontalFlip()(last), ValueError, "channels-last")
    assert da.RandomHorizontalFlip()(images).shape == images.shape


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (3, 4, 4), (2, 1, 3, 3), (2, 256, 4, 4), (2, 4, 15, 3), (2, 15, 64, 3)], ids=str)
def test_tiny_channels_first_images_and_feature_maps_still_work(shape):
    images = torch.rand(shape)
    assert da.RandomHorizontalFlip(p=1.0)(images).shape == images.shape
    assert torch.allclose(da.RandomHorizontalFlip(p=1.0)(images), images.flip(-1), atol=1e-6)


# ---------------------------------------------------------------- NaN / inf in boxes, keypoints, theta
NON_FINITE = [float("nan"), float("inf"), -float("inf")]


@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_non_finite_boxes_are_refused_by_box_crop_and_crop(value):
    boxes = BOXES.clone()
    boxes[1, 2] = value
    raises_from_diffaug(lambda: da.BoxCrop(4)(IMAGES, boxes), ValueError, "boxes", "finite")
    raises_from_diffaug(lambda: daf.crop(IMAGES, boxes, 4), ValueError, "boxes", "finite")
    raises_from_diffaug(lambda: da.Compose([da.BoxCrop(4)])(IMAGES, crop_boxes=boxes), ValueError, "boxes", "finite")


@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_non_finite_targets_are_refused(value):
    from torchvision import tv_tensors

    flip = da.RandomHorizontalFlip(p=1.0)
    boxes = torch.tensor([[[0.0, 0.0, 4.0, value]]]).expand(2, 1, 4)
    points = torch.tensor([[[value, 1.0]]]).expand(2, 1, 2)
    raises_from_diffaug(lambda: flip(IMAGES, boxes=boxes), ValueError, "boxes", "finite")
    raises_from_diffaug(lambda: da.Compose([flip])(IMAGES, keypoints=points), ValueError, "keypoints", "finite")
    tv_boxes = tv_tensors.BoundingBoxes([[0.0, 0.0, value, 4.0]], format="XYXY", canvas_size=(8, 8))
    raises_from_diffaug(lambda: flip(tv_tensors.Image(IMAGES[0]), tv_boxes), ValueError, "boxes", "finite")
    raises_from_diffaug(lambda: daf.transform_boxes(boxes, torch.eye(2, 3).expand(2, 2, 3), (8, 8), (8, 8)), ValueError, "finite")


@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_non_finite_theta_is_refused(value):
    rotate = da.RandomRotation(30, interpolation="bilinear")
    params = rotate.make_params(IMAGES)
    params.theta = params.theta.clone()
    params.theta[0, 0, 1] = value
    raises_from_diffaug(lambda: rotate.transform(IMAGES, params), ValueError, "theta", "finite")
    pipe = da.Compose([rotate, da.ColorJitter(0.2), da.RandomHorizontalFlip()])
    pipe_params = pipe.make_params(IMAGES)
    pipe_params.steps[0] = params
    raises_from_diffaug(lambda: pipe.transform(IMAGES, pipe_params), ValueError, "theta", "finite")
    whole = da.Compose([rotate])
    whole_params = whole.make_params(IMAGES)
    whole_params.theta = params.theta
    raises_from_diffaug(lambda: whole.transform(IMAGES, whole_params), ValueError, "theta", "finite")
    raises_from_diffaug(lambda: daf.transform_keypoints(torch.zeros(2, 1, 2), params.theta, (8, 8), (8, 8)), ValueError, "theta")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=12),
    st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
)
def test_the_finite_check_refuses_exactly_what_isfinite_flags(values, dtype):
    tensor = torch.tensor(values, dtype=torch.float32).to(dtype)  # large values may become inf in half precision
    if torch.isfinite(tensor).all():
        assert daf._checks.check_finite(tensor, "values") is tensor
    else:
        raises_from_diffaug(lambda: daf._checks.check_finite(tensor, "values"), ValueError, "values", "finite")


def test_non_finite_angles_of_a_learnable_transform_are_refused():
    """A learnable range that training drove to NaN gives NaN angles: the forward pass says so."""
    rotate = da.RandomRotation(30, interpolation="bilinear", learnable=True)
    assert len(list(rotate.parameters())) > 0
    with torch.no_grad():
        for parameter in rotate.parameters():
            parameter.fill_(float("nan"))
    raises_from_diffaug(lambda: rotate(IMAGES), ValueError, "theta", "finite")


def test_the_finite_check_runs_inside_a_compiled_graph():
    crop = torch.compile(da.BoxCrop(4), fullgraph=True, backend="eager")
    assert crop(IMAGES, BOXES).shape == (2, 3, 4, 4)
    bad = BOXES.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="finite"):  # the assert of the graph: no host read at trace time
        crop(IMAGES, bad)


FINITE_DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", FINITE_DEVICES)
def test_the_finite_check_reads_no_value_on_the_host(device):
    """Under the host-read guard of test_no_sync: the check is an op (an assert on the device), not a Python read."""
    from tests.test_no_sync import no_host_sync

    boxes = BOXES.to(device)
    with no_host_sync(device):
        daf.targets.transform_boxes(boxes[:, None], torch.eye(2, 3, device=device).expand(2, 2, 3), (8, 8), (8, 8))
    assert boxes.device.type == device


# ---------------------------------------------------------------- torchvision random transforms inside Compose
def test_torchvision_random_transforms_in_compose_warn_that_they_draw_per_batch():
    import torchvision.transforms as v1
    import torchvision.transforms.v2 as v2

    for step in (v2.RandomHorizontalFlip(), v1.RandomCrop(4), v2.ColorJitter(0.5), v2.Compose([v2.RandomRotation(10)])):
        with pytest.warns(UserWarning, match="once per call") as record:
            da.Compose([da.RandomResizedCrop(8), step])
        assert type(step).__name__ in str(record[0].message) or "RandomRotation" in str(record[0].message)
        assert record[0].filename == __file__  # points at the user's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        da.Compose([v2.Normalize([0.5], [0.5]), v2.ToDtype(torch.float32), da.RandomHorizontalFlip(), torch.nn.Identity()])
    # What the warning says: the torchvision flip takes one decision for the whole batch.
    images = torch.rand(8, 1, 4, 4)
    with pytest.warns(UserWarning, match="RandomHorizontalFlip"):
        pipe = da.Compose([v2.RandomHorizontalFlip()])
    for _ in range(10):
        flipped = (pipe(images) == images.flip(-1)).flatten(1).all(1)
        assert flipped.all() or not flipped.any()


# ---------------------------------------------------------------- NaN images
def test_nan_images_pass_through_unchanged():
    """Not an error: a NaN or inf pixel stays one where it lands; pixels that do not read it are what a clean image gives."""
    images = torch.rand(2, 3, 8, 8)
    images[0, 1, 2, 3] = float("nan")
    images[1, :, 5, 0] = float("inf")
    flip = da.RandomHorizontalFlip(p=1.0)
    out, clean = flip(images), flip(images.nan_to_num(0.5, 0.5))
    landed = images.flip(-1)
    assert not out[landed.isnan()].isfinite().any() and not out[landed.isinf()].isfinite().any()
    unread = out.isfinite()
    assert unread.float().mean() > 0.8 and torch.equal(out[unread], clean[unread])
    identity = da.RandomRotation(30, p=0.0)(images)  # nearest, identity params: bitwise the input
    assert torch.equal(identity.isnan(), images.isnan()) and torch.equal(identity[images.isfinite()], images[images.isfinite()])
    # The whole image, so the crop reads the NaN pixel whatever it draws (a random crop could miss it).
    crop = da.RandomResizedCrop(6, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    out = da.Compose([crop, da.ColorJitter(0.3)])(images, boxes=torch.tensor([[[0.0, 0.0, 4.0, 4.0]]] * 2))
    assert not out["images"].isfinite().all() and out["boxes"].isfinite().all()


def test_the_docs_table_names_tests_that_exist():
    page = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
    named = set(re.findall(r"`(test_\w+)`", page.read_text()))
    defined = {name for name in globals() if name.startswith("test_")}
    assert named and named <= defined, sorted(named - defined)
