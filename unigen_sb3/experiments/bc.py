"""Behaviour cloning: the RL agent's own SB3 policy network trained on Oracle demonstrations.

:func:`train_bc` builds the config's algorithm and policy exactly as ``train`` would (same
class, same policy, same spaces, same seed), then fits the policy's action distribution to
the demonstrated actions by maximum likelihood (minibatch Adam on ``-log pi(a | s)``),
holding out a share of the demo *episodes* and stopping early when their loss stops
improving; the best epoch's weights are kept. The value head is left as built (no reward
is used). The result is an ordinary run directory: ``model.zip`` (an SB3 zip of the config's
algorithm, e.g. PPO, with the cloned policy weights; its SHA-256 recorded), ``config.yaml``,
``meta.json``, ``bc.json`` (the split, the learning curve, the wall time) and, unless
``evaluate=False``, ``eval.json``, so ``unigen-sb3 eval RUN`` and every tool that reads runs
take it like a trained agent.

Example:
    >>> cfg = load_config("quickstart")                                         # doctest: +SKIP
    >>> collect_demos(cfg, "demos/quickstart", n_episodes=512)                  # doctest: +SKIP
    >>> result = train_bc("demos/quickstart", cfg, "runs/bc")                   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import obs_as_tensor

from unigen_sb3.configs.loader import save_config
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig
from unigen_sb3.experiments.allocator import tune_host_allocator
from unigen_sb3.experiments.demos import DemoSet, demos_spec, load_demos
from unigen_sb3.experiments.rundir import RunDir
from unigen_sb3.experiments.runner import (
    apply_torch_threads,
    build_model,
    check_experiment,
    evaluate_model,
    remove_run_dir,
)
from unigen_sb3.experiments.seeding import seed_everything
from unigen_sb3.make import build_vec_env
from unigen_sb3.utils import atomic_write_text, is_int

__all__ = ["BC_REPORT_NAME", "BCResult", "PolicyFit", "fit_policy", "train_bc"]

#: The behaviour-cloning report written into the run directory.
BC_REPORT_NAME = "bc.json"
#: The spec settings demos must share with the config they train (what the policy sees and
#: emits).
_MATCHING = ("action", "action_options", "obs", "size", "reference")


@dataclass
class BCResult:
    """What :func:`train_bc` produced (also written to ``bc.json``, without the model).

    :param run_dir: the run directory.
    :param model: the SB3 model holding the cloned policy.
    :param demos: the demos folder and their SHA-256.
    :param train_episodes: demo episodes trained on; ``val_episodes`` held out.
    :param train_samples: steps trained on; ``val_samples`` held out.
    :param epochs: epochs run; ``best_epoch`` the one whose weights were kept (1-based).
    :param val_loss: held-out mean ``-log pi(a|s)`` at the best epoch.
    :param val_accuracy: held-out share of steps whose most likely action is the demo's
        (``None`` for a continuous action space).
    :param seconds: wall time of training (loading and evaluation excluded).
    :param history: per epoch ``{"epoch", "train_loss", "val_loss", "val_accuracy"}``.
    :param eval: the evaluation report (``eval.json``), or None without evaluation.
    """

    run_dir: RunDir
    model: BaseAlgorithm
    demos: dict[str, Any]
    train_episodes: int
    val_episodes: int
    train_samples: int
    val_samples: int
    epochs: int
    best_epoch: int
    val_loss: float
    val_accuracy: float | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, Any] | None = None

    def report(self) -> dict[str, Any]:
        """The JSON-ready summary written to ``bc.json``."""
        skip = ("run_dir", "model", "eval")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def _check_demos_fit(demos: DemoSet, config: ExperimentConfig) -> None:
    """:raises ValueError: when the demos were collected for another observation or action."""
    want = demos_spec(config).to_dict()
    have = demos.manifest.get("spec", {})
    diff = [
        f"{k}: demos {have.get(k)!r}, config {want[k]!r}"
        for k in _MATCHING
        if have.get(k) != want[k]
    ]
    if diff:
        raise ValueError(
            f"the demos in {demos.path} were collected for another stack than the config's "
            f"({'; '.join(diff)}); collect them with this config (`unigen-sb3 demos`)"
        )


def _split(n_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out episodes: a seeded ``val_fraction`` of them (at least one; one left to train)."""
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_val = min(max(1, round(val_fraction * n_episodes)), n_episodes - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _take(obs: np.ndarray | dict[str, np.ndarray], rows: np.ndarray) -> Any:
    return {k: v[rows] for k, v in obs.items()} if isinstance(obs, dict) else obs[rows]


def _nll(
    model: BaseAlgorithm, obs: Any, actions: np.ndarray, discrete: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean ``-log pi(a|s)`` of a minibatch and, for discrete spaces, the hits of the mode."""
    policy: Any = model.policy
    dist = policy.get_distribution(obs_as_tensor(obs, model.device))
    acts = torch.as_tensor(actions, device=model.device)
    loss = -dist.log_prob(acts).mean()
    hits = None
    if discrete:
        mode = dist.mode().reshape(acts.shape)
        hits = (mode == acts).reshape(acts.shape[0], -1).all(dim=1)
    return loss, hits


@dataclass
class PolicyFit:
    """What :func:`fit_policy` did: the split, the learning curve and the epoch kept."""

    train_episodes: np.ndarray
    val_episodes: np.ndarray
    train_rows: np.ndarray
    val_rows: np.ndarray
    history: list[dict[str, Any]]
    best_epoch: int
    val_loss: float
    val_accuracy: float | None


def fit_policy(
    model: BaseAlgorithm,
    demo: DemoSet,
    *,
    seed: int,
    val_fraction: float = 0.2,
    max_epochs: int = 30,
    patience: int = 3,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> PolicyFit:
    """Fit ``model``'s policy to the demonstrated actions in place (maximum likelihood).

    Demo episodes are split (``val_fraction`` held out, shuffled with ``seed``); minibatch
    Adam minimizes ``-log pi(a | s)`` on the rest; training stops after ``patience`` epochs
    without a held-out improvement, and the best epoch's weights are loaded back.

    :param model: an actor-critic model whose policy has ``get_distribution``.
    :param demo: demonstrations collected in the model's stack.
    :param seed: seeds the split and the minibatch order.
    :return: the :class:`PolicyFit`.
    """
    discrete = isinstance(model.action_space, spaces.Discrete | spaces.MultiDiscrete)
    train_eps, val_eps = _split(int(demo.manifest["n_episodes"]), val_fraction, seed)
    train_rows = np.flatnonzero(np.isin(demo.episode, train_eps))
    val_rows = np.flatnonzero(np.isin(demo.episode, val_eps))
    obs, actions = demo.observations, demo.actions
    policy: Any = model.policy
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, Any], float | None] | None = None
    for epoch in range(1, max_epochs + 1):
        policy.set_training_mode(True)
        order = rng.permutation(train_rows)
        total = 0.0
        for k in range(0, order.size, batch_size):
            rows = order[k : k + batch_size]
            loss, _ = _nll(model, _take(obs, rows), actions[rows], discrete)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * rows.size
        policy.set_training_mode(False)
        val_total, hits = 0.0, 0
        with torch.no_grad():
            for k in range(0, val_rows.size, batch_size):
                rows = val_rows[k : k + batch_size]
                loss, hit = _nll(model, _take(obs, rows), actions[rows], discrete)
                val_total += float(loss.detach()) * rows.size
                hits += 0 if hit is None else int(hit.sum())
        val_loss = val_total / val_rows.size
        accuracy = hits / val_rows.size if discrete else None
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / train_rows.size,
                "val_loss": val_loss,
                "val_accuracy": accuracy,
            }
        )
        if best is None or val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(policy.state_dict()), accuracy)
        elif epoch - best[1] >= patience:
            break
    assert best is not None
    policy.load_state_dict(best[2])
    return PolicyFit(
        train_episodes=train_eps,
        val_episodes=val_eps,
        train_rows=train_rows,
        val_rows=val_rows,
        history=history,
        best_epoch=best[1],
        val_loss=best[0],
        val_accuracy=best[3],
    )


def train_bc(
    demos: str | os.PathLike[str] | DemoSet,
    config: ExperimentConfig,
    out: str | os.PathLike[str],
    *,
    val_fraction: float = 0.2,
    max_epochs: int = 30,
    patience: int = 3,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    overwrite: bool = False,
    evaluate: bool = True,
) -> BCResult:
    """Clone the demonstrated actions into ``config``'s policy; write a run directory.

    :param demos: a demos folder (:func:`~unigen_sb3.experiments.demos.load_demos` checks
        it) or a loaded :class:`~unigen_sb3.experiments.demos.DemoSet`.
    :param config: the experiment (algorithm, policy, encoding, observation, seed); the demos
        must have been collected for its stack.
    :param out: the run directory.
    :param val_fraction: share of demo episodes held out for early stopping, in ``(0, 1)``.
    :param max_epochs: epochs at most, >= 1.
    :param patience: epochs without a held-out improvement before stopping, >= 1.
    :param batch_size: minibatch size, >= 1.
    :param learning_rate: Adam's step size, > 0.
    :param overwrite: replace a previous run in ``out`` (a run directory only).
    :param evaluate: run the evaluation suite afterwards (``eval.json``).
    :return: the :class:`BCResult`.
    :raises ValueError: for a bad setting, or demos of another stack.
    :raises ConfigError: for an algorithm whose policy has no action distribution to fit.
    :raises FileExistsError: for an ``out`` that already holds a run, without ``overwrite``.
    """
    for name, value in (
        ("max_epochs", max_epochs),
        ("patience", patience),
        ("batch_size", batch_size),
    ):
        if not is_int(value) or value < 1:
            raise ValueError(f"{name}={value!r} must be an int >= 1")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} must be in (0, 1)")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate={learning_rate!r} must be > 0")
    demo = demos if isinstance(demos, DemoSet) else load_demos(demos)
    _check_demos_fit(demo, config)
    n_episodes = int(demo.manifest["n_episodes"])
    if n_episodes < 2:
        raise ValueError(f"{demo.path} holds {n_episodes} episode; a held-out split needs >= 2")
    check_experiment(config)
    allocator = tune_host_allocator()
    if overwrite:
        remove_run_dir(Path(out))
    elif (Path(out) / "model.zip").exists():
        raise FileExistsError(
            f"{out} already holds a model; pass overwrite=True (--overwrite) or choose "
            "another folder"
        )
    run_dir = RunDir(Path(out))
    run_dir.mark()
    save_config(config, run_dir.config_path)
    run_dir.record(run_dir.config_path)
    run_dir.start_meta(config.seed, host_allocator=allocator.as_dict())
    try:
        result = _clone(
            demo, config, run_dir, val_fraction, max_epochs, patience, batch_size, learning_rate
        )
    except BaseException as exc:
        # A crashed run must never look trained (as train() does).
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run_dir.write_meta(status=status, error=f"{type(exc).__name__}: {exc}")
        raise
    if evaluate:
        result.eval = evaluate_model(result.model, config, path=run_dir.eval_path)
        run_dir.write_meta(status="completed")
    return result


def _clone(
    demo: DemoSet,
    config: ExperimentConfig,
    run_dir: RunDir,
    val_fraction: float,
    max_epochs: int,
    patience: int,
    batch_size: int,
    learning_rate: float,
) -> BCResult:
    """The training part of :func:`train_bc`: build, fit, keep the best epoch, save."""
    apply_torch_threads(config)
    seed_everything(config.seed, strict=config.strict_determinism)
    # The training stack's spaces and env count, as train() builds the model; never stepped.
    env = build_vec_env(
        demos_spec(config), config.training.n_envs, config.seed, vec_env_kind="batched"
    )
    try:
        model = build_model(config, env)
    finally:
        env.close()
    if not callable(getattr(model.policy, "get_distribution", None)):
        raise ConfigError(
            "algorithm.name",
            f"behaviour cloning fits an actor-critic policy's action distribution; "
            f"{config.algorithm.name}'s policy has none (use PPO or A2C)",
        )
    started = time.perf_counter()
    fit = fit_policy(
        model,
        demo,
        seed=config.seed,
        val_fraction=val_fraction,
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
    seconds = time.perf_counter() - started
    run_dir.save_model(model)
    result = BCResult(
        run_dir=run_dir,
        model=model,
        demos={"path": str(demo.path), "sha256": demo.manifest["sha256"]},
        train_episodes=int(fit.train_episodes.size),
        val_episodes=int(fit.val_episodes.size),
        train_samples=int(fit.train_rows.size),
        val_samples=int(fit.val_rows.size),
        epochs=len(fit.history),
        best_epoch=fit.best_epoch,
        val_loss=fit.val_loss,
        val_accuracy=fit.val_accuracy,
        seconds=seconds,
        history=fit.history,
    )
    atomic_write_text(
        run_dir.path / BC_REPORT_NAME, json.dumps(result.report(), indent=2, sort_keys=True) + "\n"
    )
    run_dir.write_meta(status="trained", num_timesteps=0, behaviour_cloning=True)
    return result
