"""The run directory: one folder that holds everything needed to trust and repeat a run.

::

    RUN_DIR/
      .unigen-sb3-run       marker: this folder is a unigen-sb3 run (``--overwrite`` checks it)
      config.yaml           merged config (defaults + file + --set overrides)
      meta.json             seed, status, timesteps, package versions, git revision, command,
                            and ``sha256``: the digest of every file below that the run wrote
      model.zip             the final (or interrupted) model
      checkpoints/          model_<timesteps>_steps.zip (+ replay buffer when configured)
      tb/                   TensorBoard logs
      eval.json             the evaluation suite's results

Every file is written through a temporary file and ``os.replace``, so an interrupted run
never leaves a half-written file behind. The SHA-256 of ``config.yaml``, ``model.zip`` and
every checkpoint and replay buffer is recorded in ``meta.json`` when written, and
:meth:`RunDir.verify` checks a file against it before it is loaded: an SB3 zip or a replay
buffer is a pickle, so loading a changed one runs whatever code was put in it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
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

__all__ = [
    "MARKER_NAME",
    "ArtifactError",
    "RunDir",
    "RunDirError",
    "atomic_write_bytes",
    "git_revision",
    "is_run_dir",
    "package_versions",
    "sha256_file",
]

#: The file that marks a folder as a unigen-sb3 run directory.
MARKER_NAME = ".unigen-sb3-run"
#: What a run directory written before the marker existed may hold (``--overwrite`` deletes
#: such a folder only when it holds nothing else): the run's own files and what the
#: project's scripts write into a run (``examples/compare_baselines.py``: ``baselines.json``,
#: ``before_after.png``; ``benchmarks/agent_behaviour.py``: ``behaviour.png``).
RUN_ENTRIES = frozenset(
    {
        MARKER_NAME,
        "config.yaml",
        "meta.json",
        "model.zip",
        "checkpoints",
        "tb",
        "eval.json",
        "eval_history.json",
        "images",
        "wandb",
        "baselines.json",
        "before_after.png",
        "behaviour.png",
    }
)


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (malformed ``meta.json``, not a run...)."""


class ArtifactError(RunDirError):
    """A model, checkpoint, replay buffer or config whose SHA-256 is not the recorded one, or
    one without a recorded digest: loading it would run code nobody checked."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """:return: the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_run_dir(path: str | os.PathLike[str]) -> tuple[bool, list[str]]:
    """Whether ``path`` is a run directory that ``--overwrite`` may delete.

    True when it holds the :data:`MARKER_NAME` file, or (a run written before the marker
    existed) when it holds a ``config.yaml`` and only the files a run writes
    (:data:`RUN_ENTRIES` and the ``.*.tmp`` files of an interrupted atomic write).

    :return: ``(is a run, names of the entries that are not a run's)``.
    """
    folder = Path(path)
    if (folder / MARKER_NAME).is_file():
        return True, []
    names = sorted(p.name for p in folder.iterdir())
    foreign = [n for n in names if n not in RUN_ENTRIES and not _is_tmp(n)]
    return (not foreign and "config.yaml" in names), foreign


def _is_tmp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


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

    marker_path = property(lambda self: self.path / MARKER_NAME)

    def read_meta(self) -> dict[str, Any]:
        """:return: ``meta.json`` as a dict (``{}`` when absent).

        :raises RunDirError: if it is not a JSON object (a truncated or hand-edited file).
        """
        if not self.meta_path.exists():
            return {}
        try:
            data = json.loads(self.meta_path.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{self.meta_path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RunDirError(
                f"{self.meta_path} must hold a JSON object, got {type(data).__name__}"
            )
        return data

    def mark(self) -> None:
        """Write the :data:`MARKER_NAME` file: ``--overwrite`` deletes only marked folders."""
        if not self.marker_path.exists():
            atomic_write_text(self.marker_path, "unigen-sb3 run directory\n")

    def _relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.path)).as_posix()

    def record(self, path: Path, data: bytes | None = None) -> str:
        """Record the SHA-256 of ``path`` (of ``data``, its bytes, when given) in ``meta.json``."""
        digest = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
        meta = self.read_meta()
        hashes = dict(meta.get("sha256") or {})
        hashes[self._relative(path)] = digest
        self.write_meta(sha256=hashes)
        return digest

    def recorded(self, path: Path) -> str | None:
        """:return: the SHA-256 recorded for ``path``, or None."""
        hashes = self.read_meta().get("sha256") or {}
        value = hashes.get(self._relative(path)) if isinstance(hashes, dict) else None
        return value if isinstance(value, str) else None

    def verify(self, path: Path) -> None:
        """Check ``path`` against its recorded SHA-256.

        :raises ArtifactError: if no digest was recorded for it or its bytes changed.
        """
        expected = self.recorded(path)
        if expected is None:
            raise ArtifactError(
                f"{path}: no SHA-256 recorded in {self.meta_path} (a run written before "
                "unigen-sb3 recorded digests, or a file it did not write)"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"{path} was changed after the run wrote it (SHA-256 {actual[:16]}..., "
                f"recorded {expected[:16]}...): truncated, corrupted or replaced"
            )

    def write_meta(self, **updates: Any) -> dict[str, Any]:
        """Merge ``updates`` into ``meta.json`` (atomically) and return the result."""
        meta = self.read_meta()
        meta.update(updates)
        meta["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_text(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return meta

    def start_meta(self, seed: int, **extra: Any) -> dict[str, Any]:
        """Record the seed, versions, git revision and command of a (re)started run, and
        ``extra`` entries (e.g. ``host_allocator``); a resumed failed run's old ``error`` no
        longer holds."""
        return self.write_meta(
            **extra,
            seed=seed,
            status="running",
            error=None,
            versions=package_versions(),
            git=git_revision(),
            command=sys.argv,
            pid=os.getpid(),
        )

    def save_model(self, model: BaseAlgorithm, path: Path | None = None) -> Path:
        """Save ``model`` atomically (to ``model.zip`` unless ``path`` is given)."""
        target = self.model_path if path is None else path
        buffer = io.BytesIO()
        model.save(buffer)
        data = buffer.getvalue()
        atomic_write_bytes(target, data)
        self.record(target, data)
        return target

    def save_checkpoint(self, model: BaseAlgorithm, *, replay_buffer: bool = False) -> Path:
        """Save ``checkpoints/model_<timesteps>_steps.zip`` (and the replay buffer) atomically."""
        self.checkpoint_dir.mkdir(exist_ok=True)
        steps = int(model.num_timesteps)
        if replay_buffer and isinstance(model, OffPolicyAlgorithm):
            # The buffer first: a checkpoint whose zip exists always has its buffer.
            buffer = io.BytesIO()
            model.save_replay_buffer(buffer)
            path = self.checkpoint_dir / f"replay_buffer_{steps}_steps.pkl"
            atomic_write_bytes(path, buffer.getvalue())
            self.record(path, buffer.getvalue())
        return self.save_model(model, self.checkpoint_dir / f"model_{steps}_steps.zip")

    def checkpoints(self) -> list[tuple[Path, int]]:
        """:return: ``(path, timesteps)`` of every checkpoint, the most timesteps first."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [
            (int(m.group(1)), p)
            for p in self.checkpoint_dir.iterdir()
            if (m := _CHECKPOINT.match(p.name))
        ]
        return [(path, steps) for steps, path in sorted(found, reverse=True)]

    def latest_checkpoint(self) -> tuple[Path, int] | None:
        """:return: ``(path, timesteps)`` of the checkpoint with the most timesteps, or None."""
        found = self.checkpoints()
        return found[0] if found else None

    def replay_buffer_for(self, steps: int) -> Path | None:
        """:return: the replay buffer saved with checkpoint ``steps``, if any."""
        path = self.checkpoint_dir / f"replay_buffer_{steps}_steps.pkl"
        return path if path.exists() else None
