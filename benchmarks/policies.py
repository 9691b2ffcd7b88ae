"""The augmentation policies on one batch: diffaug (per sample, grouped and masked) against a torchvision v2 per-sample loop.

    python benchmarks/policies.py [--shape 64,3,224,224] [--dtype uint8] [--rounds 7] [--threads N]
                                  [--policies trivial,randaugment,autoaugment,augmix]

For each policy the rows are called in turn, round after round (one call per row per round), so
load on a shared machine spreads over them alike; the table shows medians and the ratio to the
torchvision loop (torchvision's transform called on each image: its own draw per image, which is
what per-sample augmentation costs with torchvision). diffaug's rows draw and apply per sample in
one call: ``grouped`` (the default: each stage on the samples that use it) and ``masked``
(``grouped=False``: every stage over the whole batch, for ``torch.compile``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision.transforms.v2 as T

import diffaug as da

Row = tuple[str, Callable[[torch.Tensor], torch.Tensor]]


def _loop(transform: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda images: torch.stack([transform(image) for image in images])


POLICIES = {"trivial": "TrivialAugmentWide", "randaugment": "RandAugment", "autoaugment": "AutoAugment", "augmix": "AugMix"}


def rows() -> dict[str, list[Row]]:
    """Per policy: diffaug's grouped and masked ways, and torchvision's transform called on each image."""
    return {
        key: [
            (f"diffaug {name}()", getattr(da, name)()),
            (f"diffaug {name}(grouped=False)", getattr(da, name)(grouped=False)),
            (f"torchvision {name}(), loop", _loop(getattr(T, name)())),
        ]
        for key, name in POLICIES.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="64,3,224,224")
    parser.add_argument("--dtype", default="uint8", choices=["uint8", "float32"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--policies", default="trivial,randaugment,autoaugment,augmix")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(int(v) for v in args.shape.split(","))
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    if args.dtype == "float32":
        images = images.float() / 255
    print(f"shape {shape} {args.dtype}, {torch.get_num_threads()} threads, {args.rounds} rounds (medians, ms)")
    print("| row | ms | / torchvision loop |")
    print("| --- | ---: | ---: |")
    table = rows()
    for key in args.policies.split(","):
        group = table[key]
        for _, fn in group:
            fn(images)  # warm-up
        times: dict[str, list[float]] = {name: [] for name, _ in group}
        for _ in range(args.rounds):
            for name, fn in group:
                start = time.perf_counter()
                fn(images)
                times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
        baseline = medians[group[-1][0]]
        for name, _ in group:
            print(f"| {name} | {medians[name]:.1f} | {medians[name] / baseline:.2f}x |")


if __name__ == "__main__":
    main()
