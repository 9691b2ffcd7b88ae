"""Compose.inverse: images, masks, boxes and keypoints back to the input frame."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import tv_tensors

import diffaug as da


def smooth(height: int, width: int) -> torch.Tensor:
    y = (torch.arange(height, dtype=torch.float64) + 0.5)[:, None] / height
    x = (torch.arange(width, dtype=torch.float64) + 0.5)[None, :] / width
    return torch.stack([torch.sin(2 * math.pi * (1.2 * x + 0.8 * y)), torch.cos(2 * math.pi * (0.7 * x - 1.3 * y))])


def pipeline() -> da.Compose:
    return da.Compose(
        [
            da.RandomAffine(degrees=30, translate=(0.05, 0.05), scale=(1.0, 1.3), shear=5),
            da.RandomHorizontalFlip(),
            da.RandomResizedCrop((40, 48), scale=(0.6, 1.0)),
        ]
    )


@settings(max_examples=15)
@given(seed=st.integers(0, 2**31))
def test_image_round_trip_on_band_limited_images(seed):
    pipe = pipeline()
    images = smooth(48, 64)[None].expand(3, -1, -1, -1)
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(seed))
    back = pipe.inverse(pipe.transform(images, params), params)
    assert back.shape == images.shape
    # Compare where the round trip stayed on both canvases (elsewhere the crop removed the content).
    ones = torch.ones_like(images)
    inside = pipe.inverse(pipe.transform(ones, params), params) > 1 - 1e-9
    assert inside.float().mean() > 0.1
    assert (back - images)[inside].abs().max() < 0.03
    assert (back - images)[inside].abs().mean() < 0.005


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31))
def test_keypoints_and_boxes_round_trip(seed):
    pipe = pipeline()
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(3, 1, 48, 64)
    params = pipe.make_params(images, generator=generator)
    points = torch.rand(3, 10, 2, generator=generator) * torch.tensor([64.0, 48.0])
    out = pipe.transform_targets(params, keypoints=points)
    back = pipe.inverse({"keypoints": out["keypoints"], "keypoints_visible": out["keypoints_visible"]}, params)
    assert torch.allclose(back["keypoints"], points, atol=1e-3)
    assert torch.equal(back["keypoints_visible"], out["keypoints_visible"])
    # Boxes: the inverse of the enclosing box encloses the original box (rotations make it larger).
    boxes = torch.tensor([[[20.0, 15.0, 40.0, 30.0]]]).expand(3, 1, 4)
    forward = pipe.transform_targets(params, boxes=boxes)
    unclipped = da.functional.transform_boxes(boxes, params.theta, params.in_size, params.size, clip=False)[0]
    whole = ((unclipped >= 0) & (unclipped <= torch.tensor([48.0, 40.0, 48.0, 40.0]))).all(-1)
    back_boxes = pipe.inverse({"boxes": forward["boxes"]}, params)["boxes"]
    contains = (back_boxes[..., :2] <= boxes[..., :2] + 1e-3).all(-1) & (back_boxes[..., 2:] >= boxes[..., 2:] - 1e-3).all(-1)
    assert contains[whole].all()


def test_axis_aligned_round_trip_is_exact_for_boxes_and_labels():
    pipe = da.Compose([da.RandomHorizontalFlip(p=1.0), da.RandomVerticalFlip(p=1.0), da.CenterCrop(24), da.Resize(48)])
    images = torch.rand(2, 1, 32, 32)
    params = pipe.make_params(images)
    boxes = torch.tensor([[[6.0, 8.0, 20.0, 22.0]], [[10.0, 4.0, 26.0, 27.0]]])
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[:, 8:24, 8:24] = 3
    labels[:, 12:20, 10:14] = 7
    out = pipe(images, boxes=boxes, masks=labels)
    back = pipe.inverse(out, params)
    assert torch.allclose(back["boxes"], boxes, atol=1e-4)
    assert torch.equal(back["masks"][:, 4:28, 4:28], labels[:, 4:28, 4:28])  # the centre crop's window
    assert (back["masks"][:, :4] == 0).all()  # cropped away: comes back as the fill
    assert back["images"].shape == images.shape


def test_inverse_of_tv_tuple_and_single_image():
    canvas = (20, 30)
    image = tv_tensors.Image(torch.rand(3, *canvas))
    boxes = tv_tensors.BoundingBoxes([[3.0, 4.0, 10.0, 12.0]], format="XYXY", canvas_size=canvas)
    pipe = da.Compose([da.RandomHorizontalFlip(p=1.0), da.Resize((10, 15))])
    params = pipe.make_params(image, generator=torch.Generator().manual_seed(0))
    outputs = pipe(image, boxes, generator=torch.Generator().manual_seed(0))
    assert torch.equal(outputs[0], pipe.transform(image, params))
    back_image, back_boxes = pipe.inverse(outputs, params)
    assert isinstance(back_image, tv_tensors.Image) and back_image.shape == (3, *canvas)
    assert back_boxes.canvas_size == canvas
    assert torch.allclose(back_boxes.as_subclass(torch.Tensor), boxes.as_subclass(torch.Tensor), atol=1e-4)


def test_inverse_rejects_unknown_keys():
    pipe = pipeline()
    images = torch.rand(1, 1, 48, 64)
    params = pipe.make_params(images)
    try:
        pipe.inverse({"scores": torch.zeros(1)}, params)
    except ValueError as error:
        assert "scores" in str(error)
    else:
        raise AssertionError("unknown keys must raise")


def test_inverse_of_a_single_transform_in_every_call_form():
    from diffaug.transforms.targets import inverse

    resize = da.Resize((10, 15))
    canvas = (20, 30)
    image = tv_tensors.Image(torch.rand(3, *canvas))
    boxes = tv_tensors.BoundingBoxes([[3.0, 4.0, 10.0, 12.0]], format="XYXY", canvas_size=canvas)
    params = resize.make_params(image)
    back_image, back_boxes = inverse((resize.transform(image, params), *resize(image, boxes)[1:]), params)
    assert isinstance(back_image, tv_tensors.Image) and back_image.shape == (3, *canvas) and back_boxes.canvas_size == canvas
    torch.testing.assert_close(back_boxes.as_subclass(torch.Tensor), boxes.as_subclass(torch.Tensor), rtol=0, atol=1e-4)
    images = torch.rand(2, 1, *canvas)
    points = torch.rand(2, 4, 2) * torch.tensor([30.0, 20.0])
    out = resize(images, keypoints=points)
    back = inverse(out, resize.make_params(images))
    assert back["images"].shape == images.shape
    torch.testing.assert_close(back["keypoints"], points, rtol=0, atol=1e-4)
