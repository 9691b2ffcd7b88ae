"""diffaug's CPU kernels, compiled on first use (``_cpu_kernels.cpp``).

* The antialiased warp. On the CPU the pyramid of :mod:`diffaug.functional.antialias` spends most
  of its time building whole levels for the whole batch (and the operating system handing out
  fresh pages for them); ``blend_levels_`` builds, per sample, only the levels and the part of
  each level its blend reads, in a small buffer that stays in cache, and leaves samples that do
  not shrink untouched; its backward rebuilds the same levels and sends the gradient to the
  images, the grid and the level weights. It agrees with the pure PyTorch pyramid to rounding,
  values and gradients (tested).
* ``uint8`` kernels: ``equalize_uint8`` and ``adjust_sharpness_uint8`` (one pass per image, no
  float copy; :mod:`diffaug.functional.pixel` says how each compares with its PyTorch ops), and
  the nearest warp of ``uint8`` images with constant padding (torchvision's default for
  rotations, affine maps and the augmentation policies): ``warp_nearest_uint8`` reads the
  levels at the grid's nearest pixels and writes ``uint8`` directly, where ``grid_sample`` needs
  a float copy of the images, a float output and a cast back. It picks the pixels
  ``grid_sample`` picks (the same float32 grid points, unnormalised and rounded as
  ``grid_sample`` does; tested against it).

The extension is compiled with ``torch.utils.cpp_extension.load`` the first time it is needed
(a C++ compiler and ninja, about half a minute; one log line on stderr says so), with portable
flags, under a name keyed by its source, flags and torch version (:func:`build_name`), in
PyTorch's build cache (``TORCH_EXTENSIONS_DIR``), where later processes load it without
rebuilding. If that fails the PyTorch ops serve instead (the pyramid, ``grid_sample``) and a
warning says why, once.

``blend_levels_`` (in place, for calls without gradients), ``warp_levels`` (the whole warp, with
its registered backward) and the three uint8 ops are ``torch.library`` custom ops, so a compiled
graph calls the same kernels as eager code and gets the same values.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "kernel",
    "build_name",
    "disabled",
    "is_disabled",
    "serves_uint8",
    "blend_levels_",
    "warp_levels",
    "warp_nearest_uint8",
    "equalize_uint8",
    "adjust_sharpness_uint8",
]

_SOURCE = Path(__file__).with_name("_cpu_kernels.cpp")
_state: dict[str, ModuleType | None | bool] = {"disabled": False}


def is_disabled() -> bool:
    """Whether :class:`disabled` is in force (the pure PyTorch pyramid everywhere)."""
    return bool(_state["disabled"])


def kernel() -> ModuleType | None:
    """The compiled extension, or ``None`` when it is disabled or could not be built."""
    if _state["disabled"]:
        return None
    if "module" not in _state:
        _state["module"] = _build()
    module = _state["module"]
    return module if isinstance(module, ModuleType) else None


# Portable flags: code built for the machine that compiled it (-march=native) would crash another
# CPU sharing the build cache (a cluster's older nodes) with an illegal instruction, which no
# fallback can catch. OpenMP: the kernel's `omp parallel` spreads the samples over torch's threads.
# No contraction into fused multiply-adds: each operation rounds on its own, as PyTorch's ops do, so
# that the nearest warp finds grid_sample's pixels on CPUs that have FMA in their base set (ARM).
# No trapping math: the compiler may then turn the uint8 kernels' float selects into vector code
# (values are unchanged; only floating-point exception flags could differ).
_CFLAGS = ("-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math")
_LDFLAGS = ("-fopenmp",)
# A build takes under a minute; a lock this old was left by a process killed while building, and an
# older torch, whose lock file blocks by merely existing, would wait on it forever.
_STALE_LOCK_SECONDS = 600.0

_logger = logging.getLogger(__name__)


def build_name(source: bytes, flags: Sequence[str], torch_version: str) -> str:
    """The extension's name: keyed by a hash of its source, its compiler flags and torch's version.

    Two checkouts or environments on one machine share PyTorch's build cache; under one fixed name
    each would rebuild the kernel whenever the other had built its own. Keyed this way, equal
    inputs share one build and different ones coexist.

    Examples:
        >>> build_name(b"int f();", ["-O3"], "2.14.1")[:20]
        'diffaug_cpu_kernels_'
        >>> build_name(b"int f();", ["-O3"], "2.14.1") == build_name(b"int f();", ["-O2"], "2.14.1")
        False
    """
    digest = hashlib.sha256()
    for part in (source, "\0".join(flags).encode(), torch_version.encode()):
        digest.update(part)
        digest.update(b"\1")  # a separator: no two splits of one byte string hash alike
    return f"diffaug_cpu_kernels_{digest.hexdigest()[:16]}"


def _cpp_extension() -> ModuleType:
    """``torch.utils.cpp_extension``, imported without its ``No CUDA runtime is found`` warning.

    The module looks for a CUDA toolkit when imported and logs that warning where one is installed
    but no GPU is usable: on a CPU-only machine, about a kernel that needs no CUDA. Only that
    record is dropped, and only while this import runs.
    """

    def not_the_cuda_notice(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No CUDA runtime is found")

    logger = logging.getLogger("torch.utils.cpp_extension")
    logger.addFilter(not_the_cuda_notice)
    try:
        from torch.utils import cpp_extension
    finally:
        logger.removeFilter(not_the_cuda_notice)
    return cpp_extension


def _clear_stale_lock(build_directory: Path) -> None:
    """Remove the build directory's lock file if it is older than any build could be."""
    try:
        lock = build_directory / "lock"
        if time.time() - lock.stat().st_mtime > _STALE_LOCK_SECONDS:
            lock.unlink()
    except OSError:  # no lock: the usual case
        pass


def _build_directory(name: str) -> Path:
    """Where the kernel named ``name`` is built: ``$TORCH_EXTENSIONS_DIR`` (else the user's cache) / python tag / name.

    The Python tag keeps interpreters with other ABIs apart; the name already holds the source,
    the flags and the torch version.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(cache, "torch_extensions")
    python = f"py{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}_cpu"
    directory = Path(root) / python / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _build() -> ModuleType | None:
    try:
        cpp_extension = _cpp_extension()
        source = _SOURCE.read_bytes()
        name = build_name(source, _CFLAGS + _LDFLAGS, torch.__version__)
        build_directory = _build_directory(name)
        _clear_stale_lock(build_directory)
        # Compile a copy kept in the build directory: the build then names the same file whichever
        # checkout asks for it (ninja would rebuild for a source at another path), and a name is
        # only ever built from the source its hash was taken of.
        copy = build_directory / _SOURCE.name
        if not copy.is_file() or copy.read_bytes() != source:
            partial = copy.with_name(f"{copy.name}.{os.getpid()}")  # whole or absent for a concurrent build
            partial.write_bytes(source)
            os.replace(partial, copy)
        if not (build_directory / (name + getattr(cpp_extension, "LIB_EXT", ".so"))).is_file():
            _logger.warning("diffaug: compiling the CPU kernels, once per source and torch version (about 30 s)")
        return cpp_extension.load(
            name=name,
            sources=[str(copy)],
            extra_cflags=list(_CFLAGS),
            extra_ldflags=list(_LDFLAGS),
            build_directory=str(build_directory),
            verbose=False,
        )
    except Exception as error:  # no compiler, no ninja, no writable cache: fall back, say so once
        warnings.warn(
            f"diffaug: the CPU kernels could not be built ({type(error).__name__}: {error}); "
            "antialias=True uses the slower pure PyTorch pyramid, and uint8 nearest warps grid_sample",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


class disabled:
    """Context manager: use PyTorch's ops (the pyramid, ``grid_sample``) even where a kernel would serve (tests, comparisons).

    Examples:
        >>> import torch
        >>> from diffaug.functional import warp
        >>> images, theta = torch.rand(2, 3, 32, 32), torch.eye(2, 3).expand(2, 2, 3)
        >>> with disabled():
        ...     pyramid = warp(images, theta, 8, antialias=True)
        >>> torch.allclose(pyramid, warp(images, theta, 8, antialias=True), atol=1e-5)
        True
    """

    def __enter__(self) -> disabled:
        self._before = _state["disabled"]
        _state["disabled"] = True
        return self

    def __exit__(self, *exc: object) -> None:
        _state["disabled"] = self._before


def _blend_levels(
    out: Tensor, images: Tensor, grid: Tensor, lerp_weights: Tensor, heights: list[int], widths: list[int], border: bool
) -> None:
    """Blend levels ``1 ..`` into ``out`` (level 0's sample) in place: the kernel, or the pyramid.

    ``grid`` is ``(B, 2, h, w)`` (x plane, y plane), ``lerp_weights`` ``(B, L)`` the lerp weight of each
    level, ``heights``/``widths`` the ``L`` level sizes; all contiguous, one dtype, on the CPU.
    """
    module = kernel()
    if module is not None:
        module.blend_levels_(out, images, grid, lerp_weights, heights, widths, border)
        return
    from diffaug.functional.antialias import blend_levels_  # the pyramid, in PyTorch ops

    sizes = list(zip(heights, widths, strict=True))
    blend_levels_(out, images, grid.permute(0, 2, 3, 1), lerp_weights, sizes, "bilinear", "border" if border else "zeros")


blend_levels_ = torch.library.custom_op("diffaug::blend_levels_", mutates_args=("out",))(_blend_levels)


@blend_levels_.register_fake
def _(
    out: Tensor, images: Tensor, grid: Tensor, lerp_weights: Tensor, heights: list[int], widths: list[int], border: bool
) -> None:
    return None


def _padding_enum(border: bool) -> int:
    return 1 if border else 0  # grid_sample's padding modes: 0 zeros, 1 border


def _warp_levels(
    images: Tensor, grid: Tensor, lerp_weights: Tensor, heights: list[int], widths: list[int], border: bool
) -> Tensor:
    """Level 0's ``grid_sample`` with the levels blended in: the whole antialiased warp as one op.

    One op, so that its backward can add the levels' image gradient into ``grid_sample``'s own
    instead of making a second full-size gradient for autograd to sum.
    """
    out = F.grid_sample(images, grid.permute(0, 2, 3, 1), padding_mode="border" if border else "zeros", align_corners=False)
    _blend_levels(out, images, grid, lerp_weights, heights, widths, border)
    return out


def _kernel_backward(
    grad: Tensor, images: Tensor, grid: Tensor, lerp_weights: Tensor, heights: list[int], widths: list[int], border: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``_warp_levels`` to ``images``, ``grid`` (planes) and ``lerp_weights``, by the kernel.

    Level 0's part is ``grid_sample``'s backward of the gradient times what level 0 keeps
    (``prod(1 - lerp_weights[:, 1:])``); the kernel adds the levels' part into it. It rebuilds only the levels
    blended in (non-zero weight), so the gradient of a zero weight is left at 0: the level map is
    flat there, no gradient reaches ``theta`` through it.
    """
    module = kernel()
    assert module is not None  # _backward sends calls without the kernel to _pyramid_backward
    grad = grad.contiguous()
    keep = (1 - lerp_weights[:, 1:]).prod(dim=1)
    d_images, d_grid = torch.ops.aten.grid_sampler_2d_backward(
        grad * keep.view(-1, 1, 1, 1), images, grid.permute(0, 2, 3, 1), 0, _padding_enum(border), False, [True, True]
    )
    d_images = d_images.contiguous()
    d_planes, d_lerp_weights = module.blend_levels_backward(grad, images, grid, lerp_weights, heights, widths, border, d_images)
    return d_images, d_planes + d_grid.permute(0, 3, 1, 2), d_lerp_weights


def _pyramid_backward(
    grad: Tensor, images: Tensor, grid: Tensor, lerp_weights: Tensor, heights: list[int], widths: list[int], border: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The same gradients by autograd through the pyramid in PyTorch ops, the forward recomputed.

    Serves when the kernel is missing, and whenever the backward must itself be differentiable
    (grad mode on inside the backward: ``create_graph=True``, as an R1 penalty or ``gradgradcheck``
    asks): the kernel's backward is a plain function of its inputs, while this one keeps the graph
    from the gradients back to ``grad`` and to the inputs that require grad, so second (and higher)
    derivatives flow through the pyramid's ops.
    """
    from diffaug.functional.antialias import blend_levels_

    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        # An input that needs no gradient (or any input, when no graph is kept) enters as a fresh leaf.
        leaves = [t if create_graph and t.requires_grad else t.detach().requires_grad_() for t in (images, grid, lerp_weights)]
        sizes = list(zip(heights, widths, strict=True))
        padding = "border" if border else "zeros"
        planes = leaves[1].permute(0, 2, 3, 1)
        level0 = F.grid_sample(leaves[0], planes, padding_mode=padding, align_corners=False)
        out = blend_levels_(level0, leaves[0], planes, leaves[2], sizes, "bilinear", padding)
        found = torch.autograd.grad(out, leaves, grad, allow_unused=True, create_graph=create_graph)
    d_images, d_grid, d_lerp_weights = (torch.zeros_like(t) if d is None else d for d, t in zip(found, leaves, strict=True))
    return d_images, d_grid, d_lerp_weights


# For calls that need gradients: the whole warp, with the kernel's backward registered, so eager
# code and compiled graphs run the same kernels both ways.
warp_levels = torch.library.custom_op("diffaug::warp_levels", mutates_args=())(_warp_levels)
_backward_op = torch.library.custom_op("diffaug::warp_levels_backward", mutates_args=())(_kernel_backward)


@warp_levels.register_fake
def _(images: Tensor, grid: Tensor, lerp_weights: Tensor, heights: list[int], widths: list[int], border: bool) -> Tensor:
    return images.new_empty(images.shape[0], images.shape[1], grid.shape[2], grid.shape[3])


@_backward_op.register_fake
def _(
    grad: Tensor, images: Tensor, grid: Tensor, lerp_weights: Tensor, heights: list[int], widths: list[int], border: bool
) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(images), torch.empty_like(grid), torch.empty_like(lerp_weights)


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    images, grid, lerp_weights, heights, widths, border = inputs
    ctx.save_for_backward(images, grid, lerp_weights)
    ctx.levels = (heights, widths, border)  # type: ignore[attr-defined]


def _backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:
    images, grid, lerp_weights = ctx.saved_tensors  # type: ignore[attr-defined]
    # A backward that must itself be differentiable (create_graph) goes through the pyramid's
    # ops; the kernel serves the usual first-order case. Flags only: no tensor value is read.
    higher_order = torch.is_grad_enabled() and any(t.requires_grad for t in (grad, images, grid, lerp_weights))
    backward = _backward_op if kernel() is not None and not higher_order else _pyramid_backward
    d_images, d_grid, d_lerp_weights = backward(grad, images, grid, lerp_weights, *ctx.levels)  # type: ignore[attr-defined]
    return d_images, d_grid, d_lerp_weights, None, None, None


warp_levels.register_autograd(_backward, setup_context=_setup_context)


@torch.compiler.assume_constant_result
def _built() -> bool:
    """Whether the kernels are built (building them on first use), as a constant to a graph being traced.

    The build (logging, file locks) is nothing a graph can hold: while ``torch.compile`` traces,
    this runs as plain Python and the graph keeps its answer.
    """
    return kernel() is not None


def serves_uint8(images: Tensor) -> bool:
    """Whether the kernels serve these images: plain ``uint8`` CPU tensors, with the kernels built and not disabled.

    Reads dtypes, devices and flags only (no pixel).
    """
    if images.dtype != torch.uint8 or images.device.type != "cpu" or type(images) is not Tensor:
        return False
    return not is_disabled() and _built()


def _loaded() -> ModuleType:
    """The built extension, for the uint8 ops: their callers route to them only where :func:`serves_uint8` holds."""
    module = kernel()
    assert module is not None
    return module


@torch.library.custom_op("diffaug::warp_nearest_uint8", mutates_args=())
def warp_nearest_uint8(images: Tensor, columns: Tensor, rows: Tensor, fill: list[int]) -> Tensor:
    """The nearest warp of ``uint8`` images, constant padding with ``fill`` (one level per channel).

    ``columns`` ``(B, 2, w)`` and ``rows`` ``(B, 2, h)``: the two float32 terms whose sum is the
    sampling grid (:func:`diffaug.functional.geometry.grid_terms`).
    """
    return _loaded().warp_nearest_uint8(images, columns, rows, fill)


@warp_nearest_uint8.register_fake
def _(images: Tensor, columns: Tensor, rows: Tensor, fill: list[int]) -> Tensor:
    return images.new_empty(images.shape[0], images.shape[1], rows.shape[2], columns.shape[2])


@torch.library.custom_op("diffaug::equalize_uint8", mutates_args=())
def equalize_uint8(images: Tensor) -> Tensor:
    """Histogram equalisation of ``(B, C, H, W)`` ``uint8`` images, PIL's table."""
    return _loaded().equalize_uint8(images)


@torch.library.custom_op("diffaug::adjust_sharpness_uint8", mutates_args=())
def adjust_sharpness_uint8(images: Tensor, factor: Tensor) -> Tensor:
    """torchvision's ``adjust_sharpness`` of contiguous ``(B, C, H, W)`` ``uint8`` images, a ``(B,)`` float32 factor."""
    return _loaded().adjust_sharpness_uint8(images, factor)


@equalize_uint8.register_fake
def _(images: Tensor) -> Tensor:
    return torch.empty(images.shape, dtype=images.dtype, device=images.device)


@adjust_sharpness_uint8.register_fake
def _(images: Tensor, factor: Tensor) -> Tensor:
    return torch.empty(images.shape, dtype=images.dtype, device=images.device)
