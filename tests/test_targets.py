"""Targets follow the images: boxes, keypoints and masks through the same params; torchvision interop."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import tv_tensors

import diffaug as da
from diffaug.functional import targets as T
from diffaug.transforms.targets import inverse, transform_targets

SIZE = 48


def pipeline(zoom_in: bool = False) -> da.Compose:
    scale = (1.0, 1.3) if zoom_in else (0.8, 1.2)
    return da.Compose(
        [
            da.RandomAffine(degrees=30, translate=(0.1, 0.1), scale=scale, shear=5),
            da.RandomHorizontalFlip(),
            da.RandomResizedCrop(40, scale=(0.6, 1.0)),
        ]
    )


def render_boxes(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, 4) integer boxes -> (B, N, H, W) bool masks of the pixels whose centre is inside."""
    centres = torch.arange(size) + 0.5
    inside_x = (centres >= boxes[..., 0:1]) & (centres < boxes[..., 2:3])
    inside_y = (centres >= boxes[..., 1:2]) & (centres < boxes[..., 3:4])
    return inside_y[..., :, None] & inside_x[..., None, :]


def mask_extent(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., H, W) bool -> XYXY pixel extent (exclusive ends) and non-emptiness."""
    height, width = masks.shape[-2:]
    cols, rows = masks.any(-2), masks.any(-1)
    ix, iy = torch.arange(width), torch.arange(height)
    x1 = torch.where(cols, ix, width).amin(-1)
    x2 = torch.where(cols, ix + 1, 0).amax(-1)
    y1 = torch.where(rows, iy, height).amin(-1)
    y2 = torch.where(rows, iy + 1, 0).amax(-1)
    return torch.stack([x1, y1, x2, y2], -1).float(), cols.any(-1)


def random_boxes(generator: torch.Generator) -> torch.Tensor:
    corners = torch.randint(0, SIZE, (4, 3, 2, 2), generator=generator).float()
    # (4, 3, 4) integer boxes inside the image (the rendered mask cannot leave it either).
    return torch.cat([corners.amin(2), (corners.amax(2) + 4).clamp(max=SIZE)], -1)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31))
def test_boxes_agree_with_their_rendered_masks(seed):
    """Rotated and sheared: the mask lies inside its box, and an unclipped box is tight around it."""
    generator = torch.Generator().manual_seed(seed)
    boxes = random_boxes(generator)
    pipe = pipeline()
    params = pipe.make_params(torch.rand(4, 3, SIZE, SIZE), generator=generator)
    out = pipe.transform_targets(params, boxes=boxes, masks=render_boxes(boxes, SIZE))
    extent, nonempty = mask_extent(out["masks"])
    both = out["boxes_valid"] & nonempty
    assert both.any()
    box = out["boxes"]
    assert (extent[..., :2] >= box[..., :2] - 1)[both].all() and (extent[..., 2:] <= box[..., 2:] + 1)[both].all()
    # Where clipping did not cut the box, the mask (sampled at pixel centres, nearest) reaches its
    # box to within one input pixel as the output sees it, plus one output pixel.
    unclipped, _ = T.transform_boxes(boxes, params.theta, params.in_size, params.size, clip=False)
    whole = both & ((unclipped >= 0) & (unclipped <= 40)).all(-1)
    linear = T.forward_pixel_matrix(params.theta, params.in_size, params.size)[:, :2, :2]
    slack = 1 + linear.abs().sum(-1)  # (B, 2): x and y extent of one input pixel in the output, plus one
    tolerance = slack.repeat(1, 2).unsqueeze(1)  # (B, 1, 4) for x1, y1, x2, y2
    assert ((box - extent).abs() <= tolerance)[whole].all()
    assert out["boxes_valid"][nonempty].all()


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31))
def test_axis_aligned_boxes_agree_with_masks_within_a_pixel(seed):
    generator = torch.Generator().manual_seed(seed)
    boxes = random_boxes(generator)
    pipe = da.Compose([da.RandomHorizontalFlip(), da.RandomVerticalFlip(), da.RandomResizedCrop(40, scale=(0.5, 1.0))])
    out = pipe(torch.rand(4, 3, SIZE, SIZE), boxes=boxes, masks=render_boxes(boxes, SIZE), generator=generator)
    extent, nonempty = mask_extent(out["masks"])
    both = out["boxes_valid"] & nonempty
    assert both.any()
    assert ((out["boxes"] - extent)[both].abs() <= 1.0).all()
    # A box at least a pixel wide and high covers a pixel centre, so its mask is not empty.
    wide = (out["boxes"][..., 2:] - out["boxes"][..., :2] >= 1).all(-1)
    assert nonempty[wide].all() and out["boxes_valid"][nonempty].all()


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31))
def test_keypoints_agree_with_their_rendered_pixels(seed):
    generator = torch.Generator().manual_seed(seed)
    # Twelve points: enough that some stay in view of every draw's crop (with six, a seed lost all of them).
    cells = torch.randperm(SIZE * SIZE, generator=generator)[:12].view(1, 12).expand(2, 12)
    rows, cols = cells // SIZE, cells % SIZE
    keypoints = torch.stack([cols + 0.5, rows + 0.5], -1).float()  # pixel centres, (2, 12, 2)
    labels = torch.zeros(2, SIZE * SIZE, dtype=torch.long)
    labels.scatter_(1, cells, torch.arange(1, 13).expand(2, 12))
    labels = labels.view(2, SIZE, SIZE)
    out = pipeline(zoom_in=True)(torch.rand(2, 1, SIZE, SIZE), masks=labels, keypoints=keypoints, generator=generator)
    found = out["masks"].unsqueeze(1) == torch.arange(1, 13).view(1, 12, 1, 1)  # (2, 12, h, w)
    ys, xs = torch.meshgrid(torch.arange(40) + 0.5, torch.arange(40) + 0.5, indexing="ij")
    count = found.sum((-2, -1))
    centroid = torch.stack([(found * xs).sum((-2, -1)), (found * ys).sum((-2, -1))], -1) / count.clamp_min(1).unsqueeze(-1)
    seen = count > 0
    assert seen.any()
    assert (centroid - out["keypoints"])[seen].abs().max() < 1.0
    # Seen but not visible only at the border (nearest sampling reaches half a pixel out).
    inner = seen & ((out["keypoints"] >= 1) & (out["keypoints"] <= 39)).all(-1)
    assert out["keypoints_visible"][inner].all()


def test_validity_mask_and_batch_index_forms_agree():
    pipe = da.Compose([da.RandomAffine(0, translate=(0.4, 0.4)), da.CenterCrop(20)])
    images = torch.rand(3, 1, 32, 32)
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(0))
    padded = torch.tensor([[[0.0, 0.0, 4.0, 4.0], [10.0, 10.0, 20.0, 20.0]]]).expand(3, 2, 4).clone()
    box_mask = torch.tensor([[True, True], [True, False], [False, True]])
    res = pipe.transform_targets(params, boxes=padded, box_mask=box_mask)
    assert not res["boxes_valid"][1, 1] and not res["boxes_valid"][2, 0]
    flat = padded[box_mask]
    index = torch.tensor([0, 0, 1, 2])
    res_flat = pipe.transform_targets(params, boxes=flat, box_batch_index=index)
    assert torch.allclose(res_flat["boxes"], res["boxes"][box_mask])
    assert torch.equal(res_flat["boxes_valid"], res["boxes_valid"][box_mask])
    # A box entirely outside the output is invalid and collapses onto the border.
    far = torch.tensor([[[100.0, 100.0, 120.0, 120.0]]]).expand(3, 1, 4)
    res_far = pipe.transform_targets(params, boxes=far)
    assert not res_far["boxes_valid"].any()
    assert ((res_far["boxes"] >= 0) & (res_far["boxes"] <= 20)).all()


def test_mask_dtypes_and_fill():
    pipe = da.Compose([da.RandomRotation((30, 30))])
    labels = torch.randint(0, 5, (2, 16, 16))
    out = pipe(torch.rand(2, 1, 16, 16), masks=labels, mask_fill=255)["masks"]
    assert out.dtype == torch.long
    assert set(out.unique().tolist()) <= {0, 1, 2, 3, 4, 255}
    assert (out == 255).any()  # the rotated corners show the fill
    boolean = labels > 2
    assert pipe(torch.rand(2, 1, 16, 16), masks=boolean)["masks"].dtype == torch.bool
    soft = torch.rand(2, 3, 16, 16)
    out_soft = pipe(torch.rand(2, 1, 16, 16), masks=soft)["masks"]
    assert out_soft.dtype == torch.float32 and out_soft.shape == soft.shape
    inner = out_soft[..., 4:12, 4:12]
    assert ((inner > 0) & (inner < 1)).all()  # bilinear: values between, not labels
    uint8 = (labels * 40).to(torch.uint8)
    assert set(pipe(torch.rand(2, 1, 16, 16), masks=uint8)["masks"].unique().tolist()) <= {0, 40, 80, 120, 160}


@pytest.mark.parametrize("fmt", ["XYWH", "CXCYWH"])
def test_box_formats_match_xyxy(fmt):
    pipe = da.Compose([da.RandomAffine(20, scale=(0.8, 1.2)), da.RandomHorizontalFlip()])
    params = pipe.make_params(torch.rand(2, 1, 32, 32), generator=torch.Generator().manual_seed(1))
    boxes = torch.tensor([[[2.0, 3.0, 20.0, 15.0]], [[5.0, 5.0, 9.0, 30.0]]])
    xyxy = pipe.transform_targets(params, boxes=boxes)["boxes"]
    given = F.convert_bounding_box_format(boxes, old_format="XYXY", new_format=fmt)
    out = pipe.transform_targets(params, boxes=given, box_format=fmt)["boxes"]
    assert torch.allclose(F.convert_bounding_box_format(out, old_format=fmt, new_format="XYXY"), xyxy, atol=1e-5)


@pytest.mark.parametrize("fmt", ["XYXY", "XYWH", "CXCYWH", "XYWHR", "CXCYWHR", "XYXYXYXY"])
def test_tv_boxes_flip_like_torchvision(fmt):
    canvas = (20, 30)
    data = {
        "XYXY": [[2.0, 3.0, 12.0, 9.0]],
        "XYWH": [[2.0, 3.0, 10.0, 6.0]],
        "CXCYWH": [[7.0, 6.0, 10.0, 6.0]],
        "XYWHR": [[6.0, 8.0, 8.0, 4.0, 30.0]],
        "CXCYWHR": [[12.0, 10.0, 8.0, 4.0, -20.0]],
        "XYXYXYXY": [[6.0, 8.0, 12.0, 5.0, 14.0, 9.0, 8.0, 12.0]],
    }[fmt]
    boxes = tv_tensors.BoundingBoxes(data, format=fmt, canvas_size=canvas, clamping_mode=None)
    image = tv_tensors.Image(torch.rand(3, *canvas))
    out_image, out_boxes = da.Compose([da.RandomHorizontalFlip(p=1.0)])(image, boxes)
    assert isinstance(out_image, tv_tensors.Image) and isinstance(out_boxes, tv_tensors.BoundingBoxes)
    assert out_boxes.format == boxes.format and out_boxes.canvas_size == canvas
    expected = F.horizontal_flip(boxes)
    assert same_polygons(out_boxes, expected)


def same_polygons(a: tv_tensors.BoundingBoxes, b: tv_tensors.BoundingBoxes, atol: float = 1e-3) -> bool:
    """The same box shapes, whatever corner a rotated format starts from."""
    if not tv_tensors.is_rotated_bounding_format(a.format):
        return torch.allclose(a.as_subclass(torch.Tensor), b.as_subclass(torch.Tensor), atol=atol)
    pa = F.convert_bounding_box_format(a, new_format="XYXYXYXY").as_subclass(torch.Tensor).view(-1, 4, 2)
    pb = F.convert_bounding_box_format(b, new_format="XYXYXYXY").as_subclass(torch.Tensor).view(-1, 4, 2)
    distance = torch.cdist(pa, pb)
    return bool((distance.amin(-1) < atol).all() and (distance.amin(-2) < atol).all())


def test_tv_rotated_boxes_follow_torchvision_affine():
    canvas = (24, 32)
    boxes = tv_tensors.BoundingBoxes(
        [[6.0, 8.0, 12.0, 5.0, 14.0, 9.0, 8.0, 12.0]], format="XYXYXYXY", canvas_size=canvas, clamping_mode=None
    )
    # No shear: torchvision turns a sheared rotated box back into a rectangle, diffaug keeps the parallelogram.
    angle, translate, scale, shear = 25.0, [1.5, -2.0], 1.1, [0.0, 0.0]
    expected = F.affine(boxes, angle=angle, translate=translate, scale=scale, shear=shear)
    theta = da.transforms.geometric.affine_matrix(
        torch.tensor([angle]),
        torch.tensor([translate]),
        torch.tensor([scale]),
        torch.tensor([shear]),
        torch.tensor([[16.0, 12.0]]),
        canvas,
    )[0, :2]
    out = T.transform_tv(boxes, theta, canvas, canvas)
    assert same_polygons(out, expected)


def test_tv_keypoints_masks_and_resized_canvas():
    canvas = (20, 30)
    image = tv_tensors.Image(torch.rand(3, *canvas))
    points = tv_tensors.KeyPoints([[3.0, 4.0], [10.0, 12.0]], canvas_size=canvas)
    mask = tv_tensors.Mask(torch.randint(0, 3, canvas))
    out = da.Compose([da.RandomHorizontalFlip(p=1.0)])(image, points, mask)
    assert torch.allclose(out[1].as_subclass(torch.Tensor), F.horizontal_flip(points).as_subclass(torch.Tensor))
    assert torch.equal(out[2].as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).flip(-1))
    resized = da.Compose([da.Resize((10, 15))])(image, points, mask)
    assert resized[0].shape[-2:] == (10, 15)
    assert resized[1].canvas_size == (10, 15) and isinstance(resized[2], tv_tensors.Mask) and resized[2].shape == (10, 15)


def test_tv_batch_takes_a_list_per_image():
    canvas = (16, 16)
    images = torch.rand(2, 3, *canvas)
    per_image = [
        tv_tensors.BoundingBoxes([[1.0, 1.0, 5.0, 5.0], [2.0, 2.0, 9.0, 6.0]], format="XYWH", canvas_size=canvas),
        tv_tensors.BoundingBoxes([[3.0, 3.0, 4.0, 4.0]], format="XYWH", canvas_size=canvas),
    ]
    pipe = da.Compose([da.RandomHorizontalFlip(p=1.0), da.Resize(8)])
    out_images, out_boxes = pipe(images, per_image)
    assert out_images.shape == (2, 3, 8, 8)
    assert [len(b) for b in out_boxes] == [2, 1] and all(b.canvas_size == (8, 8) for b in out_boxes)
    expected = F.resize(F.horizontal_flip(per_image[0]), [8])
    assert torch.allclose(out_boxes[0].as_subclass(torch.Tensor), expected.as_subclass(torch.Tensor), atol=1e-4)
    with pytest.raises(TypeError, match="list"):
        pipe(images, per_image[0])
    # Rotated boxes, per-image masks (with and without an instance axis) and keypoints, batched.
    rotated = [
        tv_tensors.BoundingBoxes([[8.0, 8.0, 6.0, 3.0, 30.0]], format="CXCYWHR", canvas_size=canvas, clamping_mode=None)
    ] * 2
    flat_masks = [tv_tensors.Mask(torch.randint(0, 3, canvas)) for _ in range(2)]
    stacked_masks = [tv_tensors.Mask(torch.randint(0, 3, (n, *canvas))) for n in (1, 3)]
    points = [
        tv_tensors.KeyPoints([[2.0, 3.0]], canvas_size=canvas),
        tv_tensors.KeyPoints([[4.0, 5.0], [6.0, 7.0]], canvas_size=canvas),
    ]
    flip = da.Compose([da.RandomHorizontalFlip(p=1.0)])
    _, out_rot, out_flat, out_stacked, out_points = flip(images, rotated, flat_masks, stacked_masks, points)
    assert same_polygons(out_rot[1], F.horizontal_flip(rotated[1]))
    assert [m.shape for m in out_flat] == [canvas, canvas]
    assert torch.equal(out_flat[1].as_subclass(torch.Tensor), flat_masks[1].as_subclass(torch.Tensor).flip(-1))
    assert [m.shape[0] for m in out_stacked] == [1, 3]
    assert torch.equal(out_stacked[1].as_subclass(torch.Tensor), stacked_masks[1].as_subclass(torch.Tensor).flip(-1))
    assert torch.allclose(out_points[1].as_subclass(torch.Tensor), F.horizontal_flip(points[1]).as_subclass(torch.Tensor))


def test_bad_targets_raise():
    pipe = da.Compose([da.RandomHorizontalFlip()])
    images = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="masks"):
        pipe(images, masks=torch.zeros(2, 9, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="box_format"):
        pipe(images, boxes=torch.zeros(2, 1, 4), box_format="YXYX")
    with pytest.raises(ValueError, match="boxes"):
        pipe(images, boxes=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="boxes"):
        pipe(images, boxes=torch.zeros(2, 1, 5))
    with pytest.raises(TypeError, match="floating"):
        pipe(images, boxes=torch.zeros(2, 1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="visible"):
        pipe(images, keypoints=torch.zeros(2, 3, 2), visible=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="unexpected keyword"):
        pipe(images, polygons=torch.zeros(2, 3, 2))
    with pytest.raises(TypeError, match="BoundingBoxes"):
        pipe(images[0], torch.zeros(1, 4))
    with pytest.raises(ValueError, match="not both"):
        pipe(images[0], tv_tensors.Mask(torch.zeros(8, 8)), boxes=torch.zeros(1, 4))


def test_gradcheck_of_boxes_and_keypoints_in_theta():
    theta = torch.tensor([[[0.8, 0.3, 0.1], [-0.2, 0.9, -0.05]]], dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[[2.0, 3.0, 9.0, 7.0]]], dtype=torch.float64, requires_grad=True)
    points = torch.tensor([[[2.5, 3.5], [6.0, 1.0]]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda b, t: T.transform_boxes(b, t, (10, 12), (8, 9), clip=False)[0], (boxes, theta))
    assert torch.autograd.gradcheck(lambda p, t: T.transform_keypoints(p, t, (10, 12), (8, 9))[0], (points, theta))


def test_second_order_gradients_of_boxes_and_keypoints():
    """R1-style penalties differentiate twice: boxes (the clip included, away from its kinks) and keypoints."""
    theta = torch.tensor([[[0.8, 0.3, 0.1], [-0.2, 0.9, -0.05]]], dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[[2.0, 3.0, 6.0, 5.0]]], dtype=torch.float64, requires_grad=True)
    points = torch.tensor([[[2.5, 3.5], [6.0, 1.0]]], dtype=torch.float64, requires_grad=True)
    for clip in (False, True):
        assert torch.autograd.gradgradcheck(
            lambda b, t, c=clip: T.transform_boxes(b, t, (10, 12), (8, 9), clip=c)[0], (boxes, theta)
        )
    assert torch.autograd.gradgradcheck(lambda p, t: T.transform_keypoints(p, t, (10, 12), (8, 9))[0], (points, theta))


# ---------------------------------------------------------------- one call convention for every transform
SINGLE_STEPS = {
    "flip": lambda: da.RandomHorizontalFlip(),
    "rrc": lambda: da.RandomResizedCrop(20, scale=(0.3, 1.0)),
    "affine": lambda: da.RandomAffine(20, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=5, interpolation="bilinear"),
    "rotation": lambda: da.RandomRotation(30),
    "resize": lambda: da.Resize((20, 28)),
    "centercrop": lambda: da.CenterCrop(18),
    "randomcrop": lambda: da.RandomCrop(20, padding=2),
}


@pytest.mark.parametrize("name", list(SINGLE_STEPS))
def test_a_single_transform_moves_targets_as_a_one_step_pipeline(name):
    step = SINGLE_STEPS[name]()
    generator = torch.Generator().manual_seed(4)
    images = torch.rand(3, 1, 24, 32, generator=generator)
    boxes = random_boxes(generator)[:3] * 0.5
    labels = torch.randint(0, 4, (3, 24, 32), generator=generator)
    points = torch.rand(3, 5, 2, generator=generator) * torch.tensor([32.0, 24.0])
    targets = dict(boxes=boxes, masks=labels, keypoints=points)
    alone = step(images, generator=torch.Generator().manual_seed(9), **targets)
    piped = da.Compose([step])(images, generator=torch.Generator().manual_seed(9), **targets)
    assert sorted(alone) == sorted(piped) == ["boxes", "boxes_valid", "images", "keypoints", "keypoints_visible", "masks"]
    for key in alone:
        torch.testing.assert_close(alone[key], piped[key], rtol=0, atol=1e-5)
    params = step.make_params(images, generator=torch.Generator().manual_seed(9))
    moved = transform_targets(params, keypoints=points)["keypoints"]
    torch.testing.assert_close(moved, alone["keypoints"], rtol=0, atol=0)
    torch.testing.assert_close(inverse({"keypoints": moved}, params)["keypoints"], points, rtol=0, atol=1e-3)


def test_single_transforms_move_tv_tensors_like_torchvision():
    import torchvision.transforms.v2 as v2

    canvas = (20, 30)
    image = tv_tensors.Image(torch.rand(3, *canvas))
    boxes = tv_tensors.BoundingBoxes([[3.0, 4.0, 10.0, 12.0], [0.0, 5.0, 30.0, 7.0]], format="XYWH", canvas_size=canvas)
    mask = tv_tensors.Mask(torch.randint(0, 3, canvas))
    points = tv_tensors.KeyPoints([[3.0, 4.0], [10.0, 12.0]], canvas_size=canvas)
    ours = da.RandomHorizontalFlip(p=1.0)(image, boxes, mask, points)
    theirs = v2.RandomHorizontalFlip(p=1.0)(image, boxes, mask, points)
    assert [type(t) for t in ours] == [type(t) for t in theirs]
    for a, b in zip(ours[1:], theirs[1:], strict=True):
        torch.testing.assert_close(a.as_subclass(torch.Tensor), b.as_subclass(torch.Tensor), rtol=0, atol=1e-4)
    # Boxes only: torchvision resizes KeyPoints as continuous coordinates (x * scale) but flips them as
    # pixel indices (W - 1 - x); diffaug follows the flips' convention, so its resized points differ by half a pixel.
    resized = da.Resize((10, 15))(image, boxes)
    reference = v2.Resize((10, 15))(image, boxes)
    assert resized[1].canvas_size == reference[1].canvas_size == (10, 15)
    torch.testing.assert_close(resized[1].as_subclass(torch.Tensor), reference[1].as_subclass(torch.Tensor), rtol=0, atol=1e-4)


CALLABLES = {
    "transform": lambda: da.RandomAffine(10, interpolation="bilinear"),
    "pipeline": lambda: da.Compose([da.RandomResizedCrop(8), da.ColorJitter(0.3), da.RandomHorizontalFlip()]),
    "colour": lambda: da.ColorJitter(0.4, 0.4),
}


@pytest.mark.parametrize("name", list(CALLABLES))
def test_each_call_form_returns_its_one_documented_type(name):
    module = CALLABLES[name]()
    images = torch.rand(2, 3, 16, 16)
    plain = module(images)
    assert type(plain) is torch.Tensor and plain.shape[:2] == (2, 3)
    image = tv_tensors.Image(images[0])
    assert type(module(image)) is tv_tensors.Image
    boxes = tv_tensors.BoundingBoxes([[1.0, 1.0, 9.0, 9.0]], format="XYXY", canvas_size=(16, 16))
    as_tuple = module(image, boxes, tv_tensors.Mask(torch.zeros(16, 16, dtype=torch.long)))
    assert type(as_tuple) is tuple and [type(t) for t in as_tuple] == [
        tv_tensors.Image,
        tv_tensors.BoundingBoxes,
        tv_tensors.Mask,
    ]
    as_dict = module(images, boxes=torch.zeros(2, 1, 4) + torch.tensor([1.0, 1.0, 9.0, 9.0]), mask_fill=255)
    assert type(as_dict) is dict and sorted(as_dict) == ["boxes", "boxes_valid", "images"]
    none_given = module(images, boxes=None, masks=None)  # the type follows the call form, not the values
    assert type(none_given) is dict and sorted(none_given) == ["images"]
    with pytest.raises(TypeError, match="'labels'.*boxes="):
        module(images, labels=torch.zeros(2))
    with pytest.raises(ValueError, match="not both"):
        module(image, boxes, boxes=torch.zeros(1, 4))


def test_colour_transforms_leave_targets_unchanged():
    jitter = da.ColorJitter(0.5, 0.5, 0.5)
    images = torch.rand(2, 3, 16, 16)
    boxes = torch.tensor([[[1.0, 2.0, 30.0, 9.0], [0.0, 0.0, 0.0, 0.0]]]).expand(2, 2, 4)
    box_mask = torch.tensor([[True, False], [True, True]])
    points = torch.tensor([[[-3.0, 4.0]], [[5.0, 6.0]]])
    labels = torch.randint(0, 3, (2, 16, 16))
    out = jitter(images, boxes=boxes, box_mask=box_mask, keypoints=points, masks=labels)
    assert out["boxes"] is boxes and out["masks"] is labels and out["keypoints"] is points
    assert torch.equal(out["boxes_valid"], box_mask) and out["keypoints_visible"].all()
    assert not torch.equal(out["images"], images)
    params = jitter.make_params(images)
    assert inverse(out, params)["boxes"] is boxes  # nothing moved: nothing to undo
    image = tv_tensors.Image(images[0])
    tv_boxes = tv_tensors.BoundingBoxes([[1.0, 2.0, 8.0, 9.0]], format="CXCYWH", canvas_size=(16, 16))
    assert jitter(image, tv_boxes)[1] is tv_boxes


def test_box_crop_inside_compose_takes_crop_boxes():
    images = torch.rand(2, 3, 32, 32)
    crop_boxes = torch.tensor([[4.0, 8.0, 20.0, 24.0], [0.5, 1.5, 30.0, 12.0]])
    pipe = da.Compose([da.BoxCrop(8), da.RandomHorizontalFlip(p=1.0)])
    fused = pipe(images, crop_boxes=crop_boxes)
    torch.testing.assert_close(fused, da.BoxCrop(8)(images, crop_boxes).flip(-1), rtol=0, atol=1e-5)
    # Targets follow the crop: a point inside a box lands where the box's frame puts it, then flipped.
    points = torch.tensor([[[12.0, 16.0]], [[15.25, 6.75]]])
    out = pipe(images, crop_boxes=crop_boxes, keypoints=points)
    width, height = crop_boxes[:, 2] - crop_boxes[:, 0], crop_boxes[:, 3] - crop_boxes[:, 1]
    x = (points[:, 0, 0] - crop_boxes[:, 0]) * 8 / width
    y = (points[:, 0, 1] - crop_boxes[:, 1]) * 8 / height
    torch.testing.assert_close(out["keypoints"][:, 0], torch.stack([8 - x, y], -1), rtol=0, atol=1e-4)
    one = pipe(images[1], crop_boxes=crop_boxes[1])
    torch.testing.assert_close(one, fused[1], rtol=0, atol=1e-6)
    with pytest.raises(TypeError, match="crop_boxes"):
        pipe(images)
    with pytest.raises(ValueError, match="crop_boxes"):
        da.Compose([da.RandomHorizontalFlip()])(images, crop_boxes=crop_boxes)
    compiled = torch.compile(pipe, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(images, crop_boxes=crop_boxes), fused, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(CALLABLES))
def test_the_keyword_call_compiles_to_one_graph_and_reads_no_value_on_the_host(name):
    from tests.test_no_sync import no_host_sync

    module = CALLABLES[name]()
    images = torch.rand(2, 3, 16, 16)
    targets = dict(
        boxes=torch.tensor([[[1.0, 2.0, 9.0, 12.0]]]).expand(2, 1, 4),
        keypoints=torch.rand(2, 3, 2) * 16,
        masks=torch.randint(0, 3, (2, 16, 16)),
    )
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    torch.manual_seed(0)
    got = compiled(images, **targets)
    torch.manual_seed(0)
    expected = module(images, **targets)
    assert sorted(got) == sorted(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    meta = {key: value.to("meta") for key, value in targets.items()}
    for device, inputs, batch in (("cpu", targets, images), ("meta", meta, images.to("meta"))):
        with no_host_sync(device):
            out = module.to(device)(batch, **inputs)
        assert out["boxes"].device.type == device
