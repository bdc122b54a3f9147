"""The composition root: every UniGen env stack is built here, from one :class:`UniGenSpec`.

The stack order is written once, in :func:`_stack`, for both paths:

    raw env -> action codec -> observation -> reward unification -> monitor

- single env (:func:`make_unigen_env`): :class:`~unigen_sb3.envs.env.UniGenEnv` ->
  the encoding's action wrapper -> ``ImageObsWrapper`` (``obs="image"``) ->
  ``UnifiedRewardWrapper`` (SB3's ``make_vec_env`` adds its ``Monitor``);
- batched (:func:`make_unigen_vec_env`, ``vec_env_kind="batched"``):
  :class:`~unigen_sb3.envs.vec_env.UniGenVecEnv` -> ``VecHybridAction`` -> ``VecImageObs``
  -> ``VecUnifiedReward`` -> ``VecMonitor``;
- ``"dummy"`` / ``"subproc"``: SB3's ``DummyVecEnv`` / ``SubprocVecEnv`` over single-env
  stacks (each in a ``Monitor``).

Every stack exposes its spec as ``spec_unigen`` (read it with
:func:`~unigen_sb3.spec.spec_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS
from unigen_sb3.envs.env import UniGenEnv, observation_space
from unigen_sb3.envs.vec_env import UniGenVecEnv, check_n_envs
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS
from unigen_sb3.spec import OBS_MODES, SPEC_ATTR, VEC_ENV_KINDS, UniGenSpec
from unigen_sb3.wrappers.actions import hybrid_sizes, make_codec, wrap_hybrid_action
from unigen_sb3.wrappers.observation import ImageObsWrapper, ImageStacker
from unigen_sb3.wrappers.reward import UnifiedRewardWrapper, VecUnifiedReward
from unigen_sb3.wrappers.vec import VecHybridAction, VecImageObs

__all__ = [
    "OBS_MODES",
    "VEC_ENV_KINDS",
    "build_env",
    "build_vec_env",
    "make_unigen_env",
    "make_unigen_vec_env",
    "stack_spaces",
]


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


def _reward_kwargs(spec: UniGenSpec) -> dict[str, Any]:
    return {
        **{f"w_{name}": w for name, w in spec.weights.items()},
        "normalization": spec.normalization,
        "shaping": spec.shaping,
    }


@dataclass(frozen=True)
class _Layers:
    """How one path (single env or batched VecEnv) makes each layer of the stack."""

    action: Callable[[Any, UniGenSpec], Any]
    obs: Callable[[Any], Any]
    reward: Callable[[Any, UniGenSpec], Any]
    monitor: Callable[[Any], Any] | None


_SINGLE = _Layers(
    action=lambda env, spec: wrap_hybrid_action(env, spec.action, **spec.action_options),
    obs=ImageObsWrapper,
    reward=lambda env, spec: UnifiedRewardWrapper(env, **_reward_kwargs(spec)),
    monitor=None,  # SB3's make_vec_env and algorithms add their own Monitor
)

_BATCHED = _Layers(
    action=lambda venv, spec: VecHybridAction(
        venv, make_codec(spec.action, *hybrid_sizes(venv.action_space), **spec.action_options)
    ),
    obs=VecImageObs,
    reward=lambda venv, spec: VecUnifiedReward(venv, **_reward_kwargs(spec)),
    monitor=_ResetInfoVecMonitor,
)


def _stack(raw: Any, spec: UniGenSpec, layers: _Layers, *, monitor: bool) -> Any:
    """The one place the stack order is written: raw -> action -> obs -> reward -> monitor."""
    setattr(raw, SPEC_ATTR, spec)
    env = layers.action(raw, spec)
    if spec.obs == "image":
        env = layers.obs(env)
    env = layers.reward(env, spec)
    if monitor and layers.monitor is not None:
        env = layers.monitor(env)
    return env


def stack_spaces(spec: UniGenSpec) -> tuple[gym.Space[Any], gym.Space[Any]]:
    """The observation and action spaces of ``spec``'s stack, without building an env (no
    canvas, prompts or perceptual network): what an algorithm is built on.

    :param spec: the settings.
    :return: ``(observation_space, action_space)``, as :func:`build_env` has them.
    """
    obs: gym.Space[Any] = observation_space(spec.size, spec.reference)
    if spec.obs == "image":
        obs = ImageStacker(obs).space
    codec = make_codec(spec.action, NUM_OPS, NUM_PARAMS, **spec.action_options)
    return obs, codec.space


def build_env(spec: UniGenSpec, seed: int | None = None) -> gym.Env[Any, Any]:
    """The single-env stack of ``spec`` (see the module docstring for its layers).

    :param spec: the settings.
    :param seed: seeds the env's task sequence (see :class:`UniGenEnv`).
    """
    if not isinstance(spec, UniGenSpec):
        raise TypeError(f"spec must be a UniGenSpec, got {type(spec).__name__}")
    raw = UniGenEnv(spec.task, seed=seed, **spec.env_kwargs())
    env: gym.Env[Any, Any] = _stack(raw, spec, _SINGLE, monitor=False)
    return env


def _call_spec(spec: UniGenSpec | None, task: Any, **kwargs: Any) -> UniGenSpec:
    """The spec of a keyword call, or the one given (then no other setting may differ from
    its default)."""
    if isinstance(task, UniGenSpec):
        spec, task = task, "unified"
    if spec is None:
        return UniGenSpec.from_kwargs(task, **kwargs)
    if not isinstance(spec, UniGenSpec):
        raise TypeError(f"spec must be a UniGenSpec, got {type(spec).__name__}")
    if UniGenSpec.from_kwargs(task, **kwargs) != UniGenSpec():
        raise TypeError(
            "pass either a UniGenSpec or the settings as keywords, not both; change a spec "
            "with spec.replace(...)"
        )
    return spec


def make_unigen_env(
    task: str | UniGenSpec = "unified",
    action: str = "box",
    obs: str = "image",
    seed: int | None = None,
    w_quality: float = DEFAULT_WEIGHTS["quality"],
    w_edit: float = DEFAULT_WEIGHTS["edit"],
    w_consistency: float = DEFAULT_WEIGHTS["consistency"],
    *,
    normalization: str = "bounded",
    shaping: PotentialShaping | None = None,
    action_options: Mapping[str, Any] | None = None,
    spec: UniGenSpec | None = None,
    **env_kwargs: Any,
) -> gym.Env[Any, Any]:
    """Build the UniGen env stack that off-the-shelf SB3 trains on.

    ``UniGenEnv`` (vector reward, hybrid actions, Dict observation) -> the action encoding
    -> the observation mode -> :class:`~unigen_sb3.wrappers.reward.UnifiedRewardWrapper`
    (float reward ``w_quality*Q + w_edit*E + w_consistency*C`` in [0, 1]). The keywords
    build a :class:`~unigen_sb3.spec.UniGenSpec`; a spec can be given instead
    (``make_unigen_env(spec)`` or ``spec=``), and the stack exposes it as ``spec_unigen``.

    :param task: ``"generate"``, ``"edit"`` or ``"unified"`` (or a spec).
    :param action: the action encoding, one of ``ACTION_ENCODINGS``: ``"box"`` (every
        algorithm with Box actions), ``"multidiscrete"`` (PPO, A2C, MaskablePPO) or
        ``"discrete"`` (DQN, QR-DQN, PPO, A2C, MaskablePPO); see
        :mod:`unigen_sb3.wrappers.actions` and ``docs/can_i_use.md``.
    :param obs: ``"image"`` (one uint8 (C,H,W) image for ``CnnPolicy``) or ``"dict"`` (the
        Dict observation for ``MultiInputPolicy``).
    :param seed: seeds the env's task sequence (see :class:`UniGenEnv`).
    :param w_quality: weight of R_quality.
    :param w_edit: weight of R_edit.
    :param w_consistency: weight of R_consistency (the weights sum to 1).
    :param normalization: ``"bounded"`` or ``"running"`` component normalization.
    :param shaping: optional potential-based shaping (its gamma must be the algorithm's).
    :param action_options: options of the action encoding: ``{"bins": ...}`` for
        ``multidiscrete``, ``{"library": ..., "op_names": ...}`` for ``discrete``, none for
        ``box`` (see :func:`~unigen_sb3.wrappers.actions.make_codec`).
    :param spec: the settings as one spec (then give no other setting).
    :param env_kwargs: the other settings of :class:`~unigen_sb3.spec.UniGenSpec`
        (``size``, ``horizon``, ``device``, ``perceptual_backend``, ``prompt_split``...).
    :return: the wrapped env.

    Example:
        >>> from stable_baselines3 import PPO
        >>> model = PPO("CnnPolicy", make_unigen_env(), n_steps=64, batch_size=32)
    """
    given = _call_spec(
        spec,
        task,
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
    return build_env(given, seed)


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


def _subproc_env(*, spec: UniGenSpec, torch_threads: int | None = None) -> gym.Env[Any, Any]:
    """One env of a Dummy/SubprocVecEnv (its torch threads set first in a subprocess).

    SB3's ``make_vec_env`` seeds it after building (``env.reset(seed=seed + i)``).
    """
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    return build_env(spec)


def build_vec_env(
    spec: UniGenSpec,
    n_envs: int = 8,
    seed: int | None = None,
    *,
    vec_env_kind: str = "batched",
    monitor: bool = True,
    vec_env_kwargs: dict[str, Any] | None = None,
    worker_threads: int | None = None,
) -> VecEnv:
    """The VecEnv stack of ``spec`` (see :func:`make_unigen_vec_env` for the arguments)."""
    if not isinstance(spec, UniGenSpec):
        raise TypeError(f"spec must be a UniGenSpec, got {type(spec).__name__}")
    if vec_env_kind not in VEC_ENV_KINDS:
        raise ValueError(f"vec_env_kind={vec_env_kind!r} is not one of {VEC_ENV_KINDS}")
    check_n_envs(n_envs)
    threads = _worker_threads(n_envs, vec_env_kind, worker_threads)
    if vec_env_kind != "batched":
        kwargs: dict[str, Any] = {"spec": spec}
        if threads is not None:
            kwargs["torch_threads"] = threads
        return make_vec_env(
            _subproc_env,
            n_envs=n_envs,
            seed=seed,
            env_kwargs=kwargs,
            vec_env_cls=DummyVecEnv if vec_env_kind == "dummy" else SubprocVecEnv,
            vec_env_kwargs=vec_env_kwargs,
        )
    if vec_env_kwargs:
        raise ValueError(
            f"vec_env_kwargs={vec_env_kwargs!r} are SubprocVecEnv's; "
            f"vec_env_kind={vec_env_kind!r} takes none"
        )
    raw = UniGenVecEnv(n_envs, spec.task, seed=seed, **spec.env_kwargs())
    venv: VecEnv = _stack(raw, spec, _BATCHED, monitor=monitor)
    return venv


def make_unigen_vec_env(
    n_envs: int = 8,
    task: str | UniGenSpec = "unified",
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
    monitor: bool = True,
    vec_env_kwargs: dict[str, Any] | None = None,
    worker_threads: int | None = None,
    spec: UniGenSpec | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """Build an SB3-ready VecEnv of ``n_envs`` UniGen envs (the VecEnv form of ``make_unigen_env``).

    ``vec_env_kind="batched"``: :class:`~unigen_sb3.envs.vec_env.UniGenVecEnv` ->
    :class:`~unigen_sb3.wrappers.vec.VecHybridAction` -> (``obs="image"``)
    :class:`~unigen_sb3.wrappers.vec.VecImageObs` -> :class:`VecUnifiedReward` ->
    ``VecMonitor``. ``"dummy"`` / ``"subproc"``: SB3's ``make_vec_env`` over
    :func:`make_unigen_env` stacks (one env per slot, each in a ``Monitor``), with
    ``DummyVecEnv`` / ``SubprocVecEnv`` (whose workers get ``worker_threads`` torch threads
    each). All three give env ``i`` the tasks of seed ``seed + i``, the same spaces, and
    expose the spec (``venv.get_attr("spec_unigen")``).

    :param n_envs: number of envs.
    :param task: ``"generate"``, ``"edit"`` or ``"unified"`` (or a spec).
    :param action: the action encoding (see ``make_unigen_env``).
    :param obs: ``"image"`` (for ``CnnPolicy``) or ``"dict"`` (for ``MultiInputPolicy``).
    :param seed: env ``i`` is seeded with ``seed + i``.
    :param w_quality: weight of R_quality.
    :param w_edit: weight of R_edit.
    :param w_consistency: weight of R_consistency.
    :param vec_env_kind: one of :data:`~unigen_sb3.spec.VEC_ENV_KINDS`.
    :param normalization: ``"bounded"`` or ``"running"``.
    :param shaping: optional potential-based shaping (its gamma must be the algorithm's).
    :param action_options: options of the action encoding (see
        :func:`~unigen_sb3.wrappers.actions.make_codec`).
    :param monitor: add ``VecMonitor`` to the batched stack (episode returns for SB3's logger).
    :param vec_env_kwargs: passed to ``SubprocVecEnv`` (e.g. ``start_method``).
    :param worker_threads: torch threads in each ``SubprocVecEnv`` worker (``"subproc"``
        only). Default: ``max(1, torch.get_num_threads() // n_envs)``, so that the workers
        together use about the threads this process would. Without a limit each worker's
        torch starts one thread per core and N workers oversubscribe the CPU: on 2 cores,
        N=8 ran 5.6 env steps/s with torch's default against 193 with one thread each.
    :param spec: the settings as one spec (then give no other setting).
    :param env_kwargs: the other settings of :class:`~unigen_sb3.spec.UniGenSpec`
        (``size``, ``horizon``, ``device``, ``perceptual_backend``, ``metric_dtype``,
        ``edit_fraction``, ``prompt_split``, ``reference``, ``render_mode``).
    :return: the VecEnv.

    Example:
        >>> from stable_baselines3 import PPO
        >>> model = PPO("CnnPolicy", make_unigen_vec_env(n_envs=64), n_steps=16)  # doctest: +SKIP
    """
    given = _call_spec(
        spec,
        task,
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
    return build_vec_env(
        given,
        n_envs,
        seed,
        vec_env_kind=vec_env_kind,
        monitor=monitor,
        vec_env_kwargs=vec_env_kwargs,
        worker_threads=worker_threads,
    )
