"""Malformed calls fail early, raised by diffaug itself, with a message naming the argument."""

import os

import pytest
import torch
from hypothesis import assume, given
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
    "RRC mode": (lambda: da.RandomResizedCrop(8, mode="lanczos"), ValueError, "mode"),
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
    "BoxCrop mode": (lambda: da.BoxCrop(4, mode="box"), ValueError, "mode"),
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
