"""SIGTERM and SIGHUP save the model and a checkpoint like Ctrl-C, and exit 128 + signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_support import QUICKSTART, cli_command, cli_env, sets
from rel_support import FAST, fast_config
from stable_baselines3.common.callbacks import BaseCallback

from unigen_sb3.experiments import RunDir, signals, train


def _wait_for(predicate, timeout: float, proc: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"train exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("train did not start learning in time")
        time.sleep(0.05)


def test_sigterm_saves_the_model_and_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    long = [*FAST, "training.total_timesteps=100000", "training.checkpoint_freq=8"]
    proc = subprocess.Popen(
        [*cli_command(), "train", str(QUICKSTART), "--out", str(out), *sets(long)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    run = RunDir(out)

    def learning() -> bool:  # a periodic checkpoint exists: learn() is under way
        if not run.meta_path.exists():
            return False
        return json.loads(run.meta_path.read_text()).get("status") == "running" and bool(
            list(run.checkpoint_dir.glob("model_*_steps.zip"))
        )

    _wait_for(learning, 120, proc)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM == 143, stderr
    meta = run.read_meta()
    assert meta["status"] == "interrupted"
    assert run.model_path.exists()
    latest = run.latest_checkpoint()
    assert latest is not None and latest[1] == meta["num_timesteps"] > 0
    assert "--resume" in stderr
    # The run continues from where SIGTERM stopped it.
    steps = meta["num_timesteps"]
    cfg = fast_config("training.checkpoint_freq=8", f"training.total_timesteps={steps + 8}")
    result = train(cfg, out, resume=True, evaluate=False)
    assert result.num_timesteps >= steps + 8 and run.read_meta()["status"] == "trained"


class _SendSignal(BaseCallback):
    def __init__(self, signum: int, at: int) -> None:
        super().__init__()
        self.signum, self.at = signum, at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            os.kill(os.getpid(), self.signum)
        return True


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_handled_signals_interrupt_train_in_process(tmp_path: Path, signum: int) -> None:
    previous = {s: signal.getsignal(s) for s in signals.HANDLED_SIGNALS}
    signals.install()
    try:
        result = train(fast_config(), tmp_path / "run", extra_callbacks=[_SendSignal(signum, 8)])
        assert result.interrupted and result.num_timesteps == 8
        assert signals.received() == signum and signals.exit_code() == 128 + signum
        run = RunDir(tmp_path / "run")
        assert run.read_meta()["status"] == "interrupted" and run.model_path.exists()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
