"""Every script in examples/ runs, on a tiny setting, as a user would run it."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Arguments that make each example finish in seconds on a CPU.
TINY = {
    "train_step.py": ["--steps", "4", "--batch", "8", "--side", "24", "--size", "16", "--workers", "1", "--device", "cpu"],
    "multicrop_views.py": [
        "--batch",
        "2",
        "--global-size",
        "32",
        "--local-size",
        "16",
        "--n-local",
        "3",
        "--out",
        "{tmp}/views.png",
    ],
    "attention_crop.py": ["--tiny"],
}


def _load(name):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs_as_a_script(name, tmp_path):
    assert name in TINY, f"examples/{name} has no tiny setting in tests/test_examples.py"
    args = [a.replace("{tmp}", str(tmp_path)) for a in TINY[name]]
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example should say what it did"


def test_train_step_learns_and_trains_the_crop():
    """The example learns its task (discs against squares), and gradients reach the crop's range."""
    train_step = _load("train_step.py")
    args = ["--steps", "300", "--batch", "32", "--side", "24", "--size", "16", "--workers", "0", "--device", "cpu"]
    result = train_step.main([*args, "--learnable", "--seed", "0"])
    assert math.isfinite(result["loss"]) and result["loss"] < 0.4  # log 2 = 0.69 is guessing
    # Chance is the larger class's share of the 256 test images (about one half); seeds 0-2 reach 0.89-0.99.
    labels = train_step.Shapes(256, 24, seed=1).labels.float()
    chance = max(labels.mean().item(), 1 - labels.mean().item())
    assert result["accuracy"] >= chance + 0.25, (result["accuracy"], chance)
    # The crop's scale bounds started at (0.35, 1.0) and moved: gradients reached them through the warp.
    assert (result["scale_low"], result["scale_high"]) != pytest.approx((0.35, 1.0), abs=1e-6)


def test_train_step_data_are_the_two_classes_it_claims():
    train_step = _load("train_step.py")
    data = train_step.Shapes(64, 32, seed=3)
    assert data.images.dtype.is_floating_point is False and data.images.shape == (64, 3, 32, 32)
    bright = (data.images.float().mean(1) > 0.5 * 255).flatten(1).float()
    # A square of half-side r covers 4 r^2, a disc pi r^2: same radius law, so squares are brighter on average.
    discs, squares = bright[data.labels == 0].mean(), bright[data.labels == 1].mean()
    assert squares > discs


def test_multicrop_views_gives_the_views_asked_for(tmp_path):
    multicrop_views = _load("multicrop_views.py")
    out = tmp_path / "views.png"
    args = ["--batch", "3", "--global-size", "24", "--local-size", "12", "--n-local", "5", "--out", str(out), "--device", "cpu"]
    shapes = multicrop_views.main(args)
    assert shapes == {"global": (2, 3, 3, 24, 24), "local": (5, 3, 3, 12, 12)}
    from PIL import Image

    with Image.open(out) as image:  # 2 images x (global row, local row), 5 tiles of 12 px + 2 px padding
        assert image.size == (5 * 14 + 2, 4 * 14 + 2)
