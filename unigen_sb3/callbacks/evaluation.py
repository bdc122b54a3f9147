"""``UniGenEvalCallback``: periodic deterministic evaluation with a learning-curve history."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.evaluation import evaluate_unigen, log_report, write_report

__all__ = ["UniGenEvalCallback"]


def _config_from_batched(venv: VecEnv) -> tuple[dict[str, Any], Any]:
    """make_unigen_env kwargs and the action codec of a batched UniGen VecEnv stack.

    The batched VecEnv keeps its settings as attributes (``task``, ``size``, ``horizon``,
    ``sampler``) next to its ``core``; reward weights and the codec live in the
    ``VecEnvWrapper`` layers above it.

    :raises ValueError: when no batched UniGen VecEnv is at the bottom of the stack (e.g. a
        ``SubprocVecEnv``, whose envs live in other processes): evaluating with default
        settings instead would use the wrong task, size or codec without saying so.
    """
    config: dict[str, Any] = {}
    codec = None
    current: Any = venv
    while isinstance(current, VecEnvWrapper):
        # VecUnifiedReward keeps its RewardUnificationCore as ``unification``.
        unification = current.__dict__.get("unification")
        weights = getattr(getattr(unification, "unifier", None), "weights", None)
        if weights is not None and "w_quality" not in config:
            config.update({f"w_{name}": w for name, w in weights.items()})
        if codec is None:
            codec = current.__dict__.get("codec")
        current = current.venv
    if not isinstance(getattr(current, "core", None), UniGenCore):
        raise ValueError(
            "UniGenEvalCallback cannot read the evaluation settings from a training env of "
            f"type {type(current).__name__} (it reads them from a DummyVecEnv's first env or a "
            "batched UniGen VecEnv stack); pass them as env_or_config, e.g. "
            "UniGenEvalCallback({'task': ..., 'size': ..., 'horizon': ...}) or the env itself"
        )
    for name in ("task", "size", "horizon", "reference"):
        if hasattr(current, name):
            config[name] = getattr(current, name)
    sampler = getattr(current, "sampler", None)
    if sampler is not None:
        config["edit_fraction"] = sampler.edit_fraction
    if hasattr(current, "device"):
        config["device"] = current.device
    return config, codec


class UniGenEvalCallback(BaseCallback):
    """Every ``eval_freq`` calls, run :func:`~unigen_sb3.evaluation.evaluate_unigen` on the model.

    Each evaluation is logged under ``eval/`` (means of every metric and the set metrics,
    dumped at ``num_timesteps``), appended to :attr:`history` as ``[timesteps, mean
    R_total]``, and written (atomically) to ``json_path`` as the latest report plus
    ``"history"``, the learning curve that
    :func:`~unigen_sb3.evaluation.stability_summary` reads.

    :param env_or_config: settings of the evaluation (see ``evaluate_unigen``); ``None``
        reads them from the training env: the first env of a ``DummyVecEnv``, or the
        settings, weights and codec of a batched UniGen VecEnv stack. Other training envs
        (e.g. ``SubprocVecEnv``) need them given here: training then stops at its start
        with a ``ValueError`` that says so.
    :param eval_freq: evaluate every ``eval_freq`` calls (one call = one step of every env).
    :param n_episodes: episodes per evaluation (>= 2); the task set is the same every time.
    :param seed: base seed of the task set.
    :param json_path: where to write the report; default ``<logger dir>/eval.json`` when the
        logger has a folder, else nothing is written.
    :param prompt_split: as in ``evaluate_unigen`` (held-out prompts by default).
    :param codec: as in ``evaluate_unigen``.
    :param deterministic: passed to ``predict``.
    :param eval_at_end: also evaluate when training ends (if the last step was not evaluated).
    :param verbose: 1 prints each evaluation's mean R_total.

    Example:
        >>> cb = UniGenEvalCallback({"task": "edit", "size": 64}, eval_freq=5000)  # doctest: +SKIP
        >>> model.learn(50_000, callback=cb)  # doctest: +SKIP
        >>> cb.history[-1]  # doctest: +SKIP
    """

    def __init__(
        self,
        env_or_config: Mapping[str, Any] | gym.Env[Any, Any] | None = None,
        *,
        eval_freq: int = 10_000,
        n_episodes: int = 16,
        seed: int = 0,
        json_path: str | os.PathLike[str] | None = None,
        prompt_split: str | None = "heldout",
        codec: Any = None,
        deterministic: bool = True,
        eval_at_end: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not isinstance(eval_freq, int) or eval_freq < 1:
            raise ValueError(f"eval_freq={eval_freq!r} must be an int >= 1")
        if not isinstance(n_episodes, int) or n_episodes < 2:
            raise ValueError(f"n_episodes={n_episodes!r} must be an int >= 2")
        self.env_or_config = env_or_config
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes
        self.seed = seed
        self.json_path: Path | None = Path(json_path) if json_path is not None else None
        self.prompt_split = prompt_split
        self.codec = codec
        self.deterministic = deterministic
        self.eval_at_end = eval_at_end
        #: ``[[timesteps, mean R_total], ...]``, one entry per evaluation.
        self.history: list[list[float]] = []
        #: The latest report (with ``history``), or None before the first evaluation.
        self.last_report: dict[str, Any] | None = None
        self._last_eval_timesteps = -1

    def _init_callback(self) -> None:
        if self.env_or_config is None:
            envs = getattr(self.training_env.unwrapped, "envs", None)
            if envs:
                self.env_or_config = envs[0]
            else:
                self.env_or_config, codec = _config_from_batched(self.training_env)
                if self.codec is None:
                    self.codec = codec
        if self.json_path is None:
            folder = self.logger.get_dir()
            if folder is not None:
                self.json_path = Path(folder) / "eval.json"

    def evaluate(self) -> dict[str, Any]:
        """Evaluate now, log, record the history point, write the JSON; return the report."""
        report = evaluate_unigen(
            self.model,
            self.env_or_config,
            self.n_episodes,
            self.seed,
            prompt_split=self.prompt_split,
            codec=self.codec,
            deterministic=self.deterministic,
        )
        score = float(report["metrics"]["reward_total"]["mean"])
        self.history.append([float(self.num_timesteps), score])
        report["history"] = [list(point) for point in self.history]
        report["timesteps"] = self.num_timesteps
        self.last_report = report
        self._last_eval_timesteps = self.num_timesteps
        if self.json_path is not None:
            write_report(report, self.json_path)
        log_report(self.logger, report, step=self.num_timesteps)
        if self.verbose >= 1:
            print(f"Eval num_timesteps={self.num_timesteps}, mean R_total={score:.4f}")
        return report

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if self.eval_at_end and self._last_eval_timesteps != self.num_timesteps:
            self.evaluate()
