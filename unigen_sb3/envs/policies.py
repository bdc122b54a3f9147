"""Scripted policies for tests, baselines, benchmarks and the gaming suite.

Each policy maps the state of one episode to a raw hybrid action ``(op, params)``:

- :class:`RandomPolicy` — uniform over the raw action space (seeded).
- :class:`NoOpPolicy` — ``stop`` at once.
- :class:`DawdlePolicy` — never stops, changes nothing (the reward-gaming probe).
- :class:`OraclePolicy` — privileged: replays the task's known solution (:attr:`Task.solution`:
  the background and object fills of a generation prompt, the recolour or attribute change
  of an edit), then stops.
- :class:`SequencePolicy` — a fixed open-loop action sequence, the same for every task: what
  a prompt-blind agent can at best do (:mod:`unigen_sb3.envs.blind` searches for the best).
- Degenerate policies for the gaming suite (``tests/envs/test_gaming.py``), which must all
  score low: :class:`CanvasColourFillPolicy` (fill with the canvas's mean or dominant
  colour), :class:`RandomStrokesPolicy`, :class:`MaskChangePolicy` (any change inside the
  mask: a grey fill), :class:`PromptColourEverywherePolicy` (the prompt's colour over the
  whole canvas) and :class:`RepeatedStylePolicy` (a colour cast on the mask every step).

``act(env)`` acts on an unwrapped :class:`~unigen_sb3.envs.env.UniGenEnv`;
``act_core(core, i)`` on episode ``i`` of a :class:`~unigen_sb3.envs.core.UniGenCore` (the
batched env).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from unigen_sb3.envs.canvas import (
    NUM_OPS,
    NUM_PARAMS,
    OP_FILL,
    OP_STOP,
    OP_STROKE,
    OP_STYLE,
    REGION_BRUSH_SQUARE,
    REGION_TASK_MASK,
    region_param,
)
from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.envs.tasks import Task
from unigen_sb3.rewards.components import RewardComputer
from unigen_sb3.wrappers.actions import BoxCodec, HybridAction
from unigen_sb3.wrappers.observation import ImageStacker

_MASK_P7 = region_param(REGION_TASK_MASK)
_QUADRANTS = ((-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5))


def _action(op: int, params: np.ndarray) -> HybridAction:
    return {"op": int(op), "params": np.asarray(params, dtype=np.float32)}


def _stop() -> HybridAction:
    return _action(OP_STOP, np.zeros(NUM_PARAMS))


def _fill_mask(rgb: Sequence[float] | np.ndarray, op: int = OP_FILL) -> HybridAction:
    """``op`` (fill or style) on the task mask, full strength, toward colour ``rgb``."""
    params = np.zeros(NUM_PARAMS, dtype=np.float32)
    params[3:6] = 2.0 * np.asarray(rgb, dtype=np.float32) - 1.0
    params[6] = 1.0
    params[7] = _MASK_P7
    return _action(op, params)


class ScriptedPolicy:
    """Base class: subclasses implement :meth:`act_state`."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        """Action for one episode from its canvas ``(3,H,W)`` and task."""
        raise NotImplementedError

    def act(self, env: gym.Env[Any, Any]) -> HybridAction:
        """Action for the running episode of a (possibly wrapped) :class:`UniGenEnv`."""
        core: UniGenCore = env.unwrapped.core  # type: ignore[attr-defined]
        return self.act_core(core, 0)

    def act_core(self, core: UniGenCore, i: int) -> HybridAction:
        """Action for episode ``i`` of a batched core."""
        task = core.tasks[i]
        if task is None:
            raise RuntimeError(f"episode {i} has not been reset")
        return self.act_state(core.canvas[i], task, int(core.steps[i]), core.horizon)


class NoOpPolicy(ScriptedPolicy):
    """Stops at once: the score of the untouched start canvas."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _stop()


class DawdlePolicy(ScriptedPolicy):
    """Never stops and never changes anything (a zero-opacity stroke) until the horizon.

    The reward-gaming probe: it must score exactly what :class:`NoOpPolicy` scores.
    """

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        params = np.zeros(NUM_PARAMS, dtype=np.float32)
        params[6] = -1.0  # stroke opacity (p + 1) / 2 = 0
        return _action(OP_STROKE, params)


class RandomPolicy(ScriptedPolicy):
    """Uniform random raw actions.

    :param seed: seed of the policy's own RNG.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _action(int(self.rng.integers(NUM_OPS)), self.rng.uniform(-1, 1, NUM_PARAMS))


class OraclePolicy(ScriptedPolicy):
    """Privileged policy: replays the task's solution (:attr:`Task.solution`), then stops."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        if step < len(task.solution):
            op, params = task.solution[step]
            return _action(op, params)
        return _stop()


class SequencePolicy(ScriptedPolicy):
    """A fixed open-loop sequence of raw actions for every task, then ``stop``.

    It reads neither the prompt nor the canvas: the prompt-blind policy class.

    :param actions: the raw actions, in order.
    :param name: a label for tables.
    """

    def __init__(self, actions: Sequence[HybridAction], name: str = "sequence") -> None:
        self.actions = [_action(a["op"], a["params"]) for a in actions]
        self.name = name

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return self.actions[step] if step < len(self.actions) else _stop()


class CanvasColourFillPolicy(ScriptedPolicy):
    """Fills the task mask once with the canvas's mean or dominant colour, then stops.

    :param statistic: ``"mean"`` or ``"dominant"`` (the per-channel median).
    """

    def __init__(self, statistic: str = "mean") -> None:
        if statistic not in ("mean", "dominant"):
            raise ValueError(f"statistic={statistic!r} must be 'mean' or 'dominant'")
        self.statistic = statistic

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        if step > 0:
            return _stop()
        flat = canvas.flatten(1)
        rgb = flat.mean(dim=1) if self.statistic == "mean" else flat.median(dim=1).values
        return _fill_mask(rgb.cpu().numpy())


class RandomStrokesPolicy(ScriptedPolicy):
    """Random full-opacity strokes until the horizon (seeded).

    :param seed: seed of the policy's own RNG.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        params = self.rng.uniform(-1, 1, NUM_PARAMS).astype(np.float32)
        params[6] = 1.0
        return _action(OP_STROKE, params)


class MaskChangePolicy(ScriptedPolicy):
    """Changes the inside of the mask without reading the prompt: one mid-grey fill."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _fill_mask((0.5, 0.5, 0.5)) if step == 0 else _stop()


class PromptColourEverywherePolicy(ScriptedPolicy):
    """Paints the whole canvas in the prompt's colour (grey when it names none): four fills
    of the largest square brush, one per quadrant, then stops.

    It reads the prompt but not where it applies: the degenerate prompt reader.
    """

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        if step >= len(_QUADRANTS):
            return _stop()
        rgb = task.prompt.attributes.rgb
        params = np.zeros(NUM_PARAMS, dtype=np.float32)
        params[0:2] = _QUADRANTS[step]
        params[2] = 1.0  # half extent a quarter of the side: four squares cover the canvas
        params[3:6] = 2.0 * np.asarray(rgb if rgb is not None else (0.5, 0.5, 0.5)) - 1.0
        params[6] = 1.0
        params[7] = region_param(REGION_BRUSH_SQUARE)
        return _action(OP_FILL, params)


class RepeatedStylePolicy(ScriptedPolicy):
    """A colour cast on the task mask toward mid-grey at every step until the horizon."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _fill_mask((0.5, 0.5, 0.5), op=OP_STYLE)


class ModelPolicy:
    """Adapts a trained SB3 model (``predict``) to batched episodes of a core.

    :param model: anything with SB3's ``predict(obs, deterministic=...)``.
    :param codec: decodes the model's actions into hybrid actions (default: the Box codec).
    :param obs: ``"image"`` (the model saw :class:`ImageObsWrapper` images) or ``"dict"``.
    :param deterministic: passed to ``predict``.
    """

    def __init__(
        self,
        model: Any,
        *,
        codec: Any = None,
        obs: str = "image",
        deterministic: bool = True,
    ) -> None:
        self.model = model
        self.codec = codec if codec is not None else BoxCodec(NUM_OPS, NUM_PARAMS)
        if obs not in ("image", "dict"):
            raise ValueError(f"obs={obs!r} must be 'image' or 'dict'")
        self.obs = obs
        self.deterministic = deterministic
        self._stacker: ImageStacker | None = None

    def act_batch(self, core: UniGenCore) -> list[HybridAction]:
        """One hybrid action per episode of ``core``, from one batched ``predict`` call."""
        raw = core.observations()
        if self.obs == "image":
            if self._stacker is None:
                from unigen_sb3.envs.env import observation_space

                reference = "observed" if core.observe_target else "hidden"
                self._stacker = ImageStacker(observation_space(core.size, reference))
            obs: Any = self._stacker(raw)
        else:
            obs = raw
        actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return [self.codec.decode(a) for a in np.asarray(actions)]


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
    :param rewards: the reward computer used (its ``backend`` and perceptual network).
    :param weights: the weights the totals were computed with.
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


def rollout_episodes(
    policy: ScriptedPolicy | ModelPolicy,
    task: str = "unified",
    *,
    n_episodes: int = 50,
    seed: int = 0,
    weights: tuple[float, float, float] | None = None,
    prompt_permutation: Sequence[int] | None = None,
    **env_kwargs: Any,
) -> EpisodeRollout:
    """Run ``n_episodes`` seeded episodes of a policy in lockstep and keep what they produced.

    All episodes run on one batched core (one network forward per step for all of them).
    Episode ``j`` draws its task from ``seed + j`` exactly as
    ``UniGenEnv.reset(seed=seed + j)`` does, so every policy faces the same task set.
    Finished episodes are stepped with ``stop`` and their results ignored (their final
    canvas is copied when they end).

    :param policy: a scripted policy, or a :class:`ModelPolicy` around a trained model.
    :param task: ``"generate"``, ``"edit"`` or ``"unified"``.
    :param n_episodes: number of episodes (>= 1).
    :param seed: base seed of the task set.
    :param weights: ``(w_quality, w_edit, w_consistency)``; default :data:`DEFAULT_WEIGHTS`.
    :param prompt_permutation: the counterfactual of prompt sensitivity: episode ``i`` is
        *observed* with the prompt encoding (``attributes``) of episode
        ``prompt_permutation[i]`` while its task, target and reward stay its own. Only
        policies that read observations (:class:`ModelPolicy`) see the swap.
    :param env_kwargs: ``size``, ``horizon``, ``device``, ``perceptual_backend``,
        ``prompt_split``, ``edit_fraction``, ``reference`` as for
        :class:`~unigen_sb3.envs.env.UniGenEnv`.
    :return: the :class:`EpisodeRollout`.
    :raises ValueError: for ``n_episodes < 1`` or a ``prompt_permutation`` that is not a
        permutation of the episodes.
    """
    from unigen_sb3.envs.env import DEFAULT_HORIZON, DEFAULT_SIZE, shared_reward_computer
    from unigen_sb3.envs.tasks import TaskSampler
    from unigen_sb3.rewards.normalizers import COMPONENT_NAMES
    from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, RewardUnifier
    from unigen_sb3.utils import resolve_device

    if not isinstance(n_episodes, int | np.integer) or n_episodes < 1:
        raise ValueError(f"n_episodes={n_episodes!r} must be an int >= 1")
    n_episodes = int(n_episodes)
    size = int(env_kwargs.pop("size", DEFAULT_SIZE))
    horizon = int(env_kwargs.pop("horizon", DEFAULT_HORIZON))
    device = resolve_device(env_kwargs.pop("device", "auto"))
    backend = str(env_kwargs.pop("perceptual_backend", "auto"))
    reference = str(env_kwargs.pop("reference", "hidden"))
    if prompt_permutation is not None and sorted(prompt_permutation) != list(range(n_episodes)):
        raise ValueError(
            f"prompt_permutation must be a permutation of range({n_episodes}), "
            f"got {list(prompt_permutation)}"
        )
    sampler = TaskSampler(task, size=size, **env_kwargs)
    w = weights if weights is not None else tuple(DEFAULT_WEIGHTS.values())
    unifier = RewardUnifier(*w)
    rewards = shared_reward_computer(backend, str(device), size)
    core = UniGenCore(
        n_episodes,
        size=size,
        horizon=horizon,
        device=device,
        rewards=rewards,
        observe_target=reference == "observed",
    )
    tasks = [
        sampler.sample(np.random.default_rng(seed + j), render=False) for j in range(n_episodes)
    ]
    core.reset(range(n_episodes), tasks)
    if prompt_permutation is not None:
        core.attributes[:] = core.attributes[np.asarray(prompt_permutation, dtype=np.int64)]
    start = core.start.clone()
    final = core.canvas.clone()
    raw = np.zeros((n_episodes, len(COMPONENT_NAMES)), dtype=np.float32)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    done = np.zeros(n_episodes, dtype=bool)
    while not done.all():
        ops = np.full(n_episodes, OP_STOP, dtype=np.int64)
        params = np.zeros((n_episodes, NUM_PARAMS), dtype=np.float32)
        if isinstance(policy, ModelPolicy):
            actions = policy.act_batch(core)
        else:
            actions = [policy.act_core(core, i) if not done[i] else {} for i in range(n_episodes)]
        for i in np.flatnonzero(~done):
            a = actions[i]
            ops[i], params[i] = a["op"], np.clip(a["params"], -1.0, 1.0)
        res = core.step(ops, params)
        ended = (res.terminated | res.truncated) & ~done
        idx = np.flatnonzero(ended)
        if idx.size:
            sel = torch.as_tensor(idx, device=core.device)
            final[sel] = core.canvas[sel]
            raw[idx] = res.reward[idx]
            lengths[idx] = core.steps[idx]
        done |= ended
    out = unifier(raw.astype(np.float64), update=False)
    return EpisodeRollout(
        start=start,
        final=final,
        target=core.target.clone(),
        mask=core.mask.clone(),
        raw=raw,
        components=np.stack([np.asarray(out.components[n]) for n in COMPONENT_NAMES], axis=-1),
        totals=np.asarray(out.total, dtype=np.float64).reshape(n_episodes),
        lengths=lengths,
        tasks=tasks,
        rewards=rewards,
        weights=unifier.weights,
    )


def episode_returns(
    policy: ScriptedPolicy | ModelPolicy,
    task: str = "unified",
    *,
    n_episodes: int = 50,
    seed: int = 0,
    weights: tuple[float, float, float] | None = None,
    **env_kwargs: Any,
) -> np.ndarray:
    """Unified episode returns of a policy over ``n_episodes`` seeded episodes.

    A thin call to :func:`rollout_episodes` (see there for the task set and batching).

    :param policy: a scripted policy, or a :class:`ModelPolicy` around a trained model.
    :param task: ``"generate"``, ``"edit"`` or ``"unified"``.
    :param n_episodes: number of episodes.
    :param seed: base seed of the task set.
    :param weights: ``(w_quality, w_edit, w_consistency)``; default :data:`DEFAULT_WEIGHTS`.
    :param env_kwargs: ``size``, ``horizon``, ``device``, ``perceptual_backend``,
        ``prompt_split``, ``edit_fraction``, ``reference`` as for
        :class:`~unigen_sb3.envs.env.UniGenEnv`.
    :return: ``(n_episodes,)`` float64 returns (no shaping: the final unified reward).
    """
    return rollout_episodes(
        policy, task, n_episodes=n_episodes, seed=seed, weights=weights, **env_kwargs
    ).totals
