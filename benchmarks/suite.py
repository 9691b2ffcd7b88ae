"""The benchmark suite behind ``diffaug bench`` (and ``python benchmarks/run.py``).

It lives beside the package, not in it: ``diffaug bench`` loads this file from the repository
(``diffaug.cli``), so an installed wheel carries no timing code, no goal tables and no profiler
internals.

Measures, in one process, the median of repeated timed calls after warm-up, for each case and
each row (diffaug's transforms, their peers in Kornia and torchvision, the bare ``affine_grid`` +
``grid_sample`` kernel on crops of the same law, and a plain copy of the output size: the memory
floor). Rows are interleaved (one call of each row per round, in a fresh seeded random order) so
that a burst of load on a shared machine hits every row alike and no row always follows the same
neighbour.

Columns: forward time, forward + backward time (gradients to the images, where the row supports
it), peak memory of forward + backward, and the ratios of diffaug's crop and pipeline to each row.
The report is a markdown table on stdout; ``--out`` receives ``bench.json`` and ``bench.png``.

On a GPU (``--device cuda``) calls are timed with CUDA events; the report adds images/s, the
effective bandwidth (bytes read + written per second) against a device-to-device copy measured in
the same run, and a uint8 -> normalised float32 / bfloat16 pipeline case, eager and compiled.

A case is a :class:`Case`: its input and output shapes, a function that builds its rows and the
goals read from its rows' times (:class:`Goal`). Adding one is a function returning a ``Case``
and a line in :func:`default_cases`. Kornia and torchvision rows need those packages
(``pip install -e ".[dev]"``); a row whose peer is missing is left out with a note. Timing lives
here, never in the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import diffaug as da

__all__ = ["Case", "Goal", "Row", "Result", "add_arguments", "default_cases", "main", "measure", "peak_memory", "run"]

# ImageNet statistics, for the uint8 -> normalised case.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

# Row names shared by the table, the goals and the plot.
RRC = "diffaug RandomResizedCrop"
RRC_AA = "diffaug RandomResizedCrop (antialias)"
PIPE = "diffaug RRC+HFlip+Affine"
PIPE_AA = "diffaug RRC+HFlip+Affine (antialias)"
K_SLICE = "Kornia RRC (slice, default)"
K_RESAMPLE = "Kornia RRC (resample)"
K_SEQ = "Kornia Sequential (slice)"
K_SEQ_RESAMPLE = "Kornia Sequential (resample)"
TV_AA = "torchvision v2 RRC per sample (antialias)"
TV_NOAA = "torchvision v2 RRC per sample (no antialias)"
BARE = "bare affine_grid+grid_sample"
COPY = "copy of the output size"


@dataclasses.dataclass(frozen=True)
class Goal:
    """A goal on one case: ``row``'s time divided by ``peer``'s time (``key``: fwd or fwd+bwd) at most ``limit``.

    ``devices`` lists the device types it is set for (the CPU's budgets differ from the GPU's).
    """

    text: str
    row: str
    peer: str
    limit: float
    key: str = "fwd_ms"
    devices: tuple[str, ...] = ("cpu",)


@dataclasses.dataclass(frozen=True)
class Case:
    """A benchmark case: input ``(B, C, H, W)`` of ``dtype``, output ``(h, w)``, its rows and goals.

    ``rows(case, device, compile_)`` builds the timed rows and notes on rows left out; ``goals``
    are read from this run's times. ``backward=False``: forward times only (no peak memory).
    """

    batch: int
    channels: int
    height: int
    width: int
    out: tuple[int, int]
    dtype: torch.dtype = torch.float32
    tag: str = ""
    rows: Callable[[Case, torch.device, bool], tuple[list[Row], list[str]]] = dataclasses.field(
        default=lambda case, device, compile_: geometric_rows(case, device, compile_), compare=False, repr=False
    )
    goals: tuple[Goal, ...] = ()
    backward: bool = True

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def name(self) -> str:
        dtype = str(self.dtype).replace("torch.", "")
        tag = f", {self.tag}" if self.tag else ""
        return f"({self.batch}, {self.channels}, {self.height}, {self.width}) -> {self.out[0]}x{self.out[1]}, {dtype}{tag}"

    def make_input(self, device: torch.device) -> Tensor:
        if self.dtype.is_floating_point:
            return torch.rand(self.shape, device=device, dtype=self.dtype)
        return torch.randint(0, 256, self.shape, device=device, dtype=self.dtype)


@dataclasses.dataclass
class Row:
    """One timed callable. ``fn(images) -> images``; ``backward`` says whether gradients reach the images."""

    name: str
    fn: Callable[[Tensor], Tensor]
    backward: bool = True
    note: str = ""
    bytes_moved: int | None = None  # default: the images read + the output written


@dataclasses.dataclass
class Result:
    name: str
    fwd_ms: float | None = None
    fwdbwd_ms: float | None = None
    peak_mib: float | None = None
    fwd_samples: list[float] = dataclasses.field(default_factory=list)
    fwdbwd_samples: list[float] = dataclasses.field(default_factory=list)
    images_per_s: float | None = None
    bandwidth_gbs: float | None = None
    bytes_moved: int = 0  # images read + output written by one call
    note: str = ""


# ----------------------------------------------------------------------------- rows


def crop(out: tuple[int, int], antialias: bool) -> da.RandomResizedCrop:
    """diffaug's RandomResizedCrop, antialiasing on or off (bilinear, as Kornia's rows)."""
    return da.RandomResizedCrop(out, antialias=antialias)


def pipeline(out: tuple[int, int], antialias: bool = False) -> torch.nn.Module:
    """diffaug's three-op pipeline, fused into one bilinear warp."""
    steps = [crop(out, antialias), da.RandomHorizontalFlip(), da.RandomAffine(degrees=10, p=1.0)]
    return da.Compose(steps, interpolation="bilinear", antialias=antialias)


def _kornia() -> Any:
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    return K


def _crop_thetas(case: Case, device: torch.device, count: int = 16) -> list[Tensor]:
    """Thetas of diffaug's RandomResizedCrop law, drawn once: the bare kernel's inputs."""
    images = torch.empty(case.shape, device=device, dtype=case.dtype)
    generator = torch.Generator(device=device).manual_seed(0)
    law = crop(case.out, antialias=False)
    return [law.make_params(images, generator=generator).theta.to(case.dtype) for _ in range(count)]


def _bare_row(case: Case, device: torch.device) -> Row:
    thetas = _crop_thetas(case, device)
    counter = iter(range(1 << 62))
    size = [case.batch, case.channels, *case.out]

    def bare(images: Tensor) -> Tensor:
        theta = thetas[next(counter) % len(thetas)]
        grid = F.affine_grid(theta, size, align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    return Row(BARE, bare)


def _copy_row(case: Case, device: torch.device) -> Row:
    src = torch.rand(case.batch, case.channels, *case.out, device=device)
    dst = torch.empty_like(src)

    def copy(images: Tensor) -> Tensor:
        return dst.copy_(src)

    return Row(COPY, copy, backward=False, bytes_moved=2 * src.numel() * src.element_size())


def _torchvision_rows(case: Case) -> tuple[list[Row], list[str]]:
    try:
        import torchvision.transforms.v2 as v2
    except ImportError:
        return [], ["torchvision rows: torchvision is not installed"]
    rows = []
    for antialias in (True, False):
        transform = v2.RandomResizedCrop(list(case.out), antialias=antialias)

        def per_sample(images: Tensor, transform: Any = transform) -> Tensor:
            # torchvision draws one crop per call: a per-sample crop needs a Python loop.
            return torch.stack([transform(image) for image in images])

        rows.append(Row(TV_AA if antialias else TV_NOAA, per_sample))
    return rows, []


def geometric_rows(case: Case, device: torch.device, compile_: bool = False) -> tuple[list[Row], list[str]]:
    """The crop and pipeline cases' rows: diffaug, Kornia, torchvision, the bare kernel, the copy."""
    rows = [Row(RRC, crop(case.out, False).to(device)), Row(RRC_AA, crop(case.out, True).to(device))]
    rows += [Row(PIPE, pipeline(case.out, False).to(device)), Row(PIPE_AA, pipeline(case.out, True).to(device))]
    notes: list[str] = []
    K = _kornia()
    if K is None:
        notes.append("Kornia rows: kornia is not installed")
    else:
        rows.append(Row(K_SLICE, K.RandomResizedCrop(case.out).to(device)))
        rows.append(Row(K_RESAMPLE, K.RandomResizedCrop(case.out, cropping_mode="resample").to(device)))
        for name, mode in ((K_SEQ, "slice"), (K_SEQ_RESAMPLE, "resample")):
            seq = K.AugmentationSequential(
                K.RandomResizedCrop(case.out, cropping_mode=mode), K.RandomHorizontalFlip(), K.RandomAffine(degrees=10, p=1.0)
            )
            rows.append(Row(name, seq.to(device)))
    tv_rows, tv_notes = _torchvision_rows(case)
    rows += [*tv_rows, _bare_row(case, device), _copy_row(case, device)]
    return rows, notes + tv_notes


def antialias_rows(case: Case, device: torch.device, compile_: bool = False) -> tuple[list[Row], list[str]]:
    """The antialiasing case's rows: the crop with and without it, torchvision's, the kernel, the copy."""
    rows = [Row(RRC, crop(case.out, False).to(device)), Row(RRC_AA, crop(case.out, True).to(device))]
    tv_rows, notes = _torchvision_rows(case)
    return [*rows, *tv_rows, _bare_row(case, device), _copy_row(case, device)], notes


def normalised_pipeline(pipeline: torch.nn.Module, dtype: torch.dtype, device: torch.device) -> Callable[[Tensor], Tensor]:
    """uint8 images -> pipeline -> ``(x / 255 - mean) / std`` in ``dtype``: a data loader's last step."""
    mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1) * 255.0
    inv_std = 1.0 / (torch.tensor(_STD, device=device).view(1, 3, 1, 1) * 255.0)

    def run(images: Tensor) -> Tensor:
        warped = pipeline(images.to(torch.float32))
        return ((warped - mean) * inv_std).to(dtype)

    return run


def uint8_rows(case: Case, device: torch.device, compile_: bool = True) -> tuple[list[Row], list[str]]:
    """uint8 in, the pipeline, normalised float32 / bfloat16 out, eager (and compiled), and the float copy."""
    warp = pipeline(case.out).to(device)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).replace("torch.", "")
        fn = normalised_pipeline(warp, dtype, device)
        rows.append(Row(f"uint8 -> {name} normalised, eager", fn, backward=False))
        if compile_:
            compiled = torch.compile(fn, fullgraph=True)
            rows.append(Row(f"uint8 -> {name} normalised, compiled", compiled, backward=False))
    return [*rows, _copy_row(case, device)], []


# Row names of the SimCLR case: each names "SimCLR" or "colour pass", so --rows can pick them.
SIMCLR_EXACT = "SimCLR diffaug (exact jitter)"
SIMCLR_FUSED = "SimCLR diffaug (fused jitter)"
K_SIMCLR = "SimCLR Kornia AugmentationSequential"
TV_SIMCLR = "SimCLR torchvision v2 per sample"
JITTER_EXACT = "colour pass: diffaug ColorJitter (exact)"
JITTER_FUSED = "colour pass: diffaug ColorJitter(fused=True)"
K_JITTER = "colour pass: Kornia ColorJitter"


def simclr_pipeline(out: tuple[int, int], fused: bool) -> torch.nn.Module:
    """SimCLR's augmentation, per sample: crop, flip, jitter with p = 0.8, grey with p = 0.2, blur, normalise."""
    return da.Compose(
        [
            da.RandomResizedCrop(out),
            da.RandomHorizontalFlip(),
            da.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, fused=fused),
            da.RandomGrayscale(0.2),
            da.GaussianBlur(23, sigma=(0.1, 2.0)),
            da.Normalize(_MEAN, _STD),
        ]
    )


def simclr_rows(case: Case, device: torch.device, compile_: bool = False) -> tuple[list[Row], list[str]]:
    """The SimCLR case's rows: diffaug (exact and fused jitter), Kornia, a torchvision loop; the colour pass alone."""
    rows = [
        Row(SIMCLR_EXACT, simclr_pipeline(case.out, False).to(device)),
        Row(SIMCLR_FUSED, simclr_pipeline(case.out, True).to(device)),
    ]
    rows += [Row(JITTER_EXACT, da.ColorJitter(0.4, 0.4, 0.4, 0.1).to(device))]
    rows += [Row(JITTER_FUSED, da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True).to(device))]
    notes: list[str] = []
    K = _kornia()
    if K is None:
        notes.append("Kornia rows: kornia is not installed")
    else:
        seq = K.AugmentationSequential(
            K.RandomResizedCrop(case.out),
            K.RandomHorizontalFlip(),
            K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
            K.RandomGaussianBlur((23, 23), (0.1, 2.0), p=1.0),
            K.Normalize(torch.tensor(_MEAN), torch.tensor(_STD)),
        )
        rows += [Row(K_SIMCLR, seq.to(device)), Row(K_JITTER, K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0).to(device))]
    try:
        import torchvision.transforms.v2 as v2
    except ImportError:
        return rows, [*notes, "torchvision rows: torchvision is not installed"]
    transform = v2.Compose(
        [
            v2.RandomResizedCrop(list(case.out)),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.GaussianBlur(23, sigma=(0.1, 2.0)),
            v2.Normalize(list(_MEAN), list(_STD)),
        ]
    )

    def per_sample(images: Tensor) -> Tensor:
        # torchvision draws one set of parameters per call: per-sample draws need a Python loop.
        return torch.stack([transform(image) for image in images])

    return [*rows, Row(TV_SIMCLR, per_sample)], notes


# ----------------------------------------------------------------------------- cases


def geometric_goals(shape: tuple[int, int, int, int]) -> tuple[Goal, ...]:
    """The crop and pipeline goals of a float32 case of ``shape`` (forward times unless said)."""
    small = shape[0] * shape[2] * shape[3] <= 8 * 32 * 32
    goals = [
        # Small inputs: per-call overhead decides, measured against Kornia's default crop.
        Goal("crop <= 0.5x Kornia default crop (fwd)", RRC, K_SLICE, 0.5)
        if small
        else Goal("crop <= 1.25x bare affine_grid+grid_sample (fwd)", RRC, BARE, 1.25),
        Goal("crop <= 1x Kornia resample crop (fwd)", RRC, K_RESAMPLE, 1.0),
        Goal("crop <= 1x Kornia resample crop (fwd+bwd)", RRC, K_RESAMPLE, 1.0, key="fwdbwd_ms"),
        Goal("pipeline <= 0.45x Kornia Sequential (fwd)", PIPE, K_SEQ, 0.45),
        Goal("pipeline <= 0.45x Kornia Sequential, resample crop (fwd)", PIPE, K_SEQ_RESAMPLE, 0.45),
        Goal("pipeline <= 1/3 Kornia Sequential (fwd)", PIPE, K_SEQ, 1 / 3, devices=("cuda",)),
    ]
    if shape == (64, 3, 224, 224):
        goals.append(Goal("pipeline <= 0.4x Kornia Sequential, resample crop (fwd)", PIPE, K_SEQ_RESAMPLE, 0.4))
    if shape == (256, 3, 224, 224):
        goals.append(Goal("pipeline <= 2x the copy floor (fwd)", PIPE, COPY, 2.0, devices=("cuda",)))
    return tuple(goals)


def geometric_case(batch: int, channels: int, height: int, width: int, out: tuple[int, int]) -> Case:
    """A float32 crop and pipeline case (``--cases`` builds these too)."""
    return Case(batch, channels, height, width, out, goals=geometric_goals((batch, channels, height, width)))


def antialias_case() -> Case:
    """Shrinking 448 -> 224: what antialiasing costs."""
    goal = Goal("antialiased crop <= 2x crop (fwd)", RRC_AA, RRC, 2.0)
    return Case(64, 3, 448, 448, (224, 224), tag="antialias", rows=antialias_rows, goals=(goal,))


def uint8_case(device_type: str) -> Case:
    """A data loader's last step: uint8 images, the pipeline, normalised floats (no gradients)."""
    batch = 256 if device_type == "cuda" else 64
    return Case(batch, 3, 224, 224, (224, 224), dtype=torch.uint8, tag="uint8 in", rows=uint8_rows, backward=False)


def simclr_case(batch: int, size: int, out: int) -> Case:
    """SimCLR's per-sample pipeline on float32 images, forward only.

    The goals (0.5x Kornia, 0.35x a torchvision loop) are set on the fused jitter, the mode
    that meets both on this project's CPU. The exact (default) jitter's row is measured beside it
    without a goal: it sits near both limits and crosses one or the other with the machine's load
    (docs/performance.md).
    """
    goals = (
        Goal("SimCLR, fused jitter <= 0.5x Kornia (fwd)", SIMCLR_FUSED, K_SIMCLR, 0.5),
        Goal("SimCLR, fused jitter <= 0.35x torchvision loop (fwd)", SIMCLR_FUSED, TV_SIMCLR, 0.35),
    )
    return Case(batch, 3, size, size, (out, out), tag="SimCLR", rows=simclr_rows, goals=goals, backward=False)


def default_cases(device_type: str) -> list[Case]:
    """The suite: three crop and pipeline cases (four on a GPU), the antialiasing case, the uint8 case (GPU), SimCLR's two."""
    cases = [geometric_case(8, 3, 32, 32, (32, 32)), geometric_case(64, 3, 224, 224, (224, 224))]
    cases.append(geometric_case(256, 3, 64, 64, (64, 64)))
    if device_type != "cpu":
        cases.append(geometric_case(256, 3, 224, 224, (224, 224)))
    cases.append(antialias_case())
    if device_type != "cpu":
        cases.append(uint8_case(device_type))
    cases += [simclr_case(64, 256, 224), simclr_case(256, 96, 64)]
    return cases


# ----------------------------------------------------------------------------- timing


class _Timer:
    """Times one call: wall clock on the CPU, CUDA events (read after the round) on a GPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pending: list[tuple[Any, Any, list[float]]] = []

    def __call__(self, fn: Callable[[], object], into: list[float]) -> None:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            self.pending.append((start, end, into))
        else:
            t0 = time.perf_counter()
            fn()
            into.append((time.perf_counter() - t0) * 1e3)

    def flush(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            for start, end, into in self.pending:
                into.append(float(start.elapsed_time(end)))
            self.pending.clear()


def _forward(row: Row, images: Tensor) -> Callable[[], object]:
    return lambda: row.fn(images)


def _forward_backward(row: Row, images: Tensor, grad: Tensor) -> Callable[[], object]:
    def step() -> None:
        images.grad = None
        row.fn(images).backward(grad)

    return step


def peak_memory(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak memory allocated while ``fn`` runs, above what was allocated before, in MiB.

    CUDA: the caching allocator's peak statistic. CPU: the profiler's allocation records, each of
    which carries the allocator's running total. torch has no public API for that total (the
    public events attribute allocations to whole ops, which misses peaks inside a call by up to 2x
    on the suite's rows), so the CPU path reads the profiler's event tree, a private API; if a torch
    release changes it, the column reads n/a instead of the suite failing.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    # The profiler's backend logs two lines per start and stop on stderr; above its highest level it is quiet.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    from torch.profiler import ProfilerActivity, profile

    try:
        from torch._C._profiler import _EventType
    except ImportError:
        return None
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    records: list[tuple[int, int, int]] = []
    try:
        stack = list(prof.profiler.kineto_results.experimental_event_tree())  # type: ignore[union-attr]
        while stack:
            node = stack.pop()
            if node.tag == _EventType.Allocation:
                fields = node.extra_fields
                if fields.device.type == "cpu":
                    records.append((node.start_time_ns, fields.alloc_size, fields.total_allocated))
            stack.extend(node.children)
    except AttributeError:
        return None
    if not records:
        return 0.0
    records.sort()
    _, first_size, first_total = records[0]
    base = first_total - first_size
    return max(0, max(total for _, _, total in records) - base) / 2**20


def measure(
    rows: Sequence[Row],
    case: Case,
    device: torch.device,
    repeats: int,
    warmup: int,
    backward: bool = True,
    memory: bool = True,
    min_time: float = 0.0,
) -> list[Result]:
    """Median times of every row on one case, rows interleaved in a fresh random order each round.

    ``repeats`` rounds, or more (up to 20x) when that many take less than ``min_time`` seconds.
    Forward + backward and peak memory only where ``backward`` and the case has gradients.
    """
    images = case.make_input(device)
    backward = backward and case.backward
    results = {row.name: Result(row.name, note=row.note) for row in rows}
    grad_images = images.detach().clone().requires_grad_(images.is_floating_point())
    grads: dict[str, Tensor] = {}
    steps: list[tuple[Row, str, Callable[[], object]]] = []
    for row in rows:
        first = row.fn(images)
        moved = images.numel() * images.element_size() + first.numel() * first.element_size()
        results[row.name].bytes_moved = row.bytes_moved if row.bytes_moved is not None else moved
        steps.append((row, "fwd", _forward(row, images)))
        if backward and row.backward and images.is_floating_point():
            out = row.fn(grad_images)
            grads[row.name] = torch.randn_like(out)
            steps.append((row, "fwdbwd", _forward_backward(row, grad_images, grads[row.name])))
    timer = _Timer(device)
    for _ in range(warmup):
        for _, _, step in steps:
            step()
    timer.flush()
    if min_time > 0:
        # Cheap cases get more rounds (up to 20x): medians of small, noisy timings need many samples.
        start = time.perf_counter()
        for _, _, step in steps:
            step()
        timer.flush()
        round_s = max(time.perf_counter() - start, 1e-6)
        repeats = max(repeats, min(20 * repeats, math.ceil(min_time / round_s)))
    # A fresh order every round (seeded: runs are repeatable). A rotation would keep every step
    # behind the same neighbour, and on small cases a call runs measurably slower after some
    # neighbours (their memory traffic evicts its working set), which biased fixed pairs.
    order = random.Random(0)
    for _ in range(repeats):
        for row, kind, step in order.sample(steps, len(steps)):
            result = results[row.name]
            timer(step, result.fwd_samples if kind == "fwd" else result.fwdbwd_samples)
        timer.flush()
    for row, kind, step in steps:
        result = results[row.name]
        if kind == "fwd":
            result.fwd_ms = statistics.median(result.fwd_samples)
        else:
            result.fwdbwd_ms = statistics.median(result.fwdbwd_samples)
            if memory:
                result.peak_mib = peak_memory(step, device)
    return [results[row.name] for row in rows]


def _add_throughput(results: Sequence[Result], case: Case, device: torch.device, repeats: int) -> float:
    """Images/s and effective bandwidth per row; returns the device-to-device copy bandwidth (GB/s)."""
    src = torch.ones(case.shape, device=device, dtype=case.dtype)
    dst = torch.empty_like(src)
    samples: list[float] = []
    timer = _Timer(device)
    for _ in range(3):
        dst.copy_(src)
    for _ in range(max(repeats, 10)):
        timer(lambda: dst.copy_(src), samples)
    timer.flush()
    copy_ms = statistics.median(samples)
    copy_gbs = 2 * src.numel() * src.element_size() / (copy_ms * 1e-3) / 1e9
    for result in results:
        if result.fwd_ms:
            result.images_per_s = case.batch / (result.fwd_ms * 1e-3)
            result.bandwidth_gbs = result.bytes_moved / (result.fwd_ms * 1e-3) / 1e9
    return copy_gbs


# ----------------------------------------------------------------------------- report


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def _table(results: Sequence[Result], cuda: bool, copy_gbs: float | None) -> str:
    by_name = {r.name: r for r in results}
    refs = (RRC, RRC_AA) if PIPE not in by_name else (RRC, PIPE)
    mine = [n for n in refs if n in by_name]
    head = ["row", "fwd ms", "fwd+bwd ms", "peak MiB (fwd+bwd)"]
    for name in mine:
        short = {RRC: "crop", RRC_AA: "antialiased crop", PIPE: "pipeline"}[name]
        head += [f"{short} / row (fwd)", f"{short} / row (fwd+bwd)"]
    if cuda:
        head += ["images/s", "GB/s", "% of copy GB/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.name, _fmt(r.fwd_ms), _fmt(r.fwdbwd_ms), _fmt(r.peak_mib)]
        for name in mine:
            ref = by_name[name]
            cells += [_fmt(_ratio(ref.fwd_ms, r.fwd_ms)), _fmt(_ratio(ref.fwdbwd_ms, r.fwdbwd_ms))]
        if cuda:
            share = 100 * r.bandwidth_gbs / copy_gbs if r.bandwidth_gbs and copy_gbs else None
            cells += [_fmt(r.images_per_s), _fmt(r.bandwidth_gbs), _fmt(share)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclasses.dataclass
class Met:
    """A goal read from one run: its ratio (``None`` if a row is missing) against its limit."""

    goal: Goal
    case: str
    ratio: float | None

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None else self.ratio <= self.goal.limit


@dataclasses.dataclass
class Measured:
    """One case's results in a run."""

    case: Case
    results: list[Result]
    notes: list[str] = dataclasses.field(default_factory=list)
    copy_gbs: float | None = None


def evaluate(report: Sequence[Measured], device_type: str) -> list[Met]:
    """Each case's goals set for ``device_type``, read from the times of this run."""
    out = []
    for entry in report:
        by_name = {r.name: r for r in entry.results}
        for goal in entry.case.goals:
            if device_type not in goal.devices:
                continue
            row, peer = by_name.get(goal.row), by_name.get(goal.peer)
            ratio = _ratio(getattr(row, goal.key), getattr(peer, goal.key)) if row and peer else None
            out.append(Met(goal, entry.case.name, ratio))
    return out


def plot(report: Sequence[Measured], path: Path, title: str) -> bool:
    """Horizontal bars per case (log time axis): forward and forward + backward per row."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    entries = [e for e in report if e.results]
    height = 2.2 + 0.42 * max(len(e.results) for e in entries) * len(entries)
    fig, axes = plt.subplots(len(entries), 1, figsize=(9, height), squeeze=False)
    for ax, entry in zip(axes[:, 0], entries, strict=True):
        results = entry.results[::-1]
        ys = range(len(results))
        fwd = [r.fwd_ms or 0.0 for r in results]
        fb = [r.fwdbwd_ms or 0.0 for r in results]
        ax.barh([y + 0.2 for y in ys], fwd, height=0.4, label="forward", color="#4c72b0")
        ax.barh([y - 0.2 for y in ys], fb, height=0.4, label="forward + backward", color="#dd8452")
        ax.set_yticks(list(ys))
        ax.set_yticklabels([r.name for r in results], fontsize=8)
        ax.set_xscale("log")
        ax.set_title(entry.case.name, fontsize=9)
        ax.set_xlabel("median ms (log scale)", fontsize=8)
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.5 / height))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
    }
    for name in ("torchvision", "kornia"):
        try:
            env[name] = __import__(name).__version__
        except ImportError:
            env[name] = None
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(os, "getloadavg"):
        env["load_before"] = list(os.getloadavg())
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------- entry points


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's options, shared by ``diffaug bench`` and ``benchmarks/run.py``."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", default="bench-out", help="folder for bench.json and bench.png (default: bench-out)")
    parser.add_argument("--repeats", type=int, default=25, help="timed calls per row and mode (default: 25)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per row first (default: 3)")
    parser.add_argument(
        "--min-time", type=float, default=4.0, help="seconds of timed rounds per case at least (up to 20x --repeats; default: 4)"
    )
    parser.add_argument("--quick", action="store_true", help="5 repeats, 1 warm-up: a smoke run, not for numbers")
    parser.add_argument("--no-backward", action="store_true", help="time forward passes only")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--no-plot", action="store_true", help="do not write bench.png")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument(
        "--cases", default=None, help="cases 'B,C,H,W->h' joined by ';', e.g. '8,3,32,32->32;4,3,64,64->32' (default: the suite)"
    )
    parser.add_argument("--rows", default=None, help="comma-separated substrings: keep only rows whose name contains one")
    parser.add_argument(
        "--antialias",
        choices=("auto", "on", "off"),
        default="auto",
        help="the 448->224 case (auto: in the suite, not with --cases)",
    )
    parser.add_argument(
        "--uint8",
        choices=("auto", "on", "off"),
        default="auto",
        help="the uint8 -> normalised case (auto: in the suite on cuda, not with --cases)",
    )
    parser.add_argument("--no-compile", action="store_true", help="uint8 case: eager rows only")
    parser.add_argument("--check", action="store_true", help="exit with status 1 if a goal is missed or cannot be read")


def _parse_cases(text: str) -> list[Case]:
    cases = []
    for part in text.split(";"):
        shape, _, out = part.partition("->")
        dims = [int(v) for v in shape.split(",")]
        if len(dims) != 4 or not out:
            raise ValueError(f"--cases: expected 'B,C,H,W->h' or 'B,C,H,W->h,w', got {part!r}")
        sides = [int(v) for v in out.split(",")]
        cases.append(geometric_case(dims[0], dims[1], dims[2], dims[3], out=(sides[0], sides[-1])))
    return cases


def run(args: argparse.Namespace) -> int:
    """Run the suite with parsed ``args``; print the markdown report, write JSON and PNG."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, warmup, min_time = (5, 1, 0.0) if args.quick else (args.repeats, args.warmup, args.min_time)
    if repeats < 1 or warmup < 0:
        print("--repeats must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    cuda = device.type == "cuda"
    only = [s.strip().lower() for s in args.rows.split(",")] if args.rows else None
    try:
        cases = _parse_cases(args.cases) if args.cases else default_cases(device.type)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    # --antialias / --uint8: "auto" keeps what the cases above have (none of them with --cases).
    for choice, extra in ((args.antialias, antialias_case()), (args.uint8, uint8_case(device.type))):
        if choice == "off":
            cases = [c for c in cases if c.tag != extra.tag]
        elif choice == "on" and all(c.tag != extra.tag for c in cases):
            cases.append(extra)
    env = _environment(device)
    torch.manual_seed(0)

    report: list[Measured] = []
    for case in cases:
        print(f"[bench] {case.name}", file=sys.stderr, flush=True)
        rows, notes = case.rows(case, device, not args.no_compile)
        if only:
            rows = [r for r in rows if any(o in r.name.lower() for o in only)]
        if not rows:
            continue
        results = measure(
            rows, case, device, repeats, warmup, backward=not args.no_backward, memory=not args.no_memory, min_time=min_time
        )
        copy_gbs = _add_throughput(results, case, device, repeats) if cuda else None
        report.append(Measured(case, results, notes, copy_gbs))

    if hasattr(os, "getloadavg"):
        env["load_after"] = list(os.getloadavg())
    met = evaluate(report, device.type)
    print(_markdown(report, met, env, cuda))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "settings": {"repeats": repeats, "warmup": warmup, "min_time": min_time, "backward": not args.no_backward},
        "cases": [
            {
                "case": e.case.name,
                "shape": list(e.case.shape),
                "out": list(e.case.out),
                "dtype": str(e.case.dtype),
                "copy_gbs": e.copy_gbs,
                "notes": e.notes,
                "rows": [dataclasses.asdict(r) for r in e.results],
            }
            for e in report
        ],
        "goals": [{"goal": m.goal.text, "case": m.case, "ratio": m.ratio, "limit": m.goal.limit, "met": m.met} for m in met],
    }
    (out / "bench.json").write_text(json.dumps(payload, indent=1))
    wrote = [str(out / "bench.json")]
    if not args.no_plot and report:
        title = f"diffaug bench, {env.get('gpu') or env['cpu']}, torch {env['torch']}, {env['threads']} threads"
        if plot(report, out / "bench.png", title):
            wrote.append(str(out / "bench.png"))
        else:
            print("[bench] matplotlib is not installed: no plot", file=sys.stderr)
    print(f"[bench] wrote {', '.join(wrote)}", file=sys.stderr)
    missed = [m for m in met if not m.met]
    if args.check and missed:
        print(f"[bench] {len(missed)} goal(s) missed or not read: {'; '.join(m.goal.text for m in missed)}", file=sys.stderr)
        return 1
    return 0


def _markdown(report: Sequence[Measured], met: Sequence[Met], env: dict[str, Any], cuda: bool) -> str:
    where = env.get("gpu") or f"{env['cpu']}, {env['threads']} threads"
    lines = [
        f"## diffaug bench: {where}",
        "",
        f"torch {env['torch']}, torchvision {env['torchvision']}, kornia {env['kornia']}; "
        "median of timed calls, rows interleaved. Ratios are diffaug's time divided by the row's (below 1: diffaug is faster).",
    ]
    for entry in report:
        lines += ["", f"### {entry.case.name}", "", _table(entry.results, cuda, entry.copy_gbs)]
        if entry.copy_gbs:
            lines.append(f"\nDevice-to-device copy: {entry.copy_gbs:.0f} GB/s.")
        for note in entry.notes:
            lines.append(f"\n- left out: {note}")
    if met:
        lines += ["", "### Goals", "", "| goal | case | ratio | limit | met |", "|---|---|---|---|---|"]
        for m in met:
            verdict = "n/a" if m.met is None else ("yes" if m.met else "**no**")
            lines.append(f"| {m.goal.text} | {m.case} | {_fmt(m.ratio)} | {m.goal.limit:.3g} | {verdict} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffaug bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the suite."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
