"""Oracle demonstrations for behaviour cloning: collected, saved versioned, loaded verified.

:func:`collect_demos` runs the privileged :class:`~unigen_sb3.envs.policies.OraclePolicy` on
``n_episodes`` seeded tasks (episode ``j`` draws its task from seed ``seed + j``, as
evaluation does) through the *training* stack of a config (the same observation and action
encoding the RL agent has, on its prompt split), and keeps, for every step, the observation
the agent would see and the Oracle's action encoded in the stack's action space.

The Oracle emits raw hybrid actions. Each goes through the stack's action codec
(``encode``); the env is stepped with what the encoding can express (``decode(encode(a))``),
so the recorded observations follow the recorded actions. ``box`` carries every action
exactly; ``multidiscrete`` rounds parameters to its grid and ``discrete`` picks the nearest
library entry with the same op: such steps are counted (``n_nearest``, with the largest
parameter change ``max_param_error``) in the manifest and flagged per step (``exact``).

On disk, a folder::

    DEMOS/
      demos.npz       obs (or obs.<key> for dict observations), actions, episode, step,
                      exact, returns (per episode), lengths (per episode), seeds
      manifest.json   format, version, the config and the stack's spec, seeds, counts,
                      sha256 of demos.npz

Steps are stored episode by episode. ``demos.npz`` is written with fixed zip timestamps, so
the same config, seed and ``batch`` give the same bytes (and the same SHA-256) on the same
machine; another ``batch`` gives the same observations and actions, and returns equal up to
float32 noise (the perceptual network's kernels depend on the batch size).
:func:`load_demos` checks the format, the version and the SHA-256 before it trusts the arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unigen_sb3 import __version__
from unigen_sb3.configs.schema import ExperimentConfig, config_to_dict
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_STOP
from unigen_sb3.envs.policies import OraclePolicy
from unigen_sb3.envs.vec_env import UniGenVecEnv
from unigen_sb3.experiments.rundir import sha256_file
from unigen_sb3.make import build_vec_env
from unigen_sb3.spec import UniGenSpec
from unigen_sb3.utils import atomic_write_bytes, atomic_write_text, is_int
from unigen_sb3.wrappers.actions import make_codec

__all__ = [
    "DEMOS_FILE",
    "DEMOS_FORMAT",
    "DEMOS_VERSION",
    "MANIFEST_FILE",
    "DemoSet",
    "collect_demos",
    "demos_spec",
    "load_demos",
]

DEMOS_FORMAT = "unigen-sb3-demos"
DEMOS_VERSION = 1
DEMOS_FILE = "demos.npz"
MANIFEST_FILE = "manifest.json"
#: Parameters within this of the Oracle's count as carried exactly by the encoding.
EXACT_TOL = 1e-6
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: no clock in the file


@dataclass
class DemoSet:
    """Demonstrations in memory (what :func:`collect_demos` wrote, :func:`load_demos` read).

    :param path: the demos folder.
    :param manifest: the manifest (see the module docstring).
    :param arrays: name -> array, as stored in ``demos.npz``.
    """

    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def observations(self) -> np.ndarray | dict[str, np.ndarray]:
        """Per step, the observation (an array, or a dict of arrays for ``obs="dict"``)."""
        if "obs" in self.arrays:
            return self.arrays["obs"]
        return {k[4:]: v for k, v in self.arrays.items() if k.startswith("obs.")}

    @property
    def actions(self) -> np.ndarray:
        """Per step, the action in the stack's action space."""
        return self.arrays["actions"]

    @property
    def episode(self) -> np.ndarray:
        """Per step, the episode it belongs to (``0 .. n_episodes - 1``)."""
        return self.arrays["episode"]


def demos_spec(config: ExperimentConfig) -> UniGenSpec:
    """The spec demos of ``config`` are collected with: its training stack (encoding,
    observation, size, horizon, task, prompt split), scored without shaping."""
    return UniGenSpec.from_config(config).replace(shaping=None)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez_compressed`` with fixed timestamps and order: same arrays, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, data.getvalue())
    raw = buffer.getvalue()
    atomic_write_bytes(path, raw)
    return raw


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file; demos are written into a folder")
    if out.is_dir() and any(out.iterdir()):
        names = sorted(p.name for p in out.iterdir())
        if not overwrite:
            raise FileExistsError(
                f"{out} is not empty ({', '.join(names[:5])}); pass overwrite=True (--overwrite) "
                "to replace demos there, or choose another folder"
            )
        foreign = [n for n in names if n not in (DEMOS_FILE, MANIFEST_FILE)]
        if foreign:
            raise FileExistsError(
                f"{out} holds more than demos ({', '.join(foreign[:5])}); refusing to replace it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def collect_demos(
    config: ExperimentConfig,
    out: str | os.PathLike[str],
    *,
    n_episodes: int = 256,
    seed: int = 0,
    batch: int = 64,
    overwrite: bool = False,
) -> DemoSet:
    """Collect Oracle demonstrations in ``config``'s training stack and save them to ``out``.

    :param config: the experiment whose agent the demos are for (its training spec).
    :param out: the demos folder (created; see the module docstring).
    :param n_episodes: episodes, >= 1 (every one is kept: the Oracle solves every task).
    :param seed: episode ``j`` draws its task from seed ``seed + j``.
    :param batch: episodes stepped together in one batched env.
    :param overwrite: replace demos already in ``out``.
    :return: the :class:`DemoSet` written.
    :raises ValueError: for ``n_episodes`` or ``batch`` below 1, or a negative seed.
    :raises FileExistsError: for a non-empty ``out`` without ``overwrite``.
    """
    for name, value in (("n_episodes", n_episodes), ("batch", batch)):
        if not is_int(value) or value < 1:
            raise ValueError(f"{name}={value!r} must be an int >= 1")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed={seed!r} must be an int >= 0")
    spec = demos_spec(config)
    folder = Path(out)
    _prepare_out(folder, overwrite)
    codec = make_codec(spec.action, NUM_OPS, NUM_PARAMS, **spec.action_options)
    oracle = OraclePolicy()
    stop = codec.encode({"op": OP_STOP, "params": np.zeros(NUM_PARAMS, np.float32)})
    steps: dict[str, list[Any]] = {k: [] for k in ("obs", "actions", "episode", "step", "exact")}
    errors: list[float] = []
    returns = np.zeros(n_episodes, dtype=np.float64)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    for first in range(0, n_episodes, batch):
        n = min(batch, n_episodes - first)
        venv = build_vec_env(spec, n, seed + first, vec_env_kind="batched", monitor=False)
        try:
            raw = venv.unwrapped
            assert isinstance(raw, UniGenVecEnv)
            raw.autoreset = False
            obs = venv.reset()
            done = np.zeros(n, dtype=bool)
            while not done.all():
                actions = [stop] * n
                for i in np.flatnonzero(~done).tolist():
                    wanted = oracle.act_core(raw.core, i)
                    flat = codec.encode(wanted)
                    got = codec.decode(flat)
                    error = float(np.max(np.abs(got["params"] - np.asarray(wanted["params"]))))
                    exact = got["op"] == wanted["op"] and error <= EXACT_TOL
                    actions[i] = flat
                    steps["obs"].append(
                        {k: v[i].copy() for k, v in obs.items()}
                        if isinstance(obs, dict)
                        else obs[i].copy()
                    )
                    steps["actions"].append(flat)
                    steps["episode"].append(first + i)
                    steps["step"].append(int(raw.core.steps[i]))
                    steps["exact"].append(exact)
                    errors.append(error)
                obs, _, dones, infos = venv.step(np.stack(actions))
                ended = np.asarray(dones, dtype=bool) & ~done
                for i in np.flatnonzero(ended).tolist():
                    returns[first + i] = infos[i]["reward_total"]
                    lengths[first + i] = infos[i]["step"]
                done |= ended
        finally:
            venv.close()
    # Episode by episode, step by step: the same order whatever ``batch`` stepped together.
    order = np.lexsort((np.asarray(steps["step"]), np.asarray(steps["episode"])))
    steps = {k: [v[j] for j in order] for k, v in steps.items()}
    arrays: dict[str, np.ndarray] = {
        "actions": np.stack(steps["actions"]),
        "episode": np.asarray(steps["episode"], dtype=np.int64),
        "step": np.asarray(steps["step"], dtype=np.int64),
        "exact": np.asarray(steps["exact"], dtype=bool),
        "returns": returns,
        "lengths": lengths,
        "seeds": seed + np.arange(n_episodes, dtype=np.int64),
    }
    if spec.obs == "dict":
        for key in steps["obs"][0]:
            arrays[f"obs.{key}"] = np.stack([o[key] for o in steps["obs"]])
    else:
        arrays["obs"] = np.stack(steps["obs"])
    data = _write_npz(folder / DEMOS_FILE, arrays)
    n_steps = int(arrays["episode"].size)
    n_exact = int(arrays["exact"].sum())
    manifest: dict[str, Any] = {
        "format": DEMOS_FORMAT,
        "version": DEMOS_VERSION,
        "unigen_sb3": __version__,
        "policy": "OraclePolicy",
        "config": config_to_dict(config),
        "spec": spec.to_dict(),
        "seed": seed,
        "seeds": arrays["seeds"].tolist(),
        "n_episodes": n_episodes,
        "n_steps": n_steps,
        "n_exact": n_exact,
        "n_nearest": n_steps - n_exact,
        "max_param_error": float(max(errors)),
        "action_encoding": spec.action,
        "action_space": str(codec.space),
        "mean_return": float(returns.mean()),
        "file": DEMOS_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    atomic_write_text(folder / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return DemoSet(folder, manifest, arrays)


def load_demos(path: str | os.PathLike[str]) -> DemoSet:
    """Read a demos folder (or its ``manifest.json``), checking format, version and SHA-256.

    :raises FileNotFoundError: for a missing folder, manifest or npz.
    :raises ValueError: for another format or version, or an npz whose SHA-256 is not the
        manifest's (changed or truncated after it was written).
    """
    folder = Path(path)
    if folder.name == MANIFEST_FILE:
        folder = folder.parent
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} does not exist: {folder} holds no demos")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    if manifest.get("format") != DEMOS_FORMAT or manifest.get("version") != DEMOS_VERSION:
        raise ValueError(
            f"{manifest_path}: expected format {DEMOS_FORMAT!r} version {DEMOS_VERSION}; got "
            f"format {manifest.get('format')!r} version {manifest.get('version')!r}"
        )
    npz = folder / str(manifest.get("file", DEMOS_FILE))
    if not npz.is_file():
        raise FileNotFoundError(f"{npz} does not exist (named by {manifest_path})")
    digest = sha256_file(npz)
    if digest != manifest.get("sha256"):
        raise ValueError(
            f"{npz}: SHA-256 {digest} is not the manifest's {manifest.get('sha256')}; the file "
            "changed after it was written: collect the demos again"
        )
    with np.load(npz, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return DemoSet(folder, manifest, arrays)
