"""``ablate --executor local|processes|ray``: the same eval.json files and ablation.json
whichever executor ran the runs; a failed or killed run is named with its error and left out
of no summary (none is written); a rerun finishes only what is missing; bad executor
settings are refused before anything is written.

Budget: one tiny ablation (2 variants x 2 seeds, 16 timesteps each) per executor; Ray starts
once for the module (a local instance, ``num_cpus=2``) and stops after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_support import TINY, sets

from unigen_sb3.cli import EXIT_CONFIG_ERROR, EXIT_RUNS_FAILED, main
from unigen_sb3.configs import load_config
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig
from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.experiments import signals
from unigen_sb3.experiments.ablation import AblationError, run_ablation, run_threads
from unigen_sb3.experiments.executors import ExecutorError, RunOutcome
from unigen_sb3.experiments.report import write_report

ABLATION = shipped_config_path("ablation")
# full and no_edit, seeds 0 and 1: 4 runs of 16 timesteps, 2-step episodes, 2 eval episodes.
SMALL = [
    *TINY,
    "env.horizon=2",
    "training.total_timesteps=16",
    "training.checkpoint_freq=0",
    "algorithm.kwargs={n_steps: 16, batch_size: 8, n_epochs: 1}",
    "training.tensorboard=false",
    "ablation.drop=[edit]",
    "ablation.weight_grid=[]",
    "ablation.n_seeds=2",
]
RUNS = ("full/seed_0", "full/seed_1", "no_edit/seed_0", "no_edit/seed_1")


def _config(*more: str) -> ExperimentConfig:
    return load_config(ABLATION, [*SMALL, *more])


def _results(out: Path) -> dict[str, bytes]:
    """ablation.json and every run's eval.json, as bytes."""
    files = ["ablation.json", *(f"{run}/eval.json" for run in RUNS)]
    return {name: (out / name).read_bytes() for name in files}


@pytest.fixture(scope="module")
def local_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ablation run by the local executor: what every other executor must reproduce."""
    out = tmp_path_factory.mktemp("local") / "abl"
    run_ablation(_config(), out)
    return out


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """One local Ray instance (2 CPUs) for the module; the ablations use it as it is."""
    ray = pytest.importorskip("ray", reason="the ray extra: pip install 'unigen-sb3[ray]'")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _copy(local_out: Path, dest: Path) -> Path:
    shutil.copytree(local_out, dest)
    (dest / "ablation.json").unlink()
    return dest


# --- the same results whichever executor ran them -----------------------------------------


def test_each_run_uses_num_cpus_torch_threads_wherever_it_runs(local_out: Path) -> None:
    saved = yaml.safe_load((local_out / "full" / "seed_0" / "config.yaml").read_text())
    assert saved["training"]["torch_threads"] == 1 == run_threads(_config())
    assert run_threads(_config("ablation.num_cpus=2.5")) == 2
    assert run_threads(_config("ablation.num_cpus=0.5")) == 1
    assert run_threads(_config("training.torch_threads=3")) == 3


def test_processes_give_the_local_results_and_report(local_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "abl"
    command = ["ablate", str(ABLATION), "--out", str(out), "--executor", "processes"]
    assert main([*command, "--max-parallel", "2", *sets(SMALL)]) == 0
    assert _results(out) == _results(local_out)
    reports = [write_report([o], tmp_path / f"report_{o.parent.name}") for o in (out, local_out)]
    assert reports[0].read_text() == reports[1].read_text()


def test_ray_gives_the_local_results(ray_instance: None, local_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "abl"
    command = ["ablate", str(ABLATION), "--out", str(out), "--executor", "ray"]
    assert main([*command, *sets(SMALL)]) == 0
    assert _results(out) == _results(local_out)


# --- failures are named, not summarized; a rerun finishes only what is missing ---------------


@pytest.mark.filterwarnings("ignore:--resume skips checkpoint:UserWarning")
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_failed_run_is_named_with_its_error_and_a_rerun_finishes_the_rest(
    executor: str, request: pytest.FixtureRequest, local_out: Path, tmp_path: Path
) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    out = _copy(local_out, tmp_path / "abl")
    shutil.rmtree(out / "no_edit" / "seed_1")  # still to train: it must train despite the failure
    broken = out / "full" / "seed_1"  # resumes from a checkpoint that is not the recorded one
    for name in ("eval.json", "model.zip"):
        (broken / name).unlink()
    (broken / "checkpoints" / "model_16_steps.zip").write_bytes(b"not a model")
    outcomes: list[RunOutcome] = []
    with pytest.raises(AblationError) as info:
        run_ablation(_config(), out, executor=executor, on_result=outcomes.append)
    (failure,) = info.value.failures
    assert failure.label == "full seed=1" and failure.run_dir == str(broken.resolve())
    assert failure.error is not None and failure.error.startswith("ArtifactError: --resume")
    assert "Traceback" in (failure.traceback or "")
    message = str(info.value)
    assert message.startswith("1 of 4 runs failed, so ablation.json was not written")
    assert f"full seed=1 ({broken.resolve()}, on " in message and "ArtifactError" in message
    assert not (out / "ablation.json").exists()
    assert (out / "no_edit" / "seed_1" / "eval.json").is_file()
    assert sorted((o.label, o.status, o.reused) for o in outcomes) == [
        ("full seed=0", "completed", True),
        ("full seed=1", "failed", False),
        ("no_edit seed=0", "completed", True),
        ("no_edit seed=1", "completed", False),
    ]
    # Fixed: the rerun trains full seed=1 only (no checkpoint left: from the start).
    shutil.rmtree(broken / "checkpoints")
    kept = (out / "no_edit" / "seed_1" / "eval.json").stat().st_mtime_ns
    run_ablation(_config(), out, executor=executor)
    assert (out / "no_edit" / "seed_1" / "eval.json").stat().st_mtime_ns == kept
    assert _results(out) == _results(local_out)


@pytest.mark.filterwarnings("ignore:--resume skips checkpoint:UserWarning")
def test_cli_exits_1_naming_the_failed_run_with_its_traceback(
    local_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _copy(local_out, tmp_path / "abl")
    broken = out / "no_edit" / "seed_0"
    (broken / "eval.json").unlink()
    (broken / "checkpoints" / "model_16_steps.zip").write_bytes(b"not a model")
    code = main(["ablate", str(ABLATION), "--out", str(out), *sets(SMALL)])
    err = capsys.readouterr().err
    assert code == EXIT_RUNS_FAILED == 1
    assert "ablation: no_edit seed=0 FAILED: ArtifactError" in err
    assert f"--- no_edit seed=0 ({broken.resolve()}) ---\nTraceback" in err
    assert "unigen-sb3 ablate: error: 1 of 4 runs failed" in err


def _learning_pid(run: Path) -> int | None:
    """The pid training ``run``, once a checkpoint it wrote is recorded (learn() is under
    way and a resume has a checkpoint to start from)."""
    try:
        meta = json.loads((run / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    recorded = any(k.startswith("checkpoints/model_") for k in meta.get("sha256") or {})
    return meta["pid"] if meta.get("status") == "running" and recorded else None


def test_a_killed_worker_and_a_stopped_pool_are_reported_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    """processes: SIGKILL of the worker training seed 1 fails that run (the other goes on);
    then SIGTERM of this process stops seed 0, which saves itself; a rerun finishes both."""
    out = tmp_path / "abl"
    long = ["ablation.drop=[]", "training.checkpoint_freq=8"]
    config = _config(*long, "training.total_timesteps=100000")
    outcomes: list[RunOutcome] = []
    problems: list[str] = []

    def stop() -> None:
        deadline = time.monotonic() + 120
        pids: dict[str, int | None] = {"seed_0": None, "seed_1": None}
        while None in pids.values() and time.monotonic() < deadline:
            pids = {name: _learning_pid(out / "full" / name) for name in pids}
            time.sleep(0.05)
        if None in pids.values():
            problems.append(f"the runs did not both start learning: {pids}")
            os.kill(os.getpid(), signal.SIGTERM)
            return
        os.kill(pids["seed_1"], signal.SIGKILL)
        while not any(o.label == "full seed=1" for o in outcomes):
            if time.monotonic() > deadline:
                problems.append("the killed run was never reported")
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # stops the ablation as a scheduler would

    previous = {s: signal.getsignal(s) for s in signals.HANDLED_SIGNALS}
    signals.install()
    stopper = threading.Thread(target=stop, daemon=True)
    try:
        stopper.start()
        with pytest.raises(KeyboardInterrupt):
            run_ablation(
                config, out, executor="processes", max_parallel=2, on_result=outcomes.append
            )
    finally:
        stopper.join(timeout=60)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert not problems, problems
    by_label = {o.label: o for o in outcomes}
    killed = by_label["full seed=1"]
    assert killed.status == "failed" and killed.error is not None
    assert killed.error.startswith("WorkerDied: the worker process (pid ")
    assert "was killed by SIGKILL while training this run" in killed.error
    assert by_label["full seed=0"].status == "interrupted"
    saved = json.loads((out / "full" / "seed_0" / "meta.json").read_text())
    assert saved["status"] == "interrupted" and (out / "full" / "seed_0" / "model.zip").is_file()
    assert not (out / "ablation.json").exists()
    # The same ablation with a budget both runs reach: each resumes, ablation.json appears.
    summary = run_ablation(_config(*long, "training.total_timesteps=24"), out)
    assert summary["variants"]["full"]["metrics"]["reward_total"]["n"] == 2
    for seed in ("seed_0", "seed_1"):
        assert json.loads((out / "full" / seed / "meta.json").read_text())["status"] == "completed"


# --- bad settings are refused before anything is written ----------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-parallel", "0"], "argument --max-parallel: expected an integer >= 1, got 0"),
        (["--address", "auto"], "--address auto names a Ray cluster, so it needs --executor ray"),
        (["--max-parallel", "2"], "--max-parallel 2 needs --executor processes"),
        (["--executor", "threads"], "argument --executor: invalid choice: 'threads'"),
    ],
)
def test_bad_executor_arguments_exit_2_before_anything_is_written(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "abl"
    try:
        code = main(["ablate", str(ABLATION), "--out", str(out), *args, *sets(SMALL)])
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    assert code == EXIT_CONFIG_ERROR
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_ray_executor_without_ray_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "abl"
    for extra in ([], ["--address", "auto"]):
        argv = ["ablate", str(ABLATION), "--out", str(out), "--executor", "ray", *extra]
        assert main(argv) == EXIT_CONFIG_ERROR
        err = capsys.readouterr().err
        assert "the ray executor needs Ray: pip install 'unigen-sb3[ray]'" in err
    with pytest.raises(ExecutorError, match=r"pip install 'unigen-sb3\[ray\]'"):
        run_ablation(_config(), out, executor="ray")
    assert not out.exists()


def test_the_api_refuses_bad_executor_settings(tmp_path: Path) -> None:
    out = tmp_path / "abl"
    with pytest.raises(ExecutorError, match=r"--max-parallel must be >= 1, got 0"):
        run_ablation(_config(), out, executor="processes", max_parallel=0)
    with pytest.raises(ExecutorError, match=r"unknown executor 'dask'; accepted: \['local'"):
        run_ablation(_config(), out, executor="dask")
    assert not out.exists()


@pytest.mark.parametrize(
    ("override", "path", "message"),
    [
        ("ablation.num_cpus=0", "ablation.num_cpus", "must be > 0: a run needs some CPU"),
        ("ablation.num_gpus=2", "ablation.num_gpus", "a run trains on one device"),
        ("ablation.num_gpus=-1", "ablation.num_gpus", "out of range [0.0, 1.0]"),
        ("ablation.num_cpus=two", "ablation.num_cpus", "expected a number, got 'two'"),
    ],
)
def test_bad_run_resources_are_config_errors(override: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(override)
    assert info.value.path == path and message in info.value.message


class _FakeRay:
    """What the ray executor asks of the ``ray`` module before submitting anything."""

    def __init__(self, resources: dict[str, float], error: Exception | None = None) -> None:
        self.resources, self.error = resources, error

    def is_initialized(self) -> bool:
        return False

    def init(self, **_kwargs: object) -> None:
        if self.error is not None:
            raise self.error

    def cluster_resources(self) -> dict[str, float]:
        return self.resources


def test_ray_runs_no_node_can_hold_or_an_unreachable_cluster_are_refused() -> None:
    from unigen_sb3.experiments.executors import _check_ray_resources, _connect_ray

    no_gpu = _FakeRay({"CPU": 2.0})
    with pytest.raises(ExecutorError, match=r"ablation\.num_gpus=1 \(the cluster has 0\)"):
        _check_ray_resources(no_gpu, 1.0, 1.0, ours=True)  # a local instance: never
    with pytest.warns(UserWarning, match=r"unless the cluster adds nodes"):
        _check_ray_resources(no_gpu, 1.0, 1.0, ours=False)  # a cluster may scale up
    _check_ray_resources(no_gpu, 2.0, 0.0, ours=True)
    gone = _FakeRay({}, ConnectionError("Could not find any running Ray instance."))
    with pytest.raises(ExecutorError, match=r"cannot reach a Ray cluster at --address auto: "):
        _connect_ray(gone, "auto")
