"""Shared by the reliability tests: the tiniest run that trains, checkpoints and evaluates."""

from __future__ import annotations

import base64
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

from cli_support import QUICKSTART, TINY

from unigen_sb3.configs import load_config
from unigen_sb3.configs.schema import ExperimentConfig

# 32 timesteps with checkpoints at 16 and 32; one env, 36 px, 3-step episodes.
FAST = [
    *TINY,
    "env.horizon=3",
    "training.total_timesteps=32",
    "training.checkpoint_freq=16",
    "algorithm.kwargs={n_steps: 16, batch_size: 8, n_epochs: 1}",
    "training.tensorboard=false",
]


def fast_config(*more: str) -> ExperimentConfig:
    return load_config(QUICKSTART, [*FAST, *more])


class _Touch:
    """Unpickling this creates ``path``: what a hostile payload could do instead."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def doctor_zip(model_zip: Path, marker: Path) -> None:
    """Put a pickle payload that creates ``marker`` into an SB3 zip's ``data`` field."""
    with zipfile.ZipFile(model_zip) as zf:
        items = {name: zf.read(name) for name in zf.namelist()}
    data = json.loads(items["data"])
    data["doctored"] = {
        ":type:": "<class 'object'>",
        ":serialized:": base64.b64encode(pickle.dumps(_Touch(marker))).decode(),
    }
    items["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(model_zip, "w") as zf:
        for name, blob in items.items():
            zf.writestr(name, blob)


def running_trials(storage: Any, study_name: str) -> list[Any]:
    """The RUNNING trials of a sweep whose worker has recorded itself (``user_attrs["worker"]``:
    host and pid); ``[]`` while the study does not exist yet or its storage is being written.

    :param storage: an Optuna storage or URL.
    :param study_name: the study.
    """
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # not created yet, or the journal is being written
        return []
    return [t for t in trials if "worker" in t.user_attrs]
