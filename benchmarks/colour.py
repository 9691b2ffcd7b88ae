"""The colour pass alone: ColorJitter(0.4, 0.4, 0.4, 0.1) on a (64, 3, 224, 224) float32 batch.

Run from a checkout: ``python benchmarks/colour.py`` (``--batch``, ``--size``, ``--repeats``,
``--threads``). Rows, each drawing new per-sample parameters every call (forward only):

* diffaug ``ColorJitter``, exact (torchvision's clamps after each op and HSV hue, batched);
* diffaug ``ColorJitter(fused=True)`` (one colour matrix per sample, one pass);
* diffaug ``Compose([ColorJitter(fused=True), ToDtype, Normalize])`` on the uint8 batch (one pass);
* Kornia's ``ColorJitter`` (per sample by default);
* torchvision v2's ``ColorJitter`` in a Python loop over the samples (one draw per sample);
* a bare per-sample 3 x 4 matrix by ``einsum`` (the cost of touching every pixel once).

Prints a Markdown table of medians (the one quoted in ``docs/colour.md``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (allocations, lazy imports)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import kornia.augmentation as K
    import torchvision.transforms.v2 as T

    import diffaug as da

    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size)
    raw = (images * 255).round().to(torch.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    exact = da.ColorJitter(0.4, 0.4, 0.4, 0.1)
    fused = da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True)
    pipeline = da.Compose([fused, da.ToDtype(torch.float32, scale=True), da.Normalize(mean, std)])
    kornia_jitter = K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)
    tv_jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    matrices = torch.rand(args.batch, 3, 4)

    rows: list[tuple[str, Callable[[], object]]] = [
        ("diffaug ColorJitter (exact)", lambda: exact(images)),
        ("diffaug ColorJitter(fused=True)", lambda: fused(images)),
        ("diffaug uint8 -> fused jitter + ToDtype + Normalize", lambda: pipeline(raw)),
        ("Kornia ColorJitter", lambda: kornia_jitter(images)),
        ("torchvision v2 ColorJitter, loop over samples", lambda: torch.stack([tv_jitter(x) for x in images])),
        ("bare per-sample 3x4 matrix (einsum)", lambda: torch.einsum("bij,bjhw->bihw", matrices[..., :3], images)),
    ]
    with torch.inference_mode():
        results = [(name, _median_ms(fn, args.repeats)) for name, fn in rows]
    kornia_ms = dict(results)["Kornia ColorJitter"]
    loop_ms = dict(results)["torchvision v2 ColorJitter, loop over samples"]
    load = os.getloadavg()[0]
    shape = f"({args.batch}, 3, {args.size}, {args.size}) float32"
    print(f"{shape}, {torch.get_num_threads()} threads, median of {args.repeats}, load {load:.1f}\n")
    print("| row | ms | / Kornia | / torchvision loop |")
    print("| --- | ---: | ---: | ---: |")
    for name, ms in results:
        print(f"| {name} | {ms:.1f} | {ms / kornia_ms:.2f}x | {ms / loop_ms:.2f}x |")


if __name__ == "__main__":
    main()
