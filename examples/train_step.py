"""A small training loop with the augmentation on the GPU (or the CPU), inside the training step.

The data are generated: images of a bright disc or a bright square on noise, label 0 or 1. The
DataLoader yields whole uint8 images; diffaug crops and flips the *batch* on the device, each
sample with its own parameters, right before the model. Nothing is downloaded.

    python examples/train_step.py                      # CUDA if available, else CPU
    python examples/train_step.py --compile --amp      # torch.compile and mixed precision (CUDA)
    python examples/train_step.py --learnable          # the crop's scale range is trained too
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

import diffaug as da


class Shapes(Dataset[tuple[Tensor, Tensor]]):
    """``count`` uint8 images ``(3, side, side)``: a disc (label 0) or a square (label 1) on noise."""

    def __init__(self, count: int, side: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (count,), generator=generator)
        yy, xx = torch.meshgrid(torch.arange(side) + 0.5, torch.arange(side) + 0.5, indexing="ij")
        centre = side * (0.3 + 0.4 * torch.rand(count, 2, generator=generator))
        radius = side * (0.12 + 0.12 * torch.rand(count, generator=generator))
        dx = (xx - centre[:, 0, None, None]).abs()
        dy = (yy - centre[:, 1, None, None]).abs()
        disc = dx.square() + dy.square() <= radius[:, None, None].square()
        square = torch.maximum(dx, dy) <= radius[:, None, None]
        shape = torch.where(self.labels[:, None, None] == 0, disc, square)
        colour = 0.6 + 0.4 * torch.rand(count, 3, 1, 1, generator=generator)
        noise = 0.3 * torch.rand(count, 3, side, side, generator=generator)
        self.images = ((noise + shape[:, None] * colour).clamp(0, 1) * 255).to(torch.uint8)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]


def make_model(channels: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * channels, 2),
    )


def make_augment(size: int, learnable: bool) -> nn.Module:
    """The augmentation: a module like any other, moved to the device with the model."""
    crop = da.RandomResizedCrop(size, scale=(0.35, 1.0), learnable=learnable)
    flip = getattr(da, "RandomHorizontalFlip", None)
    compose = getattr(da, "Compose", None)
    if flip is not None and compose is not None:
        return compose([crop, flip(p=0.5)])  # one fused warp for the whole pipeline
    return crop


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--side", type=int, default=64, help="side of the generated images")
    parser.add_argument("--size", type=int, default=48, help="side of the augmented crops the model sees")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (they only index uint8 tensors)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model and the augmentation")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast for the model")
    parser.add_argument("--learnable", action="store_true", help="train the crop's scale range with the model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train = Shapes(max(4 * args.batch, 512), args.side, seed=args.seed)
    test = Shapes(256, args.side, seed=args.seed + 1)
    # Seed the workers' own generators from the loader's generator so runs replay.
    loader = DataLoader(
        train,
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(args.seed),
    )

    model = make_model().to(device)
    augment = make_augment(args.size, args.learnable).to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *augment.parameters()], lr=3e-3)
    step_model: nn.Module = torch.compile(model) if args.compile else model  # type: ignore[assignment]
    step_augment: nn.Module = torch.compile(augment) if args.compile else augment  # type: ignore[assignment]

    def train_step(images: Tensor, labels: Tensor) -> Tensor:
        images = images.to(device, non_blocking=True).float().div_(255)  # uint8 over the bus, float on the device
        labels = labels.to(device, non_blocking=True)
        views = step_augment(images)  # (B, 3, size, size), per-sample crops, on the device
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            loss = F.cross_entropy(step_model(views), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # reaches the crop's bounds too when --learnable
        optimizer.step()
        return loss.detach()

    model.train()
    augment.train()
    step, start, losses = 0, time.perf_counter(), []
    while step < args.steps:
        for images, labels in loader:
            losses.append(train_step(images, labels))
            step += 1
            if step % 50 == 0 or step == args.steps:
                print(f"step {step:4d}  loss {torch.stack(losses[-50:]).mean().item():.3f}")
            if step == args.steps:
                break
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        images = test.images.to(device).float() / 255
        # Evaluate on the whole image resized to the training size: no random crop at test time.
        views = F.interpolate(images, size=(args.size, args.size), mode="bilinear", antialias=True, align_corners=False)
        accuracy = (model(views).argmax(1) == test.labels.to(device)).float().mean().item()
    result = {"loss": torch.stack(losses[-10:]).mean().item(), "accuracy": accuracy, "seconds": seconds}
    print(f"{args.steps} steps in {seconds:.1f} s on {device}; test accuracy {accuracy:.3f}")
    if args.learnable:
        crop = next(m for m in augment.modules() if isinstance(m, da.RandomResizedCrop))
        low, high = (float(v.detach()) for v in crop.scale.bounds())
        result.update(scale_low=low, scale_high=high)
        print(f"learned crop scale range: ({low:.3f}, {high:.3f}), started at (0.35, 1.0)")
    return result


if __name__ == "__main__":
    main()
