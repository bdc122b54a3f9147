"""The master seed: one integer that fixes every random number generator a run uses."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from stable_baselines3.common.utils import set_random_seed

from unigen_sb3.utils import is_int

__all__ = ["seed_everything", "worker_seed"]

#: cuBLAS needs this workspace setting to be deterministic on CUDA >= 10.2.
_CUBLAS_WORKSPACE = ":4096:8"


def seed_everything(seed: int, *, strict: bool = False) -> None:
    """Seed Python's ``random``, NumPy, torch (CPU and every CUDA device) and SB3.

    Env workers are seeded separately with :func:`worker_seed` (SB3 does the same: ``seed +
    rank``), and the algorithm receives ``seed`` too, which seeds its action space.

    :param seed: the master seed, an integer in ``[0, 2**32 - 1]``.
    :param strict: also make torch refuse nondeterministic kernels
        (``torch.use_deterministic_algorithms``) and pin cuDNN to deterministic algorithms;
        slower on GPU, and an op without a deterministic kernel then raises.
    :raises ValueError: if ``seed`` is not an integer in range.
    """
    if not is_int(seed) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (code that uses the legacy global RNG must repeat too)
    torch.manual_seed(seed)  # seeds CUDA devices too
    torch.cuda.manual_seed_all(seed)  # no-op without CUDA; explicit for lazily created devices
    set_random_seed(seed, using_cuda=torch.cuda.is_available())
    if strict:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def worker_seed(seed: int, rank: int) -> int:
    """:return: the seed of env worker ``rank``: ``seed + rank`` (SB3's ``make_vec_env`` rule)."""
    return (int(seed) + int(rank)) % 2**32
