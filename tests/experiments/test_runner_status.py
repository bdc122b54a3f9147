"""``train``'s ``meta.json`` status: a crash is recorded ``failed``, never ``trained``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import QUICKSTART, TINY, RaiseAt, StartCount

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import load_config
from unigen_sb3.experiments import RunDir, evaluate_run, train


def test_a_crash_marks_the_run_failed_eval_refuses_it_and_resume_finishes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config(QUICKSTART, [*TINY, "training.total_timesteps=96"])
    out = tmp_path / "run"
    crash = RaiseAt(40, ImportError("no module named 'missing_extra'"))  # e.g. a missing extra
    with pytest.raises(ImportError, match="missing_extra"):
        train(cfg, out, extra_callbacks=[crash])
    run = RunDir(out)
    meta = run.read_meta()
    assert meta["status"] == "failed" and meta["num_timesteps"] == 40
    assert meta["error"] == "ImportError: no module named 'missing_extra'"
    assert not run.model_path.exists() and not run.eval_path.exists()
    latest = run.latest_checkpoint()
    assert latest is not None and latest[1] == 32  # the periodic checkpoint only
    # eval refuses the crashed run (exit 2, nothing written) instead of scoring it.
    with pytest.raises(FileNotFoundError, match=r"training failed .*ImportError"):
        evaluate_run(out)
    assert main(["eval", str(out)]) == EXIT_CONFIG_ERROR
    assert "--resume" in capsys.readouterr().err and not run.eval_path.exists()
    # --resume continues from the checkpoint; success clears the error.
    starts = StartCount()
    second = train(cfg, out, resume=True, extra_callbacks=[starts])
    assert starts.start == 32 and second.num_timesteps >= 96 and second.eval is not None
    meta = run.read_meta()
    assert meta["status"] == "completed" and meta["error"] is None


def test_a_crash_before_learning_is_failed_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_env(*_args: object, **_kwargs: object) -> None:
        raise OSError("env worker could not start")

    monkeypatch.setattr("unigen_sb3.experiments.runner.make_train_vec_env", broken_env)
    cfg = load_config(QUICKSTART, TINY)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="could not start"):
        train(cfg, out)
    meta = RunDir(out).read_meta()
    assert meta["status"] == "failed" and meta["error"] == "OSError: env worker could not start"


def test_ctrl_c_before_learning_is_interrupted_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the env is built is an interruption (the CLI exits 130), not a crash.
    def interrupted_env(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("unigen_sb3.experiments.runner.make_train_vec_env", interrupted_env)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(load_config(QUICKSTART, TINY), out)
    meta = RunDir(out).read_meta()
    assert meta["status"] == "interrupted" and meta["error"] is None


def test_an_error_while_closing_the_env_keeps_the_final_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The status is written before env.close(): a failing close (e.g. a dead subprocess
    # worker) used to leave a saved, trained run at "running".
    from unigen_sb3.experiments import runner

    real = runner.make_train_vec_env

    def env_with_broken_close(*args: object, **kwargs: object) -> object:
        env = real(*args, **kwargs)

        def close() -> None:
            raise BrokenPipeError("worker gone")

        env.close = close  # type: ignore[method-assign]
        return env

    monkeypatch.setattr(runner, "make_train_vec_env", env_with_broken_close)
    out = tmp_path / "run"
    with pytest.raises(BrokenPipeError):
        train(load_config(QUICKSTART, TINY), out)
    run = RunDir(out)
    assert run.read_meta()["status"] == "trained" and run.model_path.exists()
