"""Mixed-precision forward of the perceptual network (``metric_dtype``).

:class:`MixedPrecisionPerceptual` wraps a float32
:class:`~unigen_sb3.rewards.perceptual.PerceptualDistance` so that only its trunk forward
runs under ``torch.autocast``; every distance, embedding and metric after it stays float32.
"""

from __future__ import annotations

from typing import Any

import torch

from unigen_sb3.rewards.perceptual import PerceptualDistance

__all__ = ["METRIC_DTYPES", "MixedPrecisionPerceptual", "metric_torch_dtype"]

METRIC_DTYPES: dict[str, torch.dtype | None] = {
    "float32": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
"""Accepted values of ``metric_dtype``: the autocast dtype of the perceptual network's forward
(``float32``: no autocast)."""


def metric_torch_dtype(metric_dtype: str | None) -> torch.dtype | None:
    """The autocast dtype of a ``metric_dtype`` name (``None`` and ``"float32"``: none).

    :raises ValueError: for a name not in :data:`METRIC_DTYPES`.
    """
    key = "float32" if metric_dtype is None else metric_dtype
    if key not in METRIC_DTYPES:
        raise ValueError(f"metric_dtype={metric_dtype!r} is not one of {tuple(METRIC_DTYPES)}")
    return METRIC_DTYPES[key]


class MixedPrecisionPerceptual:
    """A :class:`PerceptualDistance` whose network forward runs under ``torch.autocast``.

    Only :meth:`features` (the AlexNet trunk) is autocast; its outputs are cast back to
    float32, so the distance heads, the realism score and every other metric stay in float32.

    :param base: the float32 perceptual network (shared, not copied).
    :param dtype: ``torch.bfloat16`` or ``torch.float16``.
    """

    def __init__(self, base: PerceptualDistance, dtype: torch.dtype) -> None:
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"dtype must be torch.bfloat16 or torch.float16, got {dtype}")
        self.base = base
        self.dtype = dtype

    @property
    def device(self) -> torch.device:
        """The network's device."""
        return self.base.device

    @property
    def backend(self) -> str:
        """The perceptual backend in use."""
        return self.base.backend

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`PerceptualDistance.features` under autocast, returned as float32."""
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            feats = self.base.features(x)
        return [f.float() for f in feats]

    def __getattr__(self, name: str) -> Any:
        # Everything but the forward (distance heads, embeddings...) is the base's, in float32.
        return getattr(self.base, name)
