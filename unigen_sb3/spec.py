"""``UniGenSpec``: every setting of one UniGen env stack, validated once, frozen.

A spec is what the composition root (:mod:`unigen_sb3.make`) builds a stack from, what
every built stack exposes (``spec_unigen``, read with :func:`spec_of`), and what callbacks
and evaluation read instead of walking wrappers. The path of a setting is: YAML ->
:class:`~unigen_sb3.configs.schema.ExperimentConfig` -> :meth:`UniGenSpec.from_config`
(training or evaluation variant) -> :func:`~unigen_sb3.make.make_unigen_env` /
:func:`~unigen_sb3.make.make_unigen_vec_env` -> the env and wrappers that use it. The keyword
API ``make_unigen_env(task=..., w_quality=...)`` builds a spec the same way
(:meth:`UniGenSpec.from_kwargs`).

Example:
    >>> spec = UniGenSpec(task="edit", size=48)
    >>> spec.weights["edit"], spec.perceptual_backend in ("stlpips", "lpips")
    (0.4, True)
    >>> spec.replace(horizon=6).horizon
    6
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from unigen_sb3.envs.bank import check_task_bank_features, check_task_bank_size
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS
from unigen_sb3.envs.env import DEFAULT_HORIZON, DEFAULT_SIZE, check_env_args, resolve_backend
from unigen_sb3.envs.tasks import PROMPT_SPLITS
from unigen_sb3.rewards.mixed_precision import METRIC_DTYPES
from unigen_sb3.rewards.normalizers import COMPONENT_NAMES, NORMALIZATIONS
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, validate_weights
from unigen_sb3.utils import resolve_device
from unigen_sb3.wrappers.actions import ACTION_ENCODINGS, make_codec

if TYPE_CHECKING:
    from unigen_sb3.configs.schema import ExperimentConfig

__all__ = [
    "ENV_SETTING_NAMES",
    "OBS_MODES",
    "SETTING_NAMES",
    "VEC_ENV_KINDS",
    "UniGenSpec",
    "spec_of",
]

OBS_MODES = ("image", "dict")
"""Observation modes: ``image`` (one uint8 (C,H,W) image for ``CnnPolicy``) or ``dict`` (the
Dict observation for ``MultiInputPolicy``)."""

VEC_ENV_KINDS = ("batched", "dummy", "subproc")
"""Accepted values of ``make_unigen_vec_env(vec_env_kind=...)``."""

SPEC_ATTR = "spec_unigen"
"""The attribute under which every built stack exposes its spec (see :func:`spec_of`)."""


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(value)))


@dataclass(frozen=True, eq=True)
class UniGenSpec:
    """Every setting of a UniGen env stack (frozen; :meth:`replace` makes a changed copy).

    Validated once, when it is made: a bad value raises :class:`ValueError` (or
    :class:`TypeError` for a wrong kind of object) naming the setting, the value and what is
    accepted. ``perceptual_backend`` and ``device`` are recorded resolved (``"auto"``
    becomes the backend / device this process uses), so a stack and its evaluation load
    the same network once.

    :param task: ``"generate"``, ``"edit"`` or ``"unified"``.
    :param size: canvas side in pixels (at least 36).
    :param horizon: steps before truncation (at least 1).
    :param action: the action encoding, one of ``ACTION_ENCODINGS``.
    :param action_options: options of the encoding (see
        :func:`~unigen_sb3.wrappers.actions.make_codec`), checked by building its codec.
    :param obs: one of :data:`OBS_MODES`.
    :param weights: component name -> weight, for every component (each in [0, 1], summing
        to 1).
    :param normalization: one of :data:`NORMALIZATIONS`.
    :param shaping: optional potential-based shaping (its gamma must be the algorithm's).
    :param perceptual_backend: ``"auto"``, ``"stlpips"`` or ``"lpips"``; recorded resolved.
    :param device: ``"auto"`` or a torch device; recorded resolved (e.g. ``"cpu"``).
    :param metric_dtype: one of :data:`~unigen_sb3.rewards.mixed_precision.METRIC_DTYPES`.
    :param dense_components: ``True``: the raw env computes every reward component on every
        step (``info["state_components"]``, for per-step logging); ``False`` (default): only
        those the shaping potential reads, and all three at an episode's end (paid rewards
        are the same either way; see :meth:`env_kwargs`).
    :param task_bank_size: ``None`` or tasks per env drawn once and kept on the device (see
        :class:`~unigen_sb3.envs.bank.TaskBank`).
    :param task_bank_features: with a task bank, keep each banked task's target features
        (and a shapes scene start's, the start distance and target realism) after its first
        episode (see :class:`~unigen_sb3.envs.bank.TargetFeatureCache`).
    :param prompt_split: ``"train"``, ``"heldout"`` or ``None`` (all prompts).
    :param edit_fraction: probability of an editing task when ``task="unified"``.
    :param reference: ``"hidden"`` or ``"observed"`` (see
        :class:`~unigen_sb3.envs.env.UniGenEnv`).
    :param render_mode: ``"rgb_array"`` or ``None``.
    """

    task: str = "unified"
    size: int = DEFAULT_SIZE
    horizon: int = DEFAULT_HORIZON
    action: str = "box"
    action_options: Mapping[str, Any] = field(default_factory=dict)
    obs: str = "image"
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    normalization: str = "bounded"
    shaping: PotentialShaping | None = None
    perceptual_backend: str = "auto"
    device: str = "auto"
    metric_dtype: str = "float32"
    dense_components: bool = False
    task_bank_size: int | None = None
    task_bank_features: bool = False
    prompt_split: str | None = "train"
    edit_fraction: float = 0.5
    reference: str = "hidden"
    render_mode: str | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        check_env_args(self.task, self.size, self.horizon, self.render_mode, self.reference)
        put("size", int(self.size))
        put("horizon", int(self.horizon))
        if self.action not in ACTION_ENCODINGS:
            raise ValueError(f"action={self.action!r} is not one of {ACTION_ENCODINGS}")
        if not isinstance(self.action_options, Mapping):
            raise TypeError(f"action_options must be a mapping, got {self.action_options!r}")
        # Building the codec checks every option's name and value, here and once.
        make_codec(self.action, NUM_OPS, NUM_PARAMS, **dict(self.action_options))
        put("action_options", _frozen_mapping(self.action_options))
        if self.obs not in OBS_MODES:
            raise ValueError(f"obs={self.obs!r} is not one of {OBS_MODES}")
        if not isinstance(self.weights, Mapping):
            raise TypeError(f"weights must be a mapping of {list(COMPONENT_NAMES)}")
        put("weights", MappingProxyType(validate_weights(self.weights)))
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={self.normalization!r} is not one of {NORMALIZATIONS}")
        if self.shaping is not None and not isinstance(self.shaping, PotentialShaping):
            raise TypeError(
                f"shaping must be a PotentialShaping or None, got {type(self.shaping).__name__}"
            )
        put("perceptual_backend", resolve_backend(self.perceptual_backend))
        put("device", str(resolve_device(self.device)))
        metric_dtype = "float32" if self.metric_dtype is None else self.metric_dtype
        if metric_dtype not in METRIC_DTYPES:
            raise ValueError(
                f"metric_dtype={self.metric_dtype!r} is not one of {tuple(METRIC_DTYPES)}"
            )
        put("metric_dtype", metric_dtype)
        put("task_bank_size", check_task_bank_size(self.task_bank_size))
        put(
            "task_bank_features",
            check_task_bank_features(self.task_bank_features, self.task_bank_size),
        )
        if not isinstance(self.dense_components, bool):
            raise ValueError(f"dense_components={self.dense_components!r} must be true or false")
        if self.prompt_split not in PROMPT_SPLITS:
            raise ValueError(f"prompt_split={self.prompt_split!r} is not one of {PROMPT_SPLITS}")
        fraction = self.edit_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not math.isfinite(fraction)
            or not 0.0 <= fraction <= 1.0
        ):
            raise ValueError(f"edit_fraction={fraction!r} must be a number in [0, 1]")
        put("edit_fraction", float(fraction))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_kwargs(
        cls,
        task: str = "unified",
        action: str = "box",
        obs: str = "image",
        w_quality: float = DEFAULT_WEIGHTS["quality"],
        w_edit: float = DEFAULT_WEIGHTS["edit"],
        w_consistency: float = DEFAULT_WEIGHTS["consistency"],
        *,
        normalization: str = "bounded",
        shaping: PotentialShaping | None = None,
        action_options: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> UniGenSpec:
        """The spec of ``make_unigen_env``'s keyword API (weights as ``w_<component>``).

        :param settings: any other field of :class:`UniGenSpec` (``size``, ``horizon``,
            ``device``, ``perceptual_backend``, ``edit_fraction``, ``prompt_split``,
            ``reference``, ``metric_dtype``, ``render_mode``).
        :raises TypeError: for a keyword that is no setting, naming the accepted ones.
        """
        unknown = sorted(set(settings) - set(SETTING_NAMES))
        if unknown:
            raise TypeError(
                f"unknown setting(s) {unknown}; accepted: task, action, obs, w_quality, "
                f"w_edit, w_consistency, normalization, shaping, action_options, "
                f"{', '.join(n for n in SETTING_NAMES if n not in _KEYWORD_FIELDS)}"
            )
        if action_options is not None and not isinstance(action_options, Mapping):
            raise TypeError(f"action_options must be a mapping, got {action_options!r}")
        weights = {"quality": w_quality, "edit": w_edit, "consistency": w_consistency}
        return cls(
            task=task,
            action=action,
            obs=obs,
            weights=weights,
            normalization=normalization,
            shaping=shaping,
            action_options=dict(action_options or {}),
            **settings,
        )

    @classmethod
    def from_config(
        cls,
        config: ExperimentConfig,
        *,
        evaluation: bool = False,
        shaping: PotentialShaping | None = None,
    ) -> UniGenSpec:
        """The training or evaluation spec of an experiment config.

        :param config: the validated config.
        :param evaluation: the evaluation variant: ``evaluation.weights`` (else the
            training weights), ``evaluation.prompt_split``, bounded normalization over the
            components' declared ranges and no shaping, whatever training used, so every
            run is scored on one yardstick.
        :param shaping: the training stack's shaping (see
            :func:`~unigen_sb3.experiments.runner.make_shaping`); ignored for evaluation.
        """
        env = config.env
        # Every ``env.*`` key that names a setting is taken by name: a new setting needs no
        # line here.
        values: dict[str, Any] = {
            f.name: getattr(env, f.name) for f in dataclasses.fields(env) if f.name in SETTING_NAMES
        }
        if evaluation and config.evaluation.weights is not None:
            values["weights"] = dict(config.evaluation.weights)
        else:
            values["weights"] = config.reward.effective_weights()
        values["normalization"] = "bounded" if evaluation else config.reward.normalization
        values["shaping"] = None if evaluation else shaping
        if evaluation:
            values["prompt_split"] = config.evaluation.prompt_split
        return cls(**values)

    def replace(self, **changes: Any) -> UniGenSpec:
        """A copy with ``changes`` applied, validated like a new spec."""
        unknown = sorted(set(changes) - set(SETTING_NAMES))
        if unknown:
            raise TypeError(f"unknown setting(s) {unknown}; accepted: {list(SETTING_NAMES)}")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ reading
    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~unigen_sb3.envs.env.UniGenEnv` and
        :class:`~unigen_sb3.envs.vec_env.UniGenVecEnv` (besides ``task`` and ``seed``).

        ``dense_components`` is what the raw env must compute every step: all three when
        the spec says so or when the shaping potential is a callable (it may read any of
        them), the potential's component for shaping on a named one, none otherwise.
        """
        kwargs = {name: getattr(self, name) for name in ENV_SETTING_NAMES}
        dense: bool | tuple[str, ...] = self.dense_components
        if not dense and self.shaping is not None:
            potential = self.shaping.potential
            dense = (potential,) if isinstance(potential, str) else True
        kwargs["dense_components"] = dense
        return kwargs

    def weight_tuple(self) -> tuple[float, ...]:
        """The weights in ``COMPONENT_NAMES`` order."""
        return tuple(self.weights[n] for n in COMPONENT_NAMES)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain values (shaping as its settings, or None), for reports."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, PotentialShaping):
                potential = value.potential
                value = {
                    "gamma": value.gamma,
                    "potential": potential if isinstance(potential, str) else "<callable>",
                    "scale": value.scale,
                }
            out[f.name] = value
        return out


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UniGenSpec))
"""Every setting of a :class:`UniGenSpec`, in field order."""

_KEYWORD_FIELDS = frozenset(
    {"task", "action", "obs", "weights", "normalization", "shaping", "action_options"}
)

ENV_SETTING_NAMES: tuple[str, ...] = tuple(n for n in SETTING_NAMES if n not in _KEYWORD_FIELDS)
"""The settings the raw env takes as keywords (every setting but the task and the stack's
own: action encoding, observation mode and reward unification)."""


def spec_of(env: Any) -> UniGenSpec:
    """The spec a stack was built from: a gymnasium env of ``make_unigen_env`` (any wrapper
    around it) or a VecEnv of ``make_unigen_vec_env`` (any kind, any ``VecEnvWrapper`` s).

    :raises ValueError: when ``env`` was not built by the composition root (no spec).
    """
    value: Any = None
    try:
        if hasattr(env, "get_wrapper_attr"):
            value = env.get_wrapper_attr(SPEC_ATTR)
        elif hasattr(env, "get_attr"):
            value = env.get_attr(SPEC_ATTR, [0])[0]
    except AttributeError:
        value = None
    if not isinstance(value, UniGenSpec):
        raise ValueError(
            f"{type(env).__name__} carries no UniGenSpec ({SPEC_ATTR}); build it with "
            "unigen_sb3.make_unigen_env / make_unigen_vec_env, or pass the settings (a "
            "UniGenSpec or a dict of make_unigen_env keywords) explicitly"
        )
    return value
