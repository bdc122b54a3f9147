"""The ``unigen-sb3`` CLI: train/eval/ablate/sweep/report smoke runs, determinism, resume."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import QUICKSTART, REPO, TINY, RaiseAt, StartCount, cli_command, cli_env, sets

from unigen_sb3.cli import EXIT_CONFIG_ERROR, EXIT_INTERRUPTED, main
from unigen_sb3.configs import ConfigError, load_config
from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.experiments import RunDir, train


@pytest.mark.slow
def test_train_twice_gives_identical_eval_json(tmp_path: Path) -> None:
    """The issue's command, run twice in fresh processes, writes byte-identical eval.json."""
    args = ["--set", "training.total_timesteps=512", "--set", "seed=7"]  # one rollout of 8 x 64
    small = sets(["env.size=36", "evaluation.n_episodes=2"])  # keeps the test short
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        proc = subprocess.run(
            [*cli_command(), "train", str(QUICKSTART), "--out", str(out), *args, *small],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    a, b = ((o / "eval.json").read_bytes() for o in outs)
    assert a == b
    report = json.loads(a)
    assert report["schema"] == 1 and report["n_episodes"] == 2
    run = RunDir(outs[0])
    meta = run.read_meta()
    assert meta["seed"] == 7 and meta["status"] == "completed" and meta["num_timesteps"] == 512
    assert meta["versions"]["stable-baselines3"] and "revision" in (meta["git"] or {"revision": 1})
    saved = yaml.safe_load(run.config_path.read_text())
    assert saved["seed"] == 7 and saved["training"]["total_timesteps"] == 512
    assert saved["training"]["n_envs"] == 8  # from quickstart.yaml, not the defaults
    assert saved["env"]["action"] == "discrete"
    assert list(run.tb_dir.rglob("events.out.tfevents.*"))
    assert run.latest_checkpoint() is not None and run.model_path.exists()


def test_bad_weights_are_refused_before_any_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    bad = "reward.weights={quality: 1.0, edit: 1.0, consistency: 0.7}"
    code = main(["train", str(QUICKSTART), "--out", str(out), "--set", bad])
    assert code == EXIT_CONFIG_ERROR
    assert "reward.weights" in capsys.readouterr().err
    assert not out.exists()  # nothing was written, nothing trained
    code = main(["train", str(QUICKSTART), "--out", str(out), "--set", "trainig.n_envs=2"])
    assert code == EXIT_CONFIG_ERROR and "trainig" in capsys.readouterr().err
    # A refused config never deletes a previous run, even with --overwrite.
    out.mkdir()
    (out / "config.yaml").write_text("seed: 1\n")
    assert main(["train", str(QUICKSTART), "--out", str(out), "--overwrite", "--set", bad]) == 2
    assert (out / "config.yaml").read_text() == "seed: 1\n"


def test_interrupt_leaves_a_valid_run_and_resume_continues_the_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config(QUICKSTART, [*TINY, "training.total_timesteps=96"])
    out = tmp_path / "run"
    first = train(cfg, out, extra_callbacks=[RaiseAt(40, KeyboardInterrupt())])
    assert first.interrupted and first.eval is None
    run = RunDir(out)
    assert run.read_meta()["status"] == "interrupted"
    latest = run.latest_checkpoint()
    assert latest is not None and latest[1] == first.num_timesteps == 40
    assert run.model_path.exists() and not (out / "eval.json").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, out)
    with pytest.raises(ValueError, match="exclude"):
        train(cfg, out, resume=True, overwrite=True)
    starts = StartCount()
    second = train(cfg, out, resume=True, extra_callbacks=[starts])
    assert starts.start == 40  # continued from the checkpoint, not from 0
    assert not second.interrupted and second.num_timesteps >= 96
    assert run.read_meta()["status"] == "completed" and (out / "eval.json").exists()
    # The CLI's resume refuses a changed config (other than the budget).
    code = main(
        ["train", str(QUICKSTART), "--out", str(out), "--resume", *sets(TINY), "--set", "seed=99"]
    )
    assert code == EXIT_CONFIG_ERROR and "seed" in capsys.readouterr().err


def test_eval_and_report_commands(tmp_path: Path) -> None:
    runs = []
    for seed in (0, 1):
        out = tmp_path / "runs" / f"seed_{seed}"
        assert (
            main(["train", str(QUICKSTART), "--out", str(out), *sets([*TINY, f"seed={seed}"])]) == 0
        )
        runs.append(out)
    # --overwrite replaces a finished run (what `make run` does when run twice).
    first_model = (runs[1] / "model.zip").read_bytes()
    code = main(
        [
            "train",
            str(QUICKSTART),
            "--out",
            str(runs[1]),
            "--overwrite",
            *sets([*TINY, "seed=1", "training.total_timesteps=32"]),
        ]
    )
    assert code == 0 and RunDir(runs[1]).read_meta()["num_timesteps"] == 32
    assert (runs[1] / "model.zip").read_bytes() != first_model
    assert (
        main(
            [
                "train",
                str(QUICKSTART),
                "--out",
                str(runs[1]),
                *sets([*TINY, "seed=1"]),
                "--overwrite",
            ]
        )
        == 0
    )
    # eval: a run dir, into another folder, with an override.
    dest = tmp_path / "eval"
    assert main(["eval", str(runs[0]), "--out", str(dest), "--set", "evaluation.n_episodes=3"]) == 0
    report = json.loads((dest / "eval.json").read_text())
    assert report["n_episodes"] == 3 and set(report["metrics"]) >= {"reward_total", "lpips"}
    # eval of a bare model file takes its config from beside it; same seed -> same numbers.
    again = tmp_path / "eval2"
    assert main(["eval", str(runs[0] / "model.zip"), "--out", str(again)]) == 0
    assert json.loads((again / "eval.json").read_text()) == json.loads(
        (runs[0] / "eval.json").read_text()
    )
    # report: markdown, a curve per run, and the variance across the two seeds.
    rep_dir = tmp_path / "report"
    assert main(["report", str(tmp_path / "runs"), "--out", str(rep_dir)]) == 0
    text = (rep_dir / "report.md").read_text()
    assert "seed_0" in text and "seed_1" in text
    assert "Reward variance across seeds" in text and "[0, 1]" in text
    pytest.importorskip("matplotlib")
    assert (rep_dir / "curves_000.png").stat().st_size > 1000
    assert (rep_dir / "seed_variance.png").exists()


def test_ablate_runs_every_variant_and_seed(tmp_path: Path) -> None:
    out = tmp_path / "abl"
    args = [
        "ablate",
        str(shipped_config_path("ablation")),
        "--out",
        str(out),
        *sets(
            [
                *TINY,
                "ablation.drop=[edit]",
                "ablation.weight_grid=[]",
                "ablation.n_seeds=2",
                "training.checkpoint_freq=0",
            ]
        ),
    ]
    assert main(args) == 0
    summary = json.loads((out / "ablation.json").read_text())
    assert list(summary["variants"]) == ["full", "no_edit"]
    assert summary["seeds"] == [0, 1]
    no_edit = summary["variants"]["no_edit"]
    assert no_edit["weights"] == pytest.approx(
        {"quality": 2 / 3, "edit": 0.0, "consistency": 1 / 3}
    )
    trained = yaml.safe_load((out / "no_edit" / "seed_1" / "config.yaml").read_text())
    assert trained["reward"]["weights"]["edit"] == 0.0 and trained["seed"] == 1
    # Every variant is scored with the base weights.
    assert trained["evaluation"]["weights"] == {"quality": 0.4, "edit": 0.4, "consistency": 0.2}
    stats = no_edit["metrics"]["reward_total"]
    per_seed = [
        json.loads((out / r / "eval.json").read_text())["metrics"]["reward_total"]["mean"]
        for r in no_edit["runs"]
    ]
    assert stats["n"] == 2 and stats["mean"] == pytest.approx(sum(per_seed) / 2, abs=1e-12)
    assert stats["std"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2**0.5, abs=1e-12)
    rep = tmp_path / "rep"
    assert main(["report", str(out), "--out", str(rep)]) == 0
    assert "## Ablation" in (rep / "report.md").read_text()


def test_make_run_uses_the_cli_with_quickstart() -> None:
    makefile = (REPO / "Makefile").read_text()
    run_recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "unigen-sb3 train quickstart " in run_recipe


def test_wandb_offline_mode(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    cfg = load_config(QUICKSTART, [*TINY, "wandb.enabled=true", "wandb.mode=offline"])
    result = train(cfg, tmp_path / "run", evaluate=False)
    assert result.num_timesteps == 64
    assert list((tmp_path / "run").rglob("offline-run-*"))


def test_missing_wandb_is_refused_before_the_run_dir_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    cfg = load_config(QUICKSTART, [*TINY, "wandb.enabled=true", "wandb.mode=offline"])
    with pytest.raises(ConfigError, match=r"wandb\.enabled.*pip install 'unigen-sb3\[wandb\]'"):
        train(cfg, tmp_path / "run", evaluate=False)
    assert not (tmp_path / "run").exists()


def test_interrupt_hint_resumes_from_the_runs_own_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    from unigen_sb3.experiments import runner

    real_train = runner.train
    calls = []

    def train_interrupted_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("resume"))
        if len(calls) == 1:
            kwargs["extra_callbacks"] = [RaiseAt(40, KeyboardInterrupt())]
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runner, "train", train_interrupted_once)
    out = tmp_path / "my run"  # a space: the hint quotes its paths
    overrides = sets([*TINY, "training.total_timesteps=96", "seed=3"])
    assert main(["train", str(QUICKSTART), "--out", str(out), *overrides]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    hint = shlex.split(err.split("continue with: ", 1)[1])
    assert hint == ["unigen-sb3", "train", str(out / "config.yaml"), "--out", str(out), "--resume"]
    # The hint works as printed: the saved config carries the --set overrides.
    assert main(hint[1:]) == 0 and calls == [False, True]
    meta = RunDir(out).read_meta()
    assert meta["status"] == "completed" and meta["seed"] == 3 and meta["num_timesteps"] >= 96


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--storage", "bogus://x"], "argument --storage: 'bogus://x': no installed database"),
        (["--storage", "runs/study.db"], "'runs/study.db' is neither a journal: file nor a URL"),
        (["--storage", "journal:"], "'journal:' names no journal file"),
        (["--n-jobs", "0"], "argument --n-jobs: expected an integer >= 1, got 0"),
        (["--n-jobs", "two"], "argument --n-jobs: expected an integer >= 1, got 'two'"),
    ],
)
def test_sweep_usage_errors_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "sweep"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(shipped_config_path("sweep")), "--out", str(out), *args])
    assert exit_info.value.code == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("override", "messages"),
    [
        (
            "sweep.metric=nonsense",
            ["sweep.metric: unknown metric 'nonsense'", "'frechet_distance'", "'kid_std'"],
        ),
        (
            "sweep.search_space={n_step: {type: int, low: 1, high: 4}}",
            ["sweep.search_space.n_step: with n_step=1: PPO has no parameter 'n_step'"],
        ),
    ],
)
def test_sweep_config_errors_exit_2_before_any_storage_or_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, messages: list[str]
) -> None:
    out = tmp_path / "sweep"
    overrides = sets([*TINY, "sweep.n_trials=1", override])
    code = main(["sweep", str(shipped_config_path("sweep")), "--out", str(out), *overrides])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG_ERROR
    for message in messages:
        assert message in err
    assert "algorithm.kwargs" not in err
    assert not out.exists()  # no optuna.journal, no lock file, no trial run
    # A rerun gives the same error (no "0 complete trials" from a leftover study).
    assert main(["sweep", str(shipped_config_path("sweep")), "--out", str(out), *overrides]) == 2


def test_only_commands_that_read_a_config_offer_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import unigen_sb3.cli

    for command, takes_set in [
        ("train", True),
        ("eval", True),
        ("ablate", True),
        ("sweep", True),
        ("report", False),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert ("--set" in capsys.readouterr().out) == takes_set, command
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path), "--set", "seed=1"])
    assert exit_info.value.code == EXIT_CONFIG_ERROR
    assert "unrecognized arguments: --set seed=1" in capsys.readouterr().err
    doc = " ".join((unigen_sb3.cli.__doc__ or "").split())
    assert "Every command takes ``--out DIR``;" in doc
    assert "``train``, ``eval``, ``ablate`` and ``sweep`` also take repeatable ``--set" in doc
