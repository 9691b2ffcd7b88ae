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
so a Compose nested in another fuses with its neighbours. Targets (boxes, masks, keypoints,
tv_tensors) and :meth:`Compose.inverse` go through ``ComposeParams.matrix`` with the call
convention every transform shares (:mod:`diffaug.transforms.targets`); this module only fuses.

Because a fused run resamples the *input* once, a later step sees the input's content where an
earlier step would have shown padding (e.g. a rotation after a crop shows the image around the
crop, not black corners): the result equals the sequential one wherever the sequential
pipeline did not sample outside an intermediate canvas, and is sharper (one interpolation
instead of one per step).
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffaug import functional as daf
from diffaug.functional import _checks
from diffaug.functional.geometry import pipeline_theta
from diffaug.transforms import targets as target_layer
from diffaug.transforms.base import interpolation_name, other_forms, padding_name, param_dtype, replayable, stand_in

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

    Examples:
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


def _warps_alone(params: object) -> bool:
    """Whether a step that does not fuse still moves pixels: its params carry a ``matrix`` (and the ``size`` it outputs)."""
    return isinstance(getattr(params, "matrix", None), Tensor)


def _takes_boxes(step: nn.Module) -> bool:
    """Whether a step's ``make_params`` takes the boxes to crop (``BoxCrop``): they come from ``crop_boxes``."""
    return "boxes" in inspect.signature(step.make_params).parameters  # type: ignore[arg-type]


# torchvision transforms that draw random parameters: the classes named Random*/Rand*, and these.
_TORCHVISION_RANDOM = (
    *("Random", "Rand", "ColorJitter", "GaussianBlur", "GaussianNoise", "ElasticTransform", "AutoAugment"),
    *("TrivialAugmentWide", "AugMix", "ScaleJitter", "JPEG", "MixUp", "CutMix"),
)


def _per_batch_draws(module: nn.Module) -> Iterator[str]:
    """Names of the torchvision random transforms in ``module`` (nested ones too): they draw once per call."""
    kind = type(module)
    if kind.__module__.startswith("torchvision.transforms") and kind.__name__.startswith(_TORCHVISION_RANDOM):
        yield kind.__name__
    inner = [*module.children(), *(t for t in getattr(module, "transforms", ()) if isinstance(t, nn.Module))]
    for child in dict.fromkeys(inner):  # a torchvision Compose keeps its list outside the module tree
        yield from _per_batch_draws(child)


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

    Call (the convention every diffaug transform shares, :mod:`diffaug.transforms.targets`):
        ``pipeline(images)`` -> images. ``pipeline(images, boxes=..., masks=..., keypoints=...)``
        (the keywords of :class:`~diffaug.transforms.targets.Targets`) -> a dict with ``"images"``
        and each target given, plus ``"boxes_valid"`` and ``"keypoints_visible"``.
        ``pipeline(image, *tv_targets)`` with torchvision ``tv_tensors`` (``Image``,
        ``BoundingBoxes`` in any format, ``Mask``, ``KeyPoints``) -> a tuple of the same types
        with the new ``canvas_size``; for a batch, give a list with one ``BoundingBoxes`` /
        ``KeyPoints`` per image. ``generator=`` seeds the draws. ``crop_boxes=`` ``(B, 4)`` (or
        ``(4,)`` for one image) are the boxes a ``BoxCrop`` step crops, in the pixel frame that
        step sees (the input's when it comes first); they are an input, not a target.

    A torchvision random transform (``torchvision.transforms``) given as a step runs as a plain
    module: it draws one set of parameters per call, shared by the whole batch. Compose warns
    when it is built with one; use the diffaug transform of the same name for per-sample draws.

    Raises:
        TypeError: a step that is not an ``nn.Module``; an unknown target keyword.
        ValueError: malformed or non-finite targets (wrong shapes, masks of another size than
            the images); a ``BoxCrop`` step without ``crop_boxes``.

    Warns:
        UserWarning: a torchvision random transform among the steps (its draws are per batch).

    Examples:
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
        for index, item in enumerate(items):
            for name in _per_batch_draws(item):
                warnings.warn(
                    f"transforms[{index}] holds torchvision's {name}, which draws its parameters once per call: every image "
                    f"of a batch gets the same ones, not one draw per sample; use diffaug's own transform (da.{name} where "
                    "it exists) for per-sample draws",
                    UserWarning,
                    stacklevel=2,
                )

    # ----------------------------------------------------------------- params
    def make_params(
        self,
        images: Tensor,
        generator: torch.Generator | None = None,
        batch_index: Tensor | None = None,
        *,
        crop_boxes: Tensor | None = None,
    ) -> ComposeParams:
        """Draw every step's params for ``images`` (only their shape, dtype and device are read).

        Args:
            images: ``(B, C, H, W)`` or ``(C, H, W)``.
            generator: optional ``torch.Generator`` on the images' device.
            batch_index: optional ``(K,)``: draw ``K`` outputs, output ``k`` from image
                ``batch_index[k]`` (several views per image in one call).
            crop_boxes: the boxes of the ``BoxCrop`` steps (steps whose ``make_params`` takes
                ``boxes``): ``(B, 4)``, or ``(4,)`` for a single image, XYXY pixels in the
                frame that step sees.

        Examples:
            >>> import torch, diffaug as da
            >>> pipe = da.Compose([da.BoxCrop(8), da.RandomHorizontalFlip(p=1.0)])
            >>> boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [8.0, 8.0, 24.0, 32.0]])
            >>> params = pipe.make_params(torch.rand(2, 3, 32, 32), crop_boxes=boxes)
            >>> params.size, torch.equal(params.steps[0].boxes, boxes)
            ((8, 8), True)
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
        if crop_boxes is not None and images.ndim == 3 and isinstance(crop_boxes, Tensor) and crop_boxes.ndim == 1:
            crop_boxes = crop_boxes.unsqueeze(0)  # steps draw for a batch of one
        thetas: list[Tensor] = []  # the geometric steps' thetas, (count, 2, 3) each
        steps: list[Any] = []
        boxes_used = False
        for index, step in enumerate(self):
            params: Any = None
            if replayable(step):
                canvas = images if plain_batch and size == in_size else stand_in(images, count, size)
                if crop_boxes is not None and _takes_boxes(step):
                    params, boxes_used = step.make_params(canvas, boxes=crop_boxes, generator=generator), True  # type: ignore[operator]
                else:
                    try:
                        params = step.make_params(canvas, generator=generator)  # type: ignore[operator]
                    except TypeError as error:
                        # Signatures are inspected only here, off the common path: a BoxCrop step without its boxes.
                        if crop_boxes is None and _takes_boxes(step):
                            raise TypeError(
                                f"step {index} ({type(step).__name__}) crops given boxes: call the pipeline with crop_boxes= "
                                "(B, 4), or make_params(images, crop_boxes=...)"
                            ) from error
                        raise
            if is_geometric(params):
                if getattr(params, "batch_index", None) is not None:
                    raise ValueError(
                        f"step {index} ({type(step).__name__}) gathers images with a batch_index; it cannot run inside Compose"
                    )
                thetas.append(params.theta)
                size = (int(params.size[0]), int(params.size[1]))
            elif _warps_alone(params):
                # A step that resamples on its own (a policy over every kind of operation, a container
                # mixing kinds): it does not fuse, but targets follow its matrix and later steps its size.
                thetas.append(daf.to_theta(params.matrix))
                size = (int(params.size[0]), int(params.size[1]))
            steps.append(params)
        if crop_boxes is not None and not boxes_used:
            raise ValueError("crop_boxes were given but no step crops given boxes (a step whose make_params takes boxes)")
        if thetas:
            product = pipeline_theta(thetas)
            matrix = daf.to_square(product)
        else:
            matrix = daf.identity(count, images.device, param_dtype(images))
            product = daf.to_theta(matrix)
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
        theta = pipeline_theta([params.theta for _, params in run])
        mode, padding, antialias, fill = self._run_settings([module for module, _ in run])
        size = tuple(run[-1][1].size)
        _checks.check_finite(theta, "theta of a fused run")
        return daf.warp(images, theta, size, mode, padding, batch_index=batch_index, antialias=antialias, fill=fill)

    def transform(self, images: Tensor, params: ComposeParams) -> Tensor:
        """Apply ``params`` (from :meth:`make_params`) to ``images``: one warp per run of geometric steps."""
        _checks.check_images(images)
        if not isinstance(params, ComposeParams):
            raise TypeError(f"params must be the ComposeParams of this pipeline's make_params, got {type(params).__name__}")
        if len(params.steps) != len(self):
            raise ValueError(f"params hold {len(params.steps)} steps but the pipeline has {len(self)}")
        if (out := other_forms(self.transform, images, params)) is not None:
            return out  # tv_tensors.Image in, Image out; a single image as a batch of one
        if params.theta is not None:
            # All steps geometric: make_params already multiplied the matrices; one warp, no second product.
            mode, padding, antialias, fill = self._run_settings(list(self))
            _checks.check_finite(params.theta, "params.theta")
            return daf.warp(
                images, params.theta, params.size, mode, padding, batch_index=params.batch_index, antialias=antialias, fill=fill
            )
        pending = params.batch_index  # gathers the images once, at the first warp (or before a non-geometric step)
        run: list[tuple[nn.Module, Any]] = []
        out = images
        colour: list[Any] = []  # a run of steps with colour matrices: multiplied, applied in one pass
        for index, (step, step_params) in enumerate(zip(self, params.steps, strict=True)):
            if colour and not _joins_colour_run(colour, step_params):
                out, colour = _colour_pass(out, colour), []
            if is_geometric(step_params):
                run.append((step, step_params))
                continue
            if run:
                out, pending, run = self._warp_run(out, run, pending), None, []
            if pending is not None:
                out, pending = out[pending], None
            if getattr(step_params, "colour", None) is not None:
                colour.append(step_params)
                continue
            out = _pixel_step(out, step, step_params, index)
        if colour:
            out = _colour_pass(out, colour)
        if run:
            out, pending = self._warp_run(out, run, pending), None
        if pending is not None:
            out = out[pending]
        return out

    # ---------------------------------------------------------------- targets
    def transform_targets(self, params: ComposeParams, *, inverse: bool = False, **targets: Any) -> dict[str, Tensor]:
        """Targets through the pipeline's matrix (non-geometric steps do not move targets).

        The keywords of :class:`~diffaug.transforms.targets.Targets`; the result as
        :func:`diffaug.transforms.targets.transform_targets` returns it (``inverse=True`` maps
        from the output frame back to the input frame).
        """
        return target_layer.transform_targets(params, inverse=inverse, **targets)

    def inverse(self, outputs: Any, params: ComposeParams, mode: str = "bilinear") -> Any:
        """Map outputs of the pipeline back to the input frame: :func:`diffaug.transforms.targets.inverse`.

        Examples:
            >>> import torch, diffaug as da
            >>> pipe = da.Compose([da.RandomHorizontalFlip(p=1.0), da.RandomRotation(degrees=(90, 90))])
            >>> images = torch.rand(2, 3, 8, 8)
            >>> params = pipe.make_params(images)
            >>> torch.allclose(pipe.inverse(pipe.transform(images, params), params), images, atol=1e-5)
            True
        """
        return target_layer.inverse(outputs, params, mode)

    # ---------------------------------------------------------------- forward
    def forward(  # type: ignore[override]
        self,
        images: Tensor,
        *tv_targets: Any,
        generator: torch.Generator | None = None,
        crop_boxes: Tensor | None = None,
        **targets: Any,
    ) -> Any:
        return target_layer.call(self, images, tv_targets, targets, generator=generator, crop_boxes=crop_boxes)


def _pixel_step(images: Tensor, step: nn.Module, params: Any, index: int) -> Tensor:
    """A step that does not warp (colour, pixel ops, a plain module): replayed from its params, or called."""
    expected = tuple(params.size) if _warps_alone(params) else tuple(images.shape[-2:])
    out = step.transform(images, params) if params is not None else step(images)  # type: ignore[operator]
    if tuple(out.shape[-2:]) != expected:
        raise ValueError(
            f"step {index} ({type(step).__name__}) changed the image size from {expected} to {tuple(out.shape[-2:])}; "
            "only geometric steps (params with theta) may change it inside Compose"
        )
    return out


def _joins_colour_run(run: list[Any], params: Any) -> bool:
    """A step with a colour matrix joins the run, unless a clamp in the run would have to pass a map that mixes channels."""
    if getattr(params, "colour", None) is None:
        return False
    return bool(getattr(params, "diagonal", False)) or not any(getattr(p, "clamp", False) for p in run)


def _colour_pass(images: Tensor, run: list[Any]) -> Tensor:
    """A run of colour steps as ONE pass over the pixels: the matrices multiplied in order, the last clamp
    carried through the per-channel maps after it (``diagonal`` params), the last step's dtype."""
    channels = images.shape[-3]
    matrix, bounds, dtype = run[0].colour, None, images.dtype
    for position, params in enumerate(run):
        colour = params.colour
        # Checks a step's own transform would make: its params drawn for these channels, its dtype.
        into = channels if position == 0 else matrix.shape[-2]
        if getattr(params, "channels", into) != into:
            raise ValueError(
                f"a colour step's params were drawn for {params.channels} channels but its input has {into}: inside Compose, "
                "params are drawn for the input's channels, so a step that changes them (Grayscale) must come last"
            )
        if getattr(params, "needs_float", False) and not dtype.is_floating_point:
            raise TypeError(f"a colour step (Normalize) needs floating point images, got {dtype}; put ToDtype before it")
        if position:
            matrix = daf.compose_colour(matrix, colour, channels)
        if bounds is not None:  # a positive per-channel gain and offset move the bounds, keep their order
            gain, offset = colour[..., : colour.shape[-2]].diagonal(dim1=-2, dim2=-1), colour[..., -1]
            bounds = (gain * bounds[0] + offset, gain * bounds[1] + offset)
        if getattr(params, "clamp", False):
            low = colour.new_zeros(colour.shape[:-1])
            bounds = (low, low + 1)
        dtype = getattr(params, "dtype", None) or dtype
    return daf.apply_colour(images, matrix, dtype=dtype, bounds=bounds)


def _leaves(modules: Sequence[nn.Module]) -> Iterator[nn.Module]:
    for module in modules:
        if isinstance(module, Compose):
            yield from _leaves(list(module))
        else:
            yield module
