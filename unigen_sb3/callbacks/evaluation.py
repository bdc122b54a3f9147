"""``UniGenEvalCallback``: periodic deterministic evaluation with a learning-curve history."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from unigen_sb3.evaluation import evaluate_unigen, log_report, write_report
from unigen_sb3.evaluation.report import EnvOrConfig
from unigen_sb3.spec import spec_of

__all__ = ["UniGenEvalCallback"]


class UniGenEvalCallback(BaseCallback):
    """Every ``eval_freq`` calls, run :func:`~unigen_sb3.evaluation.evaluate_unigen` on the model.

    Each evaluation is logged under ``eval/`` (means of every metric and the set metrics,
    dumped at ``num_timesteps``), appended to :attr:`history` as ``[timesteps, mean
    R_total]``, and written (atomically) to ``json_path`` as the latest report plus
    ``"history"``, the learning curve that
    :func:`~unigen_sb3.evaluation.stability_summary` reads.

    :param env_or_config: settings of the evaluation (see ``evaluate_unigen``); ``None``
        reads the spec of the training env (``spec_unigen``, which every stack of
        :mod:`unigen_sb3.make` exposes, whatever its VecEnv kind). A training env built
        otherwise needs them given here: training then stops at its start with a
        ``ValueError`` that says so.
    :param eval_freq: evaluate every ``eval_freq`` calls (one call = one step of every env).
    :param n_episodes: episodes per evaluation (>= 2); the task set is the same every time.
    :param seed: base seed of the task set.
    :param json_path: where to write the report; default ``<logger dir>/eval.json`` when the
        logger has a folder, else nothing is written.
    :param prompt_split: as in ``evaluate_unigen`` (held-out prompts by default).
    :param codec: as in ``evaluate_unigen`` (an action encoding name; default the spec's).
    :param deterministic: passed to ``predict``.
    :param eval_at_end: also evaluate when training ends (if the last step was not evaluated).
    :param early_stop_patience: an int ``K`` turns on early stopping: the model is also
        evaluated when training starts, training stops after ``K`` evaluations in a row
        without a new best mean R_total, and when training ends the policy weights of the
        best evaluation are loaded back into the model (the report's ``"best"`` says which:
        ``{"timesteps", "reward_total"}``; ``"stopped_early"`` whether it stopped). The
        best weights live in memory: a run resumed from a checkpoint starts a new record.
        Give it tasks the final evaluation does not score (``seed``).
    :param verbose: 1 prints each evaluation's mean R_total.

    Example:
        >>> cb = UniGenEvalCallback({"task": "edit", "size": 64}, eval_freq=5000)  # doctest: +SKIP
        >>> model.learn(50_000, callback=cb)  # doctest: +SKIP
        >>> cb.history[-1]  # doctest: +SKIP
    """

    def __init__(
        self,
        env_or_config: EnvOrConfig = None,
        *,
        eval_freq: int = 10_000,
        n_episodes: int = 16,
        seed: int = 0,
        json_path: str | os.PathLike[str] | None = None,
        prompt_split: str | None = "heldout",
        codec: str | None = None,
        deterministic: bool = True,
        eval_at_end: bool = True,
        early_stop_patience: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if early_stop_patience is not None and (
            isinstance(early_stop_patience, bool)
            or not isinstance(early_stop_patience, int)
            or early_stop_patience < 1
        ):
            raise ValueError(
                f"early_stop_patience={early_stop_patience!r} must be None or an int >= 1"
            )
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
        self.early_stop_patience = early_stop_patience
        #: ``(timesteps, mean R_total)`` of the best evaluation so far (early stopping only).
        self.best: tuple[int, float] | None = None
        #: Whether training was stopped early.
        self.stopped_early = False
        self._best_state: dict[str, Any] | None = None
        self._since_best = 0
        #: ``[[timesteps, mean R_total], ...]``, one entry per evaluation.
        self.history: list[list[float]] = []
        #: The latest report (with ``history``), or None before the first evaluation.
        self.last_report: dict[str, Any] | None = None
        self._last_eval_timesteps = -1

    def _init_callback(self) -> None:
        if self.env_or_config is None:
            try:
                self.env_or_config = spec_of(self.training_env)
            except ValueError as exc:
                raise ValueError(
                    f"UniGenEvalCallback cannot read the evaluation settings from the training "
                    f"env ({exc}); pass them as env_or_config, e.g. "
                    "UniGenEvalCallback({'task': ..., 'size': ..., 'horizon': ...}) or a "
                    "UniGenSpec"
                ) from None
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
        if self.early_stop_patience is not None:
            if self.best is None or score > self.best[1]:
                self.best = (int(self.num_timesteps), score)
                self._best_state = copy.deepcopy(self.model.policy.state_dict())
                self._since_best = 0
            else:
                self._since_best += 1
            report["best"] = {"timesteps": self.best[0], "reward_total": self.best[1]}
            report["stopped_early"] = self.stopped_early
        self.last_report = report
        self._last_eval_timesteps = self.num_timesteps
        if self.json_path is not None:
            write_report(report, self.json_path)
        log_report(self.logger, report, step=self.num_timesteps)
        if self.verbose >= 1:
            print(f"Eval num_timesteps={self.num_timesteps}, mean R_total={score:.4f}")
        return report

    def _on_training_start(self) -> None:
        if self.early_stop_patience is not None and self._last_eval_timesteps < 0:
            self.evaluate()  # the starting policy is a candidate too

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq == 0:
            self.evaluate()
            if (
                self.early_stop_patience is not None
                and self._since_best >= self.early_stop_patience
            ):
                self.stopped_early = True
                if self.last_report is not None and self.json_path is not None:
                    self.last_report["stopped_early"] = True
                    write_report(self.last_report, self.json_path)
                if self.verbose >= 1:
                    print(
                        f"Early stop at num_timesteps={self.num_timesteps}: "
                        f"{self._since_best} evaluations without a new best"
                    )
                return False
        return True

    def _on_training_end(self) -> None:
        if (
            self.eval_at_end
            and not self.stopped_early
            and self._last_eval_timesteps != self.num_timesteps
        ):
            self.evaluate()
        if self._best_state is not None:
            self.model.policy.load_state_dict(self._best_state)
