"""Shipped checkpoints: trained agents that come with the package, with the scores they get.

Each checkpoint is a folder of package data, ``unigen_sb3/pretrained/<name>/``:

- ``model.zip``: an SB3 zip (optimizer state left out). Its SHA-256 is written in this module
  (:data:`PRETRAINED`), and a file that does not match is refused before it is unpickled,
  since loading an SB3 zip runs the pickled code in it;
- ``config.yaml``: the config it was trained with, which is also the config it is evaluated
  with (1 torch thread, CPU), so its scores do not depend on the machine's core count;
- ``eval.json``: what :func:`evaluate_pretrained` (``unigen-sb3 eval --pretrained <name>``)
  writes on a CPU, byte for byte (a test checks it);
- ``card.md``: how it was trained (the commands), what it scores and where it falls short.

Example:
    >>> from unigen_sb3 import load_pretrained, make_unigen_env              # doctest: +SKIP
    >>> model = load_pretrained("unified")                                    # doctest: +SKIP
    >>> results, path = evaluate_pretrained("unified", out="runs/pretrained")  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from unigen_sb3.configs.schema import ExperimentConfig

__all__ = [
    "PRETRAINED",
    "PretrainedAgent",
    "evaluate_pretrained",
    "load_pretrained",
    "pretrained_config",
    "pretrained_dir",
]

_ROOT = Path(__file__).resolve().parent

#: Settings every pretrained evaluation runs with, whatever the machine: the CPU (a GPU's
#: float sums differ in their last digits, and so would eval.json).
_CPU = ["env.device=cpu", "training.device=cpu"]


@dataclass(frozen=True)
class PretrainedAgent:
    """One shipped checkpoint.

    :param name: its name (``load_pretrained(name)``, ``--pretrained name``).
    :param sha256: the SHA-256 of its ``model.zip``.
    :param summary: what it is, in one line.
    :param cpu_capability: ``torch.backends.cpu.get_cpu_capability()`` where its ``eval.json``
        was written (e.g. ``"AVX2"``). CPUs of another capability run other convolution
        kernels, whose float sums can differ in the last digits; ``eval.json`` is reproduced
        byte for byte on a CPU of this capability.
    """

    name: str
    sha256: str
    summary: str
    cpu_capability: str


#: The shipped checkpoints by name.
PRETRAINED: dict[str, PretrainedAgent] = {
    agent.name: agent
    for agent in (
        PretrainedAgent(
            name="unified",
            sha256="f08cda45e4245c83a367a21f4cc0cc4742537a76dc1b6bf4fd6519f0b2bfec12",
            summary="PPO CnnPolicy (discrete encoding, unified task, 48x48) of the evidence "
            "suite: behaviour cloning of 2048 Oracle demonstrations, a critic warm-up, then "
            "PPO with early stopping on validation tasks (configs/evidence/unified.yaml, seed 0)",
            cpu_capability="AVX2",
        ),
    )
}


def _agent(name: str) -> PretrainedAgent:
    if name not in PRETRAINED:
        raise ValueError(f"no pretrained agent {name!r}; shipped: {sorted(PRETRAINED)}")
    return PRETRAINED[name]


def pretrained_dir(name: str = "unified") -> Path:
    """The package folder of checkpoint ``name`` (``model.zip``, ``config.yaml``, ...).

    :raises ValueError: for an unknown name (the message lists the shipped ones).
    :raises FileNotFoundError: if the installed package lacks its files.
    """
    _agent(name)
    folder = _ROOT / name
    missing = [f for f in ("model.zip", "config.yaml") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"pretrained agent {name!r}: {missing} missing from {folder}; the installed "
            "package is incomplete (reinstall unigen-sb3)"
        )
    return folder


def pretrained_config(name: str = "unified") -> ExperimentConfig:
    """The config checkpoint ``name`` was trained with, set to run on the CPU."""
    from unigen_sb3.configs import load_config

    return load_config(pretrained_dir(name) / "config.yaml", _CPU)


def _verified_model(name: str) -> Path:
    """``model.zip`` of ``name`` after checking its SHA-256 against :data:`PRETRAINED`."""
    from unigen_sb3.experiments.rundir import ArtifactError, sha256_file

    path = pretrained_dir(name) / "model.zip"
    digest = sha256_file(path)
    if digest != PRETRAINED[name].sha256:
        raise ArtifactError(
            f"{path}: SHA-256 {digest} is not the one unigen-sb3 shipped for {name!r} "
            f"({PRETRAINED[name].sha256}); the file was changed, so it is not loaded "
            "(reinstall unigen-sb3)"
        )
    return path


def load_pretrained(
    name: str = "unified", *, env: Any = None, device: str = "cpu"
) -> BaseAlgorithm:
    """Load shipped checkpoint ``name`` as its SB3 algorithm (e.g. ``PPO``).

    :param name: a key of :data:`PRETRAINED`.
    :param env: an env or VecEnv to attach (``model.predict`` needs none). It must have the
        checkpoint's spaces, e.g. ``make_unigen_vec_env(spec)`` with
        ``spec = UniGenSpec.from_config(pretrained_config(name))``.
    :param device: where the policy runs.
    :return: the model.
    :raises ValueError: for an unknown name.
    :raises ArtifactError: if ``model.zip`` does not have the SHA-256 the package records.
    """
    from unigen_sb3.experiments.algorithms import get_algorithm_class

    path = _verified_model(name)
    cls = get_algorithm_class(pretrained_config(name).algorithm.name)
    return cls.load(path, env=env, device=device)


def evaluate_pretrained(name: str = "unified", *, out: str | Path) -> tuple[dict[str, Any], Path]:
    """Evaluate checkpoint ``name`` as ``unigen-sb3 eval`` evaluates a run, on the CPU.

    Same seeding, episodes and metrics as the ``eval.json`` it ships with, which this
    reproduces byte for byte on a CPU of the capability it was written on
    (:attr:`PretrainedAgent.cpu_capability`); on another, a warning says that the last
    digits may differ.

    :param out: the folder for ``eval.json`` (created when missing).
    :return: ``(results, path of eval.json)``.
    :raises ValueError: for an unknown name.
    :raises ArtifactError: if ``model.zip`` does not have the SHA-256 the package records.
    """
    import torch

    from unigen_sb3.experiments.runner import evaluate_checkpoint

    agent = _agent(name)
    here = torch.backends.cpu.get_cpu_capability()
    if here != agent.cpu_capability:
        warnings.warn(
            f"this CPU's capability is {here}, the shipped eval.json of {name!r} was written on "
            f"{agent.cpu_capability}: other convolution kernels, so its numbers may "
            "differ from the shipped ones in the last digits",
            stacklevel=2,
        )
    # pretrained_config puts the model on the CPU (training.device), as load_pretrained does.
    return evaluate_checkpoint(_verified_model(name), pretrained_config(name), Path(out))
