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


def _has_bool(value: object) -> bool:
    """Whether a (nested) list or tuple holds a bool (numpy would read it as 0 / 1)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool | np.bool_):
            return True
        if isinstance(item, list | tuple):
            stack.extend(item)
    return False


def real_array(value: object, what: str) -> np.ndarray:
    """``value`` as a float64 array, refusing what numpy would silently turn into numbers.

    Refused: bool arrays and lists holding a bool (``True`` is not the number 1 here),
    complex values (numpy would drop the imaginary part) and anything not numeric. float64
    keeps finite values beyond float32's range finite, so callers can clip them.

    :param value: an array or (nested) list of numbers.
    :param what: the name used in errors, e.g. ``"action['params']"``.
    :raises ValueError: naming ``what`` and the dtype or value seen.
    """
    if isinstance(value, list | tuple) and _has_bool(value):
        raise ValueError(f"{what} must hold numbers, got a boolean: {value!r}")
    arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind in "iuf":
        return arr.astype(np.float64, copy=False)
    if kind == "b" or (kind == "O" and _has_bool(arr.tolist())):
        raise ValueError(f"{what} must hold numbers, got booleans ({arr.dtype}): {value!r}")
    if kind == "c":
        raise ValueError(f"{what} must hold real numbers, got complex values: {value!r}")
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not numeric: {value!r} ({exc})") from None
    return out


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
