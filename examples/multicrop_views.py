"""Multi-crop views for self-supervised learning (DINO / SwAV style), drawn on the device.

``MultiCrop.dino`` gives each image 2 large ("global") and N small ("local") views, one batched
warp per group. The script draws them for a batch of the package's test card and the sample
photo that ships with matplotlib (or generated noise when matplotlib is missing), writes a
picture of the views, and takes one step of a toy student/teacher consistency loss to show where
the views go in training.

    python examples/multicrop_views.py --out views.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.utils import save_image

import diffaug as da
from diffaug._testcard import test_card


def source_images(batch: int, height: int = 192, width: int = 256) -> Tensor:
    """``batch`` images ``(B, 3, H, W)``: the test card, then the photo, then noise."""
    images = [test_card(height, width)]
    try:
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as photo:
            rgb = photo.convert("RGB").resize((width, height))
            data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).reshape(height, width, 3)
        images.append(data.permute(2, 0, 1).float() / 255)
    except ImportError:
        pass
    while len(images) < batch:
        images.append(torch.rand(3, height, width))
    return torch.stack(images[:batch])


def main(argv: list[str] | None = None) -> dict[str, tuple[int, ...]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--global-size", type=int, default=96)
    parser.add_argument("--local-size", type=int, default=48)
    parser.add_argument("--n-local", type=int, default=6)
    parser.add_argument("--out", default="multicrop-views.png", help="PNG of the views of the first images")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    images = source_images(args.batch).to(device)
    multicrop = da.MultiCrop.dino(global_size=args.global_size, local_size=args.local_size, n_local=args.n_local).to(device)
    views, params = multicrop(images, generator=torch.Generator(device=device).manual_seed(args.seed))
    global_views, local_views = views["global"], views["local"]  # (V, B, C, h, w) each
    print(f"global views {tuple(global_views.shape)}, local views {tuple(local_views.shape)}")

    # The picture: for the first two images, a row of global views then a row of local views.
    rows = []
    for b in range(min(2, args.batch)):
        small = F.interpolate(global_views[:, b], size=args.local_size, mode="bilinear", antialias=True)
        rows += [small, local_views[:, b]]
    count = max(len(r) for r in rows)
    padded = [torch.cat([r, r.new_ones(count - len(r), *r.shape[1:])]) for r in rows]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(padded).clamp(0, 1), out, nrow=count, padding=2, pad_value=1.0)
    print(f"wrote {out.resolve()} (rows: global views shrunk for display, then local views, per image)")

    # A toy DINO-style step: the student sees every view, the teacher only the global ones.
    student = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 32))
    teacher = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 32))
    student, teacher = student.to(device), teacher.to(device)
    teacher.load_state_dict(student.state_dict())
    with torch.no_grad():
        targets = F.softmax(teacher(global_views.flatten(0, 1)) / 0.04, dim=-1).unflatten(0, global_views.shape[:2])
    student_views = [global_views, local_views]
    loss = images.new_zeros(())
    for group in student_views:
        logits = student(group.flatten(0, 1)).unflatten(0, group.shape[:2])  # (V, B, K)
        log_probs = F.log_softmax(logits / 0.1, dim=-1)
        # Every student view of an image against every teacher view of the same image.
        loss = loss - torch.einsum("tbk,sbk->", targets, log_probs) / (targets.shape[0] * log_probs.shape[0] * args.batch)
    loss.backward()
    print(f"toy student/teacher loss {loss.item():.3f}; student gradients: {student[0].weight.grad.norm().item():.3g}")
    # params replay the same views exactly
    again = multicrop.transform(images, params)
    assert torch.equal(again["local"], local_views)
    return {"global": tuple(global_views.shape), "local": tuple(local_views.shape)}


if __name__ == "__main__":
    main()
