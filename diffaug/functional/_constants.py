"""Small constant tensors shared across calls: coordinate vectors, per-canvas scales.

Why they are kept, rather than built on every call:

* On an accelerator, a tensor built from Python numbers (``like.new_tensor([...])``,
  ``torch.tensor([...], device="cuda")``) is a synchronous copy from pageable host memory: the
  host waits for the stream, which the no-host-sync rule forbids in a forward pass
  (``tests/test_no_sync.py`` runs CUDA under ``torch.cuda.set_sync_debug_mode("error")``). Kept,
  that copy happens once per key, device and dtype instead of once per call.
* On a CPU, a call on small inputs costs about its number of ATen ops (``new_tensor`` is a
  ``lift_fresh`` and a copy, ``arange`` and ``eye`` fill a new tensor). Measured with every
  constant built afresh instead (one thread, ``(8, 3, 32, 32)`` images, a loaded 2-core CPU):
  ``RandomResizedCrop`` 294 -> 309 us a call, crop + flip + affine in ``Compose`` 864 -> 892 us,
  ``ColorJitter(fused=True)`` 714 -> 750 us, ``CutMix`` 457 -> 490 us (3 to 7 %); on the
  benchmark suite's larger cases the difference is below the noise.

Constants hold no gradient and diffaug never writes to them, so one copy per key and device
serves every call.

A constant is built afresh, and not kept, when keeping it could go wrong:

* under ``torch.compile`` (the graph owns its constants; a global dict would be a side effect
  for the capture to guard);
* when what was built is not a plain tensor (fake or functional tensors during tracing);
* while a CUDA graph is being captured (its memory belongs to the graph's pool).

Keys include the device, dtype and whether inference mode is on (a tensor made in inference
mode cannot be saved for backward outside it).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import torch
from torch import Tensor

__all__ = ["memo", "values"]

_T = TypeVar("_T", Tensor, tuple[Tensor, ...])
_CACHE: dict[Hashable, Tensor | tuple[Tensor, ...]] = {}
_MAX_ENTRIES = 512  # a few per canvas size and dtype; cleared when full (a bound, not an LRU)


def _plain(value: Tensor | tuple[Tensor, ...]) -> bool:
    if isinstance(value, tuple):
        return all(type(v) is Tensor for v in value)
    return type(value) is Tensor


def memo(key: Hashable, like: Tensor, build: Callable[[], _T]) -> _T:
    """``build()`` (tensors on ``like``'s device in ``like``'s dtype), kept per ``key``.

    ``key`` must determine what ``build`` returns given ``like``'s device and dtype. Callers must
    not write to the result.

    Examples:
        >>> import torch
        >>> like = torch.zeros(3)
        >>> a = memo(("ones", 2), like, lambda: torch.ones(2, device=like.device, dtype=like.dtype))
        >>> a is memo(("ones", 2), like, lambda: torch.ones(2, device=like.device, dtype=like.dtype))
        True
    """
    if torch.compiler.is_compiling() or (like.is_cuda and torch.cuda.is_current_stream_capturing()):
        return build()
    full_key = (key, like.device, like.dtype, torch.is_inference_mode_enabled())
    value = _CACHE.get(full_key)
    if value is None:
        value = build()
        if _plain(value):
            if len(_CACHE) >= _MAX_ENTRIES:
                _CACHE.clear()
            _CACHE[full_key] = value
    return value  # type: ignore[return-value]


def values(numbers: float | tuple[float, ...] | tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    """``like.new_tensor(numbers)``, kept: Python numbers as a constant tensor.

    Examples:
        >>> import torch
        >>> values(((1.0, 2.0), (3.0, 4.0)), torch.zeros(1, dtype=torch.float64))
        tensor([[1., 2.],
                [3., 4.]], dtype=torch.float64)
    """
    return memo(("values", numbers), like, lambda: like.new_tensor(numbers))
