"""``UniGenVecEnv``: ``N`` UniGen envs stepped as one batch of tensors, an SB3 ``VecEnv``.

SB3's ``DummyVecEnv`` steps its envs one after another in Python, so every step costs ``N``
canvas-engine calls and ``N`` perceptual-network forwards on batches of one. This VecEnv
holds all ``N`` episodes in one :class:`~unigen_sb3.envs.core.UniGenCore` (the engine the
single :class:`~unigen_sb3.envs.env.UniGenEnv` runs as a batch of one): one canvas call, one
network forward (on the canvases the step changed) and one set of metric calls per step for
all ``N``, with each episode's target features computed once at its reset. State stays on
``device``; only the uint8 images and the small vectors SB3 needs come to the host.

It is the *raw* multi-objective env, batched: Dict observations, raw hybrid actions
(``{"op": (N,), "params": (N, P)}`` or a list of ``N`` single actions) and ``(N, 3)`` float32
vector rewards with a ``reward_space``. :func:`unigen_sb3.make.make_unigen_vec_env` adds the
action encoding, the image observation and the reward unification as ``VecEnvWrapper`` s,
which is what SB3 algorithms train on.

Episodes that end are reset at once (as SB3's VecEnvs do): the step's info holds
``terminal_observation`` and ``TimeLimit.truncated``, and the new episode's reset info is in
``reset_infos``. Env ``i`` draws its tasks from its own numpy Generator seeded with
``seed + i`` (gymnasium's ``seeding.np_random``), so its episodes are those of
``UniGenEnv(seed=seed + i)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from unigen_sb3.envs.bank import TaskBank, check_task_bank_features, check_task_bank_size
from unigen_sb3.envs.canvas import OP_STOP
from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.envs.env import (
    DEFAULT_HORIZON,
    DEFAULT_SIZE,
    action_space,
    check_env_args,
    check_hybrid_actions,
    observation_space,
    render_panels,
    reward_space,
    shared_reward_computer,
    step_components_of,
)
from unigen_sb3.envs.tasks import TaskSampler
from unigen_sb3.utils import is_int, resolve_device

__all__ = ["FIXED_SETTINGS", "PROMPT_FROM_OPTION", "UniGenVecEnv", "check_n_envs"]

UniGenStepReturn = tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]
"""``(obs, rewards (N, 3), dones (N,), infos)`` of :meth:`UniGenVecEnv.step`."""

FIXED_SETTINGS = (
    "task",
    "size",
    "horizon",
    "device",
    "metric_dtype",
    "dense_components",
    "task_bank_size",
)
"""Settings of :class:`UniGenVecEnv` that ``set_attr`` refuses: they are fixed when the env is
built (its core, task sampler and reward network follow them), so setting the attribute
afterwards would change nothing the envs do."""

PROMPT_FROM_OPTION = "observe_prompt_of"
"""Reset option of :class:`UniGenVecEnv` (per env, through SB3's ``set_options``): env ``i``
given ``{"observe_prompt_of": j}`` observes, for the episode that reset starts, the prompt
encoding (``attributes``) of env ``j``'s new task, while its own task, target and reward
stay its own. The prompt-swap probe of the evaluation suite uses it."""


class UniGenVecEnv(VecEnv):
    """``n_envs`` UniGen envs as one batch of tensors: Dict obs, hybrid actions, vector reward.

    :param n_envs: number of envs ``N``.
    :param task: ``"generate"``, ``"edit"`` or ``"unified"``.
    :param size: canvas side in pixels (at least 36).
    :param horizon: steps before truncation.
    :param device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    :param perceptual_backend: ``"auto"``, ``"stlpips"`` or ``"lpips"``.
    :param edit_fraction: probability of an editing task when ``task="unified"``.
    :param prompt_split: ``"train"``, ``"heldout"`` or ``None``.
    :param reference: ``"hidden"`` (default) or ``"observed"`` (see
        :class:`~unigen_sb3.envs.env.UniGenEnv`).
    :param seed: env ``i``'s tasks come from ``seeding.np_random(seed + i)`` (as
        ``UniGenEnv(seed=seed + i)``); ``None``: unseeded. ``seed()`` reseeds at the next reset.
    :param metric_dtype: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``: autocast
        dtype of the perceptual network's forward (see
        :class:`~unigen_sb3.rewards.mixed_precision.MixedPrecisionPerceptual`).
    :param dense_components: which reward components to compute on every step (see
        :func:`~unigen_sb3.envs.env.step_components_of`; default ``False``: at each
        episode's end only, where the reward is paid).
    :param task_bank_size: ``None`` (default): draw a task at every reset. An int ``B``:
        each :meth:`reset` draws env ``i``'s next ``B`` tasks at once and keeps them on
        ``device`` (:class:`~unigen_sb3.envs.bank.TaskBank`), so an auto-reset is an index
        into device tensors and no task is sampled inside the step loop; the first ``B``
        episodes of each env are those it plays without a bank, then they repeat.
    :param task_bank_features: ``True`` (needs ``task_bank_size``): the bank keeps, per
        task, the metric network's results of its first episode, and a replayed task runs
        the network on its final canvas only; rewards are the same bit for bit. What is kept
        and its memory: :class:`~unigen_sb3.envs.bank.TargetFeatureCache`. Default ``False``.
    :param render_mode: ``"rgb_array"`` or ``None``.

    Memory: besides its images, each env keeps the perceptual features of its target and of
    its current canvas (so a step runs the network only on canvases it changed): with the
    default network 0.63 MB per env for each of the two at 64x64, 2.6 MB at 128x128; at
    ``N=256`` and 64x64 about 320 MB on ``device``.

    Example:
        >>> venv = UniGenVecEnv(4, size=36, seed=0)
        >>> obs = venv.reset()
        >>> obs["canvas"].shape
        (4, 3, 36, 36)
        >>> _, rewards, dones, infos = venv.step(
        ...     {"op": np.zeros(4, np.int64), "params": np.zeros((4, 8), np.float32)}
        ... )
        >>> rewards.shape
        (4, 3)
    """

    def __init__(
        self,
        n_envs: int,
        task: str = "unified",
        *,
        size: int = DEFAULT_SIZE,
        horizon: int = DEFAULT_HORIZON,
        device: str | torch.device = "auto",
        perceptual_backend: str = "auto",
        edit_fraction: float = 0.5,
        prompt_split: str | None = "train",
        reference: str = "hidden",
        seed: int | None = None,
        metric_dtype: str | None = None,
        dense_components: bool | Sequence[str] = False,
        task_bank_size: int | None = None,
        task_bank_features: bool = False,
        render_mode: str | None = None,
    ) -> None:
        check_n_envs(n_envs)
        check_env_args(task, size, horizon, render_mode, reference)
        step_components = step_components_of(dense_components)
        self.task_bank_size = check_task_bank_size(task_bank_size)
        self.task_bank_features = check_task_bank_features(task_bank_features, task_bank_size)
        #: The task bank of the last :meth:`reset` (``None`` without ``task_bank_size``).
        self.bank: TaskBank | None = None
        self.dense_components = dense_components
        size, horizon = int(size), int(horizon)
        n = int(n_envs)
        self.task = task
        self.size = size
        self.horizon = horizon
        self.device = resolve_device(device)
        self.render_mode = render_mode
        self.reference = reference
        self.metric_dtype = "float32" if metric_dtype is None else metric_dtype
        self.sampler = TaskSampler(
            task, size=size, edit_fraction=edit_fraction, prompt_split=prompt_split
        )
        self.rewards = shared_reward_computer(
            perceptual_backend, self.device, size, self.metric_dtype
        )
        #: The batched engine; callbacks read canvases (``core.canvas``, (N,3,H,W)) from it.
        self.core = UniGenCore(
            n,
            size=size,
            horizon=horizon,
            device=self.device,
            rewards=self.rewards,
            observe_target=reference == "observed",
            step_components=step_components,
        )
        self.reward_space = reward_space()
        self.reward_dim = 3
        self._rngs: list[np.random.Generator] = [
            seeding.np_random(None if seed is None else seed + i)[0] for i in range(n)
        ]
        self._actions: tuple[np.ndarray, np.ndarray] | None = None
        #: The last batch of raw actions stepped, ``(ops (N,), params (N, P))`` as validated
        #: (params clipped), or None before the first step.
        self.last_actions: tuple[np.ndarray, np.ndarray] | None = None
        #: Reset ended episodes at once (SB3's VecEnv contract, the default). ``False`` (for
        #: evaluation loops that run each env's first episode only): an ended episode stays
        #: ended until :meth:`reset`, and its actions are replaced by ``stop``.
        self.autoreset = True
        self._ended = np.zeros(n, dtype=bool)
        self._needs_reset = True
        self.closed = False
        super().__init__(n, observation_space(size, reference), action_space())

    # ------------------------------------------------------------------ episodes
    def _start(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Draw tasks for ``indices`` from their own Generators (or their banks) and reset
        them in one batch."""
        if self.bank is not None:
            tasks, images, rows = self.bank.next(indices)
            infos = self.core.reset(indices, tasks, images, bank_rows=rows)
        else:
            # Every target rendered in the sampler's canvas call with the checked ones.
            tasks = self.sampler.sample_many([self._rngs[i] for i in indices])
            infos = self.core.reset(indices, tasks)
        for i, info in zip(indices, infos, strict=True):
            self.reset_infos[i] = info
        return infos

    def reset(self) -> dict[str, np.ndarray]:
        """Reset every env (applying seeds given to :meth:`seed`); returns the batched obs."""
        for i, s in enumerate(self._seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(s)[0]
        if self.task_bank_size is not None:
            self.bank = TaskBank(
                self.sampler,
                self._rngs,
                self.task_bank_size,
                self.device,
                keep_target_features=self.task_bank_features,
            )
            self.core.target_cache = self.bank.target_features
        self._start(range(self.num_envs))
        self._ended[:] = False
        self._apply_options()
        # Seeds and options are used once, as in SB3's VecEnvs.
        self._reset_seeds()
        self._reset_options()
        self._needs_reset = False
        return self.core.observations()

    def _apply_options(self) -> None:
        """Apply the reset options given to ``set_options`` (:data:`PROMPT_FROM_OPTION`).

        :raises ValueError: for an unknown option or an env index out of range.
        """
        sources: dict[int, int] = {}
        for i, options in enumerate(self._options):
            if not options:
                continue
            unknown = sorted(set(options) - {PROMPT_FROM_OPTION})
            if unknown:
                raise ValueError(
                    f"reset options of env {i}: unknown keys {unknown}; accepted: "
                    f"[{PROMPT_FROM_OPTION!r}]"
                )
            j = options[PROMPT_FROM_OPTION]
            if not is_int(j) or not 0 <= j < self.num_envs:
                raise ValueError(
                    f"reset option {PROMPT_FROM_OPTION}={j!r} of env {i} must be an env index "
                    f"in [0, {self.num_envs})"
                )
            sources[i] = int(j)
        if sources:
            own = self.core.attributes.copy()
            for i, j in sources.items():
                self.core.attributes[i] = own[j]

    def step_async(self, actions: Any) -> None:
        """Validate and store a batch of raw actions (see :func:`check_hybrid_actions`).

        :raises ValueError: for a malformed action; nothing is stored and the state is unchanged.
        """
        self._actions = check_hybrid_actions(actions, self.num_envs)

    def step(self, actions: Any) -> UniGenStepReturn:
        """Step all envs with a batch of raw actions (:meth:`step_async` + :meth:`step_wait`)."""
        self.step_async(actions)
        return self.step_wait()

    def step_wait(self) -> UniGenStepReturn:
        """Step all envs together; ended episodes are reset at once (``terminal_observation``)."""
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions)")
        ops, params = self._actions
        self._actions = None
        if self._ended.any():
            ops = np.where(self._ended, OP_STOP, ops)
        self.last_actions = (ops, params)
        res = self.core.step(ops, params)
        obs = self.core.observations()
        dones = res.terminated | res.truncated
        infos = res.infos
        for i, info in enumerate(infos):
            # SB3's convention (gymnasium >= 0.26): a time limit that is not also a termination.
            info["TimeLimit.truncated"] = bool(res.truncated[i] and not res.terminated[i])
        done_idx = np.flatnonzero(dones)
        if done_idx.size:
            for i in done_idx.tolist():
                infos[i]["terminal_observation"] = {k: v[i].copy() for k, v in obs.items()}
            ids = done_idx.tolist()
            if self.autoreset:
                self._start(ids)
                fresh = self.core.observations(ids)
                for key, rows in fresh.items():
                    obs[key][done_idx] = rows
            else:
                self._ended[done_idx] = True
        return obs, res.reward, dones, infos

    # ------------------------------------------------------------------ extras
    def action_masks(self) -> np.ndarray:
        """(N, K) bool: each env's valid ops (``attribute`` is invalid in generation)."""
        return self.core.op_masks()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Each env's ``canvas | target | mask`` as uint8 (H, 3W, 3), or None without rgb_array."""
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        return list(render_panels(self.core))

    def close(self) -> None:
        """Nothing runs in the background; marks the env closed."""
        self.closed = True

    # ------------------------------------------------------------------ VecEnv plumbing
    def _per_env(self) -> dict[str, Callable[[int], Any]]:
        """Attributes that differ between envs, as ``name -> (index -> value)``."""
        return {
            "current_task": lambda i: self.core.tasks[i],
            "np_random": lambda i: self._rngs[i],
        }

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env attributes (``current_task``, ``np_random``) per env; others are shared.

        :raises AttributeError: if no env has ``attr_name``.
        """
        idx = list(self._get_indices(indices))
        getter = self._per_env().get(attr_name)
        if getter is not None:
            return [getter(i) for i in idx]
        value = getattr(self, attr_name)
        return [value for _ in idx]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set ``np_random`` per env, or a shared attribute for all envs at once.

        :raises ValueError: for a setting in :data:`FIXED_SETTINGS` (setting it would change
            nothing the envs do), or when a shared attribute is set for only some envs (all
            envs share one set of attributes here, so they cannot differ).
        """
        idx = list(self._get_indices(indices))
        if attr_name == "np_random":
            for i in idx:
                self._rngs[i] = value
            return
        if attr_name in FIXED_SETTINGS:
            raise ValueError(
                f"set_attr({attr_name!r}, {value!r}): {attr_name} is fixed when UniGenVecEnv "
                f"is built (its core, task sampler and reward network follow it); build a new "
                f"env with {attr_name}={value!r}. Fixed settings: {FIXED_SETTINGS}"
            )
        if sorted(idx) != list(range(self.num_envs)):
            raise ValueError(
                f"set_attr({attr_name!r}) for envs {idx}: the {self.num_envs} envs of "
                "UniGenVecEnv share their attributes; set it for all envs (indices=None)"
            )
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method per env: ``action_masks`` and ``render`` give each env's own result
        (``render``: its panel, or ``None`` unless ``render_mode="rgb_array"``); any other
        method of this VecEnv is called once and its result given to every env.
        """
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        if method_name == "render":
            if self.render_mode != "rgb_array":
                return [None for _ in idx]  # as UniGenEnv.render() and get_images()
            return list(render_panels(self.core, idx))
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """No gymnasium wrapper lives inside a batched env: all ``False``."""
        return [False for _ in self._get_indices(indices)]


def check_n_envs(n_envs: object) -> None:
    """:raises ValueError: unless ``n_envs`` is an int >= 1 (numpy ints too, not bools)."""
    if not is_int(n_envs) or n_envs < 1:  # type: ignore[operator]
        raise ValueError(f"n_envs={n_envs!r} must be an int >= 1")
