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
vector rewards with a ``reward_space``. :func:`make_unigen_vec_env` adds the reward
unification, the action encoding and the image observation as ``VecEnvWrapper`` s, which is
what SB3 algorithms train on.

Episodes that end are reset at once (as SB3's VecEnvs do): the step's info holds
``terminal_observation`` and ``TimeLimit.truncated``, and the new episode's reset info is in
``reset_infos``. Env ``i`` draws its tasks from its own numpy Generator seeded with
``seed + i`` (gymnasium's ``seeding.np_random``), so its episodes are those of
``UniGenEnv(seed=seed + i)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecMonitor,
)
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

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
)
from unigen_sb3.envs.factory import OBS_MODES, make_unigen_env
from unigen_sb3.envs.tasks import Task, TaskSampler
from unigen_sb3.rewards.components import RewardComputer
from unigen_sb3.rewards.perceptual import PerceptualDistance
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS
from unigen_sb3.utils import is_int, resolve_device
from unigen_sb3.wrappers.actions import ACTION_ENCODINGS, hybrid_sizes, make_codec
from unigen_sb3.wrappers.reward import VecUnifiedReward
from unigen_sb3.wrappers.vec import VecHybridAction, VecImageObs

__all__ = [
    "FIXED_SETTINGS",
    "METRIC_DTYPES",
    "VEC_ENV_KINDS",
    "MixedPrecisionPerceptual",
    "UniGenVecEnv",
    "make_unigen_vec_env",
]

UniGenStepReturn = tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]
"""``(obs, rewards (N, 3), dones (N,), infos)`` of :meth:`UniGenVecEnv.step`."""

VEC_ENV_KINDS = ("batched", "dummy", "subproc")
"""Accepted values of ``make_unigen_vec_env(vec_env_kind=...)``."""

FIXED_SETTINGS = ("task", "size", "horizon", "device", "metric_dtype")
"""Settings of :class:`UniGenVecEnv` that ``set_attr`` refuses: they are fixed when the env is
built (its core, task sampler and reward network follow them), so setting the attribute
afterwards would change nothing the envs do."""

METRIC_DTYPES: dict[str, torch.dtype | None] = {
    "float32": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
"""Accepted values of ``metric_dtype``: the autocast dtype of the perceptual network's forward
(``float32``: no autocast)."""


class MixedPrecisionPerceptual:
    """A :class:`PerceptualDistance` whose network forward runs under ``torch.autocast``.

    Only :meth:`features` (the AlexNet trunk) is autocast; its outputs are cast back to
    float32, so the distance heads, the realism score and every other metric stay in float32.

    :param base: the float32 perceptual network (shared, not copied).
    :param dtype: ``torch.bfloat16`` or ``torch.float16``.
    """

    def __init__(self, base: PerceptualDistance, dtype: torch.dtype) -> None:
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"dtype must be torch.bfloat16 or torch.float16, got {dtype}")
        self.base = base
        self.dtype = dtype

    @property
    def device(self) -> torch.device:
        """The network's device."""
        return self.base.device

    @property
    def backend(self) -> str:
        """The perceptual backend in use."""
        return self.base.backend

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`PerceptualDistance.features` under autocast, returned as float32."""
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            feats = self.base.features(x)
        return [f.float() for f in feats]

    def __getattr__(self, name: str) -> Any:
        # Everything but the forward (distance heads, embeddings...) is the base's, in float32.
        return getattr(self.base, name)


def _metric_dtype(metric_dtype: str | None) -> torch.dtype | None:
    key = "float32" if metric_dtype is None else metric_dtype
    if key not in METRIC_DTYPES:
        raise ValueError(f"metric_dtype={metric_dtype!r} is not one of {tuple(METRIC_DTYPES)}")
    return METRIC_DTYPES[key]


def batched_reward_computer(
    backend: str, device: torch.device, size: int, metric_dtype: str | None = None
) -> RewardComputer:
    """The process-wide reward computer, with the network forward autocast when asked.

    :param backend: the perceptual backend (see :class:`PerceptualDistance`).
    :param device: where the network runs.
    :param size: canvas side.
    :param metric_dtype: one of :data:`METRIC_DTYPES` (``None`` = float32).
    """
    shared = shared_reward_computer(backend, str(device), size)
    dtype = _metric_dtype(metric_dtype)
    if dtype is None:
        return shared
    mixed = MixedPrecisionPerceptual(shared.perceptual, dtype)
    # The realism reference was fitted on float32 embeddings; it is reused as is.
    return RewardComputer(
        cast(PerceptualDistance, mixed),
        shared.realism,
        color_tol=shared.color_tol,
        change_threshold=shared.change_threshold,
    )


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
        dtype of the perceptual network's forward (see :class:`MixedPrecisionPerceptual`).
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
        render_mode: str | None = None,
    ) -> None:
        _check_n_envs(n_envs)
        check_env_args(task, size, horizon, render_mode, reference)
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
        self.rewards = batched_reward_computer(
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
        )
        self.reward_space = reward_space()
        self.reward_dim = 3
        self._rngs: list[np.random.Generator] = [
            seeding.np_random(None if seed is None else seed + i)[0] for i in range(n)
        ]
        self._actions: tuple[np.ndarray, np.ndarray] | None = None
        self._needs_reset = True
        self.closed = False
        super().__init__(n, observation_space(size, reference), action_space())

    # ------------------------------------------------------------------ episodes
    def _start(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Draw tasks for ``indices`` from their own Generators and reset them in one batch."""
        tasks: list[Task] = [self.sampler.sample(self._rngs[i], render=False) for i in indices]
        infos = self.core.reset(indices, tasks)
        for i, info in zip(indices, infos, strict=True):
            self.reset_infos[i] = info
        return infos

    def reset(self) -> dict[str, np.ndarray]:
        """Reset every env (applying seeds given to :meth:`seed`); returns the batched obs."""
        for i, s in enumerate(self._seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(s)[0]
        self._start(range(self.num_envs))
        # Seeds and options are used once, as in SB3's VecEnvs (UniGen takes no options).
        self._reset_seeds()
        self._reset_options()
        self._needs_reset = False
        return self.core.observations()

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
            self._start(ids)
            fresh = self.core.observations(ids)
            for key, rows in fresh.items():
                obs[key][done_idx] = rows
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


def _check_n_envs(n_envs: object) -> None:
    """:raises ValueError: unless ``n_envs`` is an int >= 1 (numpy ints too, not bools)."""
    if not is_int(n_envs) or n_envs < 1:  # type: ignore[operator]
        raise ValueError(f"n_envs={n_envs!r} must be an int >= 1")


class _ResetInfoVecMonitor(VecMonitor):
    """SB3's ``VecMonitor`` that also passes ``reset_infos`` up from the env it wraps.

    ``VecMonitor`` leaves its own ``reset_infos`` at the empty dicts ``VecEnv.__init__`` made,
    so the batched stack would show ``[{}, ...]`` where DummyVecEnv and SubprocVecEnv show each
    env's reset info (prompt, task kind, state components).
    """

    def reset(self) -> VecEnvObs:
        obs = super().reset()
        self.reset_infos = self.venv.reset_infos
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        result = super().step_wait()
        self.reset_infos = self.venv.reset_infos
        return result


def _worker_threads(n_envs: int, vec_env_kind: str, worker_threads: int | None) -> int | None:
    """Torch threads per ``SubprocVecEnv`` worker, or ``None`` for the other kinds.

    :raises ValueError: for ``worker_threads`` below 1 or given with another kind.
    """
    if worker_threads is not None:
        if (
            isinstance(worker_threads, bool)
            or not isinstance(worker_threads, int)
            or worker_threads < 1
        ):
            raise ValueError(f"worker_threads must be an integer >= 1; got {worker_threads!r}")
        if vec_env_kind != "subproc":
            raise ValueError(
                f"worker_threads={worker_threads!r} needs vec_env_kind='subproc'; "
                f"got vec_env_kind={vec_env_kind!r}"
            )
        return worker_threads
    if vec_env_kind != "subproc":
        return None
    return max(1, torch.get_num_threads() // max(1, int(n_envs)))


def _subproc_env(*, torch_threads: int, **kwargs: Any) -> gym.Env[Any, Any]:
    """:func:`make_unigen_env` in a ``SubprocVecEnv`` worker, with its torch threads set first."""
    torch.set_num_threads(torch_threads)
    return make_unigen_env(**kwargs)


def make_unigen_vec_env(
    n_envs: int = 8,
    task: str = "unified",
    action: str = "box",
    obs: str = "image",
    seed: int | None = None,
    w_quality: float = DEFAULT_WEIGHTS["quality"],
    w_edit: float = DEFAULT_WEIGHTS["edit"],
    w_consistency: float = DEFAULT_WEIGHTS["consistency"],
    *,
    vec_env_kind: str = "batched",
    normalization: str = "bounded",
    shaping: PotentialShaping | None = None,
    action_options: Mapping[str, Any] | None = None,
    metric_dtype: str | None = None,
    monitor: bool = True,
    vec_env_kwargs: dict[str, Any] | None = None,
    worker_threads: int | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """Build an SB3-ready VecEnv of ``n_envs`` UniGen envs (the VecEnv form of ``make_unigen_env``).

    ``vec_env_kind="batched"``: :class:`UniGenVecEnv` -> :class:`VecUnifiedReward` ->
    :class:`~unigen_sb3.wrappers.vec.VecHybridAction` -> (``obs="image"``)
    :class:`~unigen_sb3.wrappers.vec.VecImageObs` -> ``VecMonitor``. ``"dummy"`` /
    ``"subproc"``: SB3's ``make_vec_env`` over :func:`make_unigen_env` (one env per slot,
    each in a ``Monitor``), with ``DummyVecEnv`` / ``SubprocVecEnv`` (whose workers get
    ``worker_threads`` torch threads each). All three give env ``i`` the tasks of seed
    ``seed + i`` and the same spaces.

    :param n_envs: number of envs.
    :param task: ``"generate"``, ``"edit"`` or ``"unified"``.
    :param action: the action encoding (see ``make_unigen_env``).
    :param obs: ``"image"`` (for ``CnnPolicy``) or ``"dict"`` (for ``MultiInputPolicy``).
    :param seed: env ``i`` is seeded with ``seed + i``.
    :param w_quality: weight of R_quality.
    :param w_edit: weight of R_edit.
    :param w_consistency: weight of R_consistency.
    :param vec_env_kind: one of :data:`VEC_ENV_KINDS`.
    :param normalization: ``"bounded"`` or ``"running"``.
    :param shaping: optional potential-based shaping (its gamma must be the algorithm's).
    :param action_options: options of the action encoding (see
        :func:`~unigen_sb3.wrappers.actions.make_codec`).
    :param metric_dtype: autocast dtype of the perceptual forward (``"batched"`` only).
    :param monitor: add ``VecMonitor`` to the batched stack (episode returns for SB3's logger).
    :param vec_env_kwargs: passed to ``SubprocVecEnv`` (e.g. ``start_method``).
    :param worker_threads: torch threads in each ``SubprocVecEnv`` worker (``"subproc"``
        only). Default: ``max(1, torch.get_num_threads() // n_envs)``, so that the workers
        together use about the threads this process would. Without a limit each worker's
        torch starts one thread per core and N workers oversubscribe the CPU: on 2 cores,
        N=8 ran 5.6 env steps/s with torch's default against 193 with one thread each.
    :param env_kwargs: ``size``, ``horizon``, ``device``, ``perceptual_backend``,
        ``edit_fraction``, ``prompt_split``, ``render_mode``.
    :return: the VecEnv.

    Example:
        >>> from stable_baselines3 import PPO
        >>> model = PPO("CnnPolicy", make_unigen_vec_env(n_envs=64), n_steps=16)  # doctest: +SKIP
    """
    if vec_env_kind not in VEC_ENV_KINDS:
        raise ValueError(f"vec_env_kind={vec_env_kind!r} is not one of {VEC_ENV_KINDS}")
    _check_n_envs(n_envs)
    if action_options is not None and not isinstance(action_options, Mapping):
        raise TypeError(f"action_options must be a mapping, got {action_options!r}")
    if action not in ACTION_ENCODINGS:
        raise ValueError(f"action={action!r} is not one of {ACTION_ENCODINGS}")
    if obs not in OBS_MODES:
        raise ValueError(f"obs={obs!r} is not one of {OBS_MODES}")
    threads = _worker_threads(n_envs, vec_env_kind, worker_threads)
    if vec_env_kind != "batched":
        if metric_dtype not in (None, "float32"):
            raise ValueError(
                f"metric_dtype={metric_dtype!r} needs vec_env_kind='batched'; "
                f"got vec_env_kind={vec_env_kind!r}"
            )
        kwargs = dict(
            task=task,
            action=action,
            obs=obs,
            w_quality=w_quality,
            w_edit=w_edit,
            w_consistency=w_consistency,
            normalization=normalization,
            shaping=shaping,
            action_options=action_options,
            **env_kwargs,
        )
        cls = DummyVecEnv if vec_env_kind == "dummy" else SubprocVecEnv
        if threads is not None:
            kwargs["torch_threads"] = threads
        return make_vec_env(
            make_unigen_env if threads is None else _subproc_env,
            n_envs=n_envs,
            seed=seed,
            env_kwargs=kwargs,
            vec_env_cls=cls,
            vec_env_kwargs=vec_env_kwargs,
        )
    raw = UniGenVecEnv(n_envs, task, seed=seed, metric_dtype=metric_dtype, **env_kwargs)
    venv: VecEnv = VecUnifiedReward(
        raw,
        w_quality,
        w_edit,
        w_consistency,
        normalization=normalization,  # type: ignore[arg-type]
        shaping=shaping,
    )
    codec = make_codec(action, *hybrid_sizes(raw.action_space), **dict(action_options or {}))
    venv = VecHybridAction(venv, codec)
    if obs == "image":
        venv = VecImageObs(venv)
    if monitor:
        venv = _ResetInfoVecMonitor(venv)
    return venv
