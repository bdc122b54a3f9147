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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from unigen_sb3.envs.core import TASK_IMAGES
from unigen_sb3.envs.tasks import Task, TaskSampler, render_targets
from unigen_sb3.utils import is_int

__all__ = ["MAX_TASK_BANK_SIZE", "TaskBank", "check_task_bank_size", "task_bytes"]

MAX_TASK_BANK_SIZE = 100_000
"""Largest bank per env accepted (at 64x64 that is 16 GB per env)."""

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


class TaskBank:
    """The next ``size`` tasks of each of ``len(rngs)`` Generators, on ``device``.

    :param sampler: draws the tasks.
    :param rngs: one Generator per env; each is advanced by ``size`` draws.
    :param size: tasks per env.
    :param device: where the stacked images live.
    """

    def __init__(
        self,
        sampler: TaskSampler,
        rngs: Sequence[np.random.Generator],
        size: int,
        device: torch.device,
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

    @property
    def nbytes(self) -> int:
        """Device bytes the bank's images take."""
        return sum(t.numel() * t.element_size() for t in self.images.values())

    def next(self, indices: Sequence[int]) -> tuple[list[Task], dict[str, torch.Tensor]]:
        """The next task of each env in ``indices`` and their images (rows on the device)."""
        ids = np.asarray(indices, dtype=np.int64)
        rows = ids * self.size + self.episodes[ids] % self.size
        self.episodes[ids] += 1
        index = torch.as_tensor(rows, device=next(iter(self.images.values())).device)
        return [self.tasks[r] for r in rows.tolist()], {
            name: t[index] for name, t in self.images.items()
        }
