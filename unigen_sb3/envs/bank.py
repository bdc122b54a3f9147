"""``TaskBank``: each env's next tasks drawn once, held on the device, so a reset is an index.

Without a bank an env draws a task from its numpy Generator at every reset: the shapes
scenes are generated in Python, photos are cut, SLIC superpixels are computed and edit
targets rendered, all on the host, inside the step loop of training (every auto-reset), and
the task's images are then copied to the device. A bank does that once: env ``i``'s bank holds
the next ``size`` tasks its Generator draws, in order, their edit targets rendered in one
batched canvas call and their images (target, start, mask, focus, superpixels) stacked on the
device. Episode ``e`` of env ``i`` (counted from the reset that built the bank) plays bank
entry ``e mod size``: the first ``size`` episodes are exactly those the env plays without a
bank; after that its tasks repeat in the same order.

Memory on the device: ``40 * H * W`` bytes per task (two float32 RGB images, two float32
masks and int64 superpixels): 160 KiB at 64x64, so ``size=64`` costs 10 MiB per env and
640 MiB for ``N=64`` envs; on a CPU the host keeps the tasks' own copies too (about as much
again).

Target features (``keep_target_features=True``): a bank's tasks repeat, and each episode's
paid reward runs the metric network on the target, on a start canvas that no other cache
holds (a shapes scene: an edit's; generation's blank canvas and the photo patches are
computed once per process) and on the final canvas. The bank can keep what the network gives
for each task from its first episode (:class:`TargetFeatureCache`: the target's features, a
shapes scene start's, the start's distance from the target and the target's realism), so
that a replayed task's episode runs the network on its final canvas only. An image's
features, and the scores computed from them, do not depend on the batch they are computed
in, so the rewards stay the same bit for bit. Memory: the network's feature maps of one
image per task, allocated on the device at the first episode's end, and of one more per task
that starts from a shapes scene: 618 KiB per image at 64x64 with the default network (about
four times the bank's images; ``size=64`` and ``N=64`` take 2.4 GiB more for the targets),
2.5 MiB at 128x128 (:attr:`TargetFeatureCache.nbytes` reports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import torch

from unigen_sb3.envs.core import TASK_IMAGES
from unigen_sb3.envs.tasks import Task, TaskSampler, render_targets
from unigen_sb3.utils import is_int

__all__ = [
    "MAX_TASK_BANK_SIZE",
    "BankDraw",
    "TargetFeatureCache",
    "TaskBank",
    "check_task_bank_features",
    "check_task_bank_size",
    "task_bytes",
]

MAX_TASK_BANK_SIZE = 100_000
"""Largest bank per env accepted (at 64x64 that is 16 GB per env)."""

_T = TypeVar("_T")

# Edit targets rendered per canvas call while a bank is built (bounds the call's memory).
_RENDER_CHUNK = 256


def task_bytes(size: int) -> int:
    """Device bytes one banked task takes at canvas side ``size``."""
    return 40 * int(size) * int(size)


def check_task_bank_size(value: object) -> int | None:
    """:raises ValueError: unless ``value`` is ``None`` or an int in [1, MAX_TASK_BANK_SIZE]."""
    if value is None:
        return None
    if not is_int(value) or not 1 <= int(value) <= MAX_TASK_BANK_SIZE:  # type: ignore[call-overload]
        raise ValueError(
            f"task_bank_size={value!r} must be None (no bank: draw a task at every reset) or "
            f"an int in [1, {MAX_TASK_BANK_SIZE}] (tasks per env, drawn once)"
        )
    return int(value)  # type: ignore[call-overload]


def check_task_bank_features(value: object, task_bank_size: object) -> bool:
    """:raises ValueError: unless ``value`` is a bool, and ``False`` without a task bank."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"task_bank_features={value!r} must be true or false")
    if value and task_bank_size is None:
        raise ValueError(
            "task_bank_features=True keeps the features of a task bank's targets and needs "
            "a bank: set task_bank_size to an int (tasks per env), or task_bank_features=False"
        )
    return bool(value)


def _held(store: _T | None, ids: np.ndarray, held: np.ndarray, what: str) -> _T:
    """``store`` when every row of ``ids`` is ``held`` in it.

    :raises KeyError: naming the rows of ``ids`` that hold no ``what`` (all of them before
        the first store, while ``store`` is ``None``).
    """
    if store is None or not held[ids].all():
        missing = ids if store is None else ids[~held[ids]]
        raise KeyError(f"bank rows {missing.tolist()} hold no {what} yet")
    return store


class TargetFeatureCache:
    """What the metric network gives for a bank's tasks, one entry per bank row: the
    target's features, the start canvas's features when no other cache holds them, and the
    two numbers a paid reward derives from those (the start's distance from the target and
    the target's realism).

    Filled by :class:`~unigen_sb3.envs.core.UniGenCore` when it first computes them for a
    banked task (at the end of the task's first episode, or, for features, at its reset
    under the dense schedule) and read instead of running the network again when the task
    comes back. The target layers are allocated at the first :meth:`store`, on the
    features' device and in their dtype.

    Start features are kept only for starts the core's own caches miss: a shapes scene (an
    edit task's). A generation task's blank canvas and a photo patch are computed once per
    colour and per patch for every task that starts from them.

    :param rows: number of bank rows (tasks) it can hold.
    """

    def __init__(self, rows: int) -> None:
        self.rows = int(rows)
        #: Per network layer, ``(rows, C, h, w)`` target features (``None`` until the first
        #: store).
        self.layers: list[torch.Tensor] | None = None
        #: Which rows hold target features.
        self.filled = np.zeros(self.rows, dtype=bool)
        #: Start features by row, one ``(1, C, h, w)`` tensor per layer (shapes scenes only).
        self.starts: dict[int, list[torch.Tensor]] = {}
        #: Per row, the start's perceptual distance from the target (``None`` until the
        #: first :meth:`store_scores`).
        self.start_distance: torch.Tensor | None = None
        #: Per row, the target's squared Mahalanobis distance under the realism model
        #: (``None`` until stored, and always without a realism model).
        self.target_m2: torch.Tensor | None = None
        #: Which rows hold their start distance (and target realism).
        self.scored = np.zeros(self.rows, dtype=bool)

    @property
    def nbytes(self) -> int:
        """Bytes everything stored takes (0 before the first store)."""
        tensors = [*(self.layers or []), *(t for f in self.starts.values() for t in f)]
        tensors += [t for t in (self.start_distance, self.target_m2) if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    def lookup(self, rows: Sequence[int] | np.ndarray) -> list[torch.Tensor]:
        """The target features of bank ``rows`` (each filled), one ``(len(rows), ...)`` per
        layer.

        :raises KeyError: for a row that holds no features.
        """
        ids = np.asarray(rows, dtype=np.int64)
        layers = _held(self.layers, ids, self.filled, "target features")
        index = torch.as_tensor(ids, device=layers[0].device)
        return [layer[index] for layer in layers]

    def store(self, rows: Sequence[int] | np.ndarray, features: Sequence[torch.Tensor]) -> None:
        """Keep ``features`` (one ``(len(rows), ...)`` tensor per layer) as the targets' of
        ``rows``."""
        ids = np.asarray(rows, dtype=np.int64)
        if not ids.size:
            return
        if self.layers is None:
            self.layers = [
                torch.zeros((self.rows, *f.shape[1:]), dtype=f.dtype, device=f.device)
                for f in features
            ]
        index = torch.as_tensor(ids, device=self.layers[0].device)
        for layer, f in zip(self.layers, features, strict=True):
            layer[index] = f
        self.filled[ids] = True

    def store_start(self, row: int, features: Sequence[torch.Tensor]) -> None:
        """Keep ``features`` (one ``(1, ...)`` tensor per layer, copied) as row ``row``'s
        start's."""
        self.starts[int(row)] = [f.clone() for f in features]

    def store_scores(
        self,
        rows: Sequence[int] | np.ndarray,
        start_distance: torch.Tensor,
        target_m2: torch.Tensor | None,
    ) -> None:
        """Keep the start distances and target realism values (``(len(rows),)`` each;
        ``target_m2`` ``None`` without a realism model) of ``rows``."""
        ids = np.asarray(rows, dtype=np.int64)
        if not ids.size:
            return
        if self.start_distance is None:
            self.start_distance = start_distance.new_zeros(self.rows)
        index = torch.as_tensor(ids, device=self.start_distance.device)
        self.start_distance[index] = start_distance.to(self.start_distance)
        if target_m2 is not None:
            if self.target_m2 is None:
                self.target_m2 = target_m2.new_zeros(self.rows)
            self.target_m2[index] = target_m2.to(self.target_m2)
        self.scored[ids] = True

    def scores(self, rows: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The start distances and target realism values of ``rows`` (each scored).

        :raises KeyError: for a row that holds none.
        """
        ids = np.asarray(rows, dtype=np.int64)
        distance = _held(self.start_distance, ids, self.scored, "start distance")
        index = torch.as_tensor(ids, device=distance.device)
        m2 = None if self.target_m2 is None else self.target_m2[index]
        return distance[index], m2


class BankDraw(NamedTuple):
    """What :meth:`TaskBank.next` returns."""

    tasks: list[Task]
    #: The tasks' :data:`~unigen_sb3.envs.core.TASK_IMAGES`, stacked rows on the device.
    images: dict[str, torch.Tensor]
    #: The tasks' bank rows (what :class:`TargetFeatureCache` is indexed by).
    rows: np.ndarray


class TaskBank:
    """The next ``size`` tasks of each of ``len(rngs)`` Generators, on ``device``.

    :param sampler: draws the tasks.
    :param rngs: one Generator per env; each is advanced by ``size`` draws.
    :param size: tasks per env.
    :param device: where the stacked images live.
    :param keep_target_features: hold a :class:`TargetFeatureCache` for the bank's targets
        (:attr:`target_features`; see the module docstring for its memory).
    """

    def __init__(
        self,
        sampler: TaskSampler,
        rngs: Sequence[np.random.Generator],
        size: int,
        device: torch.device,
        *,
        keep_target_features: bool = False,
    ) -> None:
        checked = check_task_bank_size(size)
        if checked is None:
            raise ValueError("a TaskBank needs a size; None means no bank")
        self.size = checked
        self.n = len(rngs)
        # Round r draws every env's r-th task (each generator advances as in r calls of
        # sample); kept env-major: env i's tasks are rows i*size ... (i+1)*size - 1.
        rounds = [sampler.sample_many(rngs, render=False) for _ in range(self.size)]
        self.tasks: list[Task] = [rounds[r][i] for i in range(self.n) for r in range(self.size)]
        for lo in range(0, len(self.tasks), _RENDER_CHUNK):
            render_targets(self.tasks[lo : lo + _RENDER_CHUNK])
        self.images = {
            name: torch.stack([getattr(t, name) for t in self.tasks]).to(device)
            for name in TASK_IMAGES
        }
        self.episodes = np.zeros(self.n, dtype=np.int64)
        #: The targets' features, kept after each task's first episode (``None`` unless
        #: ``keep_target_features``).
        self.target_features: TargetFeatureCache | None = (
            TargetFeatureCache(len(self.tasks)) if keep_target_features else None
        )

    @property
    def nbytes(self) -> int:
        """Device bytes the bank's images take."""
        return sum(t.numel() * t.element_size() for t in self.images.values())

    def next(self, indices: Sequence[int]) -> BankDraw:
        """The next task of each env in ``indices``, their images (rows on the device) and
        their bank rows."""
        ids = np.asarray(indices, dtype=np.int64)
        rows = ids * self.size + self.episodes[ids] % self.size
        self.episodes[ids] += 1
        index = torch.as_tensor(rows, device=next(iter(self.images.values())).device)
        return BankDraw(
            [self.tasks[r] for r in rows.tolist()],
            {name: t[index] for name, t in self.images.items()},
            rows,
        )
