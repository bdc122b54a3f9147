"""``ablate`` reuses only runs of the same config; ``report`` groups seeds per variant folder."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml
from cli_support import TINY, sets

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import load_config
from unigen_sb3.configs.loader import save_config
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig, config_to_dict
from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.experiments.ablation import _variant_config, ablation_variants, run_ablation
from unigen_sb3.experiments.report import write_report

ABLATION = shipped_config_path("ablation")
# One variant (full), one seed, no checkpoints: a single tiny run.
ONE_RUN = [
    *TINY,
    "ablation.drop=[]",
    "ablation.weight_grid=[]",
    "ablation.n_seeds=1",
    "training.checkpoint_freq=0",
]


def _config(*overrides: str) -> ExperimentConfig:
    return load_config(ABLATION, [*ONE_RUN, *overrides])


def _fake_eval(mean: float) -> str:
    return json.dumps({"schema": 1, "metrics": {"reward_total": {"mean": mean, "std": 0.1}}})


def _fake_run(path: Path, config: ExperimentConfig, eval_mean: float | None = 0.5) -> None:
    path.mkdir(parents=True)
    save_config(config, path / "config.yaml")
    if eval_mean is not None:
        (path / "eval.json").write_text(_fake_eval(eval_mean))


# --- 1. a finished run of another config is refused, an identical one is reused -------------


def test_ablate_rerun_reuses_identical_runs_and_refuses_changed_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "abl"
    args = ["ablate", str(ABLATION), "--out", str(out)]
    assert main([*args, *sets(ONE_RUN)]) == 0
    model = out / "full" / "seed_0" / "model.zip"
    stamp = model.stat().st_mtime_ns
    # Same config (the sweep section, checkpoint interval and progress bar do not matter):
    # reused, not retrained.
    again = ["sweep.n_trials=3", "training.progress_bar=false", "training.checkpoint_freq=32"]
    assert main([*args, *sets([*ONE_RUN, *again])]) == 0
    assert model.stat().st_mtime_ns == stamp
    capsys.readouterr()
    # A changed training budget: refused, naming the folder and the key, nothing retrained.
    code = main([*args, *sets([*ONE_RUN, "training.total_timesteps=32"])])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG_ERROR
    assert "training.total_timesteps" in err and "64 -> 32" in err
    assert str(out / "full" / "seed_0") in err and "--out" in err
    assert model.stat().st_mtime_ns == stamp


def _stale_no_edit_run(
    out: Path, config: ExperimentConfig, override: str, *, finished: bool = True
) -> None:
    """A no_edit/seed_0 run folder trained with ``override`` on top of ``config``."""
    weights = dict(ablation_variants(config))["no_edit"]
    other = config_to_dict(_config("ablation.drop=[edit]", override))
    stale = _variant_config(other, weights, config.reward.effective_weights(), seed=0)
    _fake_run(out / "no_edit" / "seed_0", stale, eval_mean=0.5 if finished else None)


def test_ablate_refuses_a_stale_later_variant_before_training_anything(tmp_path: Path) -> None:
    out = tmp_path / "abl"
    config = _config("ablation.drop=[edit]")
    _stale_no_edit_run(out, config, "training.total_timesteps=128")
    with pytest.raises(ConfigError) as info:
        run_ablation(config, out)
    assert info.value.path == "training.total_timesteps"
    assert "no_edit" in info.value.message and "128 -> 64" in info.value.message
    assert not (out / "full").exists() and not (out / "ablation.json").exists()


def test_ablate_refuses_an_unfinished_run_of_another_config(tmp_path: Path) -> None:
    out = tmp_path / "abl"
    config = _config("ablation.drop=[edit]")
    _stale_no_edit_run(out, config, "env.horizon=5", finished=False)  # no eval.json
    with pytest.raises(ConfigError, match=r"no_edit.*unfinished run.*env\.horizon: 5 -> 4"):
        run_ablation(config, out)
    assert not (out / "full").exists()


# --- 2. dropping the shaping potential's component ----------------------------------------


def test_drop_of_the_shaping_potential_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shaping = ["reward.shaping.enabled=true", "reward.shaping.potential=edit"]
    with pytest.raises(ConfigError) as info:
        ablation_variants(_config(*shaping, "ablation.drop=[edit]"))
    assert info.value.path == "ablation.drop"
    assert "reward.shaping" in info.value.message and "no_edit" in info.value.message
    # Another potential, or shaping off, is fine.
    ok = _config(*shaping, "ablation.drop=[consistency]")
    assert [n for n, _ in ablation_variants(ok)] == ["full", "no_consistency"]
    off = _config("reward.shaping.potential=edit", "ablation.drop=[edit]")
    assert [n for n, _ in ablation_variants(off)] == ["full", "no_edit"]
    # The CLI exits 2 and writes nothing.
    out = tmp_path / "abl"
    code = main(
        [
            "ablate",
            str(ABLATION),
            "--out",
            str(out),
            *sets([*ONE_RUN, *shaping, "ablation.drop=[edit]"]),
        ]
    )
    assert code == EXIT_CONFIG_ERROR and "ablation.drop" in capsys.readouterr().err
    assert not out.exists()


# --- 3. grid entries whose names collide ---------------------------------------------------


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ("{quality: 0.5002, edit: 0.4998, consistency: 0.0}", "3 significant digits"),
        ("{quality: 0.5001, edit: 0.4999, consistency: 0.0}", "same weights"),
    ],
)
def test_grid_name_collision_is_refused(second: str, why: str) -> None:
    grid = f"ablation.weight_grid=[{{quality: 0.5001, edit: 0.4999, consistency: 0.0}}, {second}]"
    with pytest.raises(ConfigError) as info:
        ablation_variants(_config(grid))
    assert info.value.path == "ablation.weight_grid[1]"
    message = info.value.message
    assert "ablation.weight_grid[0]" in message and "0.5001" in message and why in message


def test_grid_entries_with_distinct_names_are_all_kept() -> None:
    grid = (
        "ablation.weight_grid=[{quality: 0.4, edit: 0.4, consistency: 0.2}, "
        "{quality: 0.6, edit: 0.2, consistency: 0.2}]"
    )
    names = [n for n, _ in ablation_variants(_config(grid))]
    assert names == ["full", "w_q0.4_e0.4_c0.2", "w_q0.6_e0.2_c0.2"]


# --- 4. seed variance: grouped per variant folder --------------------------------------------


def _write_run(path: Path, seed: int, mean: float) -> None:
    path.mkdir(parents=True)
    config = {"seed": seed, "reward": {"weights": {"quality": 0.4, "edit": 0.4}}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "eval.json").write_text(_fake_eval(mean))


def _variance_rows(text: str) -> list[str]:
    section = text.split("## Reward variance across seeds", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "seeds" not in line]


def test_report_keeps_variants_with_equal_configs_apart(tmp_path: Path) -> None:
    # A grid entry equal to the base weights: same config as `full`, another folder.
    abl = tmp_path / "abl"
    means = {"full": (1.0, 2.0), "w_q0.4_e0.4_c0.2": (5.0, 9.0)}
    for variant, (m0, m1) in means.items():
        _write_run(abl / variant / "seed_0", 0, m0)
        _write_run(abl / variant / "seed_1", 1, m1)
    text = write_report([abl], tmp_path / "rep").read_text()
    rows = _variance_rows(text)
    assert len(rows) == 2
    for variant, pair in means.items():
        (row,) = [r for r in rows if r.startswith(f"| {variant} |")]
        assert "[0, 1]" in row and f"{statistics.stdev(pair):.4g}" in row


def test_report_does_not_merge_repeated_seeds(tmp_path: Path) -> None:
    _write_run(tmp_path / "runs" / "a", 0, 1.0)
    _write_run(tmp_path / "runs" / "b", 0, 3.0)
    text = write_report([tmp_path / "runs"], tmp_path / "rep").read_text()
    assert _variance_rows(text) == []
    assert "Not merged: a (seed 0), b (seed 0)" in text


# --- 5. every sweep.json is reported ---------------------------------------------------------


def test_report_lists_every_sweep(tmp_path: Path) -> None:
    _write_run(tmp_path / "runs" / "r", 0, 1.0)
    for name in ("b_sweep", "a_sweep"):
        folder = tmp_path / "runs" / name
        folder.mkdir()
        summary = {"study_name": name, "n_complete": 1, "n_trials": 2, "metric": "reward_total"}
        (folder / "sweep.json").write_text(json.dumps(summary))
    runs = tmp_path / "runs"
    text = write_report([runs], tmp_path / "rep").read_text()
    assert "## Sweep: a_sweep" in text and "## Sweep: b_sweep" in text
    text = write_report([runs, runs / "a_sweep"], tmp_path / "rep").read_text()  # found twice
    assert text.count("## Sweep: a_sweep") == 1 and text.count("## Sweep: b_sweep") == 1
    assert text.index("## Sweep: a_sweep") < text.index("## Sweep: b_sweep")


def test_curves_prefer_per_episode_r_total_and_components() -> None:
    from unigen_sb3.experiments.report import curve_tags

    both = {t: [(0, 0.1)] for t in ("episode/total", "episode/edit", "reward/total")}
    assert curve_tags(both) == ["episode/total", "episode/edit"]
    assert curve_tags({"reward/total": [], "rollout/ep_rew_mean": []}) == ["reward/total"]
    assert curve_tags({"rollout/ep_rew_mean": []}) == ["rollout/ep_rew_mean"]
    assert curve_tags({}) == []


def test_report_without_matplotlib_warns_on_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from unigen_sb3.cli import main
    from unigen_sb3.experiments import report

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n", "utf-8")
    (run / "eval.json").write_text(json.dumps({"metrics": {}}), "utf-8")
    monkeypatch.setattr(report, "_pyplot", lambda: None)
    with pytest.warns(UserWarning, match="matplotlib is not installed"):
        assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert "unigen-sb3 report: warning: matplotlib is not installed" in err
    assert "pip install 'unigen-sb3[report]'" in err
    assert "matplotlib is not installed" in (run / "report.md").read_text("utf-8")
