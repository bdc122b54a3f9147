"""One malformed run does not abort a report: it is listed, the others are reported."""

from __future__ import annotations

import json
from pathlib import Path

from unigen_sb3.experiments.report import write_report


def _run(folder: Path, eval_text: str, config_text: str = "seed: 1\n") -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config_text)
    (folder / "eval.json").write_text(eval_text)


def test_malformed_runs_are_listed_and_skipped(tmp_path: Path) -> None:
    good = {"metrics": {"reward_total": {"mean": 0.5, "std": 0.1}}}
    _run(tmp_path / "good", json.dumps(good))
    _run(tmp_path / "truncated", '{"metrics": ')
    _run(tmp_path / "a_list", "[1, 2]")
    _run(tmp_path / "odd_metrics", json.dumps({"metrics": {"reward_total": "high"}}))
    _run(tmp_path / "bad_config", json.dumps(good), config_text="seed: [\n")
    (tmp_path / "sweep.json").write_text("{not json")
    text = write_report([tmp_path], tmp_path / "report").read_text()
    assert "## Skipped runs" in text
    for name in ("truncated", "a_list", "bad_config"):
        assert f"- {name}: " in text
    assert "| good | 1 | 0.5 ± 0.1 |" in text
    assert "| odd_metrics | 1 | n/a |" in text
    assert "Skipped: sweep.json cannot be read" in text
