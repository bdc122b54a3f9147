"""``ProgressLogCallback``: plain progress lines where no progress bar can be drawn.

Every ``every`` timesteps (default: a twentieth of the run) it prints one line, e.g.::

    runs/q: 4096/16384 timesteps (25%) | 150 steps/s | elapsed 0:27 | ETA 1:22 |
    last episode R_total 0.0310

(one line on the console; wrapped here).
and records the same numbers through SB3's logger (``progress/fraction``,
``progress/steps_per_s``, ``progress/eta_s``, ``progress/last_episode_r_total``), so they also
reach TensorBoard, CSV and W&B. ``unigen-sb3 train`` attaches it whenever
``training.progress_bar`` is true and SB3's bar cannot be shown (stderr is not a terminal, as
in logs, CI or ``make run > file``, or ``rich`` is not installed). At the end it prints the
total time and the mean rate.

"Last episode R_total" is the unified reward (no shaping) of the latest finished episode, as
the tables of ``eval.json`` count it (``info["reward_total"]`` summed over the episode);
without a UniGen reward wrapper it falls back to the Monitor's episode return.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["ProgressLogCallback", "format_duration"]


def format_duration(seconds: float) -> str:
    """``83.2`` -> ``"1:23"``, ``3725`` -> ``"1:02:05"``; ``"?"`` when not finite."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLogCallback(BaseCallback):
    """Print a progress line every ``every`` timesteps (all envs counted).

    :param every: timesteps between lines, >= 1; None = a twentieth of the run (>= 1).
    :param stream: where lines go (default: ``sys.stdout`` at print time).
    :param prefix: the start of each line.
    """

    def __init__(
        self, every: int | None = None, *, stream: TextIO | None = None, prefix: str = "progress"
    ) -> None:
        super().__init__()
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 1
        ):
            raise ValueError(f"every={every!r} must be an integer >= 1 or None")
        self.every = every
        self.stream = stream
        self.prefix = prefix
        self.lines: list[str] = []
        self._total = 0
        self._start_steps = 0
        self._start_time = 0.0
        self._next = 0
        self._interval = 1
        self._sums = np.zeros(0, dtype=np.float64)
        self.last_episode_r_total: float | None = None

    def _print(self, line: str) -> None:
        self.lines.append(line)
        print(line, file=self.stream or sys.stdout, flush=True)

    def _on_training_start(self) -> None:
        # learn() passes its locals: total_timesteps is the absolute target (resumes included).
        self._total = int(self.locals.get("total_timesteps", 0) or 0)
        self._start_steps = int(self.num_timesteps)
        self._start_time = time.perf_counter()
        remaining = max(self._total - self._start_steps, 1)
        self._interval = self.every if self.every is not None else max(remaining // 20, 1)
        self._next = self._start_steps + self._interval

    def _track_episodes(self) -> None:
        infos: Sequence[Mapping[str, Any]] = self.locals.get("infos") or ()
        dones = np.asarray(self.locals.get("dones", np.zeros(len(infos))), dtype=bool).reshape(-1)
        if self._sums.shape[0] != len(infos):
            self._sums = np.zeros(len(infos), dtype=np.float64)
        for i, info in enumerate(infos):
            total = info.get("reward_total")
            if total is not None and math.isfinite(float(total)):
                self._sums[i] += float(total)
            if i < len(dones) and dones[i]:
                if "reward_total" in info:
                    self.last_episode_r_total = float(self._sums[i])
                elif isinstance(info.get("episode"), Mapping):
                    self.last_episode_r_total = float(info["episode"]["r"])
                self._sums[i] = 0.0

    def _on_step(self) -> bool:
        self._track_episodes()
        if self.num_timesteps >= self._next:
            self._report()
            self._next = (self.num_timesteps // self._interval + 1) * self._interval
        return True

    def _rate(self) -> tuple[float, float]:
        elapsed = time.perf_counter() - self._start_time
        done = self.num_timesteps - self._start_steps
        return elapsed, (done / elapsed if elapsed > 0 else float("nan"))

    def _report(self) -> None:
        elapsed, rate = self._rate()
        total = max(self._total, self.num_timesteps)
        fraction = self.num_timesteps / total if total else float("nan")
        eta = (total - self.num_timesteps) / rate if rate and rate > 0 else float("nan")
        parts = [
            f"{self.prefix}: {self.num_timesteps}/{total} timesteps ({fraction:.0%})",
            f"{rate:.0f} steps/s",
            f"elapsed {format_duration(elapsed)}",
            f"ETA {format_duration(eta)}",
        ]
        if self.last_episode_r_total is not None:
            parts.append(f"last episode R_total {self.last_episode_r_total:.4f}")
        self.logger.record("progress/fraction", fraction)
        self.logger.record("progress/steps_per_s", rate)
        self.logger.record("progress/eta_s", eta)
        if self.last_episode_r_total is not None:
            self.logger.record("progress/last_episode_r_total", self.last_episode_r_total)
        self._print(" | ".join(parts))

    def _on_training_end(self) -> None:
        elapsed, rate = self._rate()
        done = self.num_timesteps - self._start_steps
        self._print(
            f"{self.prefix}: trained {done} timesteps in {format_duration(elapsed)} "
            f"({rate:.0f} steps/s); {self.num_timesteps} in total"
        )
