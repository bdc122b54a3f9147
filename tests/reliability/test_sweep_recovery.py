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
from rel_support import FAST, running_trials

pytest.importorskip("optuna")

import optuna
from optuna.trial import TrialState

from unigen_sb3.experiments.sweep import (
    _budget_used,
    _is_zombie,
    _pid_alive,
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


def test_a_killed_worker_its_parent_has_not_reaped_yet_is_dead() -> None:
    """A zombie (exited, not yet waited for by its parent) answers ``kill(pid, 0)``; on a
    real PostgreSQL with two workers started by one parent, the surviving worker took the
    killed one's trial for alive and ended the study one trial short."""
    proc = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while not _is_zombie(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not _is_zombie(proc.pid):
            pytest.skip("no /proc here to tell a zombie")
        assert not _pid_alive(proc.pid)
    finally:
        proc.wait()
    assert not _pid_alive(proc.pid)  # reaped: gone
    assert _pid_alive(os.getpid())


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


def test_a_trial_claimed_by_a_worker_that_died_before_recording_itself(tmp_path: Path) -> None:
    """Killed between ``study.ask()`` and recording its worker: under a file storage's claim
    lock such a trial is stale at once; without the lock (remote storage) it waits for the
    grace period, since a live worker may be about to record itself."""
    study = optuna.create_study(storage=make_storage(None, tmp_path), study_name="s")
    trial = study.ask()
    assert recover_stale_trials(study) == []
    assert recover_stale_trials(study, locked=True) == [trial.number]
    assert study.get_trials(deepcopy=False)[-1].user_attrs["retry_of"] == trial.number


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
    held = False
    deadline = time.monotonic() + 180
    try:
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            for meta in out.glob("trials/*/meta.json"):
                try:
                    data = json.loads(meta.read_text())
                except (OSError, ValueError):
                    continue
                pid = data.get("pid")
                if data.get("status") != "running" or pid is None:
                    continue
                if pid != proc.pid:
                    os.kill(pid, signal.SIGKILL)
                    killed = meta.parent
                    break
                if not held:
                    # The sweep's own process (worker 0) is inside its first trial, where it
                    # holds no lock: stop it there until the spawned worker has claimed and
                    # started the other trial. Otherwise a short first trial can end before
                    # the spawned worker is up, and worker 0 takes both trials.
                    os.kill(proc.pid, signal.SIGSTOP)
                    held = True
            time.sleep(0.05)
    finally:
        if held:
            os.kill(proc.pid, signal.SIGCONT)
    _stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, stderr
    assert proc.returncode == 0, stderr
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["n_complete"] == 2 and summary["dead_workers"] == [-signal.SIGKILL]
    states = [t["state"] for t in summary["trials"]]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 2


def _running_trial_of(storage: object, study_name: str) -> int | None:
    """The number of a RUNNING trial whose worker has recorded itself, or None."""
    running = running_trials(storage, study_name)
    return running[0].number if running else None


@pytest.mark.parametrize("backend", ["journal", "sqlite"])
def test_a_rerun_redoes_the_trial_of_a_killed_sweep(backend: str, tmp_path: Path) -> None:
    """``unigen-sb3 sweep`` (one worker) killed with SIGKILL mid-trial; the same command
    again fails and requeues that trial and ends with exactly ``n_trials`` complete."""
    out = tmp_path / "sweep"
    overrides = [*FAST, "env.horizon=2", "training.total_timesteps=16", "sweep.n_trials=2"]
    overrides += ["sweep.sampler=random", "sweep.search_space={}", "evaluation.n_episodes=2"]
    overrides += ["sweep.study_name=killed"]
    command = [*cli_command(), "sweep", str(QUICKSTART), "--out", str(out), *sets(overrides)]
    if backend == "sqlite":
        db = tmp_path / "optuna.db"
        storage = f"sqlite:///{db}"
        command += ["--storage", storage]
        poll = storage
    else:
        poll = None  # OUT/optuna.journal
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            # trials/ appears once a trial is claimed: the storage is created by then.
            if (out / "trials").exists():
                killed = _running_trial_of(poll or make_storage(None, out), "killed")
            if killed is None:
                time.sleep(0.05)
        assert killed is not None, proc.communicate(timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    rerun = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / "sweep.json").read_text())
    trials = {t["number"]: t for t in summary["trials"]}
    assert trials[killed]["state"] == "FAIL" and trials[killed]["user_attrs"]["requeued"]
    retries = [t for t in trials.values() if t["user_attrs"].get("retry_of") == killed]
    assert [t["state"] for t in retries] == ["COMPLETE"]
    states = [t["state"] for t in trials.values()]
    assert summary["n_complete"] == states.count("COMPLETE") == 2  # sweep.n_trials
    assert states.count("FAIL") == 1 and len(states) == 3
