"""The density-matching search: identifiable features, recovery on a fast setting, the CLI and its errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

import diffaug as da
from diffaug.cli import main
from diffaug.search import QuantileMatcher, SearchConfig, features, search, texture_bank
from diffaug.search.search import _anderson_darling, _plateau_choice, colour_bank, colour_features

FAST = {"steps": 80, "batch": 128, "targets": 1024, "size": 32, "source_size": 32}


def test_features_reveal_crop_area_and_rotation() -> None:
    bank = texture_bank(4, 48, generator=torch.Generator().manual_seed(0))
    images = bank[torch.arange(64) % 4]
    small = features(da.RandomResizedCrop(48, scale=(0.1, 0.15))(images))
    large = features(da.RandomResizedCrop(48, scale=(0.8, 0.9))(images))
    # Zoomed-in crops show the texture larger: lower apparent frequency (column 2 = log freq_x + log freq_y).
    assert float(small[:, 0, 2].max()) < float(large[:, 0, 2].min())
    # The grating (channel 1) rotated by +20 / -20 degrees: the doubled orientation's sine changes sign.
    plus = features(da.RandomRotation((20.0, 20.0))(images))
    minus = features(da.RandomRotation((-20.0, -20.0))(images))
    assert float(plus[:, 1, 4].mean()) * float(minus[:, 1, 4].mean()) < 0


def _colour_sources(count: int = 64) -> Tensor:
    texture = texture_bank(4, 48, generator=torch.Generator().manual_seed(0))
    return colour_bank(texture, torch.Generator().manual_seed(1))[torch.arange(count) % 4]


def test_colour_features_read_each_factor_where_the_crop_features_cannot() -> None:
    images = _colour_sources()
    jitter = da.ColorJitter(brightness=(1.6, 1.6), contrast=(0.7, 0.7), saturation=(1.9, 1.9))
    out = jitter(images)
    shift = (colour_features(out) - colour_features(images)).mean(0)
    b, c, k = math.log(1.6), math.log(0.7), math.log(1.9)
    torch.testing.assert_close(shift, torch.tensor([b, c, k, c + k]), atol=1e-3, rtol=0)  # float32 rounding
    # The frequency and orientation statistics are centred and scaled per channel: blind to the jitter
    # (up to float32 rounding of a texture of spread 0.01 around 0.25; a crop moves them by whole units).
    torch.testing.assert_close(features(out), features(images), atol=5e-3, rtol=0)


@pytest.mark.parametrize("factors", [(2.0, 2.0), (0.01, 2.0)])
def test_colour_sources_reach_no_clamp_so_the_fused_jitter_is_torchvisions_law(factors: tuple[float, float]) -> None:
    images = _colour_sources(256)
    settings = dict.fromkeys(("brightness", "contrast", "saturation"), factors)
    exact = da.ColorJitter(**settings)(images, generator=torch.Generator().manual_seed(3))  # type: ignore[arg-type]
    fused = da.ColorJitter(**settings, fused=True)(images, generator=torch.Generator().manual_seed(3))  # type: ignore[arg-type]
    assert float(exact.min()) > 0.0 and float(exact.max()) < 1.0
    torch.testing.assert_close(fused, exact, atol=1e-6, rtol=0)


def test_unbiased_quantile_matcher_is_zero_in_expectation_at_the_target() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(20000, 1, generator=generator)
    matcher = QuantileMatcher(target, 256, generator=generator, unbiased=True)
    same = torch.stack([matcher(torch.rand(256, 1, generator=generator)) for _ in range(200)]).mean()
    narrower = torch.stack([matcher(0.1 + 0.8 * torch.rand(256, 1, generator=generator)) for _ in range(200)]).mean()
    assert abs(float(same)) < 0.002 < float(narrower)


# (0.1, 1.0): the broadest target, whose upper bound is the least identified (the density of accepted crops vanishes at 1).
@pytest.mark.parametrize(("scale", "seed"), [((0.2, 0.45), 0), ((0.6, 1.0), 1), ((0.1, 1.0), 1)])
def test_search_recovers_a_hidden_crop_scale(scale: tuple[float, float], seed: int) -> None:
    result = search(SearchConfig(target_scale=scale, seed=seed, **FAST))
    assert result["target"] == {"scale": list(scale)}
    learned = result["learned"]["scale"]  # type: ignore[index]
    assert result["max_abs_error"] == pytest.approx(max(abs(a - b) for a, b in zip(learned, scale, strict=True)), abs=1e-3)
    assert result["max_abs_error"] <= 0.05, result
    # It moved from the broad start (0.08, 1.0).
    history = result["history"]["scale"]  # type: ignore[index]
    assert history[0][0] < 0.12 and len(history) == FAST["steps"]


def test_plain_quantile_matcher_is_smallest_at_the_target() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(20000, 1, generator=generator)
    matcher = QuantileMatcher(target, 256)

    def mean_loss(low: float, high: float) -> float:
        draws = [matcher(low + (high - low) * torch.rand(256, 1, generator=generator)) for _ in range(100)]
        return float(torch.stack(draws).mean())

    at_target = mean_loss(0.0, 1.0)
    assert all(at_target < mean_loss(lo, hi) for lo, hi in [(0.05, 1.0), (0.0, 0.95), (-0.05, 1.05), (0.05, 0.95)])


def _vanishing_tail(u: Tensor, high: float) -> Tensor:
    """Draws of the density ``2 (1 - x)`` on ``[0, 1]`` truncated to ``[0, high]`` (inverse CDF of ``u``).

    Like ``RandomResizedCrop``'s accepted scales near 1, the density falls to 0 at the upper end.
    """
    mass = 1.0 - (1.0 - high) ** 2
    return 1.0 - torch.sqrt(1.0 - u * mass)


def test_polish_score_finds_an_upper_end_where_the_density_vanishes() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.zeros(3)
    for _ in range(4):
        reference = _vanishing_tail(torch.rand(40000, 1, generator=generator), 1.0).T.sort(dim=1).values
        u = torch.rand(10000, 1, generator=generator)  # common random numbers for the three candidates
        scores += torch.stack([_anderson_darling(_vanishing_tail(u, high), reference) for high in (0.9, 0.95, 1.0)])
    # Only 0.25% of the mass lies above 0.95, yet the score ranks the three ends correctly.
    assert float(scores[0]) > float(scores[1]) > float(scores[2]), scores


@given(
    scores=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12),
    tolerance=st.floats(0.0, 2.0),
    current=st.floats(-0.5, 1.5),
)
def test_plateau_choice_lies_in_the_run_of_near_best_scores(scores: list[float], tolerance: float, current: float) -> None:
    grid = [0.1 * i for i in range(len(scores))]
    pick = _plateau_choice(grid, scores, tolerance, current)
    best = min(scores)
    near = [g for g, v in zip(grid, scores, strict=True) if v <= best + tolerance]
    assert min(near) - 1e-9 <= pick <= max(near) + 1e-9
    if tolerance == 0.0 and scores.count(best) == 1 and current not in grid:
        assert pick == pytest.approx(grid[scores.index(best)])


def test_plateau_choice_keeps_a_value_the_score_cannot_tell_apart() -> None:
    grid = [0.8, 0.85, 0.9, 0.95, 1.0]
    scores = [9.0, 4.0, 1.5, 1.01, 1.0]
    assert _plateau_choice(grid, scores, 0.05, current=0.7) == pytest.approx(0.975)  # the middle of the flat end
    assert _plateau_choice(grid, scores, 0.05, current=0.96) == pytest.approx(0.96)  # inside it: kept
    assert _plateau_choice(grid, scores, 0.001, current=0.96) == pytest.approx(1.0)  # sharp: the minimum
    assert _plateau_choice(grid, [9.0, 1.0, 1.02, 3.0, 4.0], 0.05, current=1.0) == pytest.approx(0.875)


def test_search_recovers_a_hidden_rotation_range() -> None:
    result = search(SearchConfig(target_degrees=30.0, seed=0, **FAST))
    assert result["target"] == {"degrees": [-30.0, 30.0]}
    assert result["max_abs_error"] <= 5.0, result  # degrees; started from +-45


def test_search_recovers_a_hidden_colour_jitter() -> None:
    target = {"contrast": (0.5, 1.2), "saturation": (0.8, 1.6)}
    result = search(SearchConfig(target_contrast=target["contrast"], target_saturation=target["saturation"], seed=4, **FAST))
    assert result["target"] == {name: list(value) for name, value in target.items()}
    learned: dict[str, list[float]] = result["learned"]  # type: ignore[assignment]
    assert set(learned) == set(target)  # only the given factors are learned
    errors = [abs(a - b) for name in target for a, b in zip(learned[name], target[name], strict=True)]
    assert result["max_abs_error"] == pytest.approx(max(errors), abs=1e-3)
    assert result["max_abs_error"] <= 0.05, result
    assert len(result["history"]["saturation"]) == FAST["steps"]  # type: ignore[index]


def test_cli_prints_json_last_and_writes_the_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["search", "--target-scale", "0.3", "0.6", "--target-degrees", "20", "--steps", "3", "--batch", "8"]
        + ["--seed", "2", "--out", str(tmp_path), "--no-progress"]
    )
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert set(result) == {"target", "learned", "max_abs_error", "seconds"}
    assert result["target"] == {"scale": [0.3, 0.6], "degrees": [-20.0, 20.0]}
    assert len(result["learned"]["scale"]) == 2 and len(result["learned"]["degrees"]) == 2
    assert (tmp_path / "search.png").stat().st_size > 1000
    assert json.loads((tmp_path / "history.json").read_text())["history"]["scale"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-scale", "0.6", "0.3"], "LO <= HI"),
        (["--target-scale", "0", "0.5"], "0 < LO"),
        (["--target-scale", "0.5", "1.2"], "HI <= 1"),
        (["--target-degrees", "120"], "target_degrees"),
        (["--target-degrees", "-5"], "target_degrees"),
        (["--target-brightness", "1.4", "0.6"], "target_brightness must satisfy 0 < LO <= HI <= 2"),
        (["--target-contrast", "0", "1.2"], "target_contrast must satisfy 0 < LO"),
        (["--target-saturation", "0.5", "2.5"], "target_saturation must satisfy 0 < LO <= HI <= 2"),
        (["--target-contrast", "0.5", "1.5", "--target-degrees", "20"], "cannot be combined with colour targets"),
        (["--steps", "0"], "steps"),
        (["--batch", "1"], "batch"),
    ],
)
def test_cli_rejects_bad_arguments(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", *args, "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_cli_colour_options_reach_the_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["search", "--target-scale", "0.3", "0.6", "--target-brightness", "0.7", "1.3", "--target-saturation", "0.5", "1.5"]
        + ["--steps", "3", "--batch", "8", "--seed", "1", "--out", str(tmp_path), "--no-progress"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) == {"target", "learned", "max_abs_error", "seconds"}
    assert result["target"] == {"scale": [0.3, 0.6], "brightness": [0.7, 1.3], "saturation": [0.5, 1.5]}
    assert set(result["learned"]) == {"scale", "brightness", "saturation"}
    config = json.loads((tmp_path / "history.json").read_text())["config"]
    assert config["target_brightness"] == [0.7, 1.3] and config["target_contrast"] is None


def test_config_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="nothing to search"):
        SearchConfig()
    with pytest.raises(ValueError, match="matcher"):
        SearchConfig(target_scale=(0.2, 0.5), matcher="critic")
    with pytest.raises(ValueError, match="lr"):
        SearchConfig(target_scale=(0.2, 0.5), lr=0.0)
    with pytest.raises(TypeError, match="pair"):
        SearchConfig(target_scale=(0.2,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="target_saturation must be a pair"):
        SearchConfig(target_saturation=1.5)  # type: ignore[arg-type]
