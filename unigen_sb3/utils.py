"""Small helpers shared across the package."""

from __future__ import annotations

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
