"""Seeded evaluation episodes, rolled out through the same env stack training uses.

:func:`rollout_episodes` builds the batched stack of an evaluation
:class:`~unigen_sb3.spec.UniGenSpec` (:func:`~unigen_sb3.make.build_vec_env`: raw env ->
action codec -> observation -> reward unification), with one env per episode: env ``j``
draws its task from seed ``seed + j`` exactly as ``UniGenEnv.reset(seed=seed + j)`` does,
so every policy faces the same task set. The stack's reward wrapper scores every episode
(bounded normalization, no shaping: the evaluation spec); the rewards, components and
sub-metrics kept are the ones the env computed at each episode's last step.

Policies: a :class:`ModelPolicy` (a trained SB3 model: it sees the stack's observations and
acts in its action space, as in training) or a scripted policy of
:mod:`unigen_sb3.envs.policies` (it reads its episode's state from the raw env and acts
with raw hybrid actions, sent through the ``box`` encoding, which carries them exactly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_STOP
from unigen_sb3.envs.policies import ScriptedPolicy
from unigen_sb3.envs.tasks import Task
from unigen_sb3.envs.vec_env import PROMPT_FROM_OPTION, UniGenVecEnv
from unigen_sb3.make import build_vec_env
from unigen_sb3.rewards.components import RewardComputer
from unigen_sb3.rewards.normalizers import COMPONENT_NAMES
from unigen_sb3.spec import UniGenSpec, spec_of
from unigen_sb3.utils import is_int
from unigen_sb3.wrappers.actions import BoxCodec

__all__ = [
    "EpisodeRollout",
    "ModelPolicy",
    "episode_returns",
    "evaluation_spec",
    "rollout_episodes",
]


class ModelPolicy:
    """A trained SB3 model (anything with ``predict``) as an evaluation policy.

    It acts on the observations of the evaluation stack, in the stack's action space: the
    spec's ``obs`` and ``action`` must be those the model was trained with.

    :param model: anything with SB3's ``predict(obs, deterministic=...)``.
    :param deterministic: passed to ``predict``.
    """

    def __init__(self, model: Any, *, deterministic: bool = True) -> None:
        if not callable(getattr(model, "predict", None)):
            raise TypeError(
                f"model must have SB3's predict(obs, deterministic=...); got {type(model).__name__}"
            )
        self.model = model
        self.deterministic = deterministic

    def predict(self, obs: Any) -> np.ndarray:
        """One batch of actions (leading axis ``N``) for a batch of observations."""
        actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(actions)


@dataclass
class EpisodeRollout:
    """What :func:`rollout_episodes` returns: one entry per episode, in episode order.

    Images are tensors on the rollout's device; everything else is numpy on the host.

    :param start: ``(N, 3, H, W)`` the start canvases.
    :param final: ``(N, 3, H, W)`` the canvases each episode left behind.
    :param target: ``(N, 3, H, W)`` the targets.
    :param mask: ``(N, 1, H, W)`` the task masks.
    :param raw: ``(N, 3)`` float32 raw final reward vectors ``[quality, edit, consistency]``.
    :param components: ``(N, 3)`` float64 normalized final components.
    :param totals: ``(N,)`` float64 unified returns (no shaping).
    :param lengths: ``(N,)`` int64 episode lengths in steps.
    :param tasks: the tasks, in episode order.
    :param rewards: the reward computer the env used (its ``backend`` and network).
    :param weights: the weights the totals were computed with.
    :param sub_metrics: ``"<component>/<sub-metric>"`` -> ``(N,)`` float64: the sub-metrics
        the env's reward computed at each episode's last step (``info["sub_metrics"]``),
        plus ``"consistency/temporal_min"``, the lowest temporal coherence over the episode
        that the paid consistency uses.
    :param actions: per episode, the raw hybrid actions ``(op, params)`` it took, in order.
    :param spec: the evaluation spec the stack was built from.
    """

    start: torch.Tensor
    final: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    raw: np.ndarray
    components: np.ndarray
    totals: np.ndarray
    lengths: np.ndarray
    tasks: list[Task]
    rewards: RewardComputer
    weights: dict[str, float] = field(default_factory=dict)
    sub_metrics: dict[str, np.ndarray] = field(default_factory=dict)
    actions: list[list[tuple[int, np.ndarray]]] = field(default_factory=list)
    spec: UniGenSpec | None = None


def evaluation_spec(
    env_or_config: UniGenSpec | Mapping[str, Any] | gym.Env[Any, Any] | VecEnv | None = None,
    **changes: Any,
) -> UniGenSpec:
    """The evaluation spec of a setting source: bounded normalization, no shaping.

    :param env_or_config: a :class:`UniGenSpec`; a dict of ``make_unigen_env`` keywords (a
        ``seed`` in it is ignored: evaluation seeds its own tasks); a stack built by
        ``make_unigen_env`` / ``make_unigen_vec_env`` (its spec); or ``None`` (defaults).
    :param changes: settings to change (e.g. ``prompt_split``).
    :raises TypeError: for any other kind of object.
    """
    if env_or_config is None:
        spec = UniGenSpec()
    elif isinstance(env_or_config, UniGenSpec):
        spec = env_or_config
    elif isinstance(env_or_config, Mapping):
        kwargs = {k: v for k, v in env_or_config.items() if k != "seed"}
        spec = UniGenSpec.from_kwargs(**kwargs)
    elif isinstance(env_or_config, gym.Env | VecEnv):
        spec = spec_of(env_or_config)
    else:
        raise TypeError(
            "env_or_config must be None, a UniGenSpec, a dict of make_unigen_env keywords or "
            f"an env built by make_unigen_env / make_unigen_vec_env; got "
            f"{type(env_or_config).__name__}"
        )
    return spec.replace(normalization="bounded", shaping=None, render_mode=None, **changes)


def _check_permutation(prompt_permutation: Sequence[int] | None, n: int) -> None:
    if prompt_permutation is not None and sorted(prompt_permutation) != list(range(n)):
        raise ValueError(
            f"prompt_permutation must be a permutation of range({n}), "
            f"got {list(prompt_permutation)}"
        )


def rollout_episodes(
    policy: ScriptedPolicy | ModelPolicy,
    spec_or_task: UniGenSpec | str = "unified",
    *,
    n_episodes: int = 50,
    seed: int = 0,
    weights: Sequence[float] | Mapping[str, float] | None = None,
    prompt_permutation: Sequence[int] | None = None,
    **settings: Any,
) -> EpisodeRollout:
    """Run ``n_episodes`` seeded episodes of a policy in lockstep and keep what they produced.

    All episodes run in one batched stack (one network forward per step for all of them);
    an episode that ends stays ended (its later actions are ignored and nothing is reset),
    and its final canvas, reward and sub-metrics are those of its last step.

    :param policy: a scripted policy, or a :class:`ModelPolicy` around a trained model.
    :param spec_or_task: the settings as a :class:`UniGenSpec`, or a task name (then
        ``settings`` give the rest, as ``make_unigen_env`` keywords). Scored as
        :func:`evaluation_spec` says.
    :param n_episodes: number of episodes (>= 1).
    :param seed: base seed of the task set.
    :param weights: ``(w_quality, w_edit, w_consistency)`` or a mapping; default: the
        spec's weights.
    :param prompt_permutation: the counterfactual of prompt sensitivity: episode ``i`` is
        *observed* with the prompt encoding (``attributes``) of episode
        ``prompt_permutation[i]`` while its task, target and reward stay its own. Only
        policies that read observations (:class:`ModelPolicy`) see the swap.
    :param settings: ``make_unigen_env`` keywords when ``spec_or_task`` is a task name
        (``size``, ``horizon``, ``device``, ``perceptual_backend``, ``prompt_split``,
        ``edit_fraction``, ``reference``, ``action``, ``obs``...).
    :return: the :class:`EpisodeRollout`.
    :raises ValueError: for ``n_episodes < 1``, a ``prompt_permutation`` that is not a
        permutation of the episodes, or a model whose action space is not the stack's.
    """
    if not is_int(n_episodes) or n_episodes < 1:
        raise ValueError(f"n_episodes={n_episodes!r} must be an int >= 1")
    n = int(n_episodes)
    _check_permutation(prompt_permutation, n)
    if isinstance(spec_or_task, UniGenSpec):
        if settings:
            raise TypeError("give settings either as a UniGenSpec or as keywords, not both")
        spec = evaluation_spec(spec_or_task)
    else:
        spec = evaluation_spec({"task": spec_or_task, **settings})
    if weights is not None:
        w = (
            dict(weights)
            if isinstance(weights, Mapping)
            else dict(zip(COMPONENT_NAMES, weights, strict=True))
        )
        spec = spec.replace(weights=w)
    model = isinstance(policy, ModelPolicy)
    if not model and not isinstance(policy, ScriptedPolicy):
        raise TypeError(
            f"policy must be a ScriptedPolicy or a ModelPolicy, got {type(policy).__name__}"
        )
    if not model:
        # Raw hybrid actions pass through the box encoding unchanged.
        spec = spec.replace(action="box", action_options={}, obs="dict")
    venv = build_vec_env(spec, n, seed, vec_env_kind="batched", monitor=False)
    try:
        raw = venv.unwrapped
        assert isinstance(raw, UniGenVecEnv)
        if model:
            _check_model_spaces(policy.model, venv)  # type: ignore[union-attr]
        return _run(policy, venv, raw, spec, prompt_permutation)
    finally:
        venv.close()


def _check_model_spaces(model: Any, venv: VecEnv) -> None:
    for what in ("action_space", "observation_space"):
        mine, theirs = getattr(venv, what), getattr(model, what, None)
        if theirs is None:
            continue
        if type(mine) is not type(theirs) or getattr(mine, "shape", None) != getattr(
            theirs, "shape", None
        ):
            raise ValueError(
                f"the model's {what} {theirs} is not the evaluation stack's {mine}; evaluate "
                "with the settings the model was trained with (its config, or the spec of "
                "its training env: action encoding, obs mode, size)"
            )


def _run(
    policy: ScriptedPolicy | ModelPolicy,
    venv: VecEnv,
    raw: UniGenVecEnv,
    spec: UniGenSpec,
    prompt_permutation: Sequence[int] | None,
) -> EpisodeRollout:
    n = raw.num_envs
    raw.autoreset = False
    if prompt_permutation is not None:
        venv.set_options([{PROMPT_FROM_OPTION: int(j)} for j in prompt_permutation])
    obs = venv.reset()
    core = raw.core
    tasks = [t for t in core.tasks if t is not None]
    start, target, mask = core.start.clone(), core.target.clone(), core.mask.clone()
    final = core.canvas.clone()
    raw_rewards = np.zeros((n, len(COMPONENT_NAMES)), dtype=np.float32)
    components = np.zeros((n, len(COMPONENT_NAMES)), dtype=np.float64)
    totals = np.zeros(n, dtype=np.float64)
    lengths = np.zeros(n, dtype=np.int64)
    sub: dict[str, np.ndarray] = {}
    actions: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n)]
    done = np.zeros(n, dtype=bool)
    box = BoxCodec(NUM_OPS, NUM_PARAMS)
    stop = box.encode({"op": OP_STOP, "params": np.zeros(NUM_PARAMS, dtype=np.float32)})
    while not done.all():
        if isinstance(policy, ModelPolicy):
            batch = policy.predict(obs)
        else:
            batch = np.stack(
                [stop if done[i] else box.encode(policy.act_core(core, i)) for i in range(n)]
            )
        obs, _, dones, infos = venv.step(batch)
        assert raw.last_actions is not None
        ops, params = raw.last_actions
        live = np.flatnonzero(~done)
        for i in live.tolist():
            actions[i].append((int(ops[i]), params[i].copy()))
        ended = np.asarray(dones, dtype=bool) & ~done
        for i in np.flatnonzero(ended).tolist():
            info = infos[i]
            raw_rewards[i] = [info["reward_raw"][c] for c in COMPONENT_NAMES]
            components[i] = [info["reward_components"][c] for c in COMPONENT_NAMES]
            totals[i] = info["reward_total"]
            lengths[i] = info["step"]
            values = {**info["sub_metrics"], "consistency/temporal_min": info["temporal_min"]}
            for key, value in values.items():
                sub.setdefault(key, np.full(n, np.nan))[i] = value
        if ended.any():
            sel = torch.as_tensor(np.flatnonzero(ended), device=raw.device)
            final[sel] = raw.core.canvas[sel]  # not reset: autoreset is off
        done |= ended
    return EpisodeRollout(
        start=start,
        final=final,
        target=target,
        mask=mask,
        raw=raw_rewards,
        components=components,
        totals=totals,
        lengths=lengths,
        tasks=tasks,
        rewards=raw.rewards,
        weights=dict(spec.weights),
        sub_metrics=sub,
        actions=actions,
        spec=spec,
    )


def episode_returns(
    policy: ScriptedPolicy | ModelPolicy,
    spec_or_task: UniGenSpec | str = "unified",
    *,
    n_episodes: int = 50,
    seed: int = 0,
    weights: Sequence[float] | Mapping[str, float] | None = None,
    **settings: Any,
) -> np.ndarray:
    """Unified episode returns of a policy over ``n_episodes`` seeded episodes.

    A thin call to :func:`rollout_episodes` (see there for the task set and batching).

    :return: ``(n_episodes,)`` float64 returns (no shaping: the final unified reward).
    """
    return rollout_episodes(
        policy, spec_or_task, n_episodes=n_episodes, seed=seed, weights=weights, **settings
    ).totals
