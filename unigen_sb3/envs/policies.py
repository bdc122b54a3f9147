"""Scripted policies for tests, baselines, benchmarks and the gaming suite.

Each policy maps the state of one episode to a raw hybrid action ``(op, params)``:

- :class:`RandomPolicy` — uniform over the raw action space (seeded).
- :class:`NoOpPolicy` — ``stop`` at once.
- :class:`DawdlePolicy` — never stops, changes nothing (the reward-gaming probe).
- :class:`OraclePolicy` — privileged: replays the task's known solution (:attr:`Task.solution`:
  the background and object fills of a generation prompt, the recolour or attribute change
  of an edit), then stops.
- :class:`SequencePolicy` — a fixed open-loop action sequence, the same for every task: what
  a prompt-blind agent can at best do (:mod:`unigen_sb3.evaluation.blind` searches for the best).
- Degenerate policies for the gaming suite (``tests/envs/test_gaming.py``), which must all
  score low: :class:`CanvasColourFillPolicy` (fill with the canvas's mean or dominant
  colour), :class:`RandomStrokesPolicy`, :class:`MaskChangePolicy` (any change inside the
  mask: a grey fill), :class:`PromptColourEverywherePolicy` (the prompt's colour over the
  whole canvas) and :class:`RepeatedStylePolicy` (a colour cast on the mask every step).

``act(env)`` acts on an unwrapped :class:`~unigen_sb3.envs.env.UniGenEnv`;
``act_core(core, i)`` on episode ``i`` of a :class:`~unigen_sb3.envs.core.UniGenCore` (the
batched env). :func:`unigen_sb3.evaluation.rollout_episodes` runs them on seeded task sets;
a trained model is run there as a :class:`~unigen_sb3.evaluation.rollout.ModelPolicy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from unigen_sb3.envs.canvas import (
    NUM_OPS,
    NUM_PARAMS,
    OP_FILL,
    OP_STOP,
    OP_STROKE,
    OP_STYLE,
    REGION_BRUSH_SQUARE,
    REGION_TASK_MASK,
    HybridAction,
    region_param,
)
from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.envs.tasks import Task

_MASK_P7 = region_param(REGION_TASK_MASK)
_QUADRANTS = ((-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5))


def _action(op: int, params: np.ndarray) -> HybridAction:
    return {"op": int(op), "params": np.asarray(params, dtype=np.float32)}


def _stop() -> HybridAction:
    return _action(OP_STOP, np.zeros(NUM_PARAMS))


def _fill_mask(rgb: Sequence[float] | np.ndarray, op: int = OP_FILL) -> HybridAction:
    """``op`` (fill or style) on the task mask, full strength, toward colour ``rgb``."""
    params = np.zeros(NUM_PARAMS, dtype=np.float32)
    params[3:6] = 2.0 * np.asarray(rgb, dtype=np.float32) - 1.0
    params[6] = 1.0
    params[7] = _MASK_P7
    return _action(op, params)


class ScriptedPolicy:
    """Base class: subclasses implement :meth:`act_state`."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        """Action for one episode from its canvas ``(3,H,W)`` and task."""
        raise NotImplementedError

    def act(self, env: gym.Env[Any, Any]) -> HybridAction:
        """Action for the running episode of a (possibly wrapped) :class:`UniGenEnv`."""
        core: UniGenCore = env.unwrapped.core  # type: ignore[attr-defined]
        return self.act_core(core, 0)

    def act_core(self, core: UniGenCore, i: int) -> HybridAction:
        """Action for episode ``i`` of a batched core."""
        task = core.tasks[i]
        if task is None:
            raise RuntimeError(f"episode {i} has not been reset")
        return self.act_state(core.canvas[i], task, int(core.steps[i]), core.horizon)


class NoOpPolicy(ScriptedPolicy):
    """Stops at once: the score of the untouched start canvas."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _stop()


class DawdlePolicy(ScriptedPolicy):
    """Never stops and never changes anything (a zero-opacity stroke) until the horizon.

    The reward-gaming probe: it must score exactly what :class:`NoOpPolicy` scores.
    """

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        params = np.zeros(NUM_PARAMS, dtype=np.float32)
        params[6] = -1.0  # stroke opacity (p + 1) / 2 = 0
        return _action(OP_STROKE, params)


class RandomPolicy(ScriptedPolicy):
    """Uniform random raw actions.

    :param seed: seed of the policy's own RNG.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _action(int(self.rng.integers(NUM_OPS)), self.rng.uniform(-1, 1, NUM_PARAMS))


class OraclePolicy(ScriptedPolicy):
    """Privileged policy: replays the task's solution (:attr:`Task.solution`), then stops."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        if step < len(task.solution):
            op, params = task.solution[step]
            return _action(op, params)
        return _stop()


class SequencePolicy(ScriptedPolicy):
    """A fixed open-loop sequence of raw actions for every task, then ``stop``.

    It reads neither the prompt nor the canvas: the prompt-blind policy class.

    :param actions: the raw actions, in order.
    :param name: a label for tables.
    """

    def __init__(self, actions: Sequence[HybridAction], name: str = "sequence") -> None:
        self.actions = [_action(a["op"], a["params"]) for a in actions]
        self.name = name

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return self.actions[step] if step < len(self.actions) else _stop()


class CanvasColourFillPolicy(ScriptedPolicy):
    """Fills the task mask once with the canvas's mean or dominant colour, then stops.

    :param statistic: ``"mean"`` or ``"dominant"`` (the per-channel median).
    """

    def __init__(self, statistic: str = "mean") -> None:
        if statistic not in ("mean", "dominant"):
            raise ValueError(f"statistic={statistic!r} must be 'mean' or 'dominant'")
        self.statistic = statistic

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        if step > 0:
            return _stop()
        flat = canvas.flatten(1)
        rgb = flat.mean(dim=1) if self.statistic == "mean" else flat.median(dim=1).values
        return _fill_mask(rgb.cpu().numpy())


class RandomStrokesPolicy(ScriptedPolicy):
    """Random full-opacity strokes until the horizon (seeded).

    :param seed: seed of the policy's own RNG.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        params = self.rng.uniform(-1, 1, NUM_PARAMS).astype(np.float32)
        params[6] = 1.0
        return _action(OP_STROKE, params)


class MaskChangePolicy(ScriptedPolicy):
    """Changes the inside of the mask without reading the prompt: one mid-grey fill."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _fill_mask((0.5, 0.5, 0.5)) if step == 0 else _stop()


class PromptColourEverywherePolicy(ScriptedPolicy):
    """Paints the whole canvas in the prompt's colour (grey when it names none): four fills
    of the largest square brush, one per quadrant, then stops.

    It reads the prompt but not where it applies: the degenerate prompt reader.
    """

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        if step >= len(_QUADRANTS):
            return _stop()
        rgb = task.prompt.attributes.rgb
        params = np.zeros(NUM_PARAMS, dtype=np.float32)
        params[0:2] = _QUADRANTS[step]
        params[2] = 1.0  # half extent a quarter of the side: four squares cover the canvas
        params[3:6] = 2.0 * np.asarray(rgb if rgb is not None else (0.5, 0.5, 0.5)) - 1.0
        params[6] = 1.0
        params[7] = region_param(REGION_BRUSH_SQUARE)
        return _action(OP_FILL, params)


class RepeatedStylePolicy(ScriptedPolicy):
    """A colour cast on the task mask toward mid-grey at every step until the horizon."""

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        return _fill_mask((0.5, 0.5, 0.5), op=OP_STYLE)
