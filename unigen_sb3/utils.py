"""Small helpers shared across the package."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader, or a crash, never sees a half-written file; the temporary file is removed on
    error.

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
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
