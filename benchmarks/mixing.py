"""MixUp, CutMix and RandomErasing against a RandomResizedCrop of the same batch.

Run from a checkout: ``python benchmarks/mixing.py`` (defaults: a (64, 3, 224, 224) float32
batch, ``diffaug.RandomResizedCrop(224)``, 21 rounds). Each round times every case once, in
turn, so that a busy CPU slows them alike; the table gives each case's median time and its
ratio to the crop's median (and the median of the per-round ratios). The numbers quoted in
``docs/mixing.md`` come from this script.

Cases, each a full forward call (params drawn, images changed, labels mixed):

* ``RandomResizedCrop(224)``: the reference;
* ``MixUp`` / ``CutMix`` with 1000 classes and integer labels;
* ``RandomErasing(p=1)``;
* ``clone``: ``images.clone()``, the cost of writing one new batch-sized tensor (a floor for any
  transform that returns new images);
* ``MixUp.make_params`` / ``CutMix.make_params``: the per-sample draws alone;
* ``MixUp.transform`` / ``CutMix.transform``: the images alone, for params drawn once;
* with ``--inductor``, the same two compiled by ``torch.compile`` (Inductor fuses the partners'
  gather into the blend; compiling takes about a minute on a 2-core CPU);
* with ``--antialias-crop``, ``RandomResizedCrop(size, antialias=True)`` of a batch of twice the
  side (a (64, 3, 448, 448) input for the default size): a heavier, more typical crop to compare
  with (its row's ratio is to the first crop like every row's).

The last column divides by ``clone``: how far each case is above the cost of writing one new batch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import diffaug as da  # noqa: E402


def cases(
    images: torch.Tensor, labels: torch.Tensor, size: int, inductor: bool, antialias_crop: bool = False
) -> dict[str, Callable[[], object]]:
    crop = da.RandomResizedCrop(size)
    mixup, cutmix = da.MixUp(num_classes=1000), da.CutMix(num_classes=1000)
    erasing = da.RandomErasing(p=1.0)
    mix_params, cut_params = mixup.make_params(images), cutmix.make_params(images)
    extra: dict[str, Callable[[], object]] = {}
    if inductor:
        mix_compiled, cut_compiled = torch.compile(mixup.transform), torch.compile(cutmix.transform)
        extra = {
            "MixUp.transform, Inductor": lambda: mix_compiled(images, mix_params),
            "CutMix.transform, Inductor": lambda: cut_compiled(images, cut_params),
        }
    if antialias_crop:
        large = torch.rand(images.shape[0], 3, 2 * size, 2 * size)
        heavy = da.RandomResizedCrop(size, antialias=True)
        extra[f"RandomResizedCrop({size}, antialias=True) of {2 * size}"] = lambda: heavy(large)
    return {
        f"RandomResizedCrop({size})": lambda: crop(images),
        "MixUp": lambda: mixup(images, labels),
        "CutMix": lambda: cutmix(images, labels),
        "RandomErasing(p=1)": lambda: erasing(images),
        "clone": lambda: images.clone(),
        "MixUp.make_params": lambda: mixup.make_params(images),
        "CutMix.make_params": lambda: cutmix.make_params(images),
        "MixUp.transform": lambda: mixup.transform(images, mix_params),
        "CutMix.transform": lambda: cutmix.transform(images, cut_params),
        **extra,
    }


def run(batch: int, size: int, rounds: int, warmup: int, inductor: bool = False, antialias_crop: bool = False) -> str:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=generator)
    labels = torch.randint(0, 1000, (batch,), generator=generator)
    timed = cases(images, labels, size, inductor, antialias_crop)
    for fn in timed.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in timed}
    with torch.no_grad():
        for _ in range(rounds):
            for name, fn in timed.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    reference = next(iter(timed))
    lines = [
        f"({batch}, 3, {size}, {size}) float32, {torch.get_num_threads()} threads, {rounds} rounds, torch {torch.__version__}",
        "",
        "| case | median ms | / crop (medians) | / crop (median of per-round ratios) | / clone (medians) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    crop_median, clone_median = statistics.median(times[reference]), statistics.median(times["clone"])
    for name, values in times.items():
        ratios = [value / crop for value, crop in zip(values, times[reference], strict=True)]
        median = statistics.median(values)
        lines.append(
            f"| {name} | {median * 1e3:.2f} | {median / crop_median:.3f} | {statistics.median(ratios):.3f} "
            f"| {median / clone_median:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--inductor", action="store_true", help="also time the transforms compiled by torch.compile")
    parser.add_argument(
        "--antialias-crop", action="store_true", help="also time an antialiased crop of a batch of twice the side"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(run(args.batch, args.size, args.rounds, args.warmup, args.inductor, args.antialias_crop))


if __name__ == "__main__":
    main()
