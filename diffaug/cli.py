"""The ``diffaug`` command: ``preview``, ``bench`` and ``search``.

The CLI sits on top of the library; nothing in the library imports it. Building its parser
imports no command's module: ``bench`` and ``search`` are loaded when they run, and parse their
own arguments.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from diffaug import __version__

__all__ = ["build_parser", "load_bench", "main"]

# Where ``diffaug bench`` finds the suite: the repository's benchmarks/ folder, beside the package.
BENCH_SUITE = Path(__file__).resolve().parent.parent / "benchmarks" / "suite.py"
_LABEL_HEIGHT = 14  # pixels of the band above each preview row that names it


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
    groups: list[tuple[str, Tensor]] = []
    for path, source in zip(args.images or [None], sources, strict=True):
        batch = source.unsqueeze(0).expand(args.n, -1, -1, -1)
        for name, transform in rows:
            with torch.no_grad():
                label = name if path is None or len(sources) == 1 else f"{name}  |  {Path(path).name}"
                groups.append((label, _to_tiles(transform(batch), name)))
    # Rows whose outputs differ in size (e.g. a flip of images of different sizes) are shown at the first row's size.
    size = groups[0][1].shape[-2:]
    groups = [
        (label, t if t.shape[-2:] == size else torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True))
        for label, t in groups
    ]
    grid = _grid(groups, args.n, labels=not args.no_labels)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, out)
    names = "; ".join(name for name, _ in rows)
    print(f"rows: {names} ({len(sources)} image(s), {args.n} draws each)")
    print(f"wrote {out.resolve()}")
    return 0


def _grid(groups: Sequence[tuple[str, Tensor]], n: int, labels: bool, padding: int = 2) -> Tensor:
    """Tiles on white, ``n`` per row; each group (a pipeline on one image) under a band naming it.

    A group of ``r`` rows of ``(h, w)`` tiles is ``label + padding + r (h + padding)`` pixels high,
    ``padding + n (w + padding)`` wide; ``label`` is 0 without labels.
    """
    height, width = groups[0][1].shape[-2:]
    channels = groups[0][1].shape[1]
    side = padding + n * (width + padding)
    band = _LABEL_HEIGHT if labels else 0
    parts = []
    for label, tiles in groups:
        count = -(-tiles.shape[0] // n)
        part = tiles.new_ones(channels, band + padding + count * (height + padding), side)
        for index, tile in enumerate(tiles.clamp(0.0, 1.0)):
            row, column = divmod(index, n)
            top, left = band + padding + row * (height + padding), padding + column * (width + padding)
            part[:, top : top + height, left : left + width] = tile
        if labels:
            part[:, :band] = _label(label, side, band, padding).to(part)
        parts.append(part)
    return torch.cat(parts, dim=1)


def _label(text: str, width: int, height: int, margin: int) -> Tensor:
    """``text`` in black on white, ``(height, width)`` in ``[0, 1]``, cut with "..." where it does not fit."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    room = width - 2 * margin
    if draw.textlength(text, font=font) > room:
        while text and draw.textlength(text + "...", font=font) > room:
            text = text[:-1]
        text += "..."
    draw.text((margin, 1), text, fill=0, font=font)
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(height, width).float() / 255.0


def load_bench() -> ModuleType:
    """The benchmark suite, ``benchmarks/suite.py`` of the repository this package runs from.

    The suite is a tool beside the library, not part of the installed package: it is loaded from
    the checkout (an editable install or ``PYTHONPATH``), once per process.

    Raises:
        FileNotFoundError: the package was installed without its repository (e.g. from a wheel).
    """
    name = "diffaug_bench_suite"
    if name in sys.modules:
        return sys.modules[name]
    if not BENCH_SUITE.is_file():
        raise FileNotFoundError(
            f"diffaug bench needs the repository's benchmarks/suite.py, which is not at {BENCH_SUITE}: the installed "
            "package does not carry the benchmark suite. Clone the repository and run `pip install -e .` in it, then "
            "`diffaug bench` (or `python benchmarks/run.py`)."
        )
    spec = importlib.util.spec_from_file_location(name, BENCH_SUITE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _bench(argv: Sequence[str]) -> int:
    try:
        suite = load_bench()
    except FileNotFoundError as error:
        print(f"diffaug bench: {error}", file=sys.stderr)
        return 2
    return int(suite.main(list(argv)))


def _search(argv: Sequence[str]) -> int:
    from diffaug.search.search import add_parser

    parser = argparse.ArgumentParser(prog="diffaug")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["search", *argv])
    return int(args.run(args))


# Commands whose modules load only when they run; each parses its own arguments (and --help).
_LAZY: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {
    "bench": ("time the transforms against Kornia, torchvision, the bare kernel and a copy (needs the repository)", _bench),
    "search": ("recover a hidden augmentation's ranges by gradient (density matching)", _search),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``diffaug`` parser: ``preview``'s arguments, and ``bench`` and ``search`` by name only."""
    parser = argparse.ArgumentParser(prog="diffaug", description="Differentiable, GPU-batched augmentations for PyTorch.")
    parser.add_argument("--version", action="version", version=f"diffaug {__version__} (torch {torch.__version__})")
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
    p.add_argument("--no-labels", action="store_true", help="no band naming each row above it")
    p.set_defaults(run=preview)
    for command, (text, _) in _LAZY.items():
        # Listed in --help only: main() hands their arguments to the command before this parser sees them.
        sub.add_parser(command, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``diffaug`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _LAZY:
        return _LAZY[argv[0]][1](argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "n", 1) <= 0:
        parser.error("--n must be a positive integer")
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
