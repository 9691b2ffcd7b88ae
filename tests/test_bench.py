"""The benchmark suite runs end to end and writes what it promises (no timing is checked here)."""

from __future__ import annotations

import json

import pytest
import torch

from diffaug import bench, cli

TINY = "2,3,12,12->8"


def _run(tmp_path, capsys, *extra: str) -> tuple[str, dict]:
    code = bench.main(["--cases", TINY, "--repeats", "2", "--warmup", "0", "--min-time", "0", "--out", str(tmp_path), *extra])
    assert code == 0
    out = capsys.readouterr().out
    return out, json.loads((tmp_path / "bench.json").read_text())


def test_suite_writes_table_json_and_plot(tmp_path, capsys) -> None:
    out, payload = _run(tmp_path, capsys)
    rows = {row["name"]: row for row in payload["cases"][0]["rows"]}
    expected = {
        bench.RRC,
        bench.PIPE,
        bench.K_SLICE,
        bench.K_RESAMPLE,
        bench.K_SEQ,
        bench.K_SEQ_RESAMPLE,
        bench.TV_AA,
        bench.TV_NOAA,
        bench.BARE,
        bench.COPY,
    }
    assert expected <= set(rows)
    for name, row in rows.items():
        assert row["fwd_ms"] > 0 and len(row["fwd_samples"]) == 2, name
        if name != bench.COPY:
            assert row["fwdbwd_ms"] > 0 and row["peak_mib"] >= 0, name
    assert rows[bench.COPY]["fwdbwd_ms"] is None
    # The markdown table: one line per row, and the goals evaluated from the same numbers.
    for name in expected:
        assert f"| {name} |" in out
    goals = {(g["goal"], g["case"]) for g in payload["goals"]}
    assert len(goals) == len(payload["goals"]) > 0
    assert (tmp_path / "bench.png").stat().st_size > 0
    assert payload["environment"]["torch"] == torch.__version__


def test_console_command_runs_the_same_suite(tmp_path, capsys) -> None:
    args = ["bench", "--cases", TINY, "--repeats", "1", "--warmup", "0", "--min-time", "0", "--rows", "diffaug", "--no-plot"]
    args += ["--out", str(tmp_path)]
    code = cli.main(args)
    assert code == 0
    out = capsys.readouterr().out
    assert f"| {bench.RRC} |" in out and "Kornia" not in out.split("### Goals")[0]


def test_uint8_normalised_case_on_cpu(tmp_path, capsys) -> None:
    """The device-agnostic part of the GPU-only case: uint8 in, normalised float32 / bfloat16 out."""
    _, payload = _run(tmp_path, capsys, "--uint8", "on", "--no-compile", "--rows", "copy", "--no-plot")
    case = payload["cases"][-1]
    assert case["dtype"] == "torch.uint8"
    names = [row["name"] for row in case["rows"]]
    assert "uint8 -> float32 normalised, eager" in names and "uint8 -> bfloat16 normalised, eager" in names


def test_normalised_pipeline_matches_a_manual_normalisation() -> None:
    crop = torch.nn.Identity()
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    out = bench.normalised_pipeline(crop, torch.bfloat16, torch.device("cpu"))(images)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), (images / 255.0 - mean) / std, rtol=1e-2, atol=1e-2)


def test_peak_memory_counts_what_a_call_allocates() -> None:
    size = 1 << 20  # 1 Mi float32 = 4 MiB, freed at the end of the call
    peak = bench.peak_memory(lambda: torch.ones(size).sum(), torch.device("cpu"))
    assert 3.9 <= peak <= 4.5


@pytest.mark.parametrize("text", ["8,3,32->32", "8,3,32,32", "a,b,c,d->1"])
def test_malformed_cases_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        bench._parse_cases(text)


@pytest.mark.parametrize("antialiased_ms, met", [(19.0, True), (21.0, False)])
def test_antialias_cost_goal_is_read_from_the_antialias_case(antialiased_ms: float, met: bool) -> None:
    results = [bench.Result(bench.RRC, fwd_ms=10.0), bench.Result(bench.RRC_AA, fwd_ms=antialiased_ms)]
    report = [{"case_obj": bench.antialias_case(), "results": results}]
    (goal,) = bench.goals(report, "cpu")
    assert goal.text == "antialiased crop <= 2x crop (fwd)" and goal.ratio == pytest.approx(antialiased_ms / 10.0)
    assert goal.met is met
    assert bench.goals(report, "cuda") == []  # the 2x budget is set for the CPU
