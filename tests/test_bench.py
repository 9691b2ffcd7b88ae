"""The benchmark suite runs end to end and writes what it promises (no timing is checked here).

The suite lives in the repository's ``benchmarks/suite.py``; ``diffaug bench`` loads it from there.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from diffaug import cli

suite = cli.load_bench()

TINY = "2,3,12,12->8"


def _run(tmp_path, capsys, *extra: str) -> tuple[str, dict]:
    code = suite.main(["--cases", TINY, "--repeats", "2", "--warmup", "0", "--min-time", "0", "--out", str(tmp_path), *extra])
    assert code == 0
    out = capsys.readouterr().out
    return out, json.loads((tmp_path / "bench.json").read_text())


def test_suite_writes_table_json_and_plot(tmp_path, capsys) -> None:
    out, payload = _run(tmp_path, capsys)
    rows = {row["name"]: row for row in payload["cases"][0]["rows"]}
    expected = {
        suite.RRC,
        suite.PIPE,
        suite.K_SLICE,
        suite.K_RESAMPLE,
        suite.K_SEQ,
        suite.K_SEQ_RESAMPLE,
        suite.TV_AA,
        suite.TV_NOAA,
        suite.BARE,
        suite.COPY,
    }
    assert expected <= set(rows)
    for name, row in rows.items():
        assert row["fwd_ms"] > 0 and len(row["fwd_samples"]) == 2, name
        if name != suite.COPY:
            assert row["fwdbwd_ms"] > 0 and row["peak_mib"] >= 0, name
    assert rows[suite.COPY]["fwdbwd_ms"] is None
    # The markdown table: one line per row, and the goals evaluated from the same numbers.
    for name in expected:
        assert f"| {name} |" in out
    goals = {(g["goal"], g["case"]) for g in payload["goals"]}
    assert len(goals) == len(payload["goals"]) > 0
    assert all(g["ratio"] is not None for g in payload["goals"])
    assert (tmp_path / "bench.png").stat().st_size > 0
    assert payload["environment"]["torch"] == torch.__version__


def test_console_command_runs_the_same_suite(tmp_path, capsys) -> None:
    args = ["bench", "--cases", TINY, "--repeats", "1", "--warmup", "0", "--min-time", "0", "--rows", "diffaug", "--no-plot"]
    args += ["--out", str(tmp_path)]
    code = cli.main(args)
    assert code == 0
    out = capsys.readouterr().out
    assert f"| {suite.RRC} |" in out and "Kornia" not in out.split("### Goals")[0]


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_every_goal_names_rows_its_case_builds(device_type: str) -> None:
    """A goal whose row or peer is misspelt would read n/a forever: each one names rows of its case."""
    cases = suite.default_cases(device_type)
    assert any(c.tag == "antialias" for c in cases) and (device_type == "cuda") == any(c.tag == "uint8 in" for c in cases)
    for case in cases:
        # The rows are built on the CPU: their names do not depend on the device.
        rows, _ = case.rows(case, torch.device("cpu"), False)
        names = {row.name for row in rows}
        assert len(names) == len(rows), case.name
        for goal in case.goals:
            assert {goal.row, goal.peer} <= names, (case.name, goal.text)
            assert goal.key in ("fwd_ms", "fwdbwd_ms") and set(goal.devices) <= {"cpu", "cuda"}


def test_check_fails_when_a_goal_cannot_be_read(tmp_path, capsys) -> None:
    """--check: a goal whose peer row is left out (here by --rows) fails the run instead of reading n/a."""
    args = ["--cases", TINY, "--repeats", "1", "--warmup", "0", "--min-time", "0", "--no-plot", "--out", str(tmp_path)]
    assert suite.main([*args, "--rows", "diffaug"]) == 0
    assert suite.main([*args, "--rows", "diffaug", "--check"]) == 1
    assert "goal(s) missed or not read: crop <= 0.5x Kornia default crop (fwd)" in capsys.readouterr().err


def test_uint8_normalised_case_on_cpu(tmp_path, capsys) -> None:
    """The device-agnostic part of the GPU-only case: uint8 in, normalised float32 / bfloat16 out."""
    _, payload = _run(tmp_path, capsys, "--uint8", "on", "--no-compile", "--rows", "uint8,copy", "--no-plot")
    case = payload["cases"][-1]
    assert case["dtype"] == "torch.uint8"
    names = [row["name"] for row in case["rows"]]
    assert "uint8 -> float32 normalised, eager" in names and "uint8 -> bfloat16 normalised, eager" in names
    assert all(row["fwdbwd_ms"] is None for row in case["rows"])


def test_normalised_pipeline_matches_a_manual_normalisation() -> None:
    crop = torch.nn.Identity()
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    out = suite.normalised_pipeline(crop, torch.bfloat16, torch.device("cpu"))(images)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), (images / 255.0 - mean) / std, rtol=1e-2, atol=1e-2)


def test_peak_memory_counts_what_a_call_allocates() -> None:
    size = 1 << 20  # 1 Mi float32 = 4 MiB, freed at the end of the call
    peak = suite.peak_memory(lambda: torch.ones(size).sum(), torch.device("cpu"))
    assert peak is not None and 3.9 <= peak <= 4.5
    both = suite.peak_memory(lambda: torch.ones(size) + torch.ones(size), torch.device("cpu"))
    assert both is not None and 11.9 <= both <= 12.5  # two inputs and the sum alive at once


@pytest.mark.parametrize("text", ["8,3,32->32", "8,3,32,32", "a,b,c,d->1"])
def test_malformed_cases_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        suite._parse_cases(text)


@pytest.mark.parametrize("antialiased_ms, met", [(19.0, True), (21.0, False)])
def test_antialias_cost_goal_is_read_from_the_antialias_case(antialiased_ms: float, met: bool) -> None:
    results = [suite.Result(suite.RRC, fwd_ms=10.0), suite.Result(suite.RRC_AA, fwd_ms=antialiased_ms)]
    report = [suite.Measured(suite.antialias_case(), results)]
    (goal,) = suite.evaluate(report, "cpu")
    assert goal.goal.text == "antialiased crop <= 2x crop (fwd)" and goal.ratio == pytest.approx(antialiased_ms / 10.0)
    assert goal.met is met
    assert suite.evaluate(report, "cuda") == []  # the 2x budget is set for the CPU


def test_bench_without_the_repository_says_how_to_get_it(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "BENCH_SUITE", tmp_path / "benchmarks" / "suite.py")
    monkeypatch.delitem(sys.modules, "diffaug_bench_suite")
    assert cli.main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "benchmarks/suite.py" in err and "pip install -e ." in err


def test_building_the_parser_loads_no_command_module() -> None:
    """``diffaug --help`` and ``diffaug preview`` load neither the suite nor the search (nor their imports)."""
    code = "import sys, diffaug.cli; diffaug.cli.build_parser(); print(sorted(m for m in sys.modules if m.startswith(NAMES)))"
    names = ("diffaug_bench_suite", "diffaug.search", "kornia", "matplotlib")
    result = subprocess.run([sys.executable, "-c", f"NAMES = {names!r}; {code}"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_simclr_cases_build_the_pipelines_they_name() -> None:
    """SimCLR's two cases: every row runs on a small batch (the pipelines to the crop size, the
    colour pass alone to the input's), and the goals read the fused jitter's row."""
    cases = [c for c in suite.default_cases("cpu") if c.tag == "SimCLR"]
    assert [(c.shape, c.out) for c in cases] == [((64, 3, 256, 256), (224, 224)), ((256, 3, 96, 96), (64, 64))]
    small = dataclasses.replace(cases[0], batch=2, height=40, width=40, out=(32, 32))
    rows, notes = small.rows(small, torch.device("cpu"), False)
    assert notes == [] and len(rows) == 7
    images = small.make_input(torch.device("cpu"))
    for row in rows:
        expected = (2, 3, 40, 40) if row.name.startswith("colour pass") else (2, 3, 32, 32)
        assert row.fn(images).shape == expected, row.name
    assert {goal.row for goal in small.goals} == {suite.SIMCLR_FUSED}
    assert {goal.peer for goal in small.goals} == {suite.K_SIMCLR, suite.TV_SIMCLR}
