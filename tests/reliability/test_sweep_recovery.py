"""Stale trials of dead sweep workers are failed and requeued; a dead --n-jobs child does
not abort the sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_support import QUICKSTART, cli_command, cli_env, sets
from rel_support import FAST

pytest.importorskip("optuna")

import optuna
from optuna.trial import TrialState

from unigen_sb3.experiments.sweep import (
    _budget_used,
    make_storage,
    recover_stale_trials,
)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_dead_workers_running_trial_is_failed_and_requeued(tmp_path: Path) -> None:
    study = optuna.create_study(storage=make_storage(None, tmp_path), study_name="s")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("worker", {"host": os.uname().nodename, "pid": _dead_pid()})
    alive = study.ask()
    alive.set_user_attr("worker", {"host": os.uname().nodename, "pid": os.getpid()})
    assert recover_stale_trials(study) == [trial.number]
    trials = study.get_trials(deepcopy=False)
    assert trials[trial.number].state == TrialState.FAIL
    assert trials[trial.number].user_attrs["requeued"] is True
    assert trials[alive.number].state == TrialState.RUNNING
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.user_attrs["retry_of"] == trial.number
    assert _budget_used(trials) == 2  # the retry takes the failed trial's place
    assert recover_stale_trials(study) == []  # once only


def test_a_silent_worker_is_stale_after_the_grace_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = optuna.create_study(storage=make_storage(None, tmp_path), study_name="s")
    trial = study.ask()
    trial.set_user_attr("worker", {"host": "another-machine", "pid": 1})
    trial.set_user_attr("heartbeat", time.time() - 60)
    assert recover_stale_trials(study) == []
    monkeypatch.setattr("unigen_sb3.experiments.sweep.STALE_SECONDS", 30.0)
    assert recover_stale_trials(study) == [trial.number]


def test_n_jobs_survives_a_killed_child_and_writes_sweep_json(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    overrides = [*FAST, "training.total_timesteps=48", "sweep.n_trials=2", "sweep.sampler=random"]
    overrides += ["sweep.search_space={}", "evaluation.n_episodes=2"]
    proc = subprocess.Popen(
        [
            *cli_command(),
            *["sweep", str(QUICKSTART), "--out", str(out), "--n-jobs", "2"],
            *sets(overrides),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    killed = None
    deadline = time.monotonic() + 180
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        for meta in out.glob("trials/*/meta.json"):
            try:
                data = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            pid = data.get("pid")
            if data.get("status") == "running" and pid not in (None, proc.pid):
                os.kill(pid, signal.SIGKILL)
                killed = meta.parent
                break
        time.sleep(0.05)
    _stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, stderr
    assert proc.returncode == 0, stderr
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["n_complete"] == 2 and summary["dead_workers"] == [-signal.SIGKILL]
    states = [t["state"] for t in summary["trials"]]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 2
