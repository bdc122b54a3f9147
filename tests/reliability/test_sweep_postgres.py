"""Sweeps on a real PostgreSQL server: two ``unigen-sb3 sweep`` workers started at once on a
new database, one killed (SIGKILL) in the middle of its trial; the other requeues and redoes
that trial, and the study ends with exactly ``n_trials`` complete trials.

The server is pgserver's bundled PostgreSQL (the ``dev`` extra) or a ``postgres`` on PATH,
started for this module (see ``pg_support.py``; as root it runs as ``nobody``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import QUICKSTART, cli_command, cli_env, sets
from pg_support import create_database, find_postgres, postgres_server
from rel_support import FAST, running_trials

optuna = pytest.importorskip("optuna")
pytest.importorskip("psycopg", reason="the postgres extra: pip install 'unigen-sb3[postgres]'")

from optuna.trial import TrialState  # noqa: E402

from unigen_sb3.experiments import sweep as sweep_module  # noqa: E402


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """The URL of a fresh PostgreSQL server's ``postgres`` database, for this module."""
    pg, why = find_postgres()
    if pg is None:
        pytest.skip(why)
    try:
        with postgres_server(pg) as url:
            yield url
    except RuntimeError as exc:
        if "refuses to run as root" in str(exc):
            pytest.skip(str(exc))
        raise


def test_workers_that_open_a_new_database_at_once_retry_the_table_creation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the concurrent start below can hit: all but one worker fail with a unique
    violation while the tables are being created (3 of 4 measured); it is retried."""
    from sqlalchemy.exc import IntegrityError

    calls: list[str] = []

    def flaky(url: str) -> str:
        calls.append(url)
        if len(calls) < 3:
            raise IntegrityError("CREATE TABLE studies", {}, Exception("pg_type_typname_nsp"))
        return "storage"

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    monkeypatch.setattr(sweep_module.time, "sleep", lambda _s: None)
    assert sweep_module.make_storage("postgresql://u@h/db", "unused") == "storage"
    assert len(calls) == 3
    calls.clear()
    monkeypatch.setattr(sweep_module, "RDB_OPEN_ATTEMPTS", 2)
    with pytest.raises(IntegrityError):
        sweep_module.make_storage("postgresql://u@h/db", "unused")


def _open_existing(url: str) -> optuna.storages.RDBStorage | None:
    """The storage at ``url`` once its tables exist (None before), never creating them."""
    try:
        return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except Exception:  # the tables are not there (yet)
        return None


def test_a_worker_killed_mid_trial_is_requeued_and_the_study_finishes(
    postgres: str, tmp_path: Path
) -> None:
    storage = create_database(postgres, "killed_worker")
    overrides = [*FAST, "env.horizon=2", "training.total_timesteps=16", "sweep.n_trials=2"]
    overrides += ["sweep.sampler=random", "sweep.search_space={}", "evaluation.n_episodes=2"]
    overrides += ["sweep.study_name=pg"]
    workers: dict[int, tuple[str, subprocess.Popen[str]]] = {}
    for index, name in enumerate(("a", "b")):  # two machines: each its own --out, one database
        command = [*cli_command(), "sweep", str(QUICKSTART), "--out", str(tmp_path / name)]
        command += ["--storage", storage, "--worker-index", str(index), *sets(overrides)]
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
        )
        workers[proc.pid] = (name, proc)
    watch = None  # opened once the workers created the tables (it does not: they race to)
    victim: int | None = None
    killed: int | None = None  # the victim's trial
    try:
        deadline = time.monotonic() + 180
        while killed is None and time.monotonic() < deadline:
            for pid, (_name, proc) in workers.items():
                if pid != victim and proc.poll() is not None:
                    pytest.fail(f"worker {pid} exited early: {proc.communicate(timeout=30)}")
            if watch is None:
                watch = _open_existing(storage)
            trials = running_trials(watch, "pg") if watch is not None else []
            running = {t.user_attrs["worker"]["pid"]: t.number for t in trials}
            if victim is None and running:
                # The first worker in a trial is paused there (SIGSTOP: alive, so its trial
                # is not stale) until the other worker is in a trial too: both at once.
                victim = next(iter(running))
                assert victim in workers, running
                os.kill(victim, signal.SIGSTOP)
            if victim is not None and any(pid != victim for pid in running):
                os.kill(victim, signal.SIGKILL)
                killed = running[victim]
            time.sleep(0.05)
        assert killed is not None, "the two workers were never in a trial at the same time"
        ((name, survivor),) = (w for pid, w in workers.items() if pid != victim)
        _stdout, stderr = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, stderr
    finally:
        for _name, proc in workers.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=60)
        if watch is not None:
            watch.engine.dispose()
    assert victim is not None and workers[victim][1].returncode == -signal.SIGKILL
    study = optuna.load_study(study_name="pg", storage=storage)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[killed].state == TrialState.FAIL and trials[killed].user_attrs["requeued"]
    retries = [t for t in trials.values() if t.user_attrs.get("retry_of") == killed]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    states = [t.state for t in trials.values()]
    assert states.count(TrialState.COMPLETE) == 2  # exactly sweep.n_trials
    assert states.count(TrialState.FAIL) == 1 and len(states) == 3
    # The survivor wrote the study's summary into its own --out.
    summary = json.loads((tmp_path / name / "sweep.json").read_text())
    assert summary["n_complete"] == 2 and summary["n_trials"] == 3
