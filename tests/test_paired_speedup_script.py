"""``benchmarks/paired_speedup.py``: ratios from alternating slices of long-lived workers."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from cli_support import REPO


@pytest.fixture
def ps(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import paired_speedup

    return paired_speedup


def _side(ps: ModuleType, code: str, kind: str, rates: list[float]) -> object:
    side = ps.Side(code, kind, REPO)
    side.steps = [int(r * 2) for r in rates]  # two seconds per slice
    side.seconds = [2.0] * len(rates)
    return side


def test_rounds_alternate_their_order(ps: ModuleType) -> None:
    sides = [_side(ps, "before", "batched", [1.0]), _side(ps, "after", "batched", [1.0])]
    assert ps.round_order(sides, 0) == sides
    assert ps.round_order(sides, 1) == sides[::-1]
    assert ps.round_order(sides, 2) == sides


def test_comparisons_give_per_round_ratios_and_the_ratio_of_totals(ps: ModuleType) -> None:
    before = _side(ps, "before", "batched", [100.0, 200.0, 100.0])
    after = _side(ps, "after", "batched", [210.0, 380.0, 190.0])
    dummy = _side(ps, "after", "dummy", [50.0, 100.0, 50.0])
    found = ps.comparisons([before, after, dummy])
    assert [c.label for c in found] == [
        "UniGenVecEnv, this code against the code before",
        "after code, UniGenVecEnv against DummyVecEnv",
    ]
    speedup, vs_dummy = found
    assert speedup.ratios == pytest.approx([2.1, 1.9, 1.9])
    assert speedup.total == pytest.approx(780.0 / 400.0)
    assert vs_dummy.ratios == pytest.approx([4.2, 3.8, 3.8])
    assert speedup.line() == (
        "- UniGenVecEnv, this code against the code before: 1.90x, median of 3 rounds "
        "(interquartile range 1.90x-2.00x, lowest 1.90x, highest 2.10x); totals 1.95x."
    )


def test_a_comparison_needs_the_same_slices_on_both_sides(ps: ModuleType) -> None:
    with pytest.raises(ValueError, match="hold 2 and 1 slices"):
        ps.compare(
            _side(ps, "after", "batched", [1.0, 2.0]), _side(ps, "before", "batched", [1.0]), "x"
        )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "0"], "--rounds must be an integer >= 1, got 0"),
        (["--n-envs", "0"], "--n-envs must be an integer >= 1, got 0"),
        (["--warmup", "-1"], "--warmup must be an integer >= 0, got -1"),
        (["--slice-seconds", "0"], "--slice-seconds must be > 0, got 0.0"),
    ],
)
def test_bad_settings_are_refused(
    ps: ModuleType, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit):
        ps.main(["--before", str(REPO), "--output", "/nonexistent/never.md", *flags])
    assert message in capsys.readouterr().err


def test_a_before_folder_without_the_package_is_refused(
    ps: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        ps.main(["--before", str(tmp_path), "--output", str(tmp_path / "never.md")])
    assert f"--before {tmp_path}: no unigen_sb3 package in that folder" in capsys.readouterr().err
    assert not (tmp_path / "never.md").exists()


def test_a_small_run_writes_the_table_and_the_ratio(ps: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "paired.md"
    small = "--kinds batched --n-envs 2 --size 36 --rounds 2 --warmup 1".split()
    ps.main(["--before", str(REPO), *small, "--slice-seconds", "0.05", "--output", str(out)])
    text = out.read_text()
    assert text.startswith("# Speed-up ratios in paired slices")
    rows = [line for line in text.splitlines() if line.startswith(("| before", "| after"))]
    assert len(rows) == 2 and all("| UniGenVecEnv |" in row for row in rows)
    assert "- UniGenVecEnv, this code against the code before: " in text
    assert "median of 2 rounds" in text
