"""Generate the transforms gallery: docs/images/gallery/*.png and docs/gallery.md.

Every transform diffaug exports is run, through its own code, on the package's test card and
on a photograph (Grace Hopper, the sample photo that ships with matplotlib), several random
draws each. Run: ``python docs/scripts/gallery.py`` (a few seconds on a CPU).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.cbook
import matplotlib.pyplot as plt
import torch
from PIL import Image
from torch import Tensor, nn

import diffaug as da
from diffaug._testcard import test_card
from diffaug.cli import main as main_cli

DOCS = Path(__file__).resolve().parents[1]
IMAGES = DOCS / "images" / "gallery"
PAGE = DOCS / "gallery.md"
DRAWS = 6
SIZE = 128
SEED = 0


def photo(height: int = 256) -> Tensor:
    """matplotlib's bundled photo of Grace Hopper as ``(3, height, w)`` in ``[0, 1]``."""
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        width = round(image.width * height / image.height)
        rgb = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).reshape(height, width, 3)
    return data.permute(2, 0, 1).float() / 255.0


class RandomBoxes(nn.Module):
    """``BoxCrop`` of random boxes (BoxCrop itself takes boxes from the caller, e.g. a detector)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.crop = da.BoxCrop(size)

    def forward(self, images: Tensor) -> Tensor:
        batch, _, height, width = images.shape
        corner = torch.rand(batch, 2) * 0.5
        extent = 0.2 + torch.rand(batch, 2) * 0.5
        scale = images.new_tensor([width, height])
        return self.crop(images, torch.cat([corner * scale, (corner + extent) * scale], dim=-1))


class WithLabels(nn.Module):
    """MixUp / CutMix take ``(images, labels)``: the gallery gives each copy its own class and shows the images."""

    def __init__(self, mix: nn.Module) -> None:
        super().__init__()
        self.mix = mix

    def forward(self, images: Tensor) -> Tensor:
        labels = torch.arange(images.shape[0]) % 2
        # Half the copies mirrored, so what a sample borrows from its partner shows.
        partners = torch.where((labels == 1)[:, None, None, None], images.flip(-1), images)
        return self.mix(partners, labels)[0]


# Settings chosen to show each transform clearly; the gallery's caption gives them.
# Transforms exported by diffaug but not listed here are shown with their defaults.
SETTINGS: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    "RandomResizedCrop": ("RandomResizedCrop(128)", lambda: da.RandomResizedCrop(SIZE)),
    "ZoomCrop": ("ZoomCrop(128, zoom=(1.0, 3.0))", lambda: da.ZoomCrop(SIZE, zoom=(1.0, 3.0))),
    "BoxCrop": ("BoxCrop(128) of random boxes", lambda: RandomBoxes(SIZE)),
    "RandomHorizontalFlip": ("RandomHorizontalFlip(p=0.5)", lambda: da.RandomHorizontalFlip(p=0.5)),
    "RandomVerticalFlip": ("RandomVerticalFlip(p=0.5)", lambda: da.RandomVerticalFlip(p=0.5)),
    "RandomAffine": (
        "RandomAffine(degrees=25, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=10, interpolation='bilinear')",
        lambda: da.RandomAffine(degrees=25, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=10, interpolation="bilinear"),
    ),
    "RandomRotation": (
        "RandomRotation(degrees=30, interpolation='bilinear')",
        lambda: da.RandomRotation(degrees=30, interpolation="bilinear"),
    ),
    "CenterCrop": ("CenterCrop(128)", lambda: da.CenterCrop(SIZE)),
    "RandomCrop": ("RandomCrop(128)", lambda: da.RandomCrop(SIZE)),
    "Resize": ("Resize(128)", lambda: da.Resize(SIZE)),
    "ColorJitter": ("ColorJitter(0.4, 0.4, 0.4, 0.1)", lambda: da.ColorJitter(0.4, 0.4, 0.4, 0.1)),
    "RandomGrayscale": ("RandomGrayscale(p=0.5)", lambda: da.RandomGrayscale(p=0.5)),
    "Grayscale": ("Grayscale(num_output_channels=3)", lambda: da.Grayscale(3)),
    "GaussianBlur": ("GaussianBlur(23, sigma=(0.1, 4.0))", lambda: da.GaussianBlur(23, sigma=(0.1, 4.0))),
    "GaussianNoise": ("GaussianNoise(sigma=0.1)", lambda: da.GaussianNoise(sigma=0.1)),
    "RandomPosterize": ("RandomPosterize(2, p=0.5)", lambda: da.RandomPosterize(2, p=0.5)),
    "RandomSolarize": ("RandomSolarize(0.5, p=0.5)", lambda: da.RandomSolarize(0.5, p=0.5)),
    "RandomAdjustSharpness": ("RandomAdjustSharpness(4.0, p=0.5)", lambda: da.RandomAdjustSharpness(4.0, p=0.5)),
    "Normalize": (
        "Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), p=0.5) (shown clipped to [0, 1])",
        lambda: da.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), p=0.5),
    ),
    "ToDtype": ("ToDtype(torch.uint8, scale=True)", lambda: da.ToDtype(torch.uint8, scale=True)),
    "RandomErasing": ("RandomErasing(p=0.5)", lambda: da.RandomErasing(p=0.5)),
    "MixUp": ("MixUp(alpha=1.0, num_classes=2) (odd copies mirrored)", lambda: WithLabels(da.MixUp(num_classes=2))),
    "CutMix": ("CutMix(alpha=1.0, num_classes=2) (odd copies mirrored)", lambda: WithLabels(da.CutMix(num_classes=2))),
}
# The preview shown on the getting-started page, made by the CLI itself.
PREVIEW_ARGS = [
    "preview",
    "--n",
    "8",
    "--pipeline",
    "RandomResizedCrop(size=128, scale=(0.2, 1.0)) | RandomHorizontalFlip(p=0.5)",
    "--pipeline",
    "ZoomCrop(size=128, zoom=(1.0, 3.0))",
]
EXTRA: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    "ZoomCrop (allow_outside)": (
        "ZoomCrop(128, zoom=(0.7, 2.0), allow_outside=True, padding_mode='symmetric')",
        lambda: da.ZoomCrop(SIZE, zoom=(0.7, 2.0), allow_outside=True, padding_mode="symmetric"),
    ),
}


# Containers of other transforms, not transforms of their own: shown on their pages.
NOT_SHOWN = {"Compose", "MultiCrop", "RandomApply", "RandomChoice", "RandomOrder"}


def exported_transforms() -> dict[str, type[nn.Module]]:
    """Transform classes in ``diffaug.__all__`` (not base classes or containers)."""
    found = {}
    for name in da.__all__:
        obj = getattr(da, name)
        if not (inspect.isclass(obj) and issubclass(obj, nn.Module)) or name in NOT_SHOWN or inspect.isabstract(obj):
            continue
        found[name] = obj
    return found


def default_instance(cls: type[nn.Module]) -> tuple[str, nn.Module]:
    """Build ``cls`` with defaults, giving ``size`` if it needs one."""
    parameters = inspect.signature(cls.__init__).parameters
    if "size" in parameters and parameters["size"].default is inspect.Parameter.empty:
        return f"{cls.__name__}({SIZE})", cls(SIZE)  # type: ignore[call-arg]
    return f"{cls.__name__}()", cls()


def entries() -> list[tuple[str, str, str, nn.Module]]:
    """``(title, call shown, first docstring line, module)`` for every transform shown."""
    out = []
    for name, cls in exported_transforms().items():
        call, module = (SETTINGS[name][0], SETTINGS[name][1]()) if name in SETTINGS else default_instance(cls)
        summary = (inspect.getdoc(cls) or "").split("\n")[0]
        out.append((name, call, summary, module))
    for name, (call, factory) in EXTRA.items():
        base = name.split(" ")[0]
        if base in exported_transforms():
            out.append((name, call, "", factory()))
    return out


def as_tiles(output: object) -> list[Tensor]:
    """One image per draw (a multi-view output shows its first view)."""
    if isinstance(output, (list, tuple)):
        output = output[0]
    assert isinstance(output, Tensor)
    if output.dtype == torch.uint8:
        output = output.float() / 255
    return list(output.clamp(0, 1))


def draw(title: str, call: str, module: nn.Module, sources: dict[str, Tensor], path: Path) -> None:
    fig, axes = plt.subplots(len(sources), DRAWS + 1, figsize=(1.6 * (DRAWS + 1), 1.75 * len(sources)), squeeze=False)
    for row, (label, source) in enumerate(sources.items()):
        torch.manual_seed(SEED + row)
        with torch.no_grad():
            tiles = as_tiles(module(source.unsqueeze(0).expand(DRAWS, -1, -1, -1)))
        for col, image in enumerate([source, *tiles]):
            ax = axes[row, col]
            ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("input" if col == 0 else f"draw {col}", fontsize=8)
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(call, fontsize=9, family="monospace")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-").replace("--", "-")


def main() -> list[Path]:
    IMAGES.mkdir(parents=True, exist_ok=True)
    sources = {"test card": test_card(192, 256), "photo": photo()}
    written = []
    lines = [
        "# Transforms gallery",
        "",
        "Every transform diffaug exports, geometric and photometric, run by its own code on the package's test card",
        "(`diffaug._testcard.test_card()`: a 1-pixel grid, a zone plate, circles, text) and on a photograph",
        "(Grace Hopper, the sample photo that ships with matplotlib). The first column is the input;",
        f"the others are {DRAWS} random draws of one call on a batch of copies, so every sample gets its own parameters.",
        "",
        "Each transform runs with its defaults except where its call says otherwise; moiré on the zone plate is",
        "aliasing, which `antialias=True` removes (see [Antialiasing](antialias.md)).",
        "",
        "These pictures are generated, not drawn by hand: `python docs/scripts/gallery.py` rewrites them and this page.",
        "To see your own images and pipelines, use `diffaug preview IMAGE --pipeline SPEC` (see",
        "[Getting started](getting-started.md)).",
        "",
    ]
    for title, call, summary, module in entries():
        path = IMAGES / f"{slug(title)}.png"
        draw(title, call, module, sources, path)
        written.append(path)
        lines += [f"## {title}", ""]
        if summary:
            lines += [summary, ""]
        api = f" ([API](reference/transforms.md#diffaug.transforms.{title}))" if title in exported_transforms() else ""
        lines += [f"`{call}`{api}", "", f"![{title} on the test card and a photo](images/gallery/{path.name})", ""]
    PAGE.write_text("\n".join(lines))
    preview = DOCS / "images" / "preview.png"
    main_cli([*PREVIEW_ARGS, "--out", str(preview)])
    written.append(preview)
    return written


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path}")
    print(f"wrote {PAGE}")
