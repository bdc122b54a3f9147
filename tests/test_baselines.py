"""The baseline comparison used by `make run`, and the two example scripts that print it."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.envs.policies import OraclePolicy
from unigen_sb3.evaluation.baselines import (
    TABLE_METRICS,
    before_after_image,
    compare_with_baselines,
    comparison_table,
)

REPO = Path(__file__).resolve().parents[1]
TINY = {"task": "edit", "size": 36, "horizon": 4}


def _report(total: float) -> dict:
    return {"metrics": {k: {"mean": total, "std": 0.5} for k in TABLE_METRICS}}


def test_comparison_table_rows_and_columns() -> None:
    table = comparison_table({"A": _report(0.25), "B": _report(0.75)}).splitlines()
    assert table[0].startswith("| policy | R_total | quality")
    assert len(table) == 4
    assert table[2].startswith("| A | 0.250 (0.500) |") and table[3].startswith("| B | 0.750")


def test_compare_with_baselines_same_tasks_for_every_policy() -> None:
    reports = compare_with_baselines(OraclePolicy(), TINY, 3, seed=5, model_name="mine")
    blind = "Blind (best prompt-blind sequence)"
    assert list(reports) == ["mine", "Random", "NoOp", blind, "Oracle (privileged)"]
    for report in reports.values():
        assert report["n_episodes"] == 3 and report["seed"] == 5
        assert report["prompt_split"] == "heldout" and report["task"] == "edit"
    # The model here is the oracle itself: its row equals the Oracle row.
    assert reports["mine"]["metrics"] == reports["Oracle (privileged)"]["metrics"]
    oracle = reports["mine"]["metrics"]["reward_total"]["mean"]
    assert oracle > reports["NoOp"]["metrics"]["reward_total"]["mean"]
    assert oracle > reports[blind]["metrics"]["reward_total"]["mean"]


def test_blind_baseline_score_replays_the_search_result() -> None:
    from unigen_sb3.evaluation import episode_returns
    from unigen_sb3.evaluation.baselines import blind_baseline_score
    from unigen_sb3.evaluation.blind import blind_search

    score = blind_baseline_score(TINY, 3, seed=5)
    # The same search by hand: its best sequence, replayed in the env on the evaluation
    # set (here the very tasks searched), scores what the search said and what the
    # function reports.
    result = blind_search("edit", depth=2, beam=2, n_episodes=3, seed=5, size=36, horizon=4)
    assert 1 <= len(result.actions) <= 2 and result.evaluated > 0
    replay = episode_returns(
        result.policy(), "edit", n_episodes=3, seed=5, size=36, horizon=4, prompt_split="heldout"
    )
    assert result.score == pytest.approx(float(replay.mean()), abs=1e-6)
    assert score == pytest.approx(result.score, abs=1e-6)


def test_before_after_image_layout() -> None:
    image = before_after_image(OraclePolicy(), TINY, 3, seed=1, labels=False, scale=1)
    assert image.shape == (3 * 36, 3 * 36, 3) and image.dtype == np.uint8
    # Editing: the start (left) differs from the target (right) and the oracle reaches it.
    start, final, target = image[:36, :36], image[:36, 36:72], image[:36, 72:]
    assert not np.array_equal(start, target)
    assert np.abs(final.astype(int) - target).mean() < np.abs(start.astype(int) - target).mean()


def test_before_after_image_labels_and_both_task_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    import unigen_sb3.evaluation.baselines as baselines

    seen: dict[str, object] = {}
    original = baselines._labelled_grid

    def spy(images, tasks, titles):  # type: ignore[no-untyped-def]
        seen.update(tasks=tasks, titles=titles)
        return original(images, tasks, titles)

    monkeypatch.setattr(baselines, "_labelled_grid", spy)
    config = {"task": "unified", "size": 36, "horizon": 4}
    image = before_after_image(OraclePolicy(), config, 4, seed=0, scale=2, model_name="PPO")
    assert seen["titles"] == ["start", "PPO", "target"]
    kinds = [t.kind for t in seen["tasks"]]  # type: ignore[attr-defined]
    assert kinds[:2] in (["generate", "edit"], ["edit", "generate"]) and len(kinds) == 4
    assert set(kinds) == {"generate", "edit"}
    # Titles above and a prompt under every row make it taller than the bare grid.
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert image.shape[0] > 4 * 72 and image.shape[1] >= 3 * 72
    with pytest.raises(ValueError, match="n=0 must be an integer >= 1"):
        before_after_image(OraclePolicy(), config, 0)


def test_pick_rows_alternates_kinds() -> None:
    from unigen_sb3.evaluation.baselines import _pick_rows

    assert _pick_rows(["edit", "edit", "edit", "generate", "generate"], 4) == [0, 3, 1, 4]
    assert _pick_rows(["edit"] * 5, 3) == [0, 1, 2]


@pytest.mark.slow
def test_compare_baselines_example_on_a_cli_run(tmp_path: Path, monkeypatch) -> None:
    from unigen_sb3.cli import main

    run = tmp_path / "run"
    overrides = [
        "training.total_timesteps=64",
        "env.size=36",
        "env.horizon=4",
        "evaluation.n_episodes=2",
        "training.n_envs=1",
        "algorithm.kwargs.batch_size=64",  # one env: the rollout is n_steps = 64
    ]
    args = ["train", str(shipped_config_path("quickstart")), "--out", str(run)]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0
    monkeypatch.setattr(sys, "argv", ["compare_baselines.py", str(run)])
    runpy.run_path(str(REPO / "examples" / "compare_baselines.py"), run_name="__main__")
    reports = json.loads((run / "baselines.json").read_text())
    blind = "Blind (best prompt-blind sequence)"
    assert set(reports) == {"PPO", "Random", "NoOp", blind, "Oracle (privileged)"}
    assert (run / "before_after.png").stat().st_size > 0


@pytest.mark.slow
def test_quickstart_example_runs(tmp_path: Path, monkeypatch) -> None:
    argv = ["quickstart.py", "--out", str(tmp_path), "--timesteps", "64", "--episodes", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(REPO / "examples" / "quickstart.py"), run_name="__main__")
    assert (tmp_path / "model.zip").exists() and (tmp_path / "before_after.png").exists()
    assert len(json.loads((tmp_path / "baselines.json").read_text())) == 5


def test_sequence_scoring_runs_the_network_once_per_distinct_canvas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from unigen_sb3.envs.env import shared_reward_computer
    from unigen_sb3.evaluation import blind

    perceptual = shared_reward_computer("auto", "cpu", 36).perceptual
    canvas = torch.rand(5, 3, 36, 36, generator=torch.Generator().manual_seed(0))
    canvas[3], canvas[4] = canvas[0], canvas[1]  # two canvases met twice
    every_row = perceptual.features(canvas)
    batches: list[int] = []
    real = perceptual.features
    monkeypatch.setattr(perceptual, "features", lambda x: batches.append(len(x)) or real(x))
    got = blind._distinct_features(perceptual, canvas)
    assert batches == [3]
    assert all(torch.equal(a, b) for a, b in zip(got, every_row, strict=True))  # bit for bit
    distinct = canvas[:3]
    assert all(
        torch.equal(a, b)
        for a, b in zip(blind._distinct_features(perceptual, distinct), real(distinct), strict=True)
    )
    assert batches == [3, 3]  # all distinct: one forward over the rows as given
