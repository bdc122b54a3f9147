"""Small helpers shared across the package."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device spec into a :class:`torch.device`.

    :param device: ``"auto"`` (CUDA when available, else CPU), or anything
        :class:`torch.device` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    :return: the device.
    :raises ValueError: if the spec is not a valid device, or names CUDA when
        CUDA is not available.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device={device!r} is not a valid device; use 'auto', 'cpu' or 'cuda[:N]'"
            ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but CUDA is not available here")
    return dev


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer: a Python ``int`` or a numpy integer scalar, not a bool.

    The package's one integer check for arguments such as sizes, counts and seeds. A bool
    (``True`` is an ``int`` in Python) is refused, as are floats (even ``2.0``), numpy bools,
    arrays and tensors.
    """
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _umask() -> int:
    """:return: the process umask, read without changing it where the OS allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting it and
    setting it back (``os.umask`` has no read-only form).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _new_file_mode(target: Path) -> int:
    """:return: what ``open(target, "w")`` leaves: an existing file's mode, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader, or a crash, never sees a half-written file; the temporary file is removed on
    error. The file gets the permissions a plain ``open(path, "wb")`` would give it: an
    existing file keeps its mode, a new one gets ``0o666`` less the umask (not the ``0o600``
    of :func:`tempfile.mkstemp`).

    :param path: destination; its folder must exist.
    :param data: content.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
