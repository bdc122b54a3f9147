"""The host memory allocator during training: keep freed memory instead of handing it back.

glibc's ``malloc`` serves a large block with its own ``mmap`` and returns it with ``munmap``
when it is freed, and it gives the free top of its heap back to the OS (``trim``) once that
exceeds a threshold. Training allocates and frees such blocks all the time: a PPO minibatch of
the quickstart (128 observations of 27 x 48 x 48) is 32 MB as float32, and the convolutions'
gradients and buffers come on top. Memory that went back to the OS comes back as fresh pages,
which the kernel zero-fills one page fault at a time. In a 4,096-timestep quickstart run on
2 CPUs that was 4.4 million page faults and 8.5 s of system time in a 25 s run
(docs/notes/host_allocator.md).

:func:`tune_host_allocator` tells glibc (``mallopt``) to keep freed memory in the process:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's largest): blocks below it come from the heap;
* ``M_TRIM_THRESHOLD`` = 2 GiB - 1: the heap's free top is not handed back below that;
* ``M_TOP_PAD`` = 64 MiB: the heap grows, and is kept, 64 MiB beyond what is asked.

No value changes: the allocator decides where memory lives, never what a computation gives
(a run's ``eval.json`` is byte-identical with and without it). The cost is memory: the process
keeps its peak heap (about 60 MB more peak RSS in the quickstart run). ``unigen-sb3 train``
(:func:`~unigen_sb3.experiments.runner.train`) and behaviour cloning call it; the Python API
of the env does not (the env's own allocations are small: no measurable change at N=64).

It does nothing, and says why, when the C library is not glibc, when another allocator is
preloaded (jemalloc, tcmalloc, mimalloc: they do not read glibc's settings), when the user
has set glibc's malloc settings themselves (``MALLOC_*_`` variables or ``glibc.malloc``
tunables), or when ``UNIGEN_SB3_MALLOC=system`` asks to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "ALLOCATOR_ENV",
    "ALLOCATOR_MODES",
    "GLIBC_SETTINGS",
    "AllocatorTuning",
    "release_free_heap",
    "tune_host_allocator",
]

ALLOCATOR_ENV = "UNIGEN_SB3_MALLOC"
"""Environment variable that picks the mode: ``tuned`` (default) or ``system``."""

ALLOCATOR_MODES = ("tuned", "system")

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

GLIBC_SETTINGS: dict[str, tuple[int, int]] = {
    "M_MMAP_THRESHOLD": (_M_MMAP_THRESHOLD, 32 * 1024 * 1024),
    "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD, 2**31 - 1),
    "M_TOP_PAD": (_M_TOP_PAD, 64 * 1024 * 1024),
}
"""What :func:`tune_host_allocator` sets: name -> (mallopt parameter, value in bytes)."""

# glibc reads these at start-up; a user who set one chose their own allocator settings.
_USER_MALLOC_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_ARENA_MAX",
)
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


@dataclass(frozen=True)
class AllocatorTuning:
    """What :func:`tune_host_allocator` did.

    :param applied: whether glibc's settings were changed.
    :param reason: why (or why not), in words.
    :param settings: the settings applied, name -> bytes (empty when not applied).
    """

    applied: bool
    reason: str
    settings: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """For ``meta.json``."""
        return {"applied": self.applied, "reason": self.reason, "settings": dict(self.settings)}


def _mode(environ: Mapping[str, str]) -> str:
    value = environ.get(ALLOCATOR_ENV, "tuned")
    if value not in ALLOCATOR_MODES:
        raise ValueError(
            f"{ALLOCATOR_ENV}={value!r} is not a mode; use one of {ALLOCATOR_MODES} "
            "('system' keeps the C library's allocator settings)"
        )
    return value


def _glibc_version() -> str | None:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, OSError, ValueError):
        return None
    return text if text and text.startswith("glibc") else None


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _why_not(environ: Mapping[str, str]) -> str | None:
    """Why the settings must not be changed here, or ``None``."""
    if _mode(environ) == "system":
        return f"{ALLOCATOR_ENV}=system: the C library's own settings are kept"
    preload = environ.get("LD_PRELOAD", "")
    other = [name for name in _OTHER_ALLOCATORS if name in preload]
    if other:
        return f"LD_PRELOAD loads {other[0]}, which does not read glibc's settings"
    user = [name for name in _USER_MALLOC_VARIABLES if name in environ]
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        user.append("GLIBC_TUNABLES")
    if user:
        return f"the user set glibc's malloc settings ({', '.join(user)}); they are kept"
    if _glibc_version() is None:
        return "the C library is not glibc; nothing to set"
    return None


def tune_host_allocator(environ: Mapping[str, str] | None = None) -> AllocatorTuning:
    """Keep freed memory in the process (glibc ``mallopt``; see the module docstring).

    Safe to call more than once; changes nothing computed, only where memory comes from.

    :param environ: the environment to read (default: ``os.environ``).
    :return: what was done and why.
    :raises ValueError: when ``UNIGEN_SB3_MALLOC`` is set to something other than
        ``tuned`` or ``system``.
    :raises OSError: when glibc refuses a setting (``mallopt`` returned 0).
    """
    env = os.environ if environ is None else environ
    reason = _why_not(env)
    if reason is not None:
        return AllocatorTuning(False, reason)
    mallopt = _libc().mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied: dict[str, int] = {}
    for name, (param, value) in GLIBC_SETTINGS.items():
        if mallopt(param, value) != 1:
            raise OSError(f"glibc's mallopt refused {name}={value} (set so far: {applied})")
        applied[name] = value
    return AllocatorTuning(True, f"{_glibc_version()}: freed memory kept in the process", applied)


def release_free_heap() -> bool:
    """Give the free memory of glibc's heap back to the OS now (``malloc_trim(0)``), e.g.
    before measuring a peak RSS that should not include what earlier work freed.

    :return: whether memory was given back (``False`` also when the C library is not glibc).
    """
    if _glibc_version() is None:
        return False
    return bool(_libc().malloc_trim(0))
