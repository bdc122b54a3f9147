"""Optuna sweeps over the reward weights and algorithm hyperparameters.

Storage: by default an Optuna journal file in the sweep folder (``OUT/optuna.journal``),
which several worker processes on one machine (or a shared filesystem) can use at once;
``storage`` takes any Optuna storage URL (``sqlite:///...``, ``postgresql://...``) for
workers on several machines, or ``journal:PATH`` for another journal file.

Trial budget: ``sweep.n_trials`` counts trials across *all* workers. Each worker claims a
trial under a file lock next to a file storage (so exactly ``n_trials`` are created); with
a remote storage, the dense trial numbers Optuna assigns atomically decide instead: a
worker whose new trial is numbered ``>= n_trials`` marks it ``FAIL`` with user attribute
``over_budget`` and stops, so the first ``n_trials`` numbers are the ones run.

Stale trials: each worker records its host and process id on the trial it runs and beats a
``heartbeat`` (a user attribute, so it works on every storage) every
:data:`HEARTBEAT_SECONDS`. Before claiming a trial, a worker fails every ``RUNNING`` trial
whose worker is dead (same host, process gone) or silent for :data:`STALE_SECONDS`, marks it
``requeued`` and enqueues its parameters again: the retry takes its place in the budget, so
a killed worker's trial is redone by the next worker or rerun. On a file storage a worker
records itself under the claim lock, in the same step as it claims the trial, so a
``RUNNING`` trial without its worker (one killed between the two) is stale at once. A trial
stopped by Ctrl-C, SIGTERM or SIGHUP is requeued the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import multiprocessing
import os
import random
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from unigen_sb3.configs.loader import load_config
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig, config_to_dict
from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.utils import atomic_write_text

__all__ = [
    "check_storage",
    "check_sweep",
    "make_storage",
    "recover_stale_trials",
    "run_sweep",
    "sample_trial_config",
    "sweep_worker",
]

JOURNAL_NAME = "optuna.journal"
#: Seconds between two heartbeats of a running trial.
HEARTBEAT_SECONDS = 30.0
#: A running trial whose heartbeat is older than this is stale (its worker is gone).
STALE_SECONDS = 600.0
#: Attempts to open a database storage while other workers create its tables.
RDB_OPEN_ATTEMPTS = 5


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # unknown: leave it to the heartbeat
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` exited but its parent has not reaped it yet (Linux ``/proc``; False
    where unknown). ``os.kill(pid, 0)`` succeeds on such a process, so a worker killed while
    its parent (a ``--n-jobs`` sweep, a test, a supervisor) is busy would look alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat[stat.rindex(")") + 2 :].startswith("Z")  # after "pid (comm) ": the state


def _is_stale(trial: Any, now: float, locked: bool = False) -> bool:
    if locked and "worker" not in trial.user_attrs:
        return True  # every live claimer records itself before it releases the claim lock
    worker = trial.user_attrs.get("worker") or {}
    if worker.get("host") == socket.gethostname() and not _pid_alive(worker.get("pid")):
        return True
    beat = trial.user_attrs.get("heartbeat")
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return beat is not None and now - float(beat) > STALE_SECONDS


def _requeue(study: Any, trial: Any) -> bool:
    """Fail ``trial``, mark it ``requeued`` (out of the budget) and enqueue its parameters.

    :return: False when another worker finished it first.
    """
    from optuna.trial import TrialState

    try:
        study._storage.set_trial_user_attr(trial._trial_id, "requeued", True)
        study.tell(trial.number, state=TrialState.FAIL)
    except Exception:  # another worker failed or finished it first
        return False
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    return True


def recover_stale_trials(study: Any, *, locked: bool = False) -> list[int]:
    """Fail and requeue the ``RUNNING`` trials of dead or silent workers (see the module doc).

    :param study: the Optuna study.
    :param locked: the caller holds the claim lock of a file storage, under which every
        worker records itself on the trial it claims: a ``RUNNING`` trial without its
        ``worker`` is then one whose worker died between claiming and recording it.
    :return: the numbers of the trials requeued.
    """
    from optuna.trial import TrialState

    now = time.time()
    return [
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _is_stale(t, now, locked) and _requeue(study, t)
    ]


def _budget_used(trials: list[Any]) -> int:
    """Trials that count against ``n_trials``: all but the requeued ones (their retry counts)."""
    return sum(1 for t in trials if not t.user_attrs.get("requeued"))


class _Heartbeat:
    """Sets the trial's ``heartbeat`` user attribute every :data:`HEARTBEAT_SECONDS`."""

    def __init__(self, study: Any, trial_id: int) -> None:
        self._stop = threading.Event()
        self._study, self._trial_id = study, trial_id
        self._beat()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        self._study._storage.set_trial_user_attr(self._trial_id, "heartbeat", time.time())

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._beat()
            except Exception:  # the trial finished meanwhile
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _storage_file(storage: str | None, out: Path) -> Path | None:
    if storage is None:
        return out / JOURNAL_NAME
    if storage.startswith("journal:"):
        return Path(storage[len("journal:") :])
    if storage.startswith("sqlite:///"):
        return Path(storage[len("sqlite:///") :])
    return None


def check_storage(storage: str | None) -> None:
    """Refuse a ``storage`` that :func:`make_storage` cannot open, before anything is written.

    Accepted: None (``OUT/optuna.journal``), ``journal:PATH`` (PATH not a folder), or an
    SQLAlchemy database URL whose dialect and driver are installed (``sqlite:///PATH``;
    ``postgresql://...`` with the ``postgres`` extra; ``mysql://...`` with a MySQL driver);
    the URL is parsed and its driver imported, nothing is connected.

    :param storage: the storage argument.
    :raises ValueError: saying what was wrong and what is accepted (or what to install).
    """
    if storage is None:
        return
    accepted = "accepted: journal:PATH, sqlite:///PATH or another database URL (postgresql://...)"
    if storage.startswith("journal:"):
        path = storage[len("journal:") :]
        if not path:
            raise ValueError(f"{storage!r} names no journal file; {accepted}")
        if Path(path).is_dir():
            raise ValueError(f"{storage!r}: {path} is a folder, not a journal file; {accepted}")
        return
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    except ImportError as exc:
        raise ValueError(
            f"{storage!r}: a database storage needs optuna (and its SQLAlchemy): "
            "pip install 'unigen-sb3[sweep]'"
        ) from exc
    try:
        url = make_url(storage)
        url.get_dialect()
    except NoSuchModuleError:  # a subclass of ArgumentError: first
        raise ValueError(
            f"{storage!r}: no installed database backend for {storage.split(':', 1)[0]!r}; "
            f"{accepted}"
        ) from None
    except ArgumentError:
        raise ValueError(f"{storage!r} is neither a journal: file nor a URL; {accepted}") from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError(
                f"{storage!r} is an in-memory database, which workers do not share and the "
                f"sweep does not keep; {accepted}"
            )
    dialect: Any = url.get_dialect()
    try:  # the driver (DBAPI module) SQLAlchemy would import on connecting
        importer = getattr(dialect, "import_dbapi", None) or dialect.dbapi  # 1.4: dbapi()
        importer()
    except ImportError as exc:
        postgres = url.get_backend_name() == "postgresql"
        hint = (
            "pip install 'unigen-sb3[postgres]' (psycopg 3, the driver of postgresql:// with "
            "SQLAlchemy >= 2.1, and of postgresql+psycopg://)"
            if postgres
            else f"install the Python driver SQLAlchemy uses for {url.drivername!r}"
        )
        raise ValueError(
            f"{storage!r}: the database driver is not installed ({exc}); {hint}"
        ) from None


def make_storage(storage: str | None, out: str | Path) -> Any:
    """Build the Optuna storage: the embedded journal file by default.

    :param storage: None (``OUT/optuna.journal``), ``journal:PATH``, or an RDB URL.
    :param out: the sweep folder.
    :return: an Optuna storage object or URL string.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    out = Path(out)
    path = _storage_file(storage, out)
    if storage is None or storage.startswith("journal:"):
        if path is None:
            raise ValueError(f"storage={storage!r} names no journal file")
        path.parent.mkdir(parents=True, exist_ok=True)
        # The open-lock works on every filesystem (no symlinks needed): safe for N processes.
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    if path is not None:  # a SQLite file, possibly inside the --out folder this run creates
        path.parent.mkdir(parents=True, exist_ok=True)
    return _open_rdb(storage)


def _open_rdb(url: str) -> Any:
    """``optuna.storages.RDBStorage(url)``, retried when another worker is creating the tables.

    Workers that start at once on a new database all create Optuna's tables; on PostgreSQL
    all but one then fail with a unique violation (``pg_type_typname_nsp_index``) or a
    "relation already exists" error (measured: 3 of 4 workers started together), so those
    errors are retried after a short random pause, by when the tables exist.

    :raises sqlalchemy.exc.IntegrityError: or ``ProgrammingError``, after
        :data:`RDB_OPEN_ATTEMPTS` attempts.
    """
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(1, RDB_OPEN_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url)
        except (IntegrityError, ProgrammingError):
            if attempt == RDB_OPEN_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.05, 0.5) * attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _claim_lock(path: Path | None) -> Iterator[None]:
    """An exclusive ``flock`` beside a file storage; a no-op for remote storages."""
    if path is None:
        yield
        return
    lock = path.with_name(path.name + ".claim.lock")
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sample_trial_config(trial: Any, config: ExperimentConfig) -> dict[str, Any]:
    """Draw one trial's config: weights (Dirichlet(1,1,1) via ``-log u``) and kwargs.

    :param trial: the Optuna trial.
    :param config: the base config.
    :return: the trial's config dict (``evaluation.weights`` pinned to the base weights).
    """
    data = json.loads(json.dumps(config_to_dict(config)))
    base_weights = config.reward.effective_weights()
    if config.sweep.sweep_weights:
        # -log(u) of uniform u is Exp(1); normalized Exp(1) draws are uniform on the simplex.
        raw = {n: -math.log(trial.suggest_float(f"u_{n}", 1e-6, 1.0)) for n in COMPONENT_NAMES}
        total = math.fsum(raw.values())
        weights = {n: raw[n] / total for n in COMPONENT_NAMES}
        # Rounding can leave the sum 1e-16 off; give the remainder to the last component.
        weights["consistency"] = 1.0 - weights["quality"] - weights["edit"]
        data["reward"]["weights"] = weights
        data["reward"]["normalize_weights"] = False
        trial.set_user_attr("weights", weights)
    for name, spec in config.sweep.search_space.items():
        kind = spec["type"]
        if kind == "float":
            value: Any = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
        elif kind == "int":
            value = trial.suggest_int(
                name, int(spec["low"]), int(spec["high"]), log=spec.get("log", False)
            )
        else:
            value = trial.suggest_categorical(name, spec["choices"])
        data["algorithm"]["kwargs"][name] = value
    if data["evaluation"]["weights"] is None:
        data["evaluation"]["weights"] = base_weights
    return data


def _report_metrics() -> tuple[str, ...]:
    """Every metric an ``eval.json`` holds: per-episode ``metrics``, then ``set_metrics``."""
    from unigen_sb3.evaluation import EVAL_METRICS, SET_METRICS

    return (*EVAL_METRICS, *SET_METRICS)


def check_sweep(config: ExperimentConfig) -> None:
    """Every sweep check that can fail before storage or a trial is created.

    The base config (:func:`~unigen_sb3.experiments.runner.check_experiment`), then
    ``sweep.metric`` (a metric of the evaluation report), then each ``sweep.search_space``
    key with its ``low``/``high`` or each of its ``choices`` set as an algorithm kwarg.

    :param config: the base config.
    :raises ConfigError: naming the dotted key of the problem.
    """
    from unigen_sb3.experiments.runner import check_experiment

    check_experiment(config)
    metrics = _report_metrics()
    if config.sweep.metric not in metrics:
        raise ConfigError(
            "sweep.metric",
            f"unknown metric {config.sweep.metric!r}; accepted (eval.json's metrics and "
            f"set_metrics): {list(metrics)}",
        )
    base = config_to_dict(config)
    for name, spec in config.sweep.search_space.items():
        if spec["type"] == "categorical":
            values = list(spec["choices"])
        elif spec["type"] == "int":
            values = [int(spec["low"]), int(spec["high"])]
        else:
            values = [spec["low"], spec["high"]]
        for value in values:
            data = json.loads(json.dumps(base))
            data["algorithm"]["kwargs"][name] = value
            try:
                check_experiment(load_config(data))
            except ConfigError as exc:
                where = "" if exc.path == f"algorithm.kwargs.{name}" else f"{exc.path}: "
                raise ConfigError(
                    f"sweep.search_space.{name}", f"with {name}={value!r}: {where}{exc.message}"
                ) from exc


def _objective_value(results: dict[str, Any], metric: str) -> float:
    metrics = results.get("metrics", {})
    entry = metrics.get(metric, results.get("set_metrics", {}).get(metric))
    if entry is None:
        raise ConfigError(
            "sweep.metric",
            f"{metric!r} is not in eval.json; accepted: {list(_report_metrics())}",
        )
    value = entry.get("mean") if isinstance(entry, dict) else entry
    if value is None:
        raise ValueError(f"eval.json has no value for {metric!r}: {entry!r}")
    return float(value)


def sweep_worker(
    config: ExperimentConfig,
    out: str | Path,
    *,
    storage: str | None = None,
    worker_index: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run trials until the study holds ``sweep.n_trials``; return how many this worker ran.

    :param config: the base config.
    :param out: the sweep folder (trial runs land in ``OUT/trials/trial_<n>``).
    :param storage: see :func:`make_storage`.
    :param worker_index: distinguishes concurrent workers' sampler seeds (``seed + index``).
    :param progress: called with the trial number after each finished trial.
    :return: the number of trials this worker completed.
    :raises ConfigError: from :func:`check_sweep`, before anything is written.
    :raises ValueError: from :func:`check_storage`, before anything is written.
    """
    check_storage(storage)
    check_sweep(config)
    return _run_trials(config, out, storage, worker_index, progress)


def _run_trials(
    config: ExperimentConfig,
    out: str | Path,
    storage: str | None,
    worker_index: int,
    progress: Callable[[int], None] | None,
) -> int:
    """:func:`sweep_worker` after its checks (run once, by the caller that spawns workers)."""
    import optuna
    from optuna.trial import TrialState

    from unigen_sb3.experiments.runner import train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = config.sweep
    sampler_seed = (config.seed + worker_index) % 2**32
    sampler = (
        optuna.samplers.TPESampler(seed=sampler_seed)
        if sweep.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=sampler_seed)
    )
    lock_path = _storage_file(storage, out)
    study = optuna.create_study(
        storage=make_storage(storage, out),
        study_name=sweep.study_name,
        direction=sweep.direction,
        sampler=sampler,
        load_if_exists=True,
    )
    done = 0
    while True:
        with _claim_lock(lock_path):
            recover_stale_trials(study, locked=lock_path is not None)
            trials = study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)  # requeued ones
            if _budget_used(trials) >= sweep.n_trials and not waiting:
                break
            trial = study.ask()
            # Under the lock: a RUNNING trial without its worker is then a dead claimer's.
            trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        earlier = study.get_trials(deepcopy=False)[: trial.number + 1]
        if _budget_used(earlier) > sweep.n_trials:  # lost the race on a remote storage
            trial.set_user_attr("over_budget", True)
            study.tell(trial, state=TrialState.FAIL)
            break
        run_path = out / "trials" / f"trial_{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_path))
        heartbeat = _Heartbeat(study, trial._trial_id)
        try:
            trial_config = load_config(sample_trial_config(trial, config))
            result = train(trial_config, run_path)
            if result.interrupted or result.eval is None:
                raise KeyboardInterrupt
            value = _objective_value(result.eval, sweep.metric)
        except KeyboardInterrupt:
            heartbeat.stop()
            # Stopped, not broken: the trial is redone by the next worker or rerun.
            if study.trials[trial.number].state == TrialState.RUNNING:
                _requeue(study, study.trials[trial.number])
            raise
        except Exception:
            heartbeat.stop()
            if study.trials[trial.number].state == TrialState.RUNNING:
                study.tell(trial, state=TrialState.FAIL)
            raise
        heartbeat.stop()
        study.tell(trial, value)
        done += 1
        if progress is not None:
            progress(trial.number)
    return done


def _worker_entry(
    config_data: dict[str, Any], out: str, storage: str | None, worker_index: int
) -> None:
    # run_sweep checked the config and storage before spawning this worker.
    from unigen_sb3.experiments import signals

    signals.install()  # SIGTERM / SIGHUP stop the trial as Ctrl-C does: saved and requeued
    try:
        _run_trials(load_config(config_data), out, storage, worker_index, None)
    except KeyboardInterrupt:
        sys.exit(signals.exit_code())


def run_sweep(
    config: ExperimentConfig,
    out: str | Path,
    *,
    storage: str | None = None,
    n_jobs: int = 1,
    worker_index: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run a sweep with ``n_jobs`` local worker processes; write ``sweep.json``.

    :param config: the base config.
    :param out: the sweep folder.
    :param storage: see :func:`make_storage` (None = embedded journal in ``out``).
    :param n_jobs: worker processes on this machine (this process is worker 0).
    :param worker_index: this process's index (others get ``worker_index + 1...``).
    :param progress: called with each trial number this process finishes.
    :return: the ``sweep.json`` content (best trial, all finished trials).
    :raises ConfigError: from :func:`check_sweep`, before anything is written.
    :raises ValueError: for ``n_jobs < 1`` or a bad ``storage``, before anything is written.
    """
    import optuna

    if n_jobs < 1:
        raise ValueError(f"n_jobs={n_jobs!r} must be >= 1")
    check_storage(storage)
    check_sweep(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # Spawn (not fork): each worker starts clean, without this process's torch threads.
    ctx = multiprocessing.get_context("spawn")
    data = config_to_dict(config)
    procs = [
        ctx.Process(target=_worker_entry, args=(data, str(out), storage, worker_index + k))
        for k in range(1, n_jobs)
    ]
    for p in procs:
        p.start()
    try:
        _run_trials(config, out, storage, worker_index, progress)
    except BaseException:
        for p in procs:  # stop the workers too: each saves its trial's run and requeues it
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        # A dead worker leaves its trial RUNNING: requeue it and finish the budget here.
        warnings.warn(
            f"{len(failed)} sweep worker process(es) died (exit codes {failed}); their "
            "trials are requeued and run by this process",
            stacklevel=2,
        )
        _run_trials(config, out, storage, worker_index, progress)
    study = optuna.load_study(
        study_name=config.sweep.study_name, storage=make_storage(storage, out)
    )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    summary: dict[str, Any] = {
        "schema": 1,
        "study_name": config.sweep.study_name,
        "direction": config.sweep.direction,
        "metric": config.sweep.metric,
        "n_trials": len(study.trials),
        "n_complete": len(complete),
        "dead_workers": failed,
        "best": None,
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "user_attrs": t.user_attrs,
            }
            for t in study.trials
        ],
    }
    if complete:
        best = study.best_trial
        summary["best"] = {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "user_attrs": best.user_attrs,
        }
    atomic_write_text(out / "sweep.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
