"""The ``diffaug`` command: ``diffaug preview`` (and the subcommands added beside it).

The CLI sits on top of the library; nothing in the library imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["main"]


def _load_image(path: str) -> Tensor:
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
        data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).reshape(rgb.height, rgb.width, 3)
    return data.permute(2, 0, 1).float() / 255.0


def _default_rows(size: int) -> list[tuple[str, torch.nn.Module]]:
    import diffaug as da

    return [
        ("RandomResizedCrop", da.RandomResizedCrop(size)),
        ("ZoomCrop", da.ZoomCrop(size, zoom=(1.0, 4.0))),
        ("BoxCrop", _RandomBoxCrop(size)),
    ]


class _RandomBoxCrop(torch.nn.Module):
    """BoxCrop of random boxes, for the preview (BoxCrop itself needs given boxes)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        import diffaug as da

        self.crop = da.BoxCrop(size)

    def forward(self, images: Tensor) -> Tensor:
        batch, _, height, width = images.shape
        corner = torch.rand(batch, 2, device=images.device) * 0.6
        extent = 0.15 + torch.rand(batch, 2, device=images.device) * 0.4
        scale = images.new_tensor([width, height])
        boxes = torch.cat([corner * scale, (corner + extent) * scale], dim=-1)
        return self.crop(images, boxes)


def _to_tiles(output: object, label: str) -> Tensor:
    """A pipeline's output as ``(N, C, h, w)`` tiles; a multi-view output gives one row per view."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (list, tuple)) and output and all(isinstance(o, Tensor) for o in output):
        size = output[0].shape[-2:]
        views = [
            o if o.shape[-2:] == size else torch.nn.functional.interpolate(o, size=size, mode="bilinear", antialias=True)
            for o in output
        ]
        return torch.stack(views).flatten(0, 1)
    raise SystemExit(f"diffaug preview: {label} returned {type(output).__name__}, expected images")


def preview(args: argparse.Namespace) -> int:
    from torchvision.utils import save_image

    from diffaug._testcard import test_card
    from diffaug.spec import SpecError, build

    rows: list[tuple[str, torch.nn.Module]]
    if args.pipeline:
        rows = []
        for spec in args.pipeline:
            try:
                rows.append((spec, build(spec)))
            except SpecError as error:
                print(f"diffaug preview: bad --pipeline: {error}", file=sys.stderr)
                return 2
    else:
        rows = _default_rows(args.size)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    try:
        sources = [_load_image(p) for p in args.images] if args.images else [test_card()]
    except OSError as error:
        print(f"diffaug preview: cannot read IMAGE: {error}", file=sys.stderr)
        return 2
    tiles = []
    for source in sources:
        batch = source.unsqueeze(0).expand(args.n, -1, -1, -1)
        for name, transform in rows:
            with torch.no_grad():
                tiles.append(_to_tiles(transform(batch), name))
    # Rows whose outputs differ in size (e.g. a flip of images of different sizes) are shown at the first row's size.
    size = tiles[0].shape[-2:]
    tiles = [
        t if t.shape[-2:] == size else torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True)
        for t in tiles
    ]
    grid = torch.cat(tiles).clamp(0.0, 1.0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, out, nrow=args.n, padding=2, pad_value=1.0)
    names = "; ".join(name for name, _ in rows)
    print(f"rows: {names} ({len(sources)} image(s), {args.n} draws each)")
    print(f"wrote {out.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffaug", description="Differentiable, GPU-batched augmentations for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "preview",
        help="render a grid of random samples of a pipeline to a PNG",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Render a grid of samples: one row per pipeline and image, N random draws per row.\n"
            "With no --pipeline the rows are RandomResizedCrop, ZoomCrop and BoxCrop of random boxes.\n"
            "With no IMAGE, the package's own test card is used."
        ),
        epilog=(
            "SPEC is transform calls joined by '|' with literal arguments, or a JSON list:\n"
            "  diffaug preview --pipeline 'RandomResizedCrop(size=128, scale=(0.2, 1.0)) | ZoomCrop(size=96)'\n"
            '  diffaug preview --pipeline \'[{"name": "ZoomCrop", "size": 128, "zoom": [1, 3]}]\' photo.jpg\n'
            "Names are diffaug's transform classes; nothing in SPEC is evaluated as code."
        ),
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (default: the built-in test card)")
    p.add_argument(
        "--pipeline",
        action="append",
        metavar="SPEC",
        help="a pipeline to draw, e.g. 'RandomResizedCrop(size=128) | ZoomCrop(size=96)'; repeat for more rows",
    )
    p.add_argument("--n", type=int, default=8, help="draws per row (default: 8)")
    p.add_argument("--size", type=int, default=128, help="output side of the default rows in pixels (default: 128)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default="diffaug-preview.png", help="PNG file to write (default: diffaug-preview.png)")
    p.set_defaults(run=preview)

    from diffaug import bench

    b = sub.add_parser(
        "bench",
        help="time the transforms against Kornia, torchvision, the bare kernel and a copy",
        description="The benchmark suite (also `python benchmarks/run.py`): a markdown table on stdout, JSON and PNG in --out.",
    )
    bench.add_arguments(b)
    b.set_defaults(run=bench.run)

    from diffaug.search.search import add_parser as add_search_parser

    add_search_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "n", 1) <= 0:
        parser.error("--n must be a positive integer")
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
