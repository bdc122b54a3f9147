"""Turn the multi-objective UniGen env into a scalar-reward env for SB3.

:class:`UnifiedRewardWrapper` (a gymnasium wrapper) and :class:`VecUnifiedReward`
(an SB3 ``VecEnvWrapper``) are thin shells around one :class:`RewardUnificationCore`,
which unifies a batch of raw reward vectors and keeps the per-env shaping state.

Conventions read from the env's ``info`` (both optional, so any MO-Gymnasium env works):

- ``info["reward_is_final"]``: False on steps whose vector reward is only a
  placeholder (the UniGen env pays at the end of an episode). Such steps give a
  unified reward of 0, report zero components, and leave running statistics
  alone. Missing key: every step is a reward step.
- ``info["state_components"]``: the current canvas's raw components, also in
  the reset info; normalized like the reward, they feed a named shaping
  potential. Missing key: shaping needs a callable potential.
- ``info["sub_metrics"]`` (and ``info["temporal_min"]``): read only with
  ``normalization="raw_sum"``, whose reward is their plain sum (see
  :func:`~unigen_sb3.rewards.unifier.sub_metric_sums`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.rewards.normalizers import Normalization, as_component_array
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, RewardUnifier, sub_metric_sums

__all__ = ["RewardUnificationCore", "UnifiedRewardWrapper", "VecUnifiedReward"]


def _check_reward_space(space: Any, owner: str) -> spaces.Box:
    """Validate an MO reward space: a Box of shape ``(len(COMPONENT_NAMES),)``."""
    if space is None:
        raise TypeError(
            f"{owner} has no reward_space; the reward wrapper needs a multi-objective env "
            "(MO-Gymnasium contract) whose reward_space is a Box of shape "
            f"({len(COMPONENT_NAMES)},)"
        )
    if not isinstance(space, spaces.Box):
        raise TypeError(
            f"{owner}.reward_space must be a gymnasium Box, got {type(space).__name__}: {space}"
        )
    if space.shape != (len(COMPONENT_NAMES),):
        raise ValueError(
            f"{owner}.reward_space must have shape ({len(COMPONENT_NAMES)},) for "
            f"{list(COMPONENT_NAMES)}, got {space.shape}"
        )
    return space


def _is_reward_step(info: Mapping[str, Any]) -> bool:
    return bool(info.get("reward_is_final", True))


def _sub_sums(info: Mapping[str, Any], i: int) -> np.ndarray:
    """``normalization="raw_sum"``: env ``i``'s per-component sums of its raw sub-metrics."""
    sub = info.get("sub_metrics")
    if not isinstance(sub, Mapping):
        raise ValueError(
            f"normalization='raw_sum' sums the env's sub-metrics, but env {i}'s info has no "
            "'sub_metrics' mapping; use 'bounded' or 'running' for this env"
        )
    return sub_metric_sums(sub, temporal_min=info.get("temporal_min"))


class RewardUnificationCore:
    """Per-step unification and shaping bookkeeping for ``n_envs`` envs stepped together.

    :param unifier: the :class:`RewardUnifier` that blends the components.
    :param shaping: optional potential-based shaping added to the reward.
    :param n_envs: number of envs in the batch (1 for a gymnasium env).
    """

    def __init__(
        self, unifier: RewardUnifier, shaping: PotentialShaping | None, n_envs: int
    ) -> None:
        if shaping is not None and not isinstance(shaping, PotentialShaping):
            raise TypeError(
                f"shaping must be a PotentialShaping or None, got {type(shaping).__name__}"
            )
        self.unifier = unifier
        self.shaping = shaping
        self.n_envs = int(n_envs)
        # Phi of each env's current state; NaN until a reset told us the state.
        self.phi = np.full(self.n_envs, np.nan)

    def _potential(self, shaping: PotentialShaping, info: dict[str, Any]) -> float:
        comps = info.get("state_components")
        normed = None
        if comps is not None:
            # With lazy scoring the env computes only the components the potential reads;
            # the others are NaN and stay NaN (normalization is per component).
            arr = np.asarray(comps, dtype=np.float64)
            missing = np.isnan(arr)
            normed = self.unifier.normalize(np.where(missing, 0.0, arr), update=False)
            normed = np.where(missing, np.nan, normed)
        return shaping.potential_of(normed, info)

    def reset(self, infos: Sequence[dict[str, Any]], indices: Sequence[int] | None = None) -> None:
        """Record the potential of freshly reset envs.

        :param infos: the reset info of each env in ``indices``.
        :param indices: which envs were reset (default: all, in order).
        """
        shaping = self.shaping
        if shaping is None:
            return
        idx = range(self.n_envs) if indices is None else indices
        for i, info in zip(idx, infos, strict=True):
            self.phi[i] = self._potential(shaping, info)

    def step(
        self,
        raw: Any,
        terminated: Any,
        truncated: Any,
        infos: Sequence[dict[str, Any]],
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Unify one step of every env.

        :param raw: raw reward vectors, shape ``(n_envs, 3)``.
        :param terminated: ``(n_envs,)`` booleans (``Phi(s') = 0`` for these).
        :param truncated: ``(n_envs,)`` booleans (``Phi(s')`` is kept for these).
        :param infos: each env's step info.
        :return: rewards ``(n_envs,)`` float64 (unified total plus shaping) and,
            per env, the info entries to add (``reward_components``, ``reward_raw``,
            ``reward_weights``, ``reward_contrib``, ``reward_total`` and, with
            shaping, ``reward_shaping``).
        :raises ValueError: for a wrong shape or a NaN/inf component.
        """
        arr = as_component_array(raw, COMPONENT_NAMES)
        k = len(COMPONENT_NAMES)
        if arr.shape != (self.n_envs, k):
            raise ValueError(
                f"expected raw rewards of shape (n_envs, {k}) = ({self.n_envs}, {k}), "
                f"got {arr.shape}"
            )
        term = np.asarray(terminated, dtype=bool).reshape(self.n_envs)
        del truncated  # truncation keeps Phi(s'): nothing differs from an ordinary step
        mask = np.array([_is_reward_step(info) for info in infos], dtype=bool)
        normed = np.zeros_like(arr)
        contrib = np.zeros_like(arr)
        total = np.zeros(self.n_envs)
        if mask.any():
            sums = None
            if self.unifier.normalization == "raw_sum":
                sums = np.stack([_sub_sums(infos[i], i) for i in np.flatnonzero(mask).tolist()])
            # One batched call: running statistics see only real reward steps.
            out = self.unifier(arr[mask], update=True, sub_sums=sums)
            normed[mask] = np.stack([out.components[n] for n in COMPONENT_NAMES], axis=-1)
            contrib[mask] = np.stack([out.contributions[n] for n in COMPONENT_NAMES], axis=-1)
            total[mask] = np.asarray(out.total)
        weights = self.unifier.weights
        rewards = total.copy()
        shaping = self.shaping
        extras: list[dict[str, Any]] = []
        for i, info in enumerate(infos):
            extra: dict[str, Any] = {
                "reward_components": {
                    n: float(normed[i, j]) for j, n in enumerate(COMPONENT_NAMES)
                },
                "reward_raw": {n: float(arr[i, j]) for j, n in enumerate(COMPONENT_NAMES)},
                "reward_weights": dict(weights),
                "reward_contrib": {n: float(contrib[i, j]) for j, n in enumerate(COMPONENT_NAMES)},
                "reward_total": float(total[i]),
            }
            if shaping is not None:
                if np.isnan(self.phi[i]):
                    raise RuntimeError(
                        f"env {i} was stepped before reset; reset it first so the shaping "
                        "potential of its initial state is known"
                    )
                phi_next = self._potential(shaping, info)
                f = shaping.shaping_term(self.phi[i], phi_next, bool(term[i]))
                self.phi[i] = phi_next
                rewards[i] += f
                extra["reward_shaping"] = float(f)
            extras.append(extra)
        return rewards, extras


class UnifiedRewardWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Scalarize a multi-objective env: normalized, weighted components plus optional shaping.

    The reward is a Python ``float``: ``w_quality*Q + w_edit*E + w_consistency*C``
    in ``[0, 1]`` (plus the shaping term ``F`` when ``shaping`` is given). The
    raw vector and its breakdown go to ``info`` (``reward_raw``,
    ``reward_components``, ``reward_contrib``, ``reward_weights``,
    ``reward_total`` and ``reward_shaping``).

    :param env: an env with a ``reward_space`` Box of shape ``(3,)`` and vector rewards.
    :param w_quality: weight of the quality component.
    :param w_edit: weight of the edit component.
    :param w_consistency: weight of the consistency component.
    :param normalization: ``"bounded"`` (uses ``reward_space.low/high``), ``"running"``, or
        ``"raw_sum"`` (no normalization: the plain sum of the sub-metrics, see
        :class:`~unigen_sb3.rewards.unifier.RewardUnifier`).
    :param normalize_weights: rescale non-negative weights to sum 1 instead of refusing them.
    :param shaping: optional :class:`PotentialShaping`; its ``gamma`` must equal
        the algorithm's (see :func:`~unigen_sb3.rewards.shaping.check_shaping_gamma`).

    Example:
        >>> from unigen_sb3 import make_unigen_env  # doctest: +SKIP
        >>> env = UnifiedRewardWrapper(make_unigen_env(), 0.5, 0.5, 0.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        env: gym.Env,
        w_quality: float = DEFAULT_WEIGHTS["quality"],
        w_edit: float = DEFAULT_WEIGHTS["edit"],
        w_consistency: float = DEFAULT_WEIGHTS["consistency"],
        *,
        normalization: Normalization = "bounded",
        normalize_weights: bool = False,
        shaping: PotentialShaping | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            w_quality=w_quality,
            w_edit=w_edit,
            w_consistency=w_consistency,
            normalization=normalization,
            normalize_weights=normalize_weights,
            shaping=shaping,
        )
        gym.Wrapper.__init__(self, env)
        try:
            space = env.get_wrapper_attr("reward_space")
        except AttributeError:
            space = None
        self.raw_reward_space = _check_reward_space(space, "env")
        unifier = RewardUnifier(
            w_quality,
            w_edit,
            w_consistency,
            normalization=normalization,
            low=self.raw_reward_space.low,
            high=self.raw_reward_space.high,
            normalize_weights=normalize_weights,
        )
        self.unification = RewardUnificationCore(unifier, shaping, n_envs=1)

    @property
    def unifier(self) -> RewardUnifier:
        """The :class:`RewardUnifier` in use (weights and normalization state)."""
        return self.unification.unifier

    def set_weights(
        self,
        *,
        w_quality: float | None = None,
        w_edit: float | None = None,
        w_consistency: float | None = None,
    ) -> None:
        """Change the weights at run time (validated, atomic); ``None`` keeps a weight."""
        self.unifier.set_weights(w_quality=w_quality, w_edit=w_edit, w_consistency=w_consistency)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.unification.reset([info])
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        raw = as_component_array(reward, COMPONENT_NAMES)
        if raw.ndim != 1:
            raise ValueError(
                f"a single env must return one reward vector of shape ({len(COMPONENT_NAMES)},), "
                f"got shape {raw.shape}"
            )
        rewards, extras = self.unification.step(raw[None], [terminated], [truncated], [info])
        info = {**info, **extras[0]}
        return obs, float(rewards[0]), terminated, truncated, info


class VecUnifiedReward(VecEnvWrapper):
    """SB3 ``VecEnvWrapper`` form of :class:`UnifiedRewardWrapper`, for VecEnvs with vector rewards.

    The wrapped VecEnv's ``step_wait`` must return rewards of shape
    ``(n_envs, 3)``; this wrapper returns ``float32`` ``(n_envs,)`` rewards
    and adds the same ``info`` keys per env. The reward space is read from
    ``venv.reward_space`` or ``venv.get_attr("reward_space")[0]``.

    Shaping keeps ``Phi`` of every env's current state. When an env finishes an
    episode, SB3 VecEnvs reset it at once: the returned info is the *final*
    step's (its ``state_components`` gives ``Phi(s')`` of the final state, used
    when the episode was truncated), while the new episode's reset info is in
    ``venv.reset_infos[i]``; ``Phi`` of the new initial state is taken from there.

    :param venv: the vectorized env.
    :param w_quality: weight of the quality component.
    :param w_edit: weight of the edit component.
    :param w_consistency: weight of the consistency component.
    :param normalization: ``"bounded"``, ``"running"`` (one set of statistics for all envs)
        or ``"raw_sum"`` (see :class:`UnifiedRewardWrapper`).
    :param normalize_weights: rescale non-negative weights to sum 1 instead of refusing them.
    :param shaping: optional :class:`PotentialShaping`.
    """

    def __init__(
        self,
        venv: VecEnv,
        w_quality: float = DEFAULT_WEIGHTS["quality"],
        w_edit: float = DEFAULT_WEIGHTS["edit"],
        w_consistency: float = DEFAULT_WEIGHTS["consistency"],
        *,
        normalization: Normalization = "bounded",
        normalize_weights: bool = False,
        shaping: PotentialShaping | None = None,
    ) -> None:
        super().__init__(venv)
        space = getattr(venv, "reward_space", None)
        if space is None:
            try:
                space = venv.get_attr("reward_space")[0]
            except AttributeError:
                space = None
        self.raw_reward_space = _check_reward_space(space, "venv")
        unifier = RewardUnifier(
            w_quality,
            w_edit,
            w_consistency,
            normalization=normalization,
            low=self.raw_reward_space.low,
            high=self.raw_reward_space.high,
            normalize_weights=normalize_weights,
        )
        self.unification = RewardUnificationCore(unifier, shaping, n_envs=self.num_envs)

    @property
    def unifier(self) -> RewardUnifier:
        """The :class:`RewardUnifier` in use (weights and normalization state)."""
        return self.unification.unifier

    def set_weights(
        self,
        *,
        w_quality: float | None = None,
        w_edit: float | None = None,
        w_consistency: float | None = None,
    ) -> None:
        """Change the weights at run time (validated, atomic); ``None`` keeps a weight."""
        self.unifier.set_weights(w_quality=w_quality, w_edit=w_edit, w_consistency=w_consistency)

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self.reset_infos = list(self.venv.reset_infos)
        self.unification.reset(self.reset_infos)
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        dones = np.asarray(dones, dtype=bool)
        truncated = np.array(
            [bool(info.get("TimeLimit.truncated", False)) for info in infos], dtype=bool
        )
        terminated = dones & ~truncated
        out, extras = self.unification.step(rewards, terminated, truncated, infos)
        for info, extra in zip(infos, extras, strict=True):
            info.update(extra)
        done_idx = np.flatnonzero(dones)
        if done_idx.size:
            # The VecEnv already reset these envs; their new initial state is in reset_infos.
            self.reset_infos = list(self.venv.reset_infos)
            self.unification.reset(
                [self.reset_infos[i] for i in done_idx], indices=done_idx.tolist()
            )
        return obs, out.astype(np.float32), dones, infos
