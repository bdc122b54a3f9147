"""Scripted policies for tests, baselines and benchmarks.

Each policy maps the state of one episode to a raw hybrid action ``(op, params)``:

- :class:`RandomPolicy` — uniform over the raw action space (seeded).
- :class:`NoOpPolicy` — ``stop`` at once.
- :class:`DawdlePolicy` — never stops, changes nothing (the reward-gaming probe).
- :class:`OraclePolicy` — uses privileged task information. Editing: replays the task's known
  solution (fill the mask with the target colour, or the attribute change), then stops.
  Generation: fills the canvas with the reference's dominant colour, then greedily paints
  hard disks (``fill`` inside the brush disk) of the reference's colour where the error is
  largest, and stops when nothing is left to fix.

``act(env)`` acts on an unwrapped :class:`~unigen_sb3.envs.env.UniGenEnv`;
``act_core(core, i)`` on episode ``i`` of a :class:`~unigen_sb3.envs.core.UniGenCore` (the
batched env).
"""

from __future__ import annotations

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
    param_to_radius,
)
from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.envs.tasks import Task
from unigen_sb3.rewards.components import RewardComputer
from unigen_sb3.rewards.metrics import rgb_to_lab
from unigen_sb3.wrappers.actions import BoxCodec, HybridAction
from unigen_sb3.wrappers.observation import ImageStacker

_REGION_MASK, _REGION_DISK = -1.0, 0.0  # p7 values that select the task mask / brush disk
_DONE_ERROR = 0.05  # largest (3x3-smoothed) error under which the painting is done
_FLAT_LUMA = 0.02  # canvas luma std under which a disk counts as one shade
_LUMA = (0.299, 0.587, 0.114)
_UNIFORM_DE = 8.0  # Delta-E within which a disk of the target counts as one colour


def _action(op: int, params: np.ndarray) -> HybridAction:
    return {"op": int(op), "params": np.asarray(params, dtype=np.float32)}


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
        return _action(OP_STOP, np.zeros(NUM_PARAMS))


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
    """Privileged policy: replays edit solutions; paints greedily toward the reference."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        if task.kind == "edit":
            if step < len(task.solution):
                op, params = task.solution[step]
                return _action(op, params)
            return _action(OP_STOP, np.zeros(NUM_PARAMS))
        return self._paint(canvas, task.target.to(canvas.device), step)

    @staticmethod
    def _paint(canvas: torch.Tensor, target: torch.Tensor, step: int) -> HybridAction:
        _, h, w = target.shape
        params = np.zeros(NUM_PARAMS, dtype=np.float32)
        params[6] = 1.0
        if step == 0:
            # The dominant colour: the per-channel median of the reference.
            colour = target.flatten(1).median(dim=1).values
            params[3:6] = (2.0 * colour - 1.0).cpu().numpy()
            params[7] = _REGION_MASK
            return _action(OP_FILL, params)
        err = (canvas - target).abs().mean(dim=0)
        smooth = torch.nn.functional.avg_pool2d(err[None, None], 3, 1, 1)[0, 0]
        if float(smooth.max()) < _DONE_ERROR:
            return _action(OP_STOP, np.zeros(NUM_PARAMS))
        flat = int(torch.argmax(smooth))
        y, x = divmod(flat, w)
        colour = target[:, y, x]
        lab = rgb_to_lab(target[None])[0]
        close = torch.linalg.vector_norm(lab - lab[:, y, x].view(3, 1, 1), dim=0) < _UNIFORM_DE
        yy, xx = torch.meshgrid(
            torch.arange(h, device=target.device),
            torch.arange(w, device=target.device),
            indexing="ij",
        )
        d2 = (yy - y) ** 2 + (xx - x) ** 2
        luma = (canvas * torch.tensor(_LUMA, device=canvas.device).view(3, 1, 1)).sum(dim=0)
        # The largest brush whose disk stays (90 %) inside the reference's region of this
        # colour and covers canvas of one shade (``fill`` keeps the shading it paints over).
        radius_param = -1.0
        for p in np.linspace(1.0, -1.0, 17):
            r = float(param_to_radius(torch.tensor(p), h, w))
            disk = d2 <= r * r
            flat = float(luma[disk].std(unbiased=False)) < _FLAT_LUMA
            if flat and float(close[disk].float().mean()) >= 0.9:
                radius_param = float(p)
                break
        params[0] = 2.0 * x / (w - 1) - 1.0
        params[1] = 2.0 * y / (h - 1) - 1.0
        params[2] = radius_param
        params[3:6] = (2.0 * colour - 1.0).cpu().numpy()
        params[7] = _REGION_DISK
        return _action(OP_FILL, params)


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

                self._stacker = ImageStacker(observation_space(core.size))
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
    :param env_kwargs: ``size``, ``horizon``, ``device``, ``perceptual_backend``,
        ``prompt_split``, ``edit_fraction`` as for :class:`~unigen_sb3.envs.env.UniGenEnv`.
    :return: the :class:`EpisodeRollout`.
    :raises ValueError: for ``n_episodes < 1``.
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
    sampler = TaskSampler(task, size=size, **env_kwargs)
    w = weights if weights is not None else tuple(DEFAULT_WEIGHTS.values())
    unifier = RewardUnifier(*w)
    rewards = shared_reward_computer(backend, str(device), size)
    core = UniGenCore(n_episodes, size=size, horizon=horizon, device=device, rewards=rewards)
    tasks = [
        sampler.sample(np.random.default_rng(seed + j), render=False) for j in range(n_episodes)
    ]
    core.reset(range(n_episodes), tasks)
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
        ``prompt_split``, ``edit_fraction`` as for :class:`~unigen_sb3.envs.env.UniGenEnv`.
    :return: ``(n_episodes,)`` float64 returns (no shaping: the final unified reward).
    """
    return rollout_episodes(
        policy, task, n_episodes=n_episodes, seed=seed, weights=weights, **env_kwargs
    ).totals
