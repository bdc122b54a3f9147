"""Map raw reward components onto ``[0, 1]`` so that the unifier's weights mean what they say.

Two normalizers share one interface (``update``, ``__call__``, ``state_dict``,
``load_state_dict``):

- :class:`BoundedNormalizer` maps each component's declared range (the env's
  ``reward_space.low``/``high``) affinely onto ``[0, 1]``;
- :class:`RunningNormalizer` standardizes each component with running
  statistics and squashes the clipped z-score with a sigmoid.

A third value of :data:`Normalization`, ``"raw_sum"``, is the baseline *without*
normalization: the reward is the plain, unweighted sum of the raw sub-metrics (see
:class:`~unigen_sb3.rewards.unifier.RewardUnifier`), the scale imbalance the unified reward
exists to avoid. Its components are still reported (for logging) through a
:class:`BoundedNormalizer`, which is what :func:`make_normalizer` builds for it.

Both accept one vector ``(K,)`` or a batch ``(N, K)`` (numpy, torch, or
anything :func:`numpy.asarray` takes) and refuse NaN/inf with a message naming
the component, so a broken metric is caught where it enters the reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, get_args

import numpy as np

from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.utils import is_int

Normalization = Literal["bounded", "running", "raw_sum"]
"""A component normalization accepted by :func:`make_normalizer`."""

NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
"""The accepted values of :data:`Normalization` (``make_normalizer(kind=...)``)."""


class Normalizer(Protocol):
    """What the unifier needs from a normalizer."""

    names: tuple[str, ...]

    def update(self, x: Any) -> None: ...

    def __call__(self, x: Any) -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def as_component_array(x: Any, names: Sequence[str]) -> np.ndarray:
    """Validate raw reward components and return them as a float64 array.

    :param x: one vector ``(K,)`` or a batch ``(N, K)``; numpy, torch (any
        device) or a sequence of numbers.
    :param names: the component names, ``K = len(names)``; used in messages.
    :return: a float64 array of the same shape (a copy).
    :raises ValueError: for a wrong shape or last-dimension length, or a
        NaN/inf entry (the message names the component and the value).
    """
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"reward components must be numbers, got {type(x).__name__}: {x!r}"
        ) from exc
    k = len(names)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"reward components must have shape ({k},) or (N, {k}), got shape {arr.shape}"
        )
    if arr.shape[-1] != k:
        raise ValueError(
            f"reward components: expected last dimension {k} ({', '.join(names)}), "
            f"got {arr.shape[-1]} (shape {arr.shape})"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = arr.reshape(-1, k)
        bad_rows = bad.reshape(-1, k)
        problems = []
        for j, name in enumerate(names):
            if bad_rows[:, j].any():
                first = rows[bad_rows[:, j], j][0]
                problems.append(f"{name}={first}")
        raise ValueError(
            f"reward components must be finite, got {', '.join(problems)}; "
            "check the metric that produced them"
        )
    return arr


def _check_names(names: Sequence[str], n: int) -> tuple[str, ...]:
    names = tuple(str(s) for s in names)
    if len(names) != n:
        raise ValueError(f"names has {len(names)} entries {names}, but there are {n} components")
    if len(set(names)) != n:
        raise ValueError(f"names must be distinct, got {names}")
    return names


class BoundedNormalizer:
    """Affine map of each component's declared range ``[low, high]`` onto ``[0, 1]``, clipped.

    :param low: per-component lower bound, length ``len(names)``.
    :param high: per-component upper bound, each strictly above ``low``.
    :param names: component names, in the order of the vector.

    Example:
        >>> norm = BoundedNormalizer(low=[0, 0, -1], high=[1, 2, 1])
        >>> norm([0.5, 1.0, 0.0]).tolist()
        [0.5, 0.5, 0.5]
    """

    def __init__(
        self,
        low: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        names: Sequence[str] = COMPONENT_NAMES,
    ) -> None:
        low_arr = np.asarray(low, dtype=np.float64).reshape(-1)
        high_arr = np.asarray(high, dtype=np.float64).reshape(-1)
        self.names = _check_names(names, len(tuple(names)))
        self._set_bounds(low_arr, high_arr)

    def _set_bounds(self, low: np.ndarray, high: np.ndarray) -> None:
        k = len(self.names)
        if low.shape != (k,) or high.shape != (k,):
            raise ValueError(
                f"low and high need {k} entries ({', '.join(self.names)}), "
                f"got {low.shape[0]} and {high.shape[0]}"
            )
        for name, lo, hi in zip(self.names, low, high, strict=True):
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError(
                    f"bounds of {name} must be finite, got low={lo}, high={hi}; "
                    "use the running normalizer for unbounded components"
                )
            if not hi > lo:
                raise ValueError(f"bounds of {name} need high > low, got low={lo}, high={hi}")
        self.low = low.copy()
        self.high = high.copy()

    def update(self, x: Any) -> None:
        """Validate ``x``; a fixed range learns nothing (kept so the normalizers interchange).

        :param x: components ``(K,)`` or ``(N, K)``.
        """
        as_component_array(x, self.names)

    def __call__(self, x: Any) -> np.ndarray:
        """Normalize components.

        :param x: components ``(K,)`` or ``(N, K)``.
        :return: float64 array of the same shape, in ``[0, 1]``.
        """
        arr = as_component_array(x, self.names)
        return np.clip((arr - self.low) / (self.high - self.low), 0.0, 1.0)

    def state_dict(self) -> dict[str, Any]:
        """:return: the bounds and names as plain Python lists (picklable, JSON-able)."""
        return {
            "kind": "bounded",
            "names": list(self.names),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`.

        :param state: a dict produced by :meth:`state_dict`.
        :raises ValueError: if it belongs to another kind or other components.
        """
        _check_state(state, "bounded", self.names)
        self._set_bounds(
            np.asarray(state["low"], dtype=np.float64), np.asarray(state["high"], dtype=np.float64)
        )

    def __repr__(self) -> str:
        return f"BoundedNormalizer(low={self.low.tolist()}, high={self.high.tolist()})"


class RunningNormalizer:
    """Standardize with running statistics, then squash: ``sigmoid(clip((x - mean) / std))``.

    The mean and variance are merged batch by batch with the parallel
    (Chan et al.) form of Welford's update, which equals the statistics of all
    data seen so far without storing it. The sigmoid keeps the output in
    ``[0, 1]`` (a z-score of 0 maps to 0.5); clipping first bounds the effect of
    outliers.

    :param n: number of components.
    :param names: component names; defaults to :data:`COMPONENT_NAMES` when
        ``n == 3``, else ``component_0 ...``.
    :param epsilon: added to the variance before the square root, so that a
        constant component does not divide by zero.
    :param clip: z-scores are clipped to ``[-clip, clip]``.

    Example:
        >>> norm = RunningNormalizer(3)
        >>> norm.update([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])
        >>> norm([1.0, 2.0, 3.0]).tolist()
        [0.5, 0.5, 0.5]
    """

    def __init__(
        self,
        n: int,
        names: Sequence[str] | None = None,
        epsilon: float = 1e-8,
        clip: float = 5.0,
    ) -> None:
        if not is_int(n) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if names is None:
            names = (
                COMPONENT_NAMES
                if n == len(COMPONENT_NAMES)
                else [f"component_{i}" for i in range(n)]
            )
        self.names = _check_names(names, int(n))
        self.epsilon, self.clip = _check_epsilon_clip(epsilon, clip)
        self.mean = np.zeros(int(n), dtype=np.float64)
        self.var = np.ones(int(n), dtype=np.float64)
        self.count = 0

    def update(self, x: Any) -> None:
        """Merge a vector ``(K,)`` or batch ``(N, K)`` into the running mean and variance.

        :param x: raw components.
        :raises ValueError: for invalid input, or if the merged statistics
            would overflow (then nothing changes).
        """
        batch = as_component_array(x, self.names).reshape(-1, len(self.names))
        n_b = batch.shape[0]
        if n_b == 0:
            return
        mean_b = batch.mean(axis=0)
        var_b = batch.var(axis=0)
        total = self.count + n_b
        delta = mean_b - self.mean
        new_mean = self.mean + delta * (n_b / total)
        # Sum of squared deviations of both parts plus the between-part term (Chan et al. 1979).
        m2 = self.var * self.count + var_b * n_b + delta**2 * (self.count * n_b / total)
        new_var = m2 / total
        if not (np.isfinite(new_mean).all() and np.isfinite(new_var).all()):
            raise ValueError(
                "running statistics overflowed "
                f"(mean={new_mean.tolist()}, var={new_var.tolist()}); "
                f"the components are too large to standardize: batch mean {mean_b.tolist()}"
            )
        self.mean, self.var, self.count = new_mean, new_var, total

    def __call__(self, x: Any) -> np.ndarray:
        """Normalize components with the current statistics (does not update them).

        :param x: components ``(K,)`` or ``(N, K)``.
        :return: float64 array of the same shape, in ``[0, 1]``.
        """
        arr = as_component_array(x, self.names)
        # errstate: a huge |x - mean| may overflow to inf, which the clip then bounds.
        with np.errstate(over="ignore"):
            z = (arr - self.mean) / np.sqrt(self.var + self.epsilon)
        z = np.clip(z, -self.clip, self.clip)
        return 1.0 / (1.0 + np.exp(-z))

    def state_dict(self) -> dict[str, Any]:
        """:return: the statistics and settings as plain Python values (picklable, JSON-able)."""
        return {
            "kind": "running",
            "names": list(self.names),
            "mean": self.mean.tolist(),
            "var": self.var.tolist(),
            "count": int(self.count),
            "epsilon": self.epsilon,
            "clip": self.clip,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`.

        :param state: a dict produced by :meth:`state_dict`.
        :raises ValueError: if it belongs to another kind or other components, or is malformed.
        """
        _check_state(state, "running", self.names)
        k = len(self.names)
        mean = np.asarray(state["mean"], dtype=np.float64)
        var = np.asarray(state["var"], dtype=np.float64)
        count = state["count"]
        if not is_int(count):
            raise ValueError(f"state count must be an int, got {count!r}")
        count = int(count)
        # Checked before anything is assigned: a refused state leaves this normalizer as it was.
        epsilon, clip = _check_epsilon_clip(
            state.get("epsilon", self.epsilon), state.get("clip", self.clip), "state "
        )
        if mean.shape != (k,) or var.shape != (k,):
            raise ValueError(
                f"state mean/var need {k} entries, got shapes {mean.shape} and {var.shape}"
            )
        if count < 0 or (var < 0).any() or not np.isfinite(np.concatenate([mean, var])).all():
            raise ValueError(
                f"state is malformed: count={count}, mean={mean.tolist()}, var={var.tolist()}"
            )
        self.mean, self.var, self.count = mean, var, count
        self.epsilon, self.clip = epsilon, clip

    def __repr__(self) -> str:
        return (
            f"RunningNormalizer(n={len(self.names)}, count={self.count}, "
            f"mean={self.mean.tolist()}, var={self.var.tolist()})"
        )


def _check_epsilon_clip(epsilon: Any, clip: Any, prefix: str = "") -> tuple[float, float]:
    """``(epsilon, clip)`` as floats; each must be a positive finite number."""
    for name, value in (("epsilon", epsilon), ("clip", clip)):
        ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        )
        if not (ok and np.isfinite(value) and value > 0):
            raise ValueError(f"{prefix}{name} must be a positive finite number, got {value!r}")
    return float(epsilon), float(clip)


def _check_state(state: dict[str, Any], kind: str, names: tuple[str, ...]) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"state must be a dict from state_dict(), got {type(state).__name__}")
    if state.get("kind") != kind:
        raise ValueError(f"state is for a {state.get('kind')!r} normalizer, this one is {kind!r}")
    if tuple(state.get("names", ())) != names:
        raise ValueError(
            f"state is for components {state.get('names')}, this one has {list(names)}"
        )


def make_normalizer(
    kind: Normalization,
    *,
    low: Sequence[float] | np.ndarray | None = None,
    high: Sequence[float] | np.ndarray | None = None,
    names: Sequence[str] = COMPONENT_NAMES,
) -> BoundedNormalizer | RunningNormalizer:
    """Build a normalizer by name.

    :param kind: ``"bounded"`` (needs ``low`` and ``high``), ``"running"``, or ``"raw_sum"``
        (the reward is the sum of the sub-metrics; the components it reports are mapped as
        ``"bounded"`` does, so it needs ``low`` and ``high`` too).
    :param low: per-component lower bounds (bounded only).
    :param high: per-component upper bounds (bounded only).
    :param names: component names.
    :return: the normalizer.
    :raises ValueError: for an unknown kind, or bounded without bounds.
    """
    if kind in ("bounded", "raw_sum"):
        if low is None or high is None:
            raise ValueError(
                f"normalization={kind!r} needs low and high, got low={low!r}, high={high!r}"
            )
        return BoundedNormalizer(low, high, names=names)
    if kind == "running":
        return RunningNormalizer(len(names), names=names)
    accepted = " or ".join(repr(k) for k in NORMALIZATIONS)
    raise ValueError(f"normalization={kind!r} is not known; use {accepted}")
