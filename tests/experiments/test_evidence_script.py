"""benchmarks/evidence.py (``make evidence``): one suite at smoke size, end to end, then the
results page from it; a re-run keeps what is finished."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from unigen_sb3.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "evidence_script", REPO / "benchmarks" / "evidence.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["evidence_script"] = module
    spec.loader.exec_module(module)
    return module


def test_quick_suite_writes_runs_baselines_picture_and_manifest_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evidence = _script()
    # Smaller still than --quick: the smallest canvas, short episodes, two envs.
    tiny = [
        "env.size=36",
        "env.horizon=4",
        "training.n_envs=2",
        "algorithm.kwargs.n_steps=32",
        "algorithm.kwargs.batch_size=64",
    ]
    monkeypatch.setattr(
        evidence,
        "QUICK_ON_POLICY",
        [
            *tiny,
            "training.total_timesteps=128",
            "training.warm_start.demos=4",
            "training.warm_start.bc_epochs=1",
            "training.warm_start.critic_warmup=64",
            "callbacks.eval_freq=32",
            "training.checkpoint_freq=64",
        ],
    )
    out = tmp_path / "ev"
    argv = ["--quick", "--only", "edit", "--out", str(out), "--executor", "local"]
    assert evidence.main(argv) == 0
    manifest = json.loads((out / "evidence.json").read_text())
    assert manifest["quick"] is True and manifest["command"] == "make evidence-quick"
    (suite,) = manifest["suites"]
    assert suite["name"] == "edit" and suite["task"] == "edit" and suite["algorithm"] == "PPO"
    assert "128 timesteps per run" in suite["budget"] and "2 seeds" in suite["budget"]
    ablation = json.loads((out / "edit" / "ablation.json").read_text())
    assert ablation["seeds"] == [0, 1]
    assert ablation["variants"]["full"]["metrics"]["reward_total"]["n"] == 2
    baselines = json.loads((out / "edit" / "baselines.json").read_text())
    assert sorted(baselines) == sorted(evidence.BASELINE_NAMES)
    runs = [out / "edit" / "full" / f"seed_{s}" for s in (0, 1)]
    tasks = {json.loads((r / "eval.json").read_text())["seed"] for r in runs}
    assert tasks == {baselines["Oracle"]["seed"]}  # every seed on the baselines' tasks
    assert baselines["Oracle"]["metrics"]["reward_total"]["mean"] > 0.9
    for run in runs:
        assert (run / "warm_start.json").is_file() and (run / "eval_history.json").is_file()
    assert (out / "edit" / "before_after.png").stat().st_size > 0

    # Running it again trains nothing and rewrites nothing it has.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert evidence.main(argv) == 0
    for path in (*(r / "eval.json" for r in runs), out / "edit" / "baselines.json"):
        assert path.stat().st_mtime_ns == stamps[path], path

    # A full run's folder is not a quick run's.
    with pytest.raises(SystemExit):
        evidence.main(["--only", "edit", "--out", str(out), "--executor", "local"])

    # The report turns the folder into the results page.
    assert cli_main(["report", str(out), "--out", str(tmp_path / "docs")]) == 0
    page = (tmp_path / "docs" / "results.md").read_text()
    assert "SMOKE RUN" in page and "| **edit** |" in page
