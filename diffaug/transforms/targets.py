"""Targets: one call convention for every transform and pipeline, and the way back.

Every diffaug transform and :class:`~diffaug.Compose` is called the same way:

* ``t(images)`` -> images (a torchvision ``tv_tensors.Image`` stays one);
* ``t(images, *tv_targets)`` with torchvision ``tv_tensors`` (``BoundingBoxes`` in any
  format, ``KeyPoints``, ``Mask``; for a batch, a list with one per image) -> a tuple
  ``(images, *targets)`` of the same types, with the new ``canvas_size``;
* ``t(images, boxes=..., masks=..., keypoints=...)`` (the keywords of :class:`Targets`) -> a
  dict with ``"images"``, each target given, and ``"boxes_valid"`` / ``"keypoints_visible"``
  when boxes / keypoints were given. Any target keyword makes it a dict, even one that is
  ``None`` (``t(images, boxes=None)`` -> ``{"images": ...}``), so the type follows the call.

Targets move through the params the images were transformed with: a pipeline's ``matrix``
``(B, 3, 3)`` (the product of its geometric steps), else a transform's ``theta`` ``(B, 2, 3)``.
Params with neither (a colour or other pixel transform) move nothing: targets come back
unchanged, ``boxes_valid`` is ``box_mask`` (all true without one) and ``keypoints_visible`` is
``visible`` (all true without one). :func:`inverse` maps outputs back to the input frame.
The tensor functions underneath are :mod:`diffaug.functional.targets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffaug import functional as daf
from diffaug.functional import _checks
from diffaug.functional import targets as _targets

__all__ = ["Targets", "call", "motion", "transform_targets", "inverse"]


@dataclasses.dataclass
class Targets:
    """The target keywords every transform's call, ``transform_targets`` and ``inverse`` take.

    Attributes:
        boxes: pixel boxes ``(B, N, 4)`` (padded; ``box_mask`` ``(B, N)`` marks the real ones),
            ``(K, 4)`` with ``box_batch_index`` ``(K,)``, or ``(N, 4)`` for one image, in
            ``box_format`` ``"XYXY"`` (default), ``"XYWH"`` or ``"CXCYWH"``.
        masks: ``(B, H, W)``, ``(B, N, H, W)`` (or ``(H, W)``, ``(N, H, W)`` for one image):
            integer / bool masks resampled with nearest (exact labels), float masks bilinearly;
            ``mask_fill`` shows outside the input (e.g. an ignore index).
        keypoints: ``(B, N, 2)`` continuous pixel ``(x, y)`` (or ``(K, 2)`` with
            ``keypoint_batch_index``); ``visible`` a bool mask of the same leading shape.

    Examples:
        >>> import torch, diffaug as da
        >>> flip = da.RandomHorizontalFlip(p=1.0)
        >>> out = flip(torch.rand(1, 3, 4, 8), boxes=torch.tensor([[[0.0, 0.0, 2.0, 4.0]]]))
        >>> sorted(out), out["boxes"].tolist()
        (['boxes', 'boxes_valid', 'images'], [[[6.0, 0.0, 8.0, 4.0]]])
    """

    boxes: Tensor | None = None
    box_mask: Tensor | None = None
    box_batch_index: Tensor | None = None
    box_format: str = "XYXY"
    masks: Tensor | None = None
    mask_fill: float = 0
    keypoints: Tensor | None = None
    visible: Tensor | None = None
    keypoint_batch_index: Tensor | None = None

    @classmethod
    def from_keywords(cls, keywords: dict[str, Any]) -> Targets:
        """The keywords of a call, refusing unknown ones by name."""
        unknown = sorted(set(keywords) - _KEYWORDS)
        if unknown:
            raise TypeError(
                f"unexpected keyword argument {', '.join(map(repr, unknown))}; targets are given as "
                f"{', '.join(f.name + '=' for f in dataclasses.fields(cls))}"
            )
        return cls(**keywords)

    @property
    def given(self) -> bool:
        """Whether any target (boxes, masks or keypoints) is given."""
        return self.boxes is not None or self.masks is not None or self.keypoints is not None


_KEYWORDS = frozenset(f.name for f in dataclasses.fields(Targets))


def motion(params: object) -> Tensor | None:
    """The ``theta`` ``(B, 2, 3)`` that moves targets: a pipeline's ``matrix``, else a transform's ``theta``, else ``None``.

    Examples:
        >>> import torch, diffaug as da
        >>> motion(da.RandomVerticalFlip(p=1.0).make_params(torch.rand(1, 3, 4, 4)))
        tensor([[[ 1.,  0.,  0.],
                 [ 0., -1.,  0.]]])
    """
    matrix = getattr(params, "matrix", None)
    if isinstance(matrix, Tensor):
        return daf.to_theta(matrix)
    theta = getattr(params, "theta", None)
    return theta if isinstance(theta, Tensor) else None


def _frame(params: Any, inverse: bool, batched: bool) -> tuple[Tensor | None, tuple[int, int], tuple[int, int]]:
    """``(theta, source size, destination size)`` of the move, ``theta`` ``None`` when nothing moves."""
    theta = motion(params)
    if theta is None:
        return None, (0, 0), (0, 0)
    if getattr(params, "batch_index", None) is not None:
        raise ValueError(
            "targets of params with a batch_index (multi-view, BoxCrop with batch_index) go through "
            "diffaug.functional.targets with the params' theta or matrix"
        )
    if inverse:
        theta = _targets.inverse_theta(theta)
    in_size, size = tuple(params.in_size), tuple(params.size)
    src, dst = (size, in_size) if inverse else (in_size, size)
    return (theta if batched else theta[0]), src, dst  # type: ignore[return-value]


def _is_batched(params: object, images: Tensor | None = None) -> bool:
    """Whether params belong to a batch: a pipeline records it; a transform's params follow the images given."""
    batched = getattr(params, "batched", None)
    if batched is not None:
        return bool(batched)
    return images is None or images.ndim == 4


def transform_targets(params: Any, *, inverse: bool = False, batched: bool | None = None, **targets: Any) -> dict[str, Tensor]:
    """Move targets with the params the images were transformed with (see :class:`Targets`).

    Args:
        params: a transform's or a pipeline's params (from ``make_params``).
        inverse: map from the output frame back to the input frame.
        batched: whether the params were drawn for a batch ``(B, C, H, W)``; by default a
            pipeline's ``params.batched``, else ``True``.
        targets: the keywords of :class:`Targets`.

    Returns:
        a dict with the targets given (``"boxes"``, ``"masks"``, ``"keypoints"``) plus
        ``"boxes_valid"`` (the box keeps a positive area on the canvas and is real) and
        ``"keypoints_visible"`` (visible and on the canvas).

    Raises:
        TypeError: an unknown keyword.
        ValueError: malformed or non-finite targets; params with a ``batch_index``.

    Examples:
        >>> import torch, diffaug as da
        >>> resize = da.Resize((4, 4))
        >>> params = resize.make_params(torch.rand(2, 3, 8, 8))
        >>> transform_targets(params, keypoints=torch.tensor([[[2.0, 6.0]], [[8.0, 0.0]]]))["keypoints"].tolist()
        [[[1.0, 3.0]], [[4.0, 0.0]]]
    """
    spec = Targets.from_keywords(targets)
    return _move(params, spec, inverse, _is_batched(params) if batched is None else batched)


def _move(params: Any, spec: Targets, inverse: bool, batched: bool) -> dict[str, Tensor]:
    theta, src, dst = _frame(params, inverse, batched)
    out: dict[str, Tensor] = {}
    if spec.boxes is not None:
        if theta is None:
            _checks.check_boxes(spec.boxes)
            out["boxes"], out["boxes_valid"] = spec.boxes, _flags(spec.box_mask, spec.boxes)
        else:
            out["boxes"], out["boxes_valid"] = _targets.transform_boxes(
                spec.boxes, theta, src, dst, box_mask=spec.box_mask, batch_index=spec.box_batch_index, box_format=spec.box_format
            )
    if spec.masks is not None:
        out["masks"] = spec.masks if theta is None else _targets.transform_masks(spec.masks, theta, src, dst, fill=spec.mask_fill)
    if spec.keypoints is not None:
        if theta is None:
            out["keypoints"], out["keypoints_visible"] = spec.keypoints, _flags(spec.visible, spec.keypoints)
        else:
            out["keypoints"], out["keypoints_visible"] = _targets.transform_keypoints(
                spec.keypoints, theta, src, dst, visible=spec.visible, batch_index=spec.keypoint_batch_index
            )
    return out


def _flags(given: Tensor | None, target: Tensor) -> Tensor:
    """Validity of targets that did not move: the mask given, else all true."""
    if given is None:
        return torch.ones(target.shape[:-1], dtype=torch.bool, device=target.device)
    if not isinstance(given, Tensor) or given.shape != target.shape[:-1]:
        raise ValueError(f"box_mask / visible must be a bool tensor of shape {tuple(target.shape[:-1])}, got {given!r}")
    return given.to(torch.bool)


def call(module: nn.Module, images: Tensor, tv_targets: Sequence[Any], targets: dict[str, Any], **inputs: Any) -> Any:
    """A transform's forward in every call form: ``make_params(images, **inputs)``, ``transform``, the targets moved.

    ``module`` needs ``make_params(images, **inputs)`` and ``transform(images, params)``; its
    params move targets as :func:`motion` says.

    Examples:
        >>> import torch, diffaug as da
        >>> flip = da.RandomHorizontalFlip(p=1.0)
        >>> call(flip, torch.rand(2, 3, 4, 4), (), {}, generator=None).shape
        torch.Size([2, 3, 4, 4])
    """
    if not tv_targets and not targets and type(images) is Tensor:
        return module.transform(images, module.make_params(images, **inputs))  # type: ignore[operator]
    spec = Targets.from_keywords(targets)
    if tv_targets and spec.given:
        raise ValueError(
            "give targets either as tv_tensors after the images or as keywords (boxes=, masks=, keypoints=), not both"
        )
    plain = as_plain(images)
    params = module.make_params(plain, **inputs)  # type: ignore[operator]
    out = wrap_like(module.transform(plain, params), images)  # type: ignore[operator]
    batched = plain.ndim == 4
    if tv_targets:
        return (out, *_move_tv(params, tv_targets, False, batched))
    if not targets:
        return out  # a tv_tensors.Image alone
    return {"images": out, **_move(params, spec, False, batched)}  # any target keyword, even None: a dict


def inverse(outputs: Any, params: Any, mode: str = "bilinear") -> Any:
    """Map outputs of a transform or pipeline back to the input frame (test-time augmentation, predictions).

    Args:
        outputs: images or predictions ``(B, C, h, w)`` in the output frame; or the dict a call
            with target keywords returned (keys ``images``, ``masks``, ``boxes``, ``keypoints``,
            with ``boxes_valid`` / ``keypoints_visible`` carried along); or the tuple of
            torchvision ``tv_tensors`` it returned.
        params: the params the outputs were made with.
        mode: interpolation for images and float masks.

    Returns:
        the same structure on the input canvas ``params.in_size``. Content that was cropped
        away comes back as zeros; only geometry is inverted (params that move nothing give the
        outputs back as they are).

    Examples:
        >>> import torch, diffaug as da
        >>> flip = da.RandomHorizontalFlip(p=1.0)
        >>> images = torch.rand(2, 3, 8, 8)
        >>> params = flip.make_params(images)
        >>> torch.equal(inverse(flip.transform(images, params), params), images)
        True
    """
    if isinstance(outputs, Tensor) and not _is_tv_target(outputs):
        return _inverse_images(outputs, params, mode)
    if isinstance(outputs, dict):
        unknown = set(outputs) - _OUTPUT_KEYS
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} in outputs; expected some of {sorted(_OUTPUT_KEYS)}")
        images = outputs.get("images")
        spec = Targets(
            boxes=outputs.get("boxes"),
            box_mask=outputs.get("boxes_valid"),
            masks=outputs.get("masks"),
            keypoints=outputs.get("keypoints"),
            visible=outputs.get("keypoints_visible"),
        )
        back = _move(params, spec, True, _is_batched(params, images))
        if images is not None:
            back["images"] = _inverse_images(images, params, mode)
        return back
    if isinstance(outputs, (tuple, list)) and outputs:
        first = outputs[0]
        return (_inverse_images(first, params, mode), *_move_tv(params, outputs[1:], True, _is_batched(params, first)))
    raise TypeError(f"outputs must be a tensor, a dict or a tuple as the call returned them, got {type(outputs).__name__}")


_OUTPUT_KEYS = frozenset({"images", "boxes", "boxes_valid", "masks", "keypoints", "keypoints_visible"})


def _inverse_images(images: Tensor, params: Any, mode: str) -> Tensor:
    theta, _, dst = _frame(params, True, _is_batched(params, images))
    if theta is None:
        return images
    return wrap_like(daf.warp(as_plain(images), theta, dst, mode=mode), images)


# ------------------------------------------------------------------ torchvision tv_tensors
def _move_tv(params: Any, targets: Sequence[Any], inverse: bool, batched: bool) -> list[Any]:
    theta, src, dst = _frame(params, inverse, batched)
    return [_tv_target(target, theta, src, dst, batched, index) for index, target in enumerate(targets)]


def as_plain(tensor: Tensor) -> Tensor:
    return tensor.as_subclass(Tensor) if type(tensor) is not Tensor and isinstance(tensor, Tensor) else tensor


def wrap_like(out: Tensor, like: Tensor) -> Tensor:
    if type(like) is Tensor or not type(like).__module__.startswith("torchvision."):
        return out
    from torchvision import tv_tensors

    return tv_tensors.wrap(out, like=like)  # type: ignore[arg-type]


def _is_tv_target(value: object) -> bool:
    if not type(value).__module__.startswith("torchvision."):
        return False
    from torchvision import tv_tensors

    return isinstance(value, (tv_tensors.BoundingBoxes, tv_tensors.KeyPoints, tv_tensors.Mask))


def _tv_target(target: Any, theta: Tensor | None, src: tuple[int, int], dst: tuple[int, int], batched: bool, index: int) -> Any:
    """One positional tv_tensor target (or, for a batch, a list with one per image); unchanged when ``theta`` is ``None``."""
    from torchvision import tv_tensors

    if not batched:
        if not _is_tv_target(target):
            raise TypeError(f"target {index} must be a torchvision BoundingBoxes, KeyPoints or Mask, got {type(target).__name__}")
        return target if theta is None else _targets.transform_tv(target, theta, src, dst)
    if isinstance(target, tv_tensors.Mask):
        return target if theta is None else _targets.transform_tv(target, theta, src, dst)  # (B, ...): one row per image
    count = len(target) if theta is None or not isinstance(target, (list, tuple)) else theta.shape[0]
    if not isinstance(target, (list, tuple)) or len(target) != count or not all(_is_tv_target(t) for t in target):
        raise TypeError(
            f"target {index}: for a batch of {count} images give a list with one BoundingBoxes / KeyPoints / Mask per "
            f"image, got {type(target).__name__}"
        )
    if theta is None:
        return target
    kinds = {type(t) for t in target}
    formats = {getattr(t, "format", None) for t in target}
    if len(kinds) != 1 or len(formats) != 1:
        raise ValueError(f"target {index}: the per-image list must hold one kind of tv_tensor in one format")
    if isinstance(target[0], tv_tensors.Mask) and all(t.ndim == 2 for t in target):
        stacked = tv_tensors.wrap(torch.stack([t.as_subclass(Tensor) for t in target]), like=target[0])
        moved_masks = _targets.transform_tv(stacked, theta, src, dst)
        return [tv_tensors.wrap(part, like=target[0]) for part in moved_masks.as_subclass(Tensor).unbind(0)]
    # One batched call for the whole list: concatenate rows, name each row's image, split back.
    counts = [int(t.shape[0]) for t in target]
    rows = torch.cat([t.as_subclass(Tensor) for t in target])
    batch_index = torch.repeat_interleave(torch.arange(len(target), device=rows.device), torch.tensor(counts, device=rows.device))
    joined = tv_tensors.wrap(rows, like=target[0])
    moved = _targets.transform_tv(joined, theta, src, dst, batch_index=batch_index)
    return [tv_tensors.wrap(part, like=moved) for part in moved.as_subclass(Tensor).split(counts)]
