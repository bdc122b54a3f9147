"""``unigen-sb3`` in separate processes: Ctrl-C on a training run, two sweep workers."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_support import QUICKSTART, TINY, cli_command, cli_env, sets

from unigen_sb3.cli import EXIT_INTERRUPTED
from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.experiments import RunDir


@pytest.mark.slow
def test_ctrl_c_on_the_cli_saves_the_model_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "run"
    overrides = [*TINY, "training.total_timesteps=100000", "evaluation.n_episodes=2"]
    proc = subprocess.Popen(
        [*cli_command(), "train", str(QUICKSTART), "--out", str(out), *sets(overrides)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        # A suite started in the background by a shell without job control inherits SIGINT
        # ignored, and Python then keeps it ignored: Ctrl-C would never reach the CLI. This
        # test is about what the CLI does on Ctrl-C, so it gets the default disposition.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while RunDir(out).latest_checkpoint() is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "--resume" in err
    run = RunDir(out)
    meta = run.read_meta()
    assert meta["status"] == "interrupted" and 0 < meta["num_timesteps"] < 100000
    latest = run.latest_checkpoint()
    assert latest is not None and latest[1] == meta["num_timesteps"]
    from stable_baselines3 import PPO

    assert PPO.load(run.model_path).num_timesteps == meta["num_timesteps"]


@pytest.mark.slow
def test_sweep_two_workers_share_the_embedded_storage(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    out = tmp_path / "sweep"
    n_trials = 4
    overrides = [
        *TINY,
        "training.checkpoint_freq=0",
        f"sweep.n_trials={n_trials}",
        "sweep.search_space={learning_rate: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}}",
    ]
    cmd = [
        *cli_command(),
        "sweep",
        str(shipped_config_path("sweep")),
        "--out",
        str(out),
        *sets(overrides),
    ]
    procs = [
        subprocess.Popen(
            [*cmd, "--worker-index", str(k)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for k in range(2)
    ]
    try:
        results = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))
    )
    study = optuna.load_study(study_name="unigen-sweep", storage=storage)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(n_trials))  # none lost, none duplicated
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    run_dirs = {t.user_attrs["run_dir"] for t in study.trials}
    assert len(run_dirs) == n_trials and all((Path(d) / "eval.json").exists() for d in run_dirs)
    for t in study.trials:
        w = t.user_attrs["weights"]
        assert sum(w.values()) == pytest.approx(1.0, abs=1e-12) and min(w.values()) >= 0
        reported = json.loads((Path(t.user_attrs["run_dir"]) / "eval.json").read_text())
        assert t.value == reported["metrics"]["reward_total"]["mean"]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["n_complete"] == n_trials and summary["best"] is not None
