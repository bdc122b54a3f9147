"""The reward unifier: raw components -> normalized to ``[0, 1]`` -> one weighted scalar.

``R_total = w_quality * Q + w_edit * E + w_consistency * C`` with each weight in
``[0, 1]`` and the weights summing to 1, so ``R_total`` lies in ``[0, 1]`` too.
(The design document calls the weights alpha, beta, gamma; here they are named
after their components, so the consistency weight cannot be confused with the
discount factor gamma.)

``normalization="raw_sum"`` is the un-normalized baseline the unified reward is compared
with: the reward is the plain sum of the raw sub-metrics (:data:`RAW_SUM_TERMS`, seven
terms, so it lies in ``[0, 7]``; the weights do not enter it), computed by
:func:`sub_metric_sums` from the env's ``info["sub_metrics"]``. Its scale is unbalanced on
purpose: edit has three terms, quality and consistency two, and the guards (realism,
preservation, temporal) are near 1 for an untouched canvas, so doing nothing already
collects about 3 (where every unified component pays 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from unigen_sb3.rewards.names import SUB_METRICS
from unigen_sb3.rewards.normalizers import (
    COMPONENT_NAMES,
    BoundedNormalizer,
    Normalization,
    RunningNormalizer,
    as_component_array,
    make_normalizer,
)

__all__ = [
    "COMPONENT_NAMES",
    "DEFAULT_WEIGHTS",
    "RAW_SUM_TERMS",
    "RewardUnifier",
    "UnifiedReward",
    "sub_metric_sums",
    "validate_weights",
]

#: Default weight of each component; the single source of truth for every default in the package.
DEFAULT_WEIGHTS: dict[str, float] = {"quality": 0.4, "edit": 0.4, "consistency": 0.2}

_SUM_TOLERANCE = 1e-6

RAW_SUM_TERMS: tuple[str, ...] = tuple(f"{c}/{n}" for c in COMPONENT_NAMES for n in SUB_METRICS[c])
"""The sub-metrics ``normalization="raw_sum"`` adds up, as ``"<component>/<sub-metric>"``."""

_TEMPORAL = "consistency/temporal"


def sub_metric_sums(
    sub_metrics: Mapping[str, Any], *, temporal_min: float | None = None
) -> np.ndarray:
    """Per component, the plain sum of its raw sub-metrics: what ``"raw_sum"`` pays.

    :param sub_metrics: ``"<component>/<sub-metric>"`` -> value, as the env reports them in
        ``info["sub_metrics"]``. A sub-metric the env does not compute (``quality/realism``
        without a realism model) is left out of the sum.
    :param temporal_min: the episode's lowest temporal coherence (``info["temporal_min"]``);
        given, it replaces ``consistency/temporal`` (the last transition's), as the env's own
        consistency does, so that a final idle step cannot hide a jarring one.
    :return: ``(3,)`` float64 sums in :data:`COMPONENT_NAMES` order.
    :raises ValueError: when none of :data:`RAW_SUM_TERMS` is given, or a value is not finite.

    Example:
        >>> sub = {"quality/perceptual": 0.5, "quality/realism": 1.0, "edit/accuracy": 0.0,
        ...        "edit/localization": 0.0, "edit/preservation": 1.0,
        ...        "consistency/style": 0.0, "consistency/temporal": 1.0}
        >>> sub_metric_sums(sub, temporal_min=0.5).tolist()
        [1.5, 1.0, 0.5]
    """
    values = dict(sub_metrics)
    if temporal_min is not None:
        values[_TEMPORAL] = temporal_min
    present = [t for t in RAW_SUM_TERMS if t in values]
    if not present:
        raise ValueError(
            f"normalization='raw_sum' needs the env's sub-metrics (info['sub_metrics'] with "
            f"{list(RAW_SUM_TERMS)}); got keys {sorted(sub_metrics)}"
        )
    sums = np.zeros(len(COMPONENT_NAMES))
    for term in present:
        value = float(values[term])
        if not math.isfinite(value):
            raise ValueError(f"sub-metric {term}={value} is not finite")
        sums[COMPONENT_NAMES.index(term.split("/", 1)[0])] += value
    return sums


def validate_weights(weights: Mapping[str, Any], *, normalize: bool = False) -> dict[str, float]:
    """Check component weights and return them as floats, in :data:`COMPONENT_NAMES` order.

    :param weights: component name -> weight, for every component.
    :param normalize: if True, rescale non-negative weights with a positive
        sum so they sum to 1; if False, they must already lie in ``[0, 1]`` and
        sum to 1 within ``1e-6``.
    :return: the validated (possibly rescaled) weights.
    :raises ValueError: naming every weight and their sum when they are not accepted.
    """
    if set(weights) != set(COMPONENT_NAMES):
        raise ValueError(
            f"weights must name exactly {list(COMPONENT_NAMES)}, got {sorted(weights)}"
        )
    values: dict[str, float] = {}
    for name in COMPONENT_NAMES:
        w = weights[name]
        try:
            values[name] = float(w)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"w_{name} must be a number, got {w!r}") from exc
    listing = ", ".join(f"w_{name}={values[name]:g}" for name in COMPONENT_NAMES)
    total = math.fsum(values.values()) if all(map(math.isfinite, values.values())) else math.nan
    bad = [f"w_{n}={v:g}" for n, v in values.items() if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise ValueError(
            f"{', '.join(bad)} not accepted ({listing}): each weight must be a finite number >= 0"
        )
    if normalize:
        if total <= 0:
            raise ValueError(
                f"{listing} sum to {total:g}; normalize_weights=True needs a positive sum"
            )
        return {name: v / total for name, v in values.items()}
    above = [f"w_{n}={v:g}" for n, v in values.items() if v > 1]
    if above or abs(total - 1.0) > _SUM_TOLERANCE:
        reason = f"{', '.join(above)} above 1; " if above else ""
        raise ValueError(
            f"{listing} sum to {total:.6g}; {reason}each weight must lie in [0, 1] and the "
            f"weights must sum to 1 (within {_SUM_TOLERANCE:g}), "
            "or pass normalize_weights=True to rescale them"
        )
    return values


@dataclass(frozen=True)
class UnifiedReward:
    """One unification result.

    For a single vector the fields hold Python floats; for a batch ``(N, 3)``
    they hold ``(N,)`` float64 arrays.

    :param total: ``sum(contributions)``, in ``[0, 1]`` (``"raw_sum"``: in ``[0, 7]``).
    :param components: name -> normalized component in ``[0, 1]``.
    :param contributions: name -> ``weight * normalized component`` (``"raw_sum"``: the sum
        of the component's raw sub-metrics).
    :param raw: name -> raw component as given.
    :param weights: name -> weight used.
    :param ablated: names of components whose weight is 0.
    """

    total: float | np.ndarray
    components: dict[str, float | np.ndarray]
    contributions: dict[str, float | np.ndarray]
    raw: dict[str, float | np.ndarray]
    weights: dict[str, float]
    ablated: tuple[str, ...]


class RewardUnifier:
    """Normalize reward components to ``[0, 1]`` and blend them with weights that sum to 1.

    :param w_quality: weight of the quality component.
    :param w_edit: weight of the edit component.
    :param w_consistency: weight of the consistency component.
    :param normalization: ``"bounded"`` (affine map of ``[low, high]``),
        ``"running"`` (running mean/std, then a sigmoid), or ``"raw_sum"``: no
        normalization, the total is the unweighted sum of the raw sub-metrics given to
        :meth:`__call__` as ``sub_sums`` (see the module docstring); the components are
        still reported, mapped as ``"bounded"`` does. The weights are validated but do not
        enter a ``"raw_sum"`` total.
    :param low: per-component lower bounds (bounded normalization).
    :param high: per-component upper bounds (bounded normalization).
    :param normalize_weights: rescale non-negative weights to sum 1 instead of
        refusing weights that do not sum to 1.

    Example:
        >>> unifier = RewardUnifier(0.5, 0.5, 0.0)
        >>> out = unifier([0.8, 0.4, 1.0])
        >>> round(out.total, 6), out.ablated
        (0.6, ('consistency',))
    """

    def __init__(
        self,
        w_quality: float = DEFAULT_WEIGHTS["quality"],
        w_edit: float = DEFAULT_WEIGHTS["edit"],
        w_consistency: float = DEFAULT_WEIGHTS["consistency"],
        *,
        normalization: Normalization = "bounded",
        low: Any = (0.0, 0.0, 0.0),
        high: Any = (1.0, 1.0, 1.0),
        normalize_weights: bool = False,
    ) -> None:
        self.normalize_weights = bool(normalize_weights)
        self._weights = validate_weights(
            {"quality": w_quality, "edit": w_edit, "consistency": w_consistency},
            normalize=self.normalize_weights,
        )
        self.normalization = normalization
        self.normalizer: BoundedNormalizer | RunningNormalizer = make_normalizer(
            normalization, low=low, high=high, names=COMPONENT_NAMES
        )
        self.names = COMPONENT_NAMES

    @property
    def weights(self) -> dict[str, float]:
        """:return: a copy of the current weights, name -> weight."""
        return dict(self._weights)

    @property
    def ablated(self) -> tuple[str, ...]:
        """:return: names of the components whose weight is 0 (switched off)."""
        return tuple(name for name in COMPONENT_NAMES if self._weights[name] == 0.0)

    def set_weights(
        self,
        *,
        w_quality: float | None = None,
        w_edit: float | None = None,
        w_consistency: float | None = None,
    ) -> None:
        """Change the weights; ``None`` keeps a weight. Validated as in ``__init__``.

        Atomic: on error nothing changes.

        :param w_quality: new quality weight.
        :param w_edit: new edit weight.
        :param w_consistency: new consistency weight.
        :raises ValueError: if the resulting weights are not accepted.
        """
        given = {"quality": w_quality, "edit": w_edit, "consistency": w_consistency}
        merged = {n: self._weights[n] if w is None else w for n, w in given.items()}
        self._weights = validate_weights(merged, normalize=self.normalize_weights)

    def normalize(self, raw: Any, *, update: bool = False) -> np.ndarray:
        """Normalize raw components without weighting them.

        :param raw: ``(3,)`` or ``(N, 3)`` raw components.
        :param update: merge ``raw`` into the running statistics first (running only).
        :return: float64 array of the same shape, in ``[0, 1]``.
        """
        arr = as_component_array(raw, COMPONENT_NAMES)
        if update:
            self.normalizer.update(arr)
        return self.normalizer(arr)

    def __call__(self, raw: Any, *, update: bool = True, sub_sums: Any = None) -> UnifiedReward:
        """Unify raw components into one reward.

        :param raw: ``(3,)`` or ``(N, 3)`` raw components (numpy or torch).
        :param update: with running normalization, merge ``raw`` into the
            statistics before normalizing.
        :param sub_sums: ``"raw_sum"`` only (and required there): the per-component sums of
            the raw sub-metrics (:func:`sub_metric_sums`), shaped like ``raw``.
        :return: the :class:`UnifiedReward`.
        :raises ValueError: for a wrong length or a NaN/inf component, or ``sub_sums``
            missing with ``"raw_sum"`` (given without it).
        """
        arr = as_component_array(raw, COMPONENT_NAMES)
        normed = self.normalize(arr, update=update)
        raw_sum = self.normalization == "raw_sum"
        if raw_sum != (sub_sums is not None):
            raise ValueError(
                "sub_sums is required with normalization='raw_sum' and accepted only there; "
                f"this unifier uses normalization={self.normalization!r}"
            )
        if raw_sum:
            contrib = as_component_array(sub_sums, COMPONENT_NAMES)
            if contrib.shape != arr.shape:
                raise ValueError(f"sub_sums has shape {contrib.shape}, raw has {arr.shape}")
            total = contrib.sum(axis=-1)
        else:
            w = np.array([self._weights[n] for n in COMPONENT_NAMES])
            contrib = normed * w
            # Weights may sum to 1 +- 1e-6; the clip keeps the documented [0, 1] range exact.
            total = np.clip(contrib.sum(axis=-1), 0.0, 1.0)
        single = arr.ndim == 1

        def pick(a: np.ndarray, j: int) -> float | np.ndarray:
            return float(a[j]) if single else a[:, j].copy()

        return UnifiedReward(
            total=float(total) if single else total,
            components={n: pick(normed, j) for j, n in enumerate(COMPONENT_NAMES)},
            contributions={n: pick(contrib, j) for j, n in enumerate(COMPONENT_NAMES)},
            raw={n: pick(arr, j) for j, n in enumerate(COMPONENT_NAMES)},
            weights=self.weights,
            ablated=self.ablated,
        )

    def state_dict(self) -> dict[str, Any]:
        """:return: weights and normalizer state as plain Python values (picklable)."""
        return {
            "weights": self.weights,
            "normalize_weights": self.normalize_weights,
            "normalization": self.normalization,
            "normalizer": self.normalizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (atomic: validated before anything changes).

        :param state: a dict produced by :meth:`state_dict`.
        :raises ValueError: if the state does not fit this unifier.
        """
        if state.get("normalization") != self.normalization:
            raise ValueError(
                f"state uses normalization={state.get('normalization')!r}, "
                f"this unifier uses {self.normalization!r}"
            )
        weights = validate_weights(state["weights"], normalize=bool(state["normalize_weights"]))
        scratch = make_normalizer(
            self.normalization,
            low=state["normalizer"].get("low", (0.0, 0.0, 0.0)),
            high=state["normalizer"].get("high", (1.0, 1.0, 1.0)),
        )
        scratch.load_state_dict(state["normalizer"])
        self._weights = weights
        self.normalize_weights = bool(state["normalize_weights"])
        self.normalizer = scratch

    def __repr__(self) -> str:
        w = ", ".join(f"w_{n}={v:g}" for n, v in self._weights.items())
        return f"RewardUnifier({w}, normalization={self.normalization!r})"
