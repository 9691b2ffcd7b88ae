"""Argument checks shared by the functional core and the transforms.

Every check looks at shapes, dtypes, devices and Python values only: none reads tensor data
(that would synchronise a GPU and break ``torch.compile``), except where stated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

MODES = ("bilinear", "nearest", "bicubic")
# "reflection" is grid_sample's (mirror about the outer edges, the edge pixel repeated: numpy's
# "symmetric"); "reflect" mirrors about the edge pixels' centres (numpy's and torchvision's "reflect").
PADDING_MODES = ("zeros", "border", "reflection", "reflect")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# Channels-last images (NumPy / PIL layout) are refused when the last dimension could be channels
# (1, 3 or 4) and both dimensions before it are at least this large: (B, 224, 224, 3) is refused,
# tiny channels-first images such as (B, 3, 4, 4) and feature maps (B, 256, 4, 4) pass.
CHANNELS_LAST_MIN_SIDE = 16


def check_images(images: object, name: str = "images") -> Tensor:
    """Images must be a float or uint8 tensor ``(C, H, W)`` or ``(B, C, H, W)``, not channels-last.

    A shape ``(..., X, Y, c)`` with ``c`` in 1, 3, 4 and both ``X`` and ``Y`` at least
    :data:`CHANNELS_LAST_MIN_SIDE` is read as channels-last and refused, with the permutation
    that fixes it.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, H, W) or (C, H, W), got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"{name} must have shape (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    if images.dtype not in FLOAT_DTYPES and images.dtype != torch.uint8:
        raise TypeError(f"{name} must be floating point or uint8, got {images.dtype}")
    if images.shape[-1] == 0 or images.shape[-2] == 0:
        raise ValueError(f"{name} must have non-zero height and width, got {tuple(images.shape)}")
    if images.shape[-1] in (1, 3, 4) and min(images.shape[-3], images.shape[-2]) >= CHANNELS_LAST_MIN_SIDE:
        permute = "permute(0, 3, 1, 2)" if images.ndim == 4 else "permute(2, 0, 1)"
        layout = "(B, H, W, C)" if images.ndim == 4 else "(H, W, C)"
        raise ValueError(
            f"{name} look channels-last {layout}: shape {tuple(images.shape)} ends in {images.shape[-1]} channels; "
            f"diffaug takes channels first, (B, C, H, W) or (C, H, W): pass {name}.{permute} "
            f"(a last dimension of 1, 3 or 4 after two dimensions of at least {CHANNELS_LAST_MIN_SIDE} is read as channels)"
        )
    return images


def check_size(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of positive ints -> ``(h, w)``."""
    if type(size) is tuple and len(size) == 2 and type(size[0]) is int and type(size[1]) is int and size[0] > 0 and size[1] > 0:
        return size  # the common case, checked on every warp: no generic checks needed
    height, width = check_int_pair(size, name, "(h, w)")
    if height <= 0 or width <= 0:
        raise ValueError(f"{name} must be positive, got {size!r}")
    return height, width


def check_int_pair(value: object, name: str, pair: str) -> tuple[int, int]:
    """An int ``n`` -> ``(n, n)``; a sequence of one or two ints -> the pair (``bool`` is not an int here).

    ``pair`` names the two values in the message (``"(h, w)"``); the caller checks their range.

    Examples:
        >>> check_int_pair(3, "size", "(h, w)"), check_int_pair([4], "size", "(h, w)"), check_int_pair((5, 3), "k", "(kx, ky)")
        ((3, 3), (4, 4), (5, 3))
    """
    values: tuple[object, ...] = ()
    if isinstance(value, int) and not isinstance(value, bool):
        values = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (1, 2):
        values = tuple(value) if len(value) == 2 else (value[0], value[0])
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be an int or a pair {pair} of ints, got {value!r}")
    first, second = values
    assert isinstance(first, int) and isinstance(second, int)
    return first, second


def check_fill(fill: object, padding_mode: str, channels: int | None = None) -> tuple[float, ...] | None:
    """``fill``: a number or one number per channel -> a tuple of floats, or ``None`` for all zeros.

    A non-zero fill is what ``padding_mode="zeros"`` shows outside the image, so it needs that mode.
    ``channels``, when known, must match a per-channel fill.
    """
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        values: tuple[float, ...] = (float(fill),)
    elif (
        isinstance(fill, Sequence)
        and not isinstance(fill, str)
        and len(fill) > 0
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in fill)
    ):
        values = tuple(float(v) for v in fill)
    else:
        raise TypeError(f"fill must be a number or a sequence of numbers (one per channel), got {fill!r}")
    if channels is not None and len(values) not in (1, channels):
        raise ValueError(f"fill must have 1 value or one per channel ({channels}), got {len(values)}: {fill!r}")
    if all(v == 0.0 for v in values):
        return None
    if padding_mode != "zeros":
        raise ValueError(
            f"fill is shown outside the image only with padding_mode='zeros' (constant padding); "
            f"got fill={fill!r} with padding_mode={padding_mode!r}"
        )
    return values


def check_choice(value: object, choices: Sequence[str], name: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_antialias(antialias: object, mode: str) -> bool:
    """``antialias`` must be a bool, and ``True`` only with a mode that blends (not ``"nearest"``)."""
    if not isinstance(antialias, bool):
        raise TypeError(f"antialias must be True or False, got {antialias!r}")
    if antialias and mode == "nearest":
        raise ValueError(
            "antialias=True needs mode 'bilinear' or 'bicubic': filtering blends values, which mode='nearest' "
            "exists to avoid (labels, masks); pass antialias=False with mode='nearest'"
        )
    return antialias


def check_boxes(boxes: object, images: Tensor | None = None, name: str = "boxes") -> Tensor:
    """Boxes must be a floating tensor ``(..., 4)`` of finite values (:func:`check_finite`), on the images' device."""
    return check_coordinates(boxes, name, 4, "as (x1, y1, x2, y2)", images)


def check_coordinates(values: object, name: str, length: int, meaning: str, images: Tensor | None = None) -> Tensor:
    """Boxes, points: a floating tensor ``(..., length)`` of finite values, on the images' device when given.

    ``meaning`` says what the last axis holds, for the messages (``"as (x, y) pixel coordinates"``).

    Examples:
        >>> import torch
        >>> check_coordinates(torch.zeros(3, 2), "keypoints", 2, "as (x, y)").shape
        torch.Size([3, 2])
    """
    if not isinstance(values, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (..., {length}) {meaning}, got {type(values).__name__}")
    if values.ndim == 0 or values.shape[-1] != length:
        raise ValueError(f"{name} must have shape (..., {length}) {meaning}, got {tuple(values.shape)}")
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {values.dtype}")
    if images is not None:
        check_same_device(values, images, name)
    return check_finite(values, name)


def check_finite(values: Tensor, name: str) -> Tensor:
    """NaN or inf in ``values`` (boxes, keypoints, ``theta``) is an error, found without a host sync.

    The one check here that reads tensor data, through ``torch._assert_async``: on CPU tensors
    it raises a ``ValueError`` at once; on an accelerator the assert runs on the device, in
    stream order, and fails at the next synchronisation (as a device-side assert, after which the
    process must restart); inside ``torch.compile`` it is part of the graph. Meta tensors skip it.
    """
    message = f"{name} must be finite: it holds NaN or inf"
    with torch.no_grad():
        finite = values.mul(0).sum().eq(0)  # NaN and inf times 0 are NaN: 3 ops, where isfinite().all() takes 5
    if values.device.type == "cpu" and not torch.compiler.is_compiling():
        try:
            torch._assert_async(finite, message)
        except RuntimeError:
            raise ValueError(message) from None
    else:
        torch._assert_async(finite, message)
    return values


def check_same_device(tensor: Tensor, images: Tensor, name: str) -> None:
    if tensor.device != images.device:
        raise ValueError(f"{name} is on {tensor.device} but images are on {images.device}; move them to one device")


def check_batch_index(batch_index: object, count: int, batch: int, name: str = "batch_index") -> Tensor:
    """``(K,)`` integer indices into a batch of ``batch`` images, ``K == count``.

    The range check reads the values, so it runs only for CPU tensors outside ``torch.compile``
    (free there); on a GPU an out-of-range index is caught by PyTorch's own device assert.
    """
    if not isinstance(batch_index, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (K,) with integer dtype, got {type(batch_index).__name__}")
    if batch_index.dtype.is_floating_point or batch_index.dtype.is_complex or batch_index.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype (torch.long), got {batch_index.dtype}")
    if batch_index.ndim != 1 or batch_index.shape[0] != count:
        raise ValueError(f"{name} must have shape (K,) with K = {count} (one per box), got {tuple(batch_index.shape)}")
    if batch_index.device.type == "cpu" and not torch.compiler.is_compiling() and count > 0:
        low, high = int(batch_index.min()), int(batch_index.max())
        if low < 0 or high >= batch:
            raise IndexError(f"{name} must index the {batch} images (0 <= i < {batch}), got values in [{low}, {high}]")
    return batch_index


def check_range(
    value: object, name: str, low: float | None = None, high: float | None = None, *, strict_low: bool = False
) -> tuple[float, float]:
    """A pair ``(a, b)`` of numbers with ``a <= b`` inside ``[low, high]`` (``(low, high]`` if ``strict_low``)."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (min, max) of numbers, got {value!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be a pair (min, max) of numbers, got {value!r}")
    a, b = float(value[0]), float(value[1])
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{name} must be finite numbers, got {value!r}")
    if a > b:
        raise ValueError(f"{name} must be ordered as (min, max) with min <= max, got {value!r}")
    if low is not None and (a < low or (strict_low and a <= low)):
        bound = f"> {low}" if strict_low else f">= {low}"
        raise ValueError(f"{name} values must be {bound}, got {value!r}")
    if high is not None and b > high:
        raise ValueError(f"{name} values must be <= {high}, got {value!r}")
    return a, b


def check_probability(p: object, name: str = "p") -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {p!r}")
    return float(p)
