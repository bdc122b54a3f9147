"""The run directory: one folder that holds everything needed to trust and repeat a run.

::

    RUN_DIR/
      config.yaml           merged config (defaults + file + --set overrides)
      meta.json             seed, status, timesteps, package versions, git revision, command
      model.zip             the final (or interrupted) model
      checkpoints/          model_<timesteps>_steps.zip (+ replay buffer when configured)
      tb/                   TensorBoard logs
      eval.json             the evaluation suite's results

Every file is written through a temporary file and ``os.replace``, so an interrupted run
never leaves a half-written file behind.
"""

from __future__ import annotations

import io
import json
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from unigen_sb3.utils import atomic_write_bytes, atomic_write_text

__all__ = ["RunDir", "atomic_write_bytes", "git_revision", "package_versions"]

_VERSIONED = (
    "unigen-sb3",
    "stable-baselines3",
    "sb3-contrib",
    "gymnasium",
    "torch",
    "torchvision",
    "numpy",
    "optuna",
    "stlpips-pytorch",
    "lpips",
)
_CHECKPOINT = re.compile(r"^model_(\d+)_steps\.zip$")


def package_versions() -> dict[str, str | None]:
    """:return: Python's and the key packages' versions (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(path: Path | None = None) -> dict[str, Any] | None:
    """:return: ``{"revision", "dirty"}`` of the git checkout holding ``path``, or None."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"revision": rev.stdout.strip(), "dirty": bool(status.stdout.strip())}


class RunDir:
    """Paths and atomic writers of one run directory.

    :param path: the folder (created when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    config_path = property(lambda self: self.path / "config.yaml")
    meta_path = property(lambda self: self.path / "meta.json")
    model_path = property(lambda self: self.path / "model.zip")
    eval_path = property(lambda self: self.path / "eval.json")
    tb_dir = property(lambda self: self.path / "tb")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")

    def read_meta(self) -> dict[str, Any]:
        """:return: ``meta.json`` as a dict (``{}`` when absent)."""
        if not self.meta_path.exists():
            return {}
        data: dict[str, Any] = json.loads(self.meta_path.read_text("utf-8"))
        return data

    def write_meta(self, **updates: Any) -> dict[str, Any]:
        """Merge ``updates`` into ``meta.json`` (atomically) and return the result."""
        meta = self.read_meta()
        meta.update(updates)
        meta["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_text(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return meta

    def start_meta(self, seed: int) -> dict[str, Any]:
        """Record the seed, versions, git revision and command of a (re)started run; a resumed
        failed run's old ``error`` no longer holds."""
        return self.write_meta(
            seed=seed,
            status="running",
            error=None,
            versions=package_versions(),
            git=git_revision(),
            command=sys.argv,
        )

    def save_model(self, model: BaseAlgorithm, path: Path | None = None) -> Path:
        """Save ``model`` atomically (to ``model.zip`` unless ``path`` is given)."""
        target = self.model_path if path is None else path
        buffer = io.BytesIO()
        model.save(buffer)
        atomic_write_bytes(target, buffer.getvalue())
        return target

    def save_checkpoint(self, model: BaseAlgorithm, *, replay_buffer: bool = False) -> Path:
        """Save ``checkpoints/model_<timesteps>_steps.zip`` (and the replay buffer) atomically."""
        self.checkpoint_dir.mkdir(exist_ok=True)
        steps = int(model.num_timesteps)
        if replay_buffer and isinstance(model, OffPolicyAlgorithm):
            # The buffer first: a checkpoint whose zip exists always has its buffer.
            buffer = io.BytesIO()
            model.save_replay_buffer(buffer)
            atomic_write_bytes(
                self.checkpoint_dir / f"replay_buffer_{steps}_steps.pkl", buffer.getvalue()
            )
        return self.save_model(model, self.checkpoint_dir / f"model_{steps}_steps.zip")

    def latest_checkpoint(self) -> tuple[Path, int] | None:
        """:return: ``(path, timesteps)`` of the checkpoint with the most timesteps, or None."""
        if not self.checkpoint_dir.is_dir():
            return None
        found = [
            (int(m.group(1)), p)
            for p in self.checkpoint_dir.iterdir()
            if (m := _CHECKPOINT.match(p.name))
        ]
        if not found:
            return None
        steps, path = max(found)
        return path, steps

    def replay_buffer_for(self, steps: int) -> Path | None:
        """:return: the replay buffer saved with checkpoint ``steps``, if any."""
        path = self.checkpoint_dir / f"replay_buffer_{steps}_steps.pkl"
        return path if path.exists() else None
