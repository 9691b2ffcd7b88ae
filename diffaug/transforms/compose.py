"""Compose: a pipeline that multiplies consecutive geometric transforms into one warp.

The protocol Compose relies on, and nothing else:

* a *replayable* step has ``make_params(images, generator=None)`` and ``transform(images,
  params)`` (torchvision's own transforms, which use other signatures, are not replayable);
* a replayable step is *geometric* when its params carry a ``theta`` ``(B, 2, 3)`` (output
  normalised -> input normalised) with ``size`` and ``in_size``; it does not resample itself
  inside a pipeline: consecutive geometric steps are fused into ONE matrix per sample,
  ``M = M_1 @ M_2 @ ... @ M_n`` (3x3, see :mod:`diffaug.functional.geometry`) and ONE warp;
* any other step (params without ``theta``, e.g. a colour transform, or a plain module called
  as ``step(images)``) ends a run of fusion and must keep the images' size.

A pipeline's own params (:class:`ComposeParams`) carry a ``theta`` when every step is geometric,
so a Compose nested in another fuses with its neighbours.

Because a fused run resamples the *input* once, a later step sees the input's content where an
earlier step would have shown padding (e.g. a rotation after a crop shows the image around the
crop, not black corners): the result equals the sequential one wherever the sequential
pipeline did not sample outside an intermediate canvas, and is sharper (one interpolation
instead of one per step).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffaug import functional as daf
from diffaug.functional import _checks
from diffaug.functional import targets as _targets
from diffaug.transforms.base import interpolation_name, padding_name, param_dtype

__all__ = ["Compose", "ComposeParams", "is_geometric"]


@dataclasses.dataclass
class ComposeParams:
    """Params of a whole pipeline; replaying them replays every step.

    Attributes:
        steps: one entry per step: its params, or ``None`` for a plain (non-replayable) module.
        in_size: input ``(H, W)``.
        size: output ``(h, w)``.
        matrix: ``(B, 3, 3)`` product of every geometric step's matrix (output normalised ->
            input normalised): what targets and :meth:`Compose.inverse` go through.
        theta: ``matrix[:, :2]`` when every step is geometric (the pipeline then fuses into an
            outer one), else ``None``.
        batched: whether the params were drawn for a batch ``(B, C, H, W)`` (else one image).
        batch_index: ``(K,)``: output ``k`` shows image ``batch_index[k]`` (multi-crop), or ``None``.

    Example:
        >>> import torch, diffaug as da
        >>> pipe = da.Compose([da.RandomHorizontalFlip(p=1.0), da.Resize((4, 6))])
        >>> params = pipe.make_params(torch.rand(2, 3, 8, 12))
        >>> params.in_size, params.size, params.theta[0]
        ((8, 12), (4, 6), tensor([[-1., 0., 0.],
                [ 0., 1., 0.]]))
    """

    steps: list[Any]
    in_size: tuple[int, int]
    size: tuple[int, int]
    matrix: Tensor
    theta: Tensor | None
    batched: bool = True
    batch_index: Tensor | None = None


def is_geometric(params: object) -> bool:
    """Whether a step's params take part in fusion: they carry a ``theta``."""
    return params is not None and getattr(params, "theta", None) is not None


def _replayable(module: nn.Module) -> bool:
    if type(module).__module__.startswith("torchvision."):
        return False  # torchvision's make_params/transform take other arguments
    return callable(getattr(module, "make_params", None)) and callable(getattr(module, "transform", None))


def _stand_in(images: Tensor, count: int, size: tuple[int, int]) -> Tensor:
    """A tensor with the shape, dtype and device of the images at a step, without memory."""
    return images.new_empty(()).expand(count, images.shape[-3], *size)


class Compose(nn.Sequential):
    """Chain transforms like ``torchvision.transforms.v2.Compose`` / ``nn.Sequential``, resampling once.

    Consecutive geometric transforms are fused into one matrix per sample and one warp;
    other transforms end a run of fusion. ``make_params``/``transform`` work on the whole
    pipeline, so ``pipeline.transform(x, params)`` replays ``params`` on other images of the
    same size, and targets and :meth:`inverse` use the same params.

    Args:
        transforms: a list of modules, or the modules as separate arguments (``nn.Sequential``
            style), or an ``OrderedDict`` of named modules.
        interpolation, padding_mode: override the fused warp's settings (torchvision's
            ``InterpolationMode`` or its value; torchvision's padding names). By default a run uses
            ``"nearest"`` if all its steps do, ``"bicubic"`` if any does, else ``"bilinear"``,
            and the first step's ``padding_mode`` and ``fill`` (it decides what is seen outside the
            input). With ``padding_mode`` given, the fill is 0.
        antialias: low-pass filter where the fused warp shrinks; ``None``: on if any step of
            the run asks for it.

    Call:
        ``pipeline(images)`` -> images. ``pipeline(images, boxes=..., masks=..., keypoints=...)``
        -> a dict with ``"images"`` and each target given, plus ``"boxes_valid"`` and
        ``"keypoints_visible"`` (see :meth:`transform_targets`). ``pipeline(image, *tv_targets)``
        with torchvision ``tv_tensors`` (``Image``, ``BoundingBoxes`` in any format, ``Mask``,
        ``KeyPoints``) -> a tuple of the same types with the new ``canvas_size``; for a batch,
        give a list with one ``BoundingBoxes`` / ``KeyPoints`` per image.

    Raises:
        TypeError: a step that is not an ``nn.Module``; an unknown target keyword.
        ValueError: malformed targets (wrong shapes, masks of another size than the images).

    Example:
        >>> import torch, diffaug as da
        >>> pipe = da.Compose([da.RandomResizedCrop(32), da.RandomHorizontalFlip(), da.RandomAffine(degrees=10)])
        >>> images = torch.rand(4, 3, 64, 64)
        >>> params = pipe.make_params(images)
        >>> out = pipe.transform(images, params)  # one grid_sample for the three steps
        >>> out.shape, params.matrix.shape
        (torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 3]))
        >>> boxes = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]]).expand(4, 1, 4)
        >>> result = pipe(images, boxes=boxes)
        >>> sorted(result), result["boxes"].shape
        (['boxes', 'boxes_valid', 'images'], torch.Size([4, 1, 4]))
    """

    def __init__(
        self,
        *transforms: Any,
        interpolation: object = None,
        padding_mode: str | None = None,
        antialias: bool | None = None,
    ) -> None:
        if len(transforms) == 1 and isinstance(transforms[0], OrderedDict):
            modules: Any = transforms[0]
            items = list(modules.values())
        else:
            if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
                transforms = tuple(transforms[0])
            modules, items = transforms, list(transforms)
        for index, item in enumerate(items):
            if not isinstance(item, nn.Module):
                raise TypeError(
                    f"transforms[{index}] must be an nn.Module, got {type(item).__name__}; wrap functions in a module "
                    "(e.g. torchvision.transforms.v2.Lambda)"
                )
        if isinstance(modules, OrderedDict):
            super().__init__(modules)
        else:
            super().__init__(*modules)
        # Stored as the warp's names (what the steps' mode/padding_mode hold).
        mode = None if interpolation is None else interpolation_name(interpolation)
        padding_mode = None if padding_mode is None else padding_name(padding_mode)
        if antialias is not None and not isinstance(antialias, bool):
            raise TypeError(f"antialias must be None, True or False, got {antialias!r}")
        self.mode_override = mode
        self.padding_override = padding_mode
        self.antialias_override = antialias

    # ----------------------------------------------------------------- params
    def make_params(
        self, images: Tensor, generator: torch.Generator | None = None, batch_index: Tensor | None = None
    ) -> ComposeParams:
        """Draw every step's params for ``images`` (only their shape, dtype and device are read).

        Args:
            images: ``(B, C, H, W)`` or ``(C, H, W)``.
            generator: optional ``torch.Generator`` on the images' device.
            batch_index: optional ``(K,)``: draw ``K`` outputs, output ``k`` from image
                ``batch_index[k]`` (several views per image in one call).
        """
        _checks.check_images(images)
        batch = images.shape[0] if images.ndim == 4 else 1
        if batch_index is not None:
            if images.ndim != 4:
                raise ValueError("batch_index needs batched images (B, C, H, W), got a single image (C, H, W)")
            _checks.check_batch_index(batch_index, batch_index.shape[0] if isinstance(batch_index, Tensor) else -1, batch)
            _checks.check_same_device(batch_index, images, "batch_index")
            count = batch_index.shape[0]
        else:
            count = batch
        in_size = (int(images.shape[-2]), int(images.shape[-1]))
        size = in_size
        # Steps read only the shape, dtype and device: the images themselves serve while those match.
        plain_batch = type(images) is Tensor and images.ndim == 4 and count == images.shape[0]
        product: Tensor | None = None  # the geometric steps' matrices multiplied so far, as a (count, 2, 3) theta
        steps: list[Any] = []
        for index, step in enumerate(self):
            params: Any = None
            if _replayable(step):
                stand_in = images if plain_batch and size == in_size else _stand_in(images, count, size)
                params = step.make_params(stand_in, generator=generator)  # type: ignore[operator]
            if is_geometric(params):
                if getattr(params, "batch_index", None) is not None:
                    raise ValueError(
                        f"step {index} ({type(step).__name__}) gathers images with a batch_index; it cannot run inside Compose"
                    )
                product = params.theta if product is None else daf.compose_theta(product, params.theta)
                size = (int(params.size[0]), int(params.size[1]))
            steps.append(params)
        if product is None:
            matrix = daf.identity(count, images.device, param_dtype(images))
            product = daf.to_theta(matrix)
        else:
            matrix = daf.to_square(product)
        theta = product if all(is_geometric(p) for p in steps) else None
        return ComposeParams(steps, in_size, size, matrix, theta, images.ndim == 4, batch_index)

    def _run_settings(self, run: Sequence[nn.Module]) -> tuple[str, str, bool, float | tuple[float, ...]]:
        leaves = list(_leaves(run))
        modes = [getattr(m, "mode", "bilinear") for m in leaves]
        if self.mode_override is not None:
            mode = self.mode_override
        elif modes and all(m == "nearest" for m in modes):
            mode = "nearest"
        else:
            mode = "bicubic" if "bicubic" in modes else "bilinear"
        padding = str(self.padding_override or (getattr(leaves[0], "padding_mode", "zeros") if leaves else "zeros"))
        fill = getattr(leaves[0], "fill", 0.0) if leaves and self.padding_override is None else 0.0
        if self.antialias_override is not None:
            antialias = self.antialias_override
        else:
            antialias = any(bool(getattr(m, "antialias", False)) for m in leaves)
        return mode, padding, antialias and mode != "nearest", fill

    def _warp_run(self, images: Tensor, run: list[tuple[nn.Module, Any]], batch_index: Tensor | None) -> Tensor:
        theta = run[0][1].theta
        for _, params in run[1:]:
            theta = daf.compose_theta(theta, params.theta)
        mode, padding, antialias, fill = self._run_settings([module for module, _ in run])
        size = tuple(run[-1][1].size)
        return daf.warp(images, theta, size, mode, padding, batch_index=batch_index, antialias=antialias, fill=fill)

    def transform(self, images: Tensor, params: ComposeParams) -> Tensor:
        """Apply ``params`` (from :meth:`make_params`) to ``images``: one warp per run of geometric steps."""
        _checks.check_images(images)
        if not isinstance(params, ComposeParams):
            raise TypeError(f"params must be the ComposeParams of this pipeline's make_params, got {type(params).__name__}")
        if len(params.steps) != len(self):
            raise ValueError(f"params hold {len(params.steps)} steps but the pipeline has {len(self)}")
        if type(images) is not Tensor:
            return _wrap_like(self.transform(_plain(images), params), images)  # tv_tensors.Image in, Image out
        if images.ndim == 3:
            return self.transform(images.unsqueeze(0), params).squeeze(0)
        if params.theta is not None:
            # All steps geometric: make_params already multiplied the matrices; one warp, no second product.
            mode, padding, antialias, fill = self._run_settings(list(self))
            return daf.warp(
                images, params.theta, params.size, mode, padding, batch_index=params.batch_index, antialias=antialias, fill=fill
            )
        pending = params.batch_index  # gathers the images once, at the first warp (or before a non-geometric step)
        run: list[tuple[nn.Module, Any]] = []
        out = images
        for index, (step, step_params) in enumerate(zip(self, params.steps, strict=True)):
            if is_geometric(step_params):
                run.append((step, step_params))
                continue
            if run:
                out, pending, run = self._warp_run(out, run, pending), None, []
            if pending is not None:
                out, pending = out[pending], None
            expected = tuple(out.shape[-2:])
            out = step.transform(out, step_params) if step_params is not None else step(out)  # type: ignore[operator]
            if tuple(out.shape[-2:]) != expected:
                raise ValueError(
                    f"step {index} ({type(step).__name__}) changed the image size from {expected} to {tuple(out.shape[-2:])}; "
                    "only geometric steps (params with theta) may change it inside Compose"
                )
        if run:
            out, pending = self._warp_run(out, run, pending), None
        if pending is not None:
            out = out[pending]
        return out

    # ---------------------------------------------------------------- targets
    @staticmethod
    def _theta(params: ComposeParams, inverse: bool) -> Tensor:
        theta = daf.to_theta(params.matrix)
        if inverse:
            theta = _targets.inverse_theta(theta)
        return theta if params.batched else theta[0]

    def transform_targets(
        self,
        params: ComposeParams,
        boxes: Tensor | None = None,
        box_mask: Tensor | None = None,
        box_batch_index: Tensor | None = None,
        box_format: str = "XYXY",
        masks: Tensor | None = None,
        mask_fill: float = 0,
        keypoints: Tensor | None = None,
        visible: Tensor | None = None,
        keypoint_batch_index: Tensor | None = None,
        inverse: bool = False,
    ) -> dict[str, Tensor]:
        """Targets through the pipeline's matrix (non-geometric steps do not move targets).

        Args:
            params: from :meth:`make_params`.
            boxes: pixel boxes ``(B, N, 4)`` (padded; ``box_mask`` ``(B, N)`` marks the real
                ones), ``(K, 4)`` with ``box_batch_index``, or ``(N, 4)`` for one image, in
                ``box_format`` ``"XYXY"`` (default), ``"XYWH"`` or ``"CXCYWH"``.
            masks: ``(B, H, W)``, ``(B, N, H, W)`` (or ``(H, W)``, ``(N, H, W)`` for one image);
                integer / bool masks resampled with nearest (exact labels), float masks
                bilinearly; ``mask_fill`` shows outside the input (e.g. an ignore index).
            keypoints: ``(B, N, 2)`` continuous pixel ``(x, y)`` (or ``(K, 2)`` with
                ``keypoint_batch_index``), ``visible`` a bool mask of the same leading shape.
            inverse: map from the output frame back to the input frame.

        Returns:
            a dict with the keys given (``"boxes"``, ``"masks"``, ``"keypoints"``) plus
            ``"boxes_valid"`` (box keeps a positive area on the canvas and is real) and
            ``"keypoints_visible"`` (visible and on the canvas).
        """
        if params.batch_index is not None:
            raise ValueError(
                "targets of multi-view params (with batch_index) go through diffaug.functional.targets with params.matrix"
            )
        theta = self._theta(params, inverse)
        src, dst = (params.size, params.in_size) if inverse else (params.in_size, params.size)
        out: dict[str, Tensor] = {}
        if boxes is not None:
            out["boxes"], out["boxes_valid"] = _targets.transform_boxes(
                boxes, theta, src, dst, box_mask=box_mask, batch_index=box_batch_index, box_format=box_format
            )
        if masks is not None:
            out["masks"] = _targets.transform_masks(masks, theta, src, dst, fill=mask_fill)
        if keypoints is not None:
            out["keypoints"], out["keypoints_visible"] = _targets.transform_keypoints(
                keypoints, theta, src, dst, visible=visible, batch_index=keypoint_batch_index
            )
        return out

    def _tv_targets(self, params: ComposeParams, targets: Sequence[Any], inverse: bool) -> list[Any]:
        theta = self._theta(params, inverse)
        src, dst = (params.size, params.in_size) if inverse else (params.in_size, params.size)
        return [_tv_target(target, theta, src, dst, params.batched, index) for index, target in enumerate(targets)]

    def inverse(self, outputs: Any, params: ComposeParams, mode: str = "bilinear") -> Any:
        """Map outputs of the pipeline back to the input frame (test-time augmentation, predictions).

        Args:
            outputs: images or predictions ``(B, C, h, w)`` in the output frame; or the dict
                :meth:`forward` returned (keys ``images``, ``masks``, ``boxes``, ``keypoints``,
                with ``boxes_valid`` / ``keypoints_visible`` carried along); or the tuple of
                torchvision ``tv_tensors`` it returned.
            params: the params the outputs were made with.
            mode: interpolation for images and float masks.

        Returns:
            the same structure on the input canvas ``params.in_size``. Content that the
            pipeline cropped away comes back as zeros; only geometry is inverted.

        Example:
            >>> import torch, diffaug as da
            >>> pipe = da.Compose([da.RandomHorizontalFlip(p=1.0), da.RandomRotation(degrees=(90, 90))])
            >>> images = torch.rand(2, 3, 8, 8)
            >>> params = pipe.make_params(images)
            >>> torch.allclose(pipe.inverse(pipe.transform(images, params), params), images, atol=1e-5)
            True
        """
        theta = self._theta(params, inverse=True)
        if isinstance(outputs, Tensor) and not _is_tv_target(outputs):
            return _wrap_like(daf.warp(_plain(outputs), theta, params.in_size, mode=mode), outputs)
        if isinstance(outputs, dict):
            known = {"images", "boxes", "boxes_valid", "masks", "keypoints", "keypoints_visible"}
            unknown = set(outputs) - known
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)} in outputs; expected some of {sorted(known)}")
            back = self.transform_targets(
                params,
                boxes=outputs.get("boxes"),
                box_mask=outputs.get("boxes_valid"),
                masks=outputs.get("masks"),
                keypoints=outputs.get("keypoints"),
                visible=outputs.get("keypoints_visible"),
                inverse=True,
            )
            if "images" in outputs:
                back["images"] = daf.warp(outputs["images"], theta, params.in_size, mode=mode)
            return back
        if isinstance(outputs, (tuple, list)) and outputs:
            first = outputs[0]
            images = _wrap_like(daf.warp(_plain(first), theta, params.in_size, mode=mode), first)
            return (images, *self._tv_targets(params, outputs[1:], inverse=True))
        raise TypeError(
            f"outputs must be a tensor, a dict or a tuple as the pipeline returned them, got {type(outputs).__name__}"
        )

    # ---------------------------------------------------------------- forward
    def forward(  # type: ignore[override]
        self,
        images: Tensor,
        *tv_targets: Any,
        generator: torch.Generator | None = None,
        boxes: Tensor | None = None,
        box_mask: Tensor | None = None,
        box_batch_index: Tensor | None = None,
        box_format: str = "XYXY",
        masks: Tensor | None = None,
        mask_fill: float = 0,
        keypoints: Tensor | None = None,
        visible: Tensor | None = None,
        keypoint_batch_index: Tensor | None = None,
    ) -> Any:
        plain = _plain(images)
        params = self.make_params(plain, generator=generator)
        out = _wrap_like(self.transform(plain, params), images)
        has_kwargs = boxes is not None or masks is not None or keypoints is not None
        if tv_targets and has_kwargs:
            raise ValueError(
                "give targets either as tv_tensors after the images or as keywords (boxes=, masks=, keypoints=), not both"
            )
        if tv_targets:
            return (out, *self._tv_targets(params, tv_targets, inverse=False))
        if not has_kwargs:
            return out
        result = {"images": out}
        result.update(
            self.transform_targets(
                params,
                boxes=boxes,
                box_mask=box_mask,
                box_batch_index=box_batch_index,
                box_format=box_format,
                masks=masks,
                mask_fill=mask_fill,
                keypoints=keypoints,
                visible=visible,
                keypoint_batch_index=keypoint_batch_index,
            )
        )
        return result


def _leaves(modules: Sequence[nn.Module]) -> Iterator[nn.Module]:
    for module in modules:
        if isinstance(module, Compose):
            yield from _leaves(list(module))
        else:
            yield module


def _plain(tensor: Tensor) -> Tensor:
    return tensor.as_subclass(Tensor) if type(tensor) is not Tensor and isinstance(tensor, Tensor) else tensor


def _wrap_like(out: Tensor, like: Tensor) -> Tensor:
    if type(like) is Tensor or not type(like).__module__.startswith("torchvision."):
        return out
    from torchvision import tv_tensors

    return tv_tensors.wrap(out, like=like)  # type: ignore[arg-type]


def _is_tv_target(value: object) -> bool:
    if not type(value).__module__.startswith("torchvision."):
        return False
    from torchvision import tv_tensors

    return isinstance(value, (tv_tensors.BoundingBoxes, tv_tensors.KeyPoints, tv_tensors.Mask))


def _tv_target(target: Any, theta: Tensor, src: tuple[int, int], dst: tuple[int, int], batched: bool, index: int) -> Any:
    """One positional tv_tensor target (or, for a batch, a list with one per image)."""
    from torchvision import tv_tensors

    if not batched:
        if not _is_tv_target(target):
            raise TypeError(f"target {index} must be a torchvision BoundingBoxes, KeyPoints or Mask, got {type(target).__name__}")
        return _targets.transform_tv(target, theta, src, dst)
    if isinstance(target, tv_tensors.Mask):
        return _targets.transform_tv(target, theta, src, dst)  # (B, ...) masks: one row per image
    if not isinstance(target, (list, tuple)) or len(target) != theta.shape[0] or not all(_is_tv_target(t) for t in target):
        raise TypeError(
            f"target {index}: for a batch of {theta.shape[0]} images give a list with one BoundingBoxes / KeyPoints / Mask per "
            f"image, got {type(target).__name__}"
        )
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
