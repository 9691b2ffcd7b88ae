"""The small case (8, 3, 32, 32) -> 32, where per-call overhead decides: tight loop and rotation.

    python benchmarks/small_case.py [--threads 1] [--rounds 300] [--base OTHER_CHECKOUT]

Prints medians (one thread by default) of diffaug's RandomResizedCrop (forward, make_params,
transform, forward + backward) and of the three-op pipeline, in a tight loop (warm caches) and in a
rotation with Kornia's crop and Sequential (one call per row in turn, as the suite interleaves rows:
colder caches), with the ratios to Kornia. ``--base`` loads a second checkout's ``diffaug`` (the
folder holding its ``diffaug`` package) in the same process and alternates the two, for
before/after comparisons on a shared machine.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parent.parent


def _load(folder: Path) -> ModuleType:
    """Import the ``diffaug`` package found in ``folder``, alongside any already loaded one."""
    for name in [n for n in sys.modules if n == "diffaug" or n.startswith("diffaug.")]:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        import diffaug
    finally:
        sys.path.remove(str(folder))
    return diffaug


def _median_us(fn: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=300, help="rotation rounds (one call per row each)")
    parser.add_argument("--base", type=Path, default=None, help="another checkout to compare with (its root folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import kornia.augmentation as K

    versions = {"": _load(ROOT)} if args.base is None else {"base ": _load(args.base), "": _load(ROOT)}
    images = torch.rand(8, 3, 32, 32)
    grad_images = images.clone().requires_grad_()

    def fwd_bwd(module: torch.nn.Module) -> Callable[[], object]:
        def step() -> None:
            grad_images.grad = None
            module(grad_images).sum().backward()

        return step

    rows: dict[str, Callable[[], object]] = {}
    tight: dict[str, Callable[[], object]] = {}
    for prefix, da in versions.items():
        crop = da.RandomResizedCrop((32, 32))
        pipe = da.Compose([da.RandomResizedCrop((32, 32)), da.RandomHorizontalFlip(), da.RandomAffine(degrees=10, p=1.0)])
        params = crop.make_params(images)
        rows[f"{prefix}crop"] = functools.partial(crop, images)
        rows[f"{prefix}pipeline"] = functools.partial(pipe, images)
        tight[f"{prefix}crop make_params"] = functools.partial(crop.make_params, images)
        tight[f"{prefix}crop transform"] = functools.partial(crop.transform, images, params)
        tight[f"{prefix}crop fwd+bwd"] = fwd_bwd(crop)
    kornia_crop = K.RandomResizedCrop((32, 32))
    kornia_seq = K.AugmentationSequential(
        K.RandomResizedCrop((32, 32)), K.RandomHorizontalFlip(), K.RandomAffine(degrees=10, p=1.0)
    )
    rows["Kornia crop"] = lambda: kornia_crop(images)
    rows["Kornia Sequential"] = lambda: kornia_seq(images)
    tight.update(rows)

    results: dict[str, list[float]] = {name: [] for name in tight}
    for round_ in range(5):  # alternate the order, take the median of the per-round medians
        names = list(tight) if round_ % 2 == 0 else list(reversed(tight))
        for name in names:
            for _ in range(10):
                tight[name]()
            results[name].append(_median_us(tight[name], 60 if "Kornia" in name or "pipeline" in name else 200))
    rotation: dict[str, list[float]] = {name: [] for name in rows}
    order = list(rows)
    for round_ in range(args.rounds):
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            start = time.perf_counter()
            rows[name]()
            rotation[name].append((time.perf_counter() - start) * 1e6)

    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.2f}; medians in us")
    print("tight loop:")
    for name, values in results.items():
        print(f"  {name:28s} {statistics.median(values):8.1f}")
    print("rotation (one call per row in turn):")
    medians = {name: statistics.median(values) for name, values in rotation.items()}
    for name, value in medians.items():
        print(f"  {name:28s} {value:8.1f}")
    kornia_tight = statistics.median(results["Kornia crop"])
    for prefix in versions:
        crop_tight = statistics.median(results[f"{prefix}crop"])
        print(
            f"{prefix or 'this '}crop / Kornia crop: tight {crop_tight / kornia_tight:.3f}, "
            f"rotation {medians[f'{prefix}crop'] / medians['Kornia crop']:.3f}; pipeline / Kornia Sequential: "
            f"rotation {medians[f'{prefix}pipeline'] / medians['Kornia Sequential']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
