"""The CPU uint8 kernels against the PyTorch ops they replace, interleaved in one process.

    python benchmarks/uint8_kernels.py [--batch 64] [--size 224] [--rounds 9] [--threads 1]

Each round times every row once with the kernels and once inside ``_cpu_kernels.disabled()``
(the PyTorch ops: ``grid_sample`` on a float copy, ``scatter_add`` and ``gather``, the separable
box sum), the two in turn and in alternating order, so that a busy machine (and the memory the
previous call left) affects both alike; the table gives medians. Rows: the nearest warp
of a uint8 batch (``RandomRotation(30)``, torchvision's default interpolation), ``equalize`` and
``adjust_sharpness`` of a block of 4 images (the size the policies work in), and the two policies
whose default ops use all three, ``TrivialAugmentWide`` and ``RandAugment``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import diffaug as da
from diffaug.functional import _cpu_kernels, pixel


def rows(images: torch.Tensor) -> dict[str, Callable[[int], object]]:
    block, factor = images[:4].clone(), torch.full((4,), 1.3)
    rotation, trivial, randaugment = da.RandomRotation(30), da.TrivialAugmentWide(), da.RandAugment()

    def seeded(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    return {
        f"RandomRotation(30), {tuple(images.shape)}": lambda seed: rotation(images, generator=seeded(seed)),
        f"equalize, {tuple(block.shape)}": lambda seed: pixel.equalize(block),
        f"adjust_sharpness, {tuple(block.shape)}": lambda seed: pixel.adjust_sharpness(block, factor),
        "TrivialAugmentWide()": lambda seed: trivial(images, generator=seeded(seed)),
        "RandAugment()": lambda seed: randaugment(images, generator=seeded(seed)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if _cpu_kernels.kernel() is None:
        raise SystemExit("the CPU kernels could not be built here: nothing to compare")
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8, generator=generator)
    timed = rows(images)
    times: dict[tuple[str, str], list[float]] = {}
    for fn in timed.values():  # warm-up, both ways
        fn(0)
        with _cpu_kernels.disabled():
            fn(0)
    for seed in range(args.rounds):
        for name, fn in timed.items():
            # Which way goes first alternates from round to round: each follows the other equally often.
            for way in ("kernels", "PyTorch ops")[:: 1 if seed % 2 == 0 else -1]:
                start = time.perf_counter()
                if way == "kernels":
                    fn(seed)
                else:
                    with _cpu_kernels.disabled():
                        fn(seed)
                times.setdefault((name, way), []).append(time.perf_counter() - start)
    print(f"uint8, {torch.get_num_threads()} threads, {args.rounds} rounds, torch {torch.__version__} (medians, ms)")
    print("| row | kernels | PyTorch ops | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name in timed:
        kernels = statistics.median(times[(name, "kernels")]) * 1e3
        ops = statistics.median(times[(name, "PyTorch ops")]) * 1e3
        print(f"| {name} | {kernels:.2f} | {ops:.2f} | {kernels / ops:.2f}x |")


if __name__ == "__main__":
    main()
