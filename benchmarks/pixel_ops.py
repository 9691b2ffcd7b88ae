"""Each pixel operation on one batch: diffaug against Kornia's equivalent and a torchvision v2 per-sample loop.

    python benchmarks/pixel_ops.py [--shape 64,3,224,224] [--rounds 7] [--threads N] [--device cpu] [--ops blur,noise]
    python benchmarks/pixel_ops.py --backward [...]

Every row draws per-sample parameters and applies the operation to all samples (``p=1``). The
rows of one operation are called in turn, round after round (one call per row per round), so
load on a shared machine spreads over them alike; the table shows medians and the ratios to
Kornia and to the torchvision loop. The blur also has a grouped-convolution row (per-sample 1-D
kernels, padded copy, two ``conv2d`` calls with ``groups=B*C``): the alternative that diffaug's
matrix products replaced.

``--backward`` times forward + backward of ``(out * w).sum()`` (``w`` fixed, dense) instead: diffaug with ``learnable=True``
(gradients to the images and to the sigma range or factor; the straight-through ops to the
images), against diffaug's own forward alone and Kornia's forward + backward to the images.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import kornia.augmentation as K
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T

import diffaug as da
from diffaug import functional as daf

Row = tuple[str, Callable[[torch.Tensor], torch.Tensor]]


def _loop(transform: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """torchvision v2 one image at a time: its own draw per image (per-sample parameters)."""
    return lambda images: torch.stack([transform(image) for image in images])


def _grouped_conv_blur(kernel: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def blur(images: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = images.shape
        sigma = torch.empty(batch, device=images.device).uniform_(0.1, 2.0)
        weights = daf.gaussian_kernel1d(sigma, kernel).repeat_interleave(channels, 0)
        r = kernel // 2
        padded = F.pad(images, (r, r, r, r), mode="reflect").reshape(1, batch * channels, height + 2 * r, width + 2 * r)
        out = F.conv2d(padded, weights[:, None, None, :], groups=batch * channels)
        return F.conv2d(out, weights[:, None, :, None], groups=batch * channels).view_as(images)

    return blur


def rows(device: str) -> dict[str, list[Row]]:
    def kornia(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return module.to(device)

    return {
        "GaussianBlur(23, (0.1, 2.0))": [
            ("diffaug", da.GaussianBlur(23, (0.1, 2.0))),
            ("grouped conv2d", _grouped_conv_blur(23)),
            ("kornia", kornia(K.RandomGaussianBlur((23, 23), (0.1, 2.0), p=1.0))),
            ("torchvision loop", _loop(T.GaussianBlur(23, (0.1, 2.0)))),
        ],
        "GaussianNoise(sigma=0.1)": [
            ("diffaug", da.GaussianNoise(sigma=0.1)),
            ("kornia", kornia(K.RandomGaussianNoise(std=0.1, p=1.0))),
            ("torchvision loop", _loop(T.GaussianNoise(sigma=0.1))),
        ],
        "RandomPosterize(3)": [
            ("diffaug", da.RandomPosterize(3, p=1.0)),
            ("kornia", kornia(K.RandomPosterize(3, p=1.0))),
            ("torchvision loop", _loop(T.RandomPosterize(3, p=1.0))),
        ],
        "RandomSolarize(0.5)": [
            ("diffaug", da.RandomSolarize(0.5, p=1.0)),
            ("kornia", kornia(K.RandomSolarize(0.1, 0.0, p=1.0))),
            ("torchvision loop", _loop(T.RandomSolarize(0.5, p=1.0))),
        ],
        "RandomAdjustSharpness(2)": [
            ("diffaug", da.RandomAdjustSharpness(2.0, p=1.0)),
            ("kornia", kornia(K.RandomSharpness((1.9, 2.0), p=1.0))),
            ("torchvision loop", _loop(T.RandomAdjustSharpness(2.0, p=1.0))),
        ],
        "RandomAutocontrast()": [
            ("diffaug", da.RandomAutocontrast(p=1.0)),
            ("kornia", kornia(K.RandomAutoContrast(p=1.0))),
            ("torchvision loop", _loop(T.RandomAutocontrast(p=1.0))),
        ],
        "RandomEqualize()": [
            ("diffaug", da.RandomEqualize(p=1.0)),
            ("kornia", kornia(K.RandomEqualize(p=1.0))),
            ("torchvision loop", _loop(T.RandomEqualize(p=1.0))),
        ],
    }


def backward_rows(device: str) -> dict[str, list[Row]]:
    return {
        "GaussianBlur(23, (0.1, 2.0))": [
            ("diffaug fwd+bwd", da.GaussianBlur(23, (0.1, 2.0), learnable=True).to(device)),
            ("diffaug forward", da.GaussianBlur(23, (0.1, 2.0)).to(device)),
            ("kornia", K.RandomGaussianBlur((23, 23), (0.1, 2.0), p=1.0).to(device)),
        ],
        "GaussianNoise(sigma=0.1)": [
            ("diffaug fwd+bwd", da.GaussianNoise(sigma=0.1, learnable=True).to(device)),
            ("diffaug forward", da.GaussianNoise(sigma=0.1).to(device)),
            ("kornia", K.RandomGaussianNoise(std=0.1, p=1.0).to(device)),
        ],
        "RandomAdjustSharpness(2)": [
            ("diffaug fwd+bwd", da.RandomAdjustSharpness(2.0, p=1.0, learnable=True).to(device)),
            ("diffaug forward", da.RandomAdjustSharpness(2.0, p=1.0).to(device)),
            ("kornia", K.RandomSharpness((1.9, 2.0), p=1.0).to(device)),
        ],
        "RandomEqualize()": [
            ("diffaug fwd+bwd", da.RandomEqualize(p=1.0).to(device)),
            ("diffaug forward", da.RandomEqualize(p=1.0).to(device)),
            ("kornia", K.RandomEqualize(p=1.0).to(device)),
        ],
    }


_WEIGHTS: dict[tuple[int, ...], torch.Tensor] = {}


def _weights(images: torch.Tensor) -> torch.Tensor:
    key = tuple(images.shape)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = torch.rand(images.shape, device=images.device)
    return _WEIGHTS[key]


def _time(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, backward: bool = False) -> float:
    if images.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    if backward:
        # A dense upstream gradient, as a network's: out.sum()'s is a stride-0 tensor, which sends CPU bmm
        # down a per-matrix path with copies (the blur's backward ran ten times slower that way).
        (fn(images.requires_grad_()) * _weights(images)).sum().backward()
        images.grad = None
        images.requires_grad_(False)
    else:
        with torch.no_grad():
            fn(images)
    if images.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="64,3,224,224")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ops", default="", help="comma-separated parts of the operations' names to run (default all)")
    parser.add_argument("--backward", action="store_true", help="forward + backward of the learnable transforms")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(int(s) for s in args.shape.split(","))
    images = torch.rand(shape, device=args.device)
    wanted = [w for w in args.ops.split(",") if w]
    print(f"images {shape} float32 on {args.device}, {torch.get_num_threads()} threads, {args.rounds} rounds; median ms")
    reference = "diffaug forward" if args.backward else "torchvision loop"
    print(f"{'operation':30s} {'row':18s} {'ms':>9s} {'/kornia':>8s} {'/' + reference.split()[-1]:>8s}")
    table = backward_rows(args.device) if args.backward else rows(args.device)
    for op, op_rows in table.items():
        if wanted and not any(w.lower() in op.lower() for w in wanted):
            continue
        timed = {name: args.backward and name != "diffaug forward" for name, _ in op_rows}
        for name, fn in op_rows:  # warm up (kernels, caches, allocator)
            _time(fn, images, timed[name])
        times: dict[str, list[float]] = {name: [] for name, _ in op_rows}
        for _ in range(args.rounds):
            for name, fn in op_rows:
                times[name].append(_time(fn, images, timed[name]))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, value in medians.items():
            print(f"{op:30s} {name:18s} {value:9.2f} {value / medians['kornia']:7.2f}x {value / medians[reference]:7.2f}x")


if __name__ == "__main__":
    main()
