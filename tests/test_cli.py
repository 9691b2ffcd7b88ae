"""The ``diffaug`` command: preview grids, their layout and pixels, and its errors."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from diffaug.cli import main


def _png(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _grid_side(tiles, tile, padding=2):
    return tiles * (tile + padding) + padding


LABEL = 14  # the band naming each row group, above it


def _grid_height(groups, tile, rows_per_group=1, padding=2, label=LABEL):
    return groups * (label + _grid_side(rows_per_group, tile, padding))


def test_help_lists_the_subcommands(capsys):
    result = subprocess.run([sys.executable, "-m", "diffaug.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("preview", "bench", "search"):
        assert f"    {command} " in result.stdout, f"`diffaug --help` does not list {command}"
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: diffaug {command}") and len(text.splitlines()) > 5
    with pytest.raises(SystemExit) as stop:
        main(["preview", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "--pipeline SPEC" in text and "RandomResizedCrop(size=128" in text


def test_default_preview_has_three_rows_of_n(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["preview", "--n", "3", "--size", "40", "--out", str(out)]) == 0
    grid = _png(out)
    assert grid.shape == (_grid_height(3, 40), _grid_side(3, 40), 3)
    assert str(out.resolve()) in capsys.readouterr().out


def test_pipeline_rows_per_image_and_spec(tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(first)
    Image.fromarray(rng.integers(0, 256, (64, 20, 3), dtype=np.uint8)).save(second)
    out = tmp_path / "grid.png"
    args = ["preview", str(first), str(second), "--n", "4", "--out", str(out)]
    args += ["--pipeline", "RandomResizedCrop(size=(16, 24))", "--pipeline", '[{"name": "ZoomCrop", "size": [16, 24]}]']
    assert main(args) == 0
    grid = _png(out)
    assert grid.shape == (_grid_height(4, 16), _grid_side(4, 24), 3)


def test_identity_zoom_shows_the_image_pixel_for_pixel(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (18, 26, 3), dtype=np.uint8)
    source = tmp_path / "source.png"
    Image.fromarray(pixels).save(source)
    out = tmp_path / "grid.png"
    args = ["preview", str(source), "--n", "2", "--pipeline", "ZoomCrop(size=(18, 26), zoom=(1.0, 1.0))", "--out", str(out)]
    assert main([*args, "--no-labels"]) == 0
    grid = _png(out)
    assert grid.shape == (_grid_side(1, 18), _grid_side(2, 26), 3)
    for column in range(2):
        left = 2 + column * (26 + 2)
        assert np.array_equal(grid[2 : 2 + 18, left : left + 26], pixels)
    assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all()  # the white padding
    assert main(args) == 0  # with the label band, the same tiles one band lower
    labelled = _png(out)
    assert np.array_equal(labelled[LABEL:], grid)


def test_seed_replays_and_changes_the_draws(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        main(["preview", "--n", "2", "--seed", str(seed), "--pipeline", "RandomResizedCrop(size=24)", "--out", str(path)])
    a, b, c = (_png(p) for p in paths)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("RandomResizedCrop(size=8) | NoSuchBlur(3)", "part 2 'NoSuchBlur(3)': unknown transform 'NoSuchBlur'; allowed: "),
        ("ZoomCrop(size=__import__('os'))", "is not a literal"),
        ("ZoomCrop(size=8, zom=2)", "its arguments are: size, zoom"),
    ],
)
def test_bad_spec_exits_2_and_says_what_is_wrong(tmp_path, capsys, spec, expected):
    out = tmp_path / "grid.png"
    assert main(["preview", "--pipeline", spec, "--out", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_missing_image_and_bad_n_are_reported(tmp_path, capsys):
    assert main(["preview", str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.png")]) == 2
    assert "cannot read IMAGE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["preview", "--n", "0"])
    assert stop.value.code == 2


def test_readme_command_writes_the_default_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["preview"]) == 0  # `diffaug preview`, as the README runs it
    grid = _png(tmp_path / "diffaug-preview.png")
    assert grid.shape == (_grid_height(3, 128), _grid_side(8, 128), 3)
    assert "diffaug-preview.png" in capsys.readouterr().out


def _ink(band):
    """Columns of a label band that hold text (dark pixels)."""
    return np.flatnonzero(band.min(axis=(0, 2)) < 128)


def test_rows_are_labelled_in_the_image_with_their_names(tmp_path):
    out = tmp_path / "grid.png"
    short, long = "CenterCrop(size=16)", "RandomResizedCrop(size=16, scale=(0.2, 1.0)) | RandomHorizontalFlip()"
    assert main(["preview", "--n", "6", "--pipeline", short, "--pipeline", long, "--out", str(out)]) == 0
    grid = _png(out)
    group = LABEL + _grid_side(1, 16)
    first, second = grid[:LABEL], grid[group : group + LABEL]
    assert _ink(first).size and _ink(second).size, "each row group has its name drawn above it"
    assert _ink(second).max() > _ink(first).max(), "the longer name reaches further right"
    # A name longer than the row is cut to fit inside it, and the tiles below stay untouched by it.
    assert _ink(second).max() < grid.shape[1] - 2
    assert (grid[LABEL : LABEL + 2] == 255).all()
    assert main(["preview", "--n", "6", "--pipeline", short, "--pipeline", long, "--out", str(out), "--no-labels"]) == 0
    assert _png(out).shape[0] == grid.shape[0] - 2 * LABEL


def test_version_names_the_package_and_torch(capsys):
    import torch

    import diffaug

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"diffaug {diffaug.__version__} (torch {torch.__version__})"
    result = subprocess.run([sys.executable, "-m", "diffaug.cli", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("diffaug ")


def test_search_shows_progress_for_both_phases(capsys):
    """The refinement phase (a grid of candidates after the gradient steps) has its own bar, not minutes of silence."""
    from diffaug.search.search import SearchConfig, search

    small = dict(steps=3, batch=8, targets=16, size=16, source_size=16, sources=2)
    search(SearchConfig(target_scale=(0.3, 0.6), **small), progress=True)
    err = capsys.readouterr().err
    assert "search: gradient" in err and "/3 " in err
    assert "search: refinement" in err and "/84 " in err  # 2 rounds x 2 bounds x 21 candidates
    search(SearchConfig(target_scale=(0.3, 0.6), **small), progress=False)
    assert capsys.readouterr().err == ""
