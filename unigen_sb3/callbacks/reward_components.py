"""``RewardComponentCallback``: every reward component visible while one scalar drives learning.

What the logged keys mean, given the UniGen reward schedule (the raw env pays its vector
reward once, when the episode ends; every other step pays zero and says
``info["reward_is_final"] = False``):

==============================  ===========================================================
key                             value (``record_mean``: averaged over the steps of all envs
                                since the last dump, or over the episodes that ended then)
==============================  ===========================================================
``reward/quality`` ...          per-step mean of the *paid* normalized component
                                (``info["reward_components"]``): zero on non-final steps,
                                so it equals (sum of paid rewards) / (env steps)
``reward/total``                per-step mean of the paid unified reward (``reward_total``)
``reward/quality_contrib`` ...  per-step mean of ``weight * normalized component``
``reward/quality_raw`` ...      per-step mean of the paid raw component (``reward_raw``)
``reward/shaping``              per-step mean of the shaping term (only when shaping is on)
``state/quality`` ...           per-step mean of the *current canvas's* raw score
                                (``info["state_components"]``), over the steps where the
                                env computed it: by default (lazy scoring) an episode's
                                last step and, for the shaping potential's component,
                                every step; every step with ``env.dense_components: true``
                                (``dense_components=True``), which costs a network forward
                                per changed canvas. For quality and edit it is what stopping
                                now would pay
``sub/quality/perceptual`` ...  per-step mean of the current canvas's sub-metrics (the
                                computed ones, as for ``state/*``)
``episode/quality`` ...         per-episode sum of the paid normalized component, averaged
                                over the episodes that ended since the last dump
``episode/total``               per-episode sum of the paid unified reward
``episode/quality_contrib`` ..  per-episode sum of the weighted contribution
``episode/quality_raw`` ...     per-episode sum of the paid raw component
``episode/length``              episode length in steps
==============================  ===========================================================

Everything goes through SB3's logger, so TensorBoard, CSV, stdout, JSON and W&B (through its
SB3/TensorBoard integration) all receive it. The same per-episode values are kept in memory
(:attr:`RewardComponentCallback.episodes`) for ablation reports.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from unigen_sb3.rewards.names import COMPONENT_NAMES

__all__ = ["EPISODE_FIELDS", "RewardComponentCallback"]

EPISODE_FIELDS: tuple[str, ...] = (
    *COMPONENT_NAMES,
    "total",
    *(f"{n}_contrib" for n in COMPONENT_NAMES),
    *(f"{n}_raw" for n in COMPONENT_NAMES),
)
"""The per-episode sums tracked for every episode (besides ``length``, ``timesteps``, ``env``)."""


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


class RewardComponentCallback(BaseCallback):
    """Log every reward component per step and per episode; keep per-episode trackers.

    Works with any SB3 algorithm (on- and off-policy: it reads ``self.locals["infos"]`` and
    ``self.locals["dones"]``, which both rollout loops provide) and any VecEnv with
    ``n_envs >= 1`` whose infos carry the keys of
    :class:`~unigen_sb3.wrappers.reward.UnifiedRewardWrapper` or
    :class:`~unigen_sb3.wrappers.reward.VecUnifiedReward`. Infos without them are skipped
    (with one warning). See the module docstring for what each key means.

    :param log_state: also log the current canvas's score ``state/*`` every step.
    :param log_sub_metrics: also log the current canvas's sub-metrics ``sub/*`` every step.
    :param max_episodes: how many finished episodes the in-memory trackers keep (the oldest
        are dropped first; ``None`` keeps all).
    :param verbose: SB3 verbosity.

    Example:
        >>> from stable_baselines3 import PPO  # doctest: +SKIP
        >>> model = PPO("CnnPolicy", make_unigen_env())  # doctest: +SKIP
        >>> cb = RewardComponentCallback()  # doctest: +SKIP
        >>> model.learn(2048, callback=cb)  # doctest: +SKIP
        >>> cb.summary()["quality"]["mean"]  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        log_state: bool = True,
        log_sub_metrics: bool = True,
        max_episodes: int | None = 100_000,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if max_episodes is not None and (not isinstance(max_episodes, int) or max_episodes < 1):
            raise ValueError(f"max_episodes={max_episodes!r} must be an int >= 1 or None")
        self.log_state = bool(log_state)
        self.log_sub_metrics = bool(log_sub_metrics)
        self.max_episodes = max_episodes
        #: One dict per finished episode: the sums in :data:`EPISODE_FIELDS`, ``length``,
        #: ``timesteps`` (``num_timesteps`` when it ended) and ``env`` (its index).
        self.episodes: deque[dict[str, float]] = deque(maxlen=max_episodes)
        # Running per-env sums of the current episodes, (n_envs, len(EPISODE_FIELDS)).
        self._sums = np.zeros((0, len(EPISODE_FIELDS)), dtype=np.float64)
        self._lengths = np.zeros(0, dtype=np.int64)
        self._warned = False

    # ------------------------------------------------------------------ SB3 hooks
    def _allocate(self, n_envs: int) -> None:
        # Sized from the first step's infos: works for any VecEnv without asking it.
        self._sums = np.zeros((n_envs, len(EPISODE_FIELDS)), dtype=np.float64)
        self._lengths = np.zeros(n_envs, dtype=np.int64)

    def _on_step(self) -> bool:
        infos: Sequence[Mapping[str, Any]] = self.locals.get("infos") or ()
        dones = np.asarray(self.locals.get("dones", np.zeros(len(infos))), dtype=bool).reshape(-1)
        if self._sums.shape[0] != len(infos):
            self._allocate(len(infos))
        if len(dones) != len(infos):
            raise ValueError(
                f"self.locals has {len(infos)} infos but {len(dones)} dones; "
                "expected one of each per env"
            )
        for i, info in enumerate(infos):
            self._record_step(i, info)
            if dones[i]:
                self._finish_episode(i)
        return True

    # ------------------------------------------------------------------ steps
    def _record_step(self, i: int, info: Mapping[str, Any]) -> None:
        self._lengths[i] += 1
        comps = info.get("reward_components")
        if not isinstance(comps, Mapping):
            if not self._warned:
                warnings.warn(
                    "RewardComponentCallback: infos have no 'reward_components'; wrap the env "
                    "with UnifiedRewardWrapper (make_unigen_env does) or VecUnifiedReward. "
                    "Component logging is skipped for such steps.",
                    stacklevel=2,
                )
                self._warned = True
            return
        contrib = info.get("reward_contrib", {})
        raw = info.get("reward_raw", {})
        values: dict[str, float | None] = {}
        for n in COMPONENT_NAMES:
            values[n] = _finite(comps.get(n))
            values[f"{n}_contrib"] = _finite(contrib.get(n))
            values[f"{n}_raw"] = _finite(raw.get(n))
        values["total"] = _finite(info.get("reward_total"))
        for j, key in enumerate(EPISODE_FIELDS):
            v = values[key]
            if v is None:
                continue
            self.logger.record_mean(f"reward/{key}", v)
            self._sums[i, j] += v
        shaping = _finite(info.get("reward_shaping"))
        if shaping is not None:
            self.logger.record_mean("reward/shaping", shaping)
        if self.log_state:
            state = info.get("state_components")
            if state is not None:
                arr = np.asarray(state, dtype=np.float64).reshape(-1)
                for n, v in zip(COMPONENT_NAMES, arr, strict=False):
                    if math.isfinite(v):
                        self.logger.record_mean(f"state/{n}", float(v))
        if self.log_sub_metrics:
            sub = info.get("sub_metrics")
            if isinstance(sub, Mapping):
                for name, v in sub.items():
                    fv = _finite(v)
                    if fv is not None:
                        self.logger.record_mean(f"sub/{name}", fv)

    def _finish_episode(self, i: int) -> None:
        record = {key: float(self._sums[i, j]) for j, key in enumerate(EPISODE_FIELDS)}
        for key, v in record.items():
            self.logger.record_mean(f"episode/{key}", v)
        length = int(self._lengths[i])
        self.logger.record_mean("episode/length", length)
        record["length"] = float(length)
        record["timesteps"] = float(self.num_timesteps)
        record["env"] = float(i)
        self.episodes.append(record)
        self._sums[i] = 0.0
        self._lengths[i] = 0

    # ------------------------------------------------------------------ reports
    def episode_values(self, key: str) -> np.ndarray:
        """One tracked value for every kept episode, oldest first.

        :param key: one of :data:`EPISODE_FIELDS`, ``"length"``, ``"timesteps"`` or ``"env"``.
        :return: ``(n_episodes,)`` float64.
        :raises KeyError: for an unknown key.
        """
        accepted = (*EPISODE_FIELDS, "length", "timesteps", "env")
        if key not in accepted:
            raise KeyError(f"unknown episode field {key!r}; accepted: {accepted}")
        return np.array([ep[key] for ep in self.episodes], dtype=np.float64)

    def summary(self, last: int | None = None) -> dict[str, dict[str, float]]:
        """Mean, std (population) and count of every episode field, for an ablation report.

        :param last: only the ``last`` most recent episodes (default: all kept).
        :return: field -> ``{"mean", "std", "n"}``; NaN mean/std when no episode ended.
        """
        episodes = list(self.episodes)
        if last is not None:
            if last < 1:
                raise ValueError(f"last={last!r} must be >= 1 or None")
            episodes = episodes[-last:]
        out: dict[str, dict[str, float]] = {}
        for key in (*EPISODE_FIELDS, "length"):
            vals = np.array([ep[key] for ep in episodes], dtype=np.float64)
            out[key] = {
                "mean": float(vals.mean()) if vals.size else math.nan,
                "std": float(vals.std()) if vals.size else math.nan,
                "n": float(vals.size),
            }
        return out
