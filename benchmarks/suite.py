"""The benchmark suite behind ``diffaug bench`` (and ``python benchmarks/run.py``).

Measures, in one process, the median of repeated timed calls after warm-up, for each case
``(B, C, H, W) -> (h, w)`` and each row (diffaug's transforms, their peers in Kornia and
torchvision, the bare ``affine_grid`` + ``grid_sample`` kernel on crops of the same law, and a
plain copy of the output size: the memory floor). Rows are interleaved (one call of each row per
round, in a fresh seeded random order) so that a burst of load on a shared machine hits every row
alike and no row always follows the same neighbour.

Columns: forward time, forward + backward time (gradients to the images, where the row supports
it), peak memory of forward + backward, and the ratios of diffaug's crop and pipeline to each row.
The report is a markdown table on stdout; ``--out`` receives ``bench.json`` and ``bench.png``.

On a GPU (``--device cuda``) calls are timed with CUDA events; the report adds images/s, the
effective bandwidth (bytes read + written per second) against a device-to-device copy measured in
the same run, and a uint8 -> normalised float32 / bfloat16 pipeline case, eager and compiled.

Kornia and torchvision rows need those packages (``pip install -e ".[dev]"``); a row whose peer is
missing is left out with a note. Timing lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import inspect
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

__all__ = ["Case", "Row", "add_arguments", "main", "run", "measure", "peak_memory"]

# ImageNet statistics, for the uint8 -> normalised case.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Case:
    """A benchmark case: input ``(B, C, H, W)`` and output ``(h, w)`` float images."""

    batch: int
    channels: int
    height: int
    width: int
    out: tuple[int, int]
    dtype: torch.dtype = torch.float32
    tag: str = ""

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def name(self) -> str:
        dtype = str(self.dtype).replace("torch.", "")
        tag = f", {self.tag}" if self.tag else ""
        return f"({self.batch}, {self.channels}, {self.height}, {self.width}) -> {self.out[0]}x{self.out[1]}, {dtype}{tag}"


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


def default_cases(device: str) -> list[Case]:
    cases = [
        Case(8, 3, 32, 32, (32, 32)),
        Case(64, 3, 224, 224, (224, 224)),
        Case(256, 3, 64, 64, (64, 64)),
    ]
    if device != "cpu":
        cases.append(Case(256, 3, 224, 224, (224, 224)))
    return cases


def antialias_case() -> Case:
    return Case(64, 3, 448, 448, (224, 224), tag="antialias")


# ----------------------------------------------------------------------------- rows


def _has_antialias(cls: type) -> bool:
    return "antialias" in inspect.signature(cls).parameters


def _crop(out: tuple[int, int], antialias: bool) -> torch.nn.Module | None:
    """diffaug's RandomResizedCrop with antialiasing on or off (``None`` if this version cannot)."""
    import diffaug as da

    if _has_antialias(da.RandomResizedCrop):
        return da.RandomResizedCrop(out, antialias=antialias)  # type: ignore[call-arg]
    return None if antialias else da.RandomResizedCrop(out)


def _pipeline(out: tuple[int, int], antialias: bool = False) -> torch.nn.Module | None:
    """diffaug's three-op pipeline, when the transforms exist in this version."""
    import diffaug as da

    names = ("Compose", "RandomHorizontalFlip", "RandomAffine")
    crop = _crop(out, antialias)
    if crop is None or not all(hasattr(da, n) for n in names):
        return None
    steps = [crop, da.RandomHorizontalFlip(), da.RandomAffine(degrees=10, p=1.0)]  # type: ignore[attr-defined]
    if _has_antialias(da.Compose):  # type: ignore[attr-defined]
        return da.Compose(steps, antialias=antialias)  # type: ignore[attr-defined]
    return da.Compose(steps)  # type: ignore[attr-defined]


def _kornia() -> Any:
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    return K


def _crop_thetas(case: Case, device: torch.device, count: int = 16) -> list[Tensor]:
    """Thetas of diffaug's RandomResizedCrop law, drawn once: the bare kernel's inputs."""
    import diffaug as da

    crop = da.RandomResizedCrop(case.out)
    images = torch.empty(case.shape, device=device, dtype=case.dtype)
    generator = torch.Generator(device=device).manual_seed(0)
    return [crop.make_params(images, generator=generator).theta.to(case.dtype) for _ in range(count)]


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
    src = torch.rand(case.batch, case.channels, *case.out, device=device, dtype=case.dtype)
    dst = torch.empty_like(src)

    def copy(images: Tensor) -> Tensor:
        return dst.copy_(src)

    return Row(COPY, copy, backward=False, bytes_moved=2 * src.numel() * src.element_size())


def _torchvision_row(case: Case, antialias: bool) -> Row | None:
    try:
        import torchvision.transforms.v2 as v2
    except ImportError:
        return None
    transform = v2.RandomResizedCrop(list(case.out), antialias=antialias)

    def per_sample(images: Tensor) -> Tensor:
        # torchvision draws one crop per call: a per-sample crop needs a Python loop.
        return torch.stack([transform(image) for image in images])

    return Row(TV_AA if antialias else TV_NOAA, per_sample)


def build_rows(case: Case, device: torch.device, only: Sequence[str] | None = None) -> tuple[list[Row], list[str]]:
    """The rows of one case, and notes on rows left out."""
    notes: list[str] = []
    rows: list[Row] = []
    crop = _crop(case.out, antialias=False)
    assert crop is not None
    rows.append(Row(RRC, crop.to(device)))
    crop_aa = _crop(case.out, antialias=True)
    if crop_aa is None:
        notes.append(f"{RRC_AA}: this version of diffaug has no antialias option")
    else:
        rows.append(Row(RRC_AA, crop_aa.to(device)))
    if case.tag != "antialias":
        for name, antialias in ((PIPE, False), (PIPE_AA, True)):
            pipeline = _pipeline(case.out, antialias)
            if pipeline is None:
                notes.append(f"{name}: Compose/RandomHorizontalFlip/RandomAffine (or antialias) are not in this diffaug")
            else:
                rows.append(Row(name, pipeline.to(device)))
    K = _kornia()
    if K is None:
        notes.append("Kornia rows: kornia is not installed")
    elif case.tag != "antialias":
        size = case.out
        rows.append(Row(K_SLICE, K.RandomResizedCrop(size).to(device)))
        rows.append(Row(K_RESAMPLE, K.RandomResizedCrop(size, cropping_mode="resample").to(device)))
        for name, mode in ((K_SEQ, "slice"), (K_SEQ_RESAMPLE, "resample")):
            seq = K.AugmentationSequential(
                K.RandomResizedCrop(size, cropping_mode=mode), K.RandomHorizontalFlip(), K.RandomAffine(degrees=10, p=1.0)
            )
            rows.append(Row(name, seq.to(device)))
    for antialias in (True, False):
        row = _torchvision_row(case, antialias)
        if row is None:
            notes.append("torchvision rows: torchvision is not installed")
            break
        rows.append(row)
    rows.append(_bare_row(case, device))
    rows.append(_copy_row(case, device))
    if only:
        rows = [r for r in rows if any(o.lower() in r.name.lower() for o in only)]
    return rows, notes


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


def peak_memory(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory allocated while ``fn`` runs, above what was allocated before, in MiB.

    CUDA: the caching allocator's peak statistic. CPU: the profiler's allocation records, each of
    which carries the allocator's running total.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    records: list[tuple[int, int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())  # type: ignore[union-attr]
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            fields = node.extra_fields
            if fields.device.type == "cpu":
                records.append((node.start_time_ns, fields.alloc_size, fields.total_allocated))
        stack.extend(node.children)
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
    make_input: Callable[[], Tensor] | None = None,
    min_time: float = 0.0,
) -> list[Result]:
    """Median times of every row on one case, rows interleaved in a fresh random order each round.

    ``repeats`` rounds, or more (up to 20x) when that many take less than ``min_time`` seconds.
    """
    images = torch.rand(case.shape, device=device, dtype=case.dtype) if make_input is None else make_input()
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


# ----------------------------------------------------------------------------- uint8 case


def normalised_pipeline(pipeline: torch.nn.Module, dtype: torch.dtype, device: torch.device) -> Callable[[Tensor], Tensor]:
    """uint8 images -> pipeline -> ``(x / 255 - mean) / std`` in ``dtype``: a data loader's last step."""
    mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1) * 255.0
    inv_std = 1.0 / (torch.tensor(_STD, device=device).view(1, 3, 1, 1) * 255.0)

    def run(images: Tensor) -> Tensor:
        warped = pipeline(images.to(torch.float32))
        return ((warped - mean) * inv_std).to(dtype)

    return run


def uint8_rows(case: Case, device: torch.device, compile_: bool) -> tuple[list[Row], list[str]]:
    pipeline = _pipeline(case.out)
    notes = []
    if pipeline is None:
        notes.append("uint8 case: the pipeline transforms are not in this version; RandomResizedCrop alone is used")
        pipeline = _crop(case.out, antialias=False)
        assert pipeline is not None
    pipeline = pipeline.to(device)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).replace("torch.", "")
        fn = normalised_pipeline(pipeline, dtype, device)
        rows.append(Row(f"uint8 -> {name} normalised, eager", fn, backward=False))
        if compile_:
            compiled = torch.compile(fn, fullgraph=True)
            rows.append(Row(f"uint8 -> {name} normalised, compiled", compiled, backward=False))
    return rows, notes


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
class Goal:
    text: str
    case: str
    ratio: float | None
    limit: float

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None else self.ratio <= self.limit


def goals(report: list[dict[str, Any]], device: str) -> list[Goal]:
    """The issue's goals, evaluated on the ratios of this run (forward times)."""
    out: list[Goal] = []
    for entry in report:
        case: Case = entry["case_obj"]
        r = {x.name: x for x in entry["results"]}
        if case.tag == "antialias":
            if device == "cpu":
                ratio = _ratio(r[RRC_AA].fwd_ms, r[RRC].fwd_ms) if RRC_AA in r and RRC in r else None
                out.append(Goal("antialiased crop <= 2x crop (fwd)", case.name, ratio, 2.0))
            continue
        if case.tag:
            continue

        def both(name: str, key: str, r: dict[str, Result] = r) -> float | None:
            return getattr(r[name], key) if name in r else None

        def fwd(name: str) -> float | None:
            return both(name, "fwd_ms")

        small = case.batch * case.height * case.width <= 8 * 32 * 32
        if device == "cpu":
            if small:
                out.append(Goal("crop <= 0.3x Kornia default crop (fwd)", case.name, _ratio(fwd(RRC), fwd(K_SLICE)), 0.3))
            else:
                out.append(Goal("crop <= 1.25x bare affine_grid+grid_sample (fwd)", case.name, _ratio(fwd(RRC), fwd(BARE)), 1.25))
            for key, label in (("fwd_ms", "fwd"), ("fwdbwd_ms", "fwd+bwd")):
                ratio = _ratio(both(RRC, key), both(K_RESAMPLE, key))
                out.append(Goal(f"crop <= 1x Kornia resample crop ({label})", case.name, ratio, 1.0))
            out.append(Goal("pipeline <= 0.45x Kornia Sequential (fwd)", case.name, _ratio(fwd(PIPE), fwd(K_SEQ)), 0.45))
            vs_resample = _ratio(fwd(PIPE), fwd(K_SEQ_RESAMPLE))
            out.append(Goal("pipeline <= 0.45x Kornia Sequential, resample crop (fwd)", case.name, vs_resample, 0.45))
            if case.shape == (64, 3, 224, 224):
                out.append(Goal("pipeline <= 0.4x Kornia Sequential, resample crop (fwd)", case.name, vs_resample, 0.4))
        else:
            if case.shape == (256, 3, 224, 224):
                out.append(Goal("pipeline <= 2x the copy floor (fwd)", case.name, _ratio(fwd(PIPE), fwd(COPY)), 2.0))
            out.append(Goal("pipeline <= 1/3 Kornia Sequential (fwd)", case.name, _ratio(fwd(PIPE), fwd(K_SEQ)), 1 / 3))
    return out


def plot(report: list[dict[str, Any]], path: Path, title: str) -> bool:
    """Horizontal bars per case (log time axis): forward and forward + backward per row."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    entries = [e for e in report if e["results"]]
    height = 2.2 + 0.42 * max(len(e["results"]) for e in entries) * len(entries)
    fig, axes = plt.subplots(len(entries), 1, figsize=(9, height), squeeze=False)
    for ax, entry in zip(axes[:, 0], entries, strict=True):
        results = entry["results"][::-1]
        ys = range(len(results))
        fwd = [r.fwd_ms or 0.0 for r in results]
        fb = [r.fwdbwd_ms or 0.0 for r in results]
        ax.barh([y + 0.2 for y in ys], fwd, height=0.4, label="forward", color="#4c72b0")
        ax.barh([y - 0.2 for y in ys], fb, height=0.4, label="forward + backward", color="#dd8452")
        ax.set_yticks(list(ys))
        ax.set_yticklabels([r.name for r in results], fontsize=8)
        ax.set_xscale("log")
        ax.set_title(entry["case_obj"].name, fontsize=9)
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
        "--antialias", choices=("auto", "on", "off"), default="auto", help="the 448->224 case (auto: on without --cases)"
    )
    parser.add_argument(
        "--uint8", choices=("auto", "on", "off"), default="auto", help="the uint8 -> normalised case (auto: on for cuda only)"
    )
    parser.add_argument("--no-compile", action="store_true", help="uint8 case: eager rows only")


def _parse_cases(text: str) -> list[Case]:
    cases = []
    for part in text.split(";"):
        shape, _, out = part.partition("->")
        dims = [int(v) for v in shape.split(",")]
        if len(dims) != 4 or not out:
            raise ValueError(f"--cases: expected 'B,C,H,W->h' or 'B,C,H,W->h,w', got {part!r}")
        sides = [int(v) for v in out.split(",")]
        cases.append(Case(dims[0], dims[1], dims[2], dims[3], out=(sides[0], sides[-1])))
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
    only = [s.strip() for s in args.rows.split(",")] if args.rows else None
    cases = _parse_cases(args.cases) if args.cases else default_cases(device.type)
    import diffaug as da

    if args.antialias == "on" or (args.antialias == "auto" and not args.cases and _has_antialias(da.RandomResizedCrop)):
        cases.append(antialias_case())
    env = _environment(device)
    torch.manual_seed(0)

    report: list[dict[str, Any]] = []
    for case in cases:
        print(f"[bench] {case.name}", file=sys.stderr, flush=True)
        rows, notes = build_rows(case, device, only)
        results = measure(
            rows, case, device, repeats, warmup, backward=not args.no_backward, memory=not args.no_memory, min_time=min_time
        )
        copy_gbs = _add_throughput(results, case, device, repeats) if cuda else None
        report.append({"case_obj": case, "results": results, "notes": notes, "copy_gbs": copy_gbs})

    uint8 = args.uint8 == "on" or (args.uint8 == "auto" and cuda)
    if uint8:
        batch = 256 if cuda else 64
        big = Case(batch, 3, 224, 224, (224, 224), dtype=torch.uint8, tag="uint8 in")
        print(f"[bench] {big.name}", file=sys.stderr, flush=True)
        rows, notes = uint8_rows(big, device, compile_=not args.no_compile)
        rows.append(_copy_row(dataclasses.replace(big, dtype=torch.float32), device))

        def make_input() -> Tensor:
            return torch.randint(0, 256, big.shape, device=device, dtype=torch.uint8)

        results = measure(rows, big, device, repeats, warmup, backward=False, memory=False, make_input=make_input)
        copy_gbs = _add_throughput(results, big, device, repeats) if cuda else None
        report.append({"case_obj": big, "results": results, "notes": notes, "copy_gbs": copy_gbs})

    if hasattr(os, "getloadavg"):
        env["load_after"] = list(os.getloadavg())
    goal_list = goals(report, device.type)
    text = _markdown(report, goal_list, env, cuda)
    print(text)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "settings": {"repeats": repeats, "warmup": warmup, "min_time": min_time, "backward": not args.no_backward},
        "cases": [
            {
                "case": e["case_obj"].name,
                "shape": list(e["case_obj"].shape),
                "out": list(e["case_obj"].out),
                "dtype": str(e["case_obj"].dtype),
                "copy_gbs": e["copy_gbs"],
                "notes": e["notes"],
                "rows": [dataclasses.asdict(r) for r in e["results"]],
            }
            for e in report
        ],
        "goals": [{"goal": g.text, "case": g.case, "ratio": g.ratio, "limit": g.limit, "met": g.met} for g in goal_list],
    }
    (out / "bench.json").write_text(json.dumps(payload, indent=1))
    wrote = [str(out / "bench.json")]
    if not args.no_plot:
        title = f"diffaug bench, {env.get('gpu') or env['cpu']}, torch {env['torch']}, {env['threads']} threads"
        if plot(report, out / "bench.png", title):
            wrote.append(str(out / "bench.png"))
        else:
            print("[bench] matplotlib is not installed: no plot", file=sys.stderr)
    print(f"[bench] wrote {', '.join(wrote)}", file=sys.stderr)
    return 0


def _markdown(report: list[dict[str, Any]], goal_list: list[Goal], env: dict[str, Any], cuda: bool) -> str:
    where = env.get("gpu") or f"{env['cpu']}, {env['threads']} threads"
    lines = [
        f"## diffaug bench: {where}",
        "",
        f"torch {env['torch']}, torchvision {env['torchvision']}, kornia {env['kornia']}; "
        "median of timed calls, rows interleaved. Ratios are diffaug's time divided by the row's (below 1: diffaug is faster).",
    ]
    for entry in report:
        lines += ["", f"### {entry['case_obj'].name}", "", _table(entry["results"], cuda, entry["copy_gbs"])]
        if entry["copy_gbs"]:
            lines.append(f"\nDevice-to-device copy: {entry['copy_gbs']:.0f} GB/s.")
        for note in entry["notes"]:
            lines.append(f"\n- left out: {note}")
    if goal_list:
        lines += ["", "### Goals", "", "| goal | case | ratio | limit | met |", "|---|---|---|---|---|"]
        for g in goal_list:
            met = "n/a" if g.met is None else ("yes" if g.met else "**no**")
            lines.append(f"| {g.text} | {g.case} | {_fmt(g.ratio)} | {g.limit:.3g} | {met} |")
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
