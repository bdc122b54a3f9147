"""Hybrid-action codecs: the hybrid action <-> one flat action space, and back.

Every codec has the same interface (:class:`ActionCodec`): ``space``, ``encode(hybrid)``,
``decode(flat)``, ``decode_batch(flat_rows)`` and ``action_masks(op_mask)``, the env's
op-validity mask translated into the codec's layout. The encodings, their spaces and the
algorithms that take them are listed in :mod:`unigen_sb3.wrappers.actions`.

Parameter grid (``multidiscrete``): parameter ``j`` with ``b_j`` bins takes the ``b_j``
evenly spaced values ``linspace(-1, 1, b_j)`` (both ends included, so full intensity and
pure colours are reachable); bin ``i`` decodes to ``-1 + 2 i / (b_j - 1)`` and a single bin
decodes to ``0``. Encoding rounds to the nearest value, so ``decode(encode(a))`` is within
half a grid step, ``1 / (b_j - 1)``, of the clipped parameter. The default, 11 bins, gives
steps of 0.2 and hits the region selector's three bins (``p7``).

Default library (``discrete``, :func:`default_action_library`, 463 entries, in this order),
built from the data packages so that every prompt's solution is one entry (edits) or two
(generation: background, then object):

- ``stop``;
- 14 ``fill`` s of the task mask at full strength: the 8 palette colours, then the 6
  generation backgrounds;
- 6 ``attribute`` s on the task mask at full strength: brightness ``+-0.6``, saturation
  ``+-0.5``, hue ``+-1/3`` (the prompts' edits and their opposites);
- 8 ``style`` s (colour casts) on the task mask at full strength, one per palette colour;
- 2 ``refine`` s on the task mask: sharpen (``p6 = 1``), smooth (``p6 = -1``);
- 432 ``fill`` s of a brush shape: 3 shapes x 2 sizes x 9 grid cells x 8 palette colours
  (the generation prompts' layout, :data:`~unigen_sb3.data.prompts.CENTRES` and
  :data:`~unigen_sb3.data.prompts.HALF_EXTENTS`).

Masks: the raw env's ``action_masks()`` is a ``(K,)`` bool op-validity vector. The
multidiscrete layout is the flat concatenation sb3-contrib expects, ``[op mask (K), all-True
(b_0), ..., all-True (b_{P-1})]``; the discrete layout marks library entry ``i`` valid when
its op is.

The validation helpers here (``_check_*``, ``_integer_*``) give every codec the same
messages for a bad hybrid action, a bad flat action and a bad op mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from unigen_sb3.envs.canvas import (
    NUM_OPS,
    NUM_PARAMS,
    OPS,
    PARAM_NAMES,
    REGION_TASK_MASK,
    SHAPE_REGIONS,
    HybridAction,
    region_param,
)
from unigen_sb3.utils import is_int, real_array

__all__ = [
    "DEFAULT_BINS",
    "ActionCodec",
    "BoxCodec",
    "DiscreteCodec",
    "HybridAction",
    "LibraryEntry",
    "MultiDiscreteCodec",
    "default_action_library",
    "hybrid_sizes",
]


LibraryEntry = tuple[str | int, Sequence[float]]
"""One discrete action: ``(op name or id, P parameter values in [-1, 1])``."""

DEFAULT_BINS = 11
"""Bins per continuous parameter in the ``multidiscrete`` encoding (grid step 0.2)."""


class ActionCodec(Protocol):
    """What every hybrid-action codec provides (see the module docstring)."""

    num_ops: int
    num_params: int

    @property
    def space(self) -> gym.Space[Any]:
        """The flat action space SB3 sees."""
        ...

    def encode(self, action: HybridAction) -> np.ndarray:
        """Hybrid action -> this codec's flat action."""
        ...

    def decode(self, action: Any) -> HybridAction:
        """This codec's flat action -> hybrid action."""
        ...

    def decode_batch(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(N, ...)`` flat actions -> ops ``(N,)`` int64 and params ``(N, P)`` float32.

        Row ``i`` equals :meth:`decode` of ``actions[i]``; one vectorised pass for a VecEnv.
        """
        ...

    def action_masks(self, op_mask: np.ndarray) -> np.ndarray:
        """``(K,)`` or ``(N, K)`` op-validity -> masks in this codec's layout."""
        ...


def hybrid_sizes(space: gym.Space[Any]) -> tuple[int, int]:
    """Return ``(K, P)`` of a hybrid action space, checking its structure.

    :raises TypeError: if ``space`` is not ``Dict{"op": Discrete, "params": Box}``.
    """
    if not isinstance(space, spaces.Dict) or set(space.spaces) != {"op", "params"}:
        raise TypeError(
            "expected a hybrid action space Dict{'op': Discrete(K), 'params': Box(P,)}, "
            f"got {space!r}"
        )
    op_space, param_space = space["op"], space["params"]
    if not isinstance(op_space, spaces.Discrete) or not isinstance(param_space, spaces.Box):
        raise TypeError(
            f"expected op: Discrete and params: Box, got op={op_space!r}, params={param_space!r}"
        )
    if len(param_space.shape) != 1:
        raise TypeError(f"params must be a 1-D Box, got shape {param_space.shape}")
    return int(op_space.n), int(param_space.shape[0])


def _check_sizes(num_ops: int, num_params: int) -> None:
    if num_ops < 1 or num_params < 0:
        raise ValueError(
            f"need num_ops >= 1 and num_params >= 0, got num_ops={num_ops}, num_params={num_params}"
        )


def _check_op_mask(op_mask: np.ndarray, num_ops: int) -> np.ndarray:
    """Validate a ``(K,)`` or ``(N, K)`` op mask and return it as bool."""
    arr = np.asarray(op_mask)
    if arr.ndim not in (1, 2) or arr.shape[-1] != num_ops:
        raise ValueError(f"op_mask must have shape ({num_ops},) or (N, {num_ops}), got {arr.shape}")
    if arr.dtype != np.bool_ and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"op_mask must be bool or 0/1, got values {np.unique(arr).tolist()}")
    return arr.astype(bool)


def _op_index(value: Any) -> int:
    """An op index: an integer, or an integer-valued float such as ``2.0`` (not a bool), as a
    scalar or a one-element array (as the env's own action check accepts)."""
    arr = np.asarray(value)
    if arr.size == 1:
        arr = arr.reshape(())
    integral = arr.shape == () and (
        np.issubdtype(arr.dtype, np.integer)
        or (np.issubdtype(arr.dtype, np.floating) and bool(np.isfinite(arr) & (arr == arr.round())))
    )
    if not integral or isinstance(value, bool) or arr.dtype == np.bool_:
        raise ValueError(f"op must be an integer, got {value!r}")
    return int(arr)


def _check_params(action: HybridAction, num_ops: int, num_params: int) -> tuple[int, np.ndarray]:
    """Validate a hybrid action; return ``(op, params clipped to [-1, 1])``."""
    op = _op_index(action["op"])
    if not 0 <= op < num_ops:
        raise ValueError(f"op={op} is out of range [0, {num_ops - 1}]")
    params = real_array(action["params"], "params").reshape(-1)
    if params.shape != (num_params,):
        raise ValueError(f"params has shape {params.shape}, expected ({num_params},)")
    if not np.all(np.isfinite(params)):
        raise ValueError(f"params contains NaN or inf: {params.tolist()}")
    return op, np.clip(params, -1.0, 1.0).astype(np.float32)


def _integer_array(action: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """An integer-valued array of ``shape`` (floats such as ``2.0`` are accepted)."""
    arr = np.asarray(action)
    if arr.shape != shape:
        raise ValueError(f"{what} has shape {arr.shape}, expected {shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(
            np.isfinite(arr) & (arr == np.round(arr))
        ):
            raise ValueError(f"{what} must hold integers, got {arr.tolist()}")
    return arr.astype(np.int64)


def _batch_array(actions: Any, row_shape: tuple[int, ...], what: str) -> np.ndarray:
    """``actions`` as an array ``(N, *row_shape)``, N >= 1."""
    arr = np.asarray(actions)
    if arr.ndim != 1 + len(row_shape) or arr.shape[1:] != row_shape or arr.shape[0] < 1:
        expected = "(N, " + ", ".join(map(str, row_shape)) + ")" if row_shape else "(N,)"
        raise ValueError(f"{what} must have shape {expected} with N >= 1, got {arr.shape}")
    return arr


def _first_bad_row(bad: np.ndarray) -> int:
    """Index of the first row flagged in a ``(N, ...)`` bool array."""
    return int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])


def _integer_batch(actions: Any, row_shape: tuple[int, ...]) -> np.ndarray:
    """:func:`_integer_array` for a batch ``(N, *row_shape)``; errors name the offending row."""
    arr = _batch_array(actions, row_shape, "actions")
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        ok = np.isfinite(arr) & (arr == np.round(arr))
    else:
        ok = np.zeros(arr.shape, dtype=bool)
    if not ok.all():
        i = _first_bad_row(~ok)
        raise ValueError(f"actions[{i}] must hold integers, got {arr[i].tolist()}")
    return arr.astype(np.int64)


class BoxCodec:
    """Hybrid action <-> ``Box(-1, 1, (K + P,))``.

    :param num_ops: K, the number of discrete ops.
    :param num_params: P, the number of continuous parameters.

    Example:
        >>> codec = BoxCodec(3, 2)
        >>> a = codec.encode({"op": 2, "params": np.array([0.5, -1.0], dtype=np.float32)})
        >>> a.tolist()
        [-1.0, -1.0, 1.0, 0.5, -1.0]
        >>> codec.decode(a)["op"]
        2
    """

    def __init__(self, num_ops: int, num_params: int) -> None:
        _check_sizes(num_ops, num_params)
        self.num_ops = int(num_ops)
        self.num_params = int(num_params)
        self.space = spaces.Box(-1.0, 1.0, (self.num_ops + self.num_params,), np.float32)

    def decode(self, action: np.ndarray) -> HybridAction:
        """Flat Box action -> hybrid action (op = argmax of the op scores)."""
        arr = real_array(action, "action")
        if arr.shape != self.space.shape:
            raise ValueError(
                f"action has shape {arr.shape}, expected {self.space.shape} "
                f"({self.num_ops} op scores + {self.num_params} params)"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action contains NaN or inf: {arr.tolist()}")
        return {
            "op": int(np.argmax(arr[: self.num_ops])),
            # Clipped before float32: a finite value beyond its range stays finite.
            "params": np.clip(arr[self.num_ops :], -1.0, 1.0).astype(np.float32),
        }

    def decode_batch(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(N, K + P)`` Box actions -> ops ``(N,)`` and params ``(N, P)`` (see :meth:`decode`)."""
        arr = real_array(_batch_array(actions, self.space.shape, "actions"), "actions")
        finite = np.isfinite(arr)
        if not finite.all():
            i = _first_bad_row(~finite)
            raise ValueError(f"actions[{i}] contains NaN or inf: {arr[i].tolist()}")
        ops = np.argmax(arr[:, : self.num_ops], axis=1).astype(np.int64)
        return ops, np.clip(arr[:, self.num_ops :], -1.0, 1.0).astype(np.float32)

    def encode(self, action: HybridAction) -> np.ndarray:
        """Hybrid action -> flat Box action (op one-hot as +1 among -1)."""
        op, params = _check_params(action, self.num_ops, self.num_params)
        out = np.full(self.space.shape, -1.0, dtype=np.float32)
        out[op] = 1.0
        out[self.num_ops :] = params
        return out

    def action_masks(self, op_mask: np.ndarray) -> np.ndarray:
        """The op mask itself, as bool: SB3 has no masking for Box actions.

        Kept so that code handling any codec can ask for masks; a caller choosing the op by
        argmax can use it to skip invalid ops.
        """
        return _check_op_mask(op_mask, self.num_ops)


def _check_bins(bins: int | Sequence[int], num_params: int) -> tuple[int, ...]:
    if is_int(bins):
        per_param = [int(cast(int, bins))] * num_params
    elif isinstance(bins, Sequence) and not isinstance(bins, str):
        per_param = list(bins)
        if len(per_param) != num_params:
            raise ValueError(
                f"bins has {len(per_param)} entries, expected one per parameter ({num_params})"
            )
    else:
        raise ValueError(f"bins must be an int or a sequence of {num_params} ints, got {bins!r}")
    for j, b in enumerate(per_param):
        if not is_int(b) or b < 1:
            raise ValueError(f"bins[{j}]={b!r}: every parameter needs an int number of bins >= 1")
    return tuple(int(b) for b in per_param)


class MultiDiscreteCodec:
    """Hybrid action <-> ``MultiDiscrete([K, b_0, ..., b_{P-1}])``.

    Index 0 is the op; index ``1 + j`` is parameter ``j``'s bin on the grid
    ``linspace(-1, 1, b_j)`` (a single bin decodes to 0). See the module docstring.

    :param num_ops: K, the number of discrete ops.
    :param num_params: P, the number of continuous parameters.
    :param bins: bins per parameter: one int for all, or one per parameter (each >= 1).

    Example:
        >>> codec = MultiDiscreteCodec(3, 2, bins=5)
        >>> codec.space.nvec.tolist()
        [3, 5, 5]
        >>> codec.encode({"op": 1, "params": np.array([0.4, -1.0])}).tolist()
        [1, 3, 0]
        >>> codec.decode(np.array([1, 3, 0]))["params"].tolist()
        [0.5, -1.0]
    """

    def __init__(
        self, num_ops: int, num_params: int, bins: int | Sequence[int] = DEFAULT_BINS
    ) -> None:
        _check_sizes(num_ops, num_params)
        self.num_ops = int(num_ops)
        self.num_params = int(num_params)
        self.bins = _check_bins(bins, self.num_params)
        # Grid step per parameter; 0 marks a single bin (decoded as 0).
        self._steps = np.array([b - 1 for b in self.bins], dtype=np.int64)
        self.space = spaces.MultiDiscrete(np.array([self.num_ops, *self.bins], dtype=np.int64))

    def grid(self, j: int) -> np.ndarray:
        """The values parameter ``j`` can take, float32 ``(b_j,)``."""
        idx = np.arange(self.bins[j])
        return self._values(idx, np.full_like(idx, self._steps[j]))

    @staticmethod
    def _values(idx: np.ndarray, steps: np.ndarray) -> np.ndarray:
        safe = np.maximum(steps, 1)
        return np.where(steps > 0, -1.0 + 2.0 * idx / safe, 0.0).astype(np.float32)

    def max_error(self) -> np.ndarray:
        """Half a grid step per parameter: the bound on ``|decode(encode(p)) - p|``."""
        return np.where(self._steps > 0, 1.0 / np.maximum(self._steps, 1), 1.0)

    def encode(self, action: HybridAction) -> np.ndarray:
        """Hybrid action -> ``[op, bin_0, ..., bin_{P-1}]`` (nearest grid value), int64."""
        op, params = _check_params(action, self.num_ops, self.num_params)
        idx = np.rint((params.astype(np.float64) + 1.0) / 2.0 * self._steps).astype(np.int64)
        return np.concatenate([[op], np.clip(idx, 0, self._steps)]).astype(np.int64)

    def decode(self, action: Any) -> HybridAction:
        """``[op, bin_0, ..., bin_{P-1}]`` -> hybrid action (grid values)."""
        arr = _integer_array(action, (1 + self.num_params,), "action")
        nvec = self.space.nvec
        bad = np.flatnonzero((arr < 0) | (arr >= nvec))
        if bad.size:
            raise ValueError(
                f"action {arr.tolist()} is out of range at index {int(bad[0])}: "
                f"accepted 0..{int(nvec[bad[0]]) - 1} (nvec={nvec.tolist()})"
            )
        return {"op": int(arr[0]), "params": self._values(arr[1:], self._steps)}

    def decode_batch(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 1 + P)`` index rows -> ops ``(N,)`` and params ``(N, P)`` (see :meth:`decode`)."""
        arr = _integer_batch(actions, (1 + self.num_params,))
        nvec = self.space.nvec
        bad = (arr < 0) | (arr >= nvec)
        if bad.any():
            i = _first_bad_row(bad)
            j = int(np.flatnonzero(bad[i])[0])
            raise ValueError(
                f"actions[{i}] = {arr[i].tolist()} is out of range at index {j}: "
                f"accepted 0..{int(nvec[j]) - 1} (nvec={nvec.tolist()})"
            )
        return arr[:, 0].copy(), self._values(arr[:, 1:], self._steps[None, :])

    def action_masks(self, op_mask: np.ndarray) -> np.ndarray:
        """``[op_mask, True * sum(bins)]``, flat, as sb3-contrib's MultiDiscrete masks."""
        ops = _check_op_mask(op_mask, self.num_ops)
        rest = np.ones((*ops.shape[:-1], sum(self.bins)), dtype=bool)
        return np.concatenate([ops, rest], axis=-1)


_TASK_MASK = region_param(REGION_TASK_MASK)
# The prompts' attribute edits as attribute-op presets: brightness +-0.3 (p3 = +-0.6),
# saturation +-0.5 (p4), hue +-1/6 turn (p5 = +-1/3).
_ATTRIBUTE_PRESETS: tuple[tuple[int, float], ...] = (
    (3, 0.6),
    (3, -0.6),
    (4, 0.5),
    (4, -0.5),
    (5, 1.0 / 3.0),
    (5, -1.0 / 3.0),
)


def _to_param(rgb: Sequence[float]) -> tuple[float, float, float]:
    r, g, b = (2.0 * float(v) - 1.0 for v in rgb)
    return (r, g, b)


def default_action_library() -> tuple[LibraryEntry, ...]:
    """The default ``discrete`` library for the UniGen ops (see the module docstring).

    Built from the data packages (the palette, the generation backgrounds and layout of the
    ``prompts`` package), so every prompt's solution is one entry or two.

    :return: ``(op name, 8 parameters)`` tuples in :data:`PARAM_NAMES` order.
    """
    from unigen_sb3.data.prompts import CENTRES, GENERATION_BACKGROUNDS, HALF_EXTENTS
    from unigen_sb3.data.shapes import load_shapes_spec

    spec = load_shapes_spec()
    palette = [_to_param(rgb) for rgb in spec["palette"].values()]
    backgrounds = [_to_param(rgb) for rgb in GENERATION_BACKGROUNDS.values()]
    lib: list[LibraryEntry] = [("stop", (0.0,) * 8)]
    for r, g, b in (*palette, *backgrounds):
        lib.append(("fill", (0.0, 0.0, 0.0, r, g, b, 1.0, _TASK_MASK)))
    for j, value in _ATTRIBUTE_PRESETS:
        preset = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, _TASK_MASK]
        preset[j] = value
        lib.append(("attribute", tuple(preset)))
    for r, g, b in palette:
        lib.append(("style", (0.0, 0.0, 0.0, r, g, b, 1.0, _TASK_MASK)))
    for sign in (1.0, -1.0):
        lib.append(("refine", (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, sign, _TASK_MASK)))
    for shape in spec["shapes"]:
        region = region_param(SHAPE_REGIONS[shape])
        for half in HALF_EXTENTS.values():
            for y in CENTRES["vertical"].values():
                for x in CENTRES["horizontal"].values():
                    for r, g, b in palette:
                        lib.append(("fill", (x, y, half, r, g, b, 1.0, region)))
    return tuple(lib)


def _library_entry(entry: Any, i: int) -> tuple[Any, Any]:
    if isinstance(entry, Mapping):
        if set(entry) != {"op", "params"}:
            raise ValueError(
                f"library[{i}] must have keys 'op' and 'params', got keys {sorted(entry)}"
            )
        return entry["op"], entry["params"]
    if isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2:
        return entry[0], entry[1]
    raise ValueError(f"library[{i}] must be an (op, params) pair, got {entry!r}")


class DiscreteCodec:
    """Hybrid action <-> ``Discrete(L)``, the index into a library of ``(op, preset)`` actions.

    :param num_ops: K, the number of discrete ops.
    :param num_params: P, the number of continuous parameters.
    :param library: ``(op, params)`` pairs (or ``{"op": ..., "params": ...}`` mappings): the op
        as a name from ``op_names`` or an id, ``params`` P values in ``[-1, 1]``. ``None``: the
        :func:`default_action_library` (only for the UniGen sizes, K=6, P=8).
    :param op_names: op names by id; ``None``: the UniGen ops when K=6, else none (ids only).

    Encoding picks the library entry with the same op whose preset is nearest (Euclidean,
    ties to the lowest index), so ``encode(decode(i)) == i`` for every entry.

    Example:
        >>> codec = DiscreteCodec(6, 8)
        >>> int(codec.space.n)
        463
        >>> codec.decode(0)["op"]
        0
    """

    def __init__(
        self,
        num_ops: int,
        num_params: int,
        library: Sequence[LibraryEntry | Mapping[str, Any]] | None = None,
        op_names: Sequence[str] | None = None,
    ) -> None:
        _check_sizes(num_ops, num_params)
        self.num_ops = int(num_ops)
        self.num_params = int(num_params)
        if op_names is None:
            op_names = OPS if self.num_ops == NUM_OPS else ()
        elif len(op_names) != self.num_ops:
            raise ValueError(f"op_names has {len(op_names)} names, expected {self.num_ops}")
        self.op_names = tuple(op_names)
        if library is None:
            if (self.num_ops, self.num_params) != (NUM_OPS, NUM_PARAMS):
                raise ValueError(
                    f"library=None: the default library is for {NUM_OPS} ops and {NUM_PARAMS} "
                    f"params, got {self.num_ops} and {self.num_params}; pass a library"
                )
            library = default_action_library()
        if isinstance(library, str | bytes | Mapping) or len(library) == 0:
            raise ValueError(
                f"library must be a non-empty sequence of (op, params), got {library!r}"
            )
        ops, presets = zip(
            *(self._check_entry(entry, i) for i, entry in enumerate(library)), strict=True
        )
        self.ops = np.array(ops, dtype=np.int64)
        self.presets = np.stack(presets).astype(np.float32).reshape(len(ops), self.num_params)
        seen: dict[tuple[int, bytes], int] = {}
        for i, (op, preset) in enumerate(zip(self.ops, self.presets, strict=True)):
            key = (int(op), preset.tobytes())
            if key in seen:
                raise ValueError(f"library[{i}] repeats library[{seen[key]}] ({self.label(i)})")
            seen[key] = i
        self.space = spaces.Discrete(len(self.ops))

    def _check_entry(self, entry: Any, i: int) -> tuple[int, np.ndarray]:
        op, params = _library_entry(entry, i)
        if isinstance(op, str):
            if op not in self.op_names:
                accepted = ", ".join(self.op_names) if self.op_names else "none (use op ids)"
                raise ValueError(f"library[{i}]: unknown op name {op!r}; accepted: {accepted}")
            op_id = self.op_names.index(op)
        elif is_int(op):
            op_id = int(op)
            if not 0 <= op_id < self.num_ops:
                raise ValueError(
                    f"library[{i}]: op id {op_id} is out of range [0, {self.num_ops - 1}]"
                )
        else:
            raise ValueError(f"library[{i}]: op must be a name or an int id, got {op!r}")
        try:
            preset = np.asarray(params, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"library[{i}]: params are not numeric: {params!r}") from exc
        if preset.shape != (self.num_params,):
            names = f" ({', '.join(PARAM_NAMES)})" if self.num_params == NUM_PARAMS else ""
            raise ValueError(
                f"library[{i}] ({op!r}): preset has {preset.size} parameters, expected "
                f"{self.num_params}{names}"
            )
        if not np.all(np.isfinite(preset)) or np.any(np.abs(preset) > 1.0):
            raise ValueError(
                f"library[{i}] ({op!r}): preset values must be finite and in [-1, 1], "
                f"got {preset.tolist()}"
            )
        return op_id, preset

    def label(self, i: int) -> str:
        """A readable name for entry ``i``, e.g. ``"stroke(0.0, ..., 1.0)"``."""
        op = int(self.ops[i])
        name = self.op_names[op] if self.op_names else str(op)
        return f"{name}({', '.join(f'{v:.3g}' for v in self.presets[i])})"

    def encode(self, action: HybridAction) -> np.ndarray:
        """Hybrid action -> index of the nearest library entry with the same op (int64 scalar).

        :raises ValueError: if the library has no entry for the op.
        """
        op, params = _check_params(action, self.num_ops, self.num_params)
        candidates = np.flatnonzero(self.ops == op)
        if candidates.size == 0:
            name = self.op_names[op] if self.op_names else str(op)
            raise ValueError(f"op {name!r} has no entry in the library, so it cannot be encoded")
        dist = np.sum((self.presets[candidates] - params) ** 2, axis=1)
        return np.array(candidates[int(np.argmin(dist))], dtype=np.int64)

    def decode(self, action: Any) -> HybridAction:
        """Library index -> hybrid action ``{"op": op, "params": preset copy}``."""
        i = int(_integer_array(np.asarray(action).reshape(-1), (1,), "action")[0])
        if not 0 <= i < len(self.ops):
            raise ValueError(f"action {i} is out of range [0, {len(self.ops) - 1}]")
        return {"op": int(self.ops[i]), "params": self.presets[i].copy()}

    def decode_batch(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(N,)`` (or ``(N, 1)``) library indices -> ops ``(N,)`` and params ``(N, P)``."""
        arr = np.asarray(actions)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        idx = _integer_batch(arr, ())
        bad = (idx < 0) | (idx >= len(self.ops))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"actions[{i}] = {int(idx[i])} is out of range [0, {len(self.ops) - 1}]"
            )
        return self.ops[idx].astype(np.int64), self.presets[idx].astype(np.float32)

    def action_masks(self, op_mask: np.ndarray) -> np.ndarray:
        """``(L,)`` (or ``(N, L)``) bool: entry ``i`` is valid when its op is."""
        return _check_op_mask(op_mask, self.num_ops)[..., self.ops]
