"""Shared by the CLI tests: tiny experiment overrides and how to run ``unigen-sb3``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from unigen_sb3.configs.shipped import shipped_config_path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = shipped_config_path("quickstart")
# Tiny budget: the smallest canvas NatureCNN accepts, short episodes, one env.
TINY = [
    "env.size=36",
    "env.horizon=4",
    "training.n_envs=1",
    "training.total_timesteps=64",
    "training.checkpoint_freq=32",
    "algorithm.kwargs={n_steps: 32, batch_size: 16, n_epochs: 1}",
    "evaluation.n_episodes=2",
]


def sets(overrides: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for o in overrides for arg in ("--set", o)]


def cli_command() -> list[str]:
    """The ``unigen-sb3`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("unigen-sb3")
    return [str(script)] if script.exists() else [sys.executable, "-m", "unigen_sb3.cli"]


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: one torch thread each (they run side by side)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class RaiseAt(BaseCallback):
    """Raises ``error`` once training reaches ``steps`` timesteps (``KeyboardInterrupt``
    simulates Ctrl-C; another exception, a crash)."""

    def __init__(self, steps: int, error: BaseException) -> None:
        super().__init__()
        self.steps = steps
        self.error = error

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.steps:
            raise self.error
        return True


class StartCount(BaseCallback):
    """Records the timestep count at which ``learn`` started (a resume continues it)."""

    def __init__(self) -> None:
        super().__init__()
        self.start: int | None = None

    def _on_training_start(self) -> None:
        self.start = self.num_timesteps

    def _on_step(self) -> bool:
        return True
