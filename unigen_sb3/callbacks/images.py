"""``ImageLogCallback``: an image grid ``start | canvas | target | mask`` of a few envs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import (
    DISABLED,
    CSVOutputFormat,
    HumanOutputFormat,
    Image,
    JSONOutputFormat,
    KVWriter,
)
from stable_baselines3.common.vec_env import VecEnv

from unigen_sb3.envs.core import UniGenCore

__all__ = ["ImageLogCallback", "env_cores", "image_grid"]

_SEPARATOR = 2  # pixels of grey between panels and rows
# Formats that cannot show images; given an all-excluded row they would print an empty
# table (stdout) or write a blank CSV/JSON row, so the grid is not sent to them.
_TEXT_FORMATS = (HumanOutputFormat, CSVOutputFormat, JSONOutputFormat)


def image_grid(
    start: torch.Tensor,
    canvas: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    *,
    separator: int = _SEPARATOR,
) -> np.ndarray:
    """One row ``start | canvas | target | mask`` per image, as a uint8 ``(3, H', W')`` grid.

    :param start: ``(B, 3, H, W)`` in ``[0, 1]``.
    :param canvas: ``(B, 3, H, W)`` in ``[0, 1]``.
    :param target: ``(B, 3, H, W)`` in ``[0, 1]``.
    :param mask: ``(B, 1, H, W)`` in ``{0, 1}`` (bool accepted), shown white where set.
    :param separator: grey pixels between panels and between rows (>= 0).
    :return: ``(3, B*H + (B-1)*s, 4*W + 3*s)`` uint8, channel-first (SB3 ``Image`` "CHW").
    :raises ValueError: for mismatched shapes.
    """
    if start.dim() != 4 or start.shape[1] != 3:
        raise ValueError(f"start must be (B, 3, H, W), got {tuple(start.shape)}")
    b, _, h, w = start.shape
    for name, t, c in (("canvas", canvas, 3), ("target", target, 3), ("mask", mask, 1)):
        if tuple(t.shape) != (b, c, h, w):
            raise ValueError(f"{name} must have shape {(b, c, h, w)}, got {tuple(t.shape)}")
    if separator < 0:
        raise ValueError(f"separator={separator!r} must be >= 0")
    dev = start.device
    panels = [
        start.float(),
        canvas.to(dev).float(),
        target.to(dev).float(),
        mask.to(dev).float().expand(b, 3, h, w),
    ]
    vsep = torch.full((b, 3, h, separator), 0.5, device=dev)
    pieces: list[torch.Tensor] = []
    for k, p in enumerate(panels):
        if k:
            pieces.append(vsep)
        pieces.append(p)
    rows = torch.cat(pieces, dim=3)  # (B, 3, H, 4W + 3s)
    hsep = torch.full((3, separator, rows.shape[3]), 0.5, device=dev)
    stacked: list[torch.Tensor] = []
    for k in range(b):
        if k:
            stacked.append(hsep)
        stacked.append(rows[k])
    grid = torch.cat(stacked, dim=1)
    return (grid.clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()


def env_cores(venv: VecEnv, n: int) -> list[tuple[UniGenCore, int]]:
    """Find the UniGen state of the first ``n`` envs of a VecEnv: ``(core, episode index)`` pairs.

    Looks, in order, for a batched VecEnv that holds a :class:`UniGenCore` as its ``core``
    attribute (under any ``VecEnvWrapper``), for a ``DummyVecEnv``'s ``envs`` (each one's
    ``unwrapped.core``), and finally asks ``get_attr("unwrapped")`` (which a
    ``SubprocVecEnv`` answers by pickling the env, so it is slow there).

    :param venv: the training VecEnv.
    :param n: how many envs to return at most.
    :return: up to ``n`` pairs.
    :raises TypeError: if the env is not a UniGen env.
    """
    base: Any = venv.unwrapped
    core = getattr(base, "core", None)
    if isinstance(core, UniGenCore):
        return [(core, i) for i in range(min(n, core.n))]
    count = min(n, venv.num_envs)
    envs = getattr(base, "envs", None)
    unwrapped = (
        [e.unwrapped for e in envs[:count]]
        if envs is not None
        else venv.get_attr("unwrapped", indices=list(range(count)))
    )
    out = []
    for k, env in enumerate(unwrapped):
        core = getattr(env, "core", None)
        if not isinstance(core, UniGenCore):
            raise TypeError(
                f"env {k} ({type(env).__name__}) holds no UniGenCore as 'core'; "
                "ImageLogCallback needs UniGen envs (make_unigen_env or the batched VecEnv)"
            )
        out.append((core, 0))
    return out


class ImageLogCallback(BaseCallback):
    """Every ``log_freq`` calls, log a ``start | canvas | target | mask`` grid of a few envs.

    The grid (one row per env, uint8 ``CHW``) is written at once to the logger's output
    formats as an SB3 :class:`~stable_baselines3.common.logger.Image` under ``key``, at step
    ``num_timesteps``: TensorBoard (and W&B through it) shows it; stdout, log, JSON and CSV
    exclude it. Nothing is buffered, so memory stays bounded by one grid. The images are the
    envs' *current* state: an env that just finished has already been reset by the VecEnv,
    so its row shows the new episode's start.

    :param log_freq: log every ``log_freq`` calls of ``_on_step`` (one call = one step of
        every env), >= 1.
    :param n_envs: how many envs to show (rows), >= 1.
    :param key: the logger key.
    :param verbose: SB3 verbosity.

    Example:
        >>> model.learn(10_000, callback=ImageLogCallback(log_freq=500))  # doctest: +SKIP
    """

    def __init__(
        self,
        log_freq: int = 1000,
        *,
        n_envs: int = 4,
        key: str = "images/start_canvas_target_mask",
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not isinstance(log_freq, int) or log_freq < 1:
            raise ValueError(f"log_freq={log_freq!r} must be an int >= 1")
        if not isinstance(n_envs, int) or n_envs < 1:
            raise ValueError(f"n_envs={n_envs!r} must be an int >= 1")
        self.log_freq = log_freq
        self.n_envs = n_envs
        self.key = key
        #: How many grids were written (for tests and reports).
        self.n_logged = 0

    def collect_panels(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(start, canvas, target, mask)`` batches of the shown envs.

        Override this hook for VecEnvs that keep their state elsewhere.
        """
        if self.training_env is None:
            raise RuntimeError("ImageLogCallback has no training env; was it passed to learn()?")
        pairs = env_cores(self.training_env, self.n_envs)
        dev = pairs[0][0].device
        return (
            torch.stack([c.start[i].to(dev) for c, i in pairs]),
            torch.stack([c.canvas[i].to(dev) for c, i in pairs]),
            torch.stack([c.target[i].to(dev) for c, i in pairs]),
            torch.stack([c.mask[i].to(dev) for c, i in pairs]),
        )

    def log_grid(self) -> np.ndarray:
        """Build the grid now and write it to the logger's output formats; return it."""
        grid = image_grid(*self.collect_panels())
        if self.logger.level != DISABLED:
            value = {self.key: Image(grid, "CHW")}
            excluded: dict[str, tuple[str, ...]] = {self.key: ("stdout", "log", "json", "csv")}
            for fmt in self.logger.output_formats:
                if isinstance(fmt, KVWriter) and not isinstance(fmt, _TEXT_FORMATS):
                    fmt.write(value, excluded, self.num_timesteps)
        self.n_logged += 1
        return grid

    def _on_step(self) -> bool:
        if self.n_calls % self.log_freq == 0:
            self.log_grid()
        return True
