"""The Blind baseline: the best prompt-blind open-loop action sequence, found by search.

A prompt-blind policy does the same thing whatever the prompt says. The best such policy is
an open-loop sequence of actions: :func:`blind_search` finds it by beam search over a
discrete action library (by default the ``discrete`` encoding's
:func:`~unigen_sb3.wrappers.actions.default_action_library`), scoring every candidate
sequence on the same seeded tasks as one batch. A score a blind sequence reaches is not
evidence that an agent reads the prompt: agents are reported against it
(``docs/baselines.md``), and the gaming suite (``tests/envs/test_gaming.py``) asserts that it
stays far below the Oracle on every task kind.

The search scores on the tasks it is reported on (an in-sample maximum), so the Blind score
is an upper estimate of what blindness can reach on that task set.

Example:
    >>> result = blind_search("edit", n_episodes=4, depth=1, size=36)  # doctest: +SKIP
    >>> result.score, result.names  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np
import torch

from unigen_sb3.envs.canvas import NUM_PARAMS, OP_STOP, OPS, apply_ops
from unigen_sb3.envs.policies import SequencePolicy
from unigen_sb3.envs.tasks import Task, TaskSampler
from unigen_sb3.rewards.components import (
    SSIM_WINDOW,
    TaskBatch,
    component_vector,
    outside_windows,
)
from unigen_sb3.rewards.metrics import ssim
from unigen_sb3.utils import resolve_device
from unigen_sb3.wrappers.actions import DiscreteCodec, default_action_library

__all__ = ["BlindResult", "blind_search", "library_actions", "score_sequences"]

Action = tuple[int, np.ndarray]
"""A raw action: ``(op id, params (P,))``."""

#: Episodes scored in one batch (memory: about 0.4 MB each at 48x48).
_MAX_BATCH = 512


@dataclass(frozen=True)
class BlindResult:
    """What :func:`blind_search` found.

    :param actions: the best sequence, as raw ``(op, params)`` actions.
    :param names: the same as library descriptions (``"fill p=[...]"``).
    :param score: its mean R_total over the search tasks.
    :param per_episode: its R_total on each task.
    :param evaluated: how many sequences were scored.
    """

    actions: tuple[Action, ...]
    names: tuple[str, ...]
    score: float
    per_episode: np.ndarray
    evaluated: int

    def policy(self) -> SequencePolicy:
        """The sequence as a :class:`~unigen_sb3.envs.policies.SequencePolicy` (the Blind
        baseline, ready for :func:`~unigen_sb3.evaluation.evaluate_unigen`)."""
        return SequencePolicy([{"op": op, "params": p} for op, p in self.actions], name="Blind")


def _describe(action: Action) -> str:
    op, params = action
    return f"{OPS[op]} p=[{', '.join(f'{v:.2f}' for v in params)}]"


def library_actions(library: Sequence[Any] | None = None) -> list[Action]:
    """A ``discrete`` library's entries as raw ``(op, params)`` actions.

    :param library: entries as for the ``discrete`` encoding; default
        :func:`~unigen_sb3.wrappers.actions.default_action_library`.
    """
    entries = default_action_library() if library is None else library
    codec = DiscreteCodec(len(OPS), NUM_PARAMS, library=list(entries))
    return [(int(codec.ops[i]), codec.presets[i].astype(np.float32)) for i in range(len(codec.ops))]


def _rows(task: TaskBatch, idx: torch.Tensor) -> TaskBatch:
    """``task`` with every per-episode field indexed by ``idx`` (tasks repeated)."""
    values: dict[str, Any] = {}
    for f in fields(task):
        v = getattr(task, f.name)
        if isinstance(v, torch.Tensor):
            values[f.name] = v[idx.to(v.device)]
        elif isinstance(v, list):
            values[f.name] = [t[idx.to(t.device)] for t in v]
        else:
            values[f.name] = v
    return TaskBatch(**values)


def _distinct_features(perceptual: Any, canvas: torch.Tensor) -> list[torch.Tensor]:
    """Perceptual features of ``canvas`` ``(B, 3, H, W)``, the network run once per distinct
    image. Generation tasks share their blank start canvas, so an open-loop sequence leaves
    the same final canvas on each of them (at 36x36, 8 generation tasks: 457 distinct images
    among 3,704). An image's features do not depend on the batch it is computed in (see
    :meth:`~unigen_sb3.rewards.perceptual.PerceptualDistance.features`), so these equal the
    features of one forward over every row, bit for bit."""
    distinct, inverse = torch.unique(canvas.flatten(1), dim=0, return_inverse=True)
    if distinct.shape[0] == canvas.shape[0]:
        return cast(list[torch.Tensor], perceptual.features(canvas))
    feats = perceptual.features(distinct.view(-1, *canvas.shape[1:]))
    return [f[inverse] for f in feats]


def score_sequences(
    sequences: Sequence[Sequence[Action]],
    tasks: Sequence[Task],
    *,
    size: int,
    horizon: int,
    device: str | torch.device = "auto",
    perceptual_backend: str = "auto",
    weights: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """R_total of each open-loop sequence on each task, ``(len(sequences), len(tasks))``.

    A sequence's actions are played in order, then ``stop`` (at most ``horizon`` actions).
    The returns equal the env's (its final reward: quality and edit of the final canvas,
    its style progress times the lowest per-step temporal coherence), computed without
    the env's per-step perceptual forwards: the canvases are stepped with the canvas
    engine and the network runs once per distinct final canvas. A test checks the equality.

    :param sequences: the sequences of raw actions.
    :param tasks: the tasks, with their targets rendered (``TaskSampler.sample()``).
    :param size: canvas side the tasks were sampled at.
    :param horizon: the episode horizon.
    :param device: where the scoring runs.
    :param perceptual_backend: the reward's perceptual backend.
    :param weights: ``(w_quality, w_edit, w_consistency)``; default: the default weights.
    :return: float64 unified returns (no shaping).
    :raises ValueError: for a task whose target is not rendered, or a sequence longer than
        ``horizon``.
    """
    from unigen_sb3.envs.env import shared_reward_computer
    from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, RewardUnifier

    if any(t.pending_render is not None for t in tasks):
        raise ValueError("score_sequences needs rendered targets: sample with render=True")
    too_long = [i for i, seq in enumerate(sequences) if len(seq) > horizon]
    if too_long:
        raise ValueError(f"sequences {too_long[:5]} are longer than horizon={horizon}")
    dev = resolve_device(device)
    rewards = shared_reward_computer(perceptual_backend, str(dev), size)
    unifier = RewardUnifier(*(weights if weights is not None else DEFAULT_WEIGHTS.values()))

    def stack(name: str) -> torch.Tensor:
        return torch.stack([getattr(t, name) for t in tasks]).to(dev)

    segments = stack("segments")
    base = rewards.prepare(
        TaskBatch(stack("target"), stack("mask"), stack("start"), focus=stack("focus"))
    )
    n_tasks = len(tasks)
    per_chunk = max(1, _MAX_BATCH // n_tasks)
    out = np.zeros((len(sequences), n_tasks), dtype=np.float64)
    for lo in range(0, len(sequences), per_chunk):
        chunk = sequences[lo : lo + per_chunk]
        n = len(chunk) * n_tasks
        idx = torch.arange(n_tasks, device=dev).repeat(len(chunk))
        task = _rows(base, idx)
        canvas = task.start
        outside = outside_windows(task.mask)
        temporal = torch.ones(n, device=dev)
        for step in range(max(len(seq) for seq in chunk)):
            ops = np.full(n, OP_STOP, dtype=np.int64)
            params = np.zeros((n, NUM_PARAMS), dtype=np.float32)
            for k, seq in enumerate(chunk):
                if step < len(seq):
                    rows = slice(k * n_tasks, (k + 1) * n_tasks)
                    ops[rows], params[rows] = seq[step][0], seq[step][1]
            new = apply_ops(
                canvas,
                torch.from_numpy(ops).to(dev),
                torch.from_numpy(params).to(dev),
                mask=task.mask,
                segments=segments[idx],
            )
            step_temporal = ssim(new, canvas, mask=outside, empty=1.0, win_size=SSIM_WINDOW)
            temporal = torch.minimum(temporal, step_temporal.clamp(0.0, 1.0))
            canvas = new
        features = _distinct_features(rewards.perceptual, canvas)
        results = rewards(canvas, canvas, task, canvas_features=features)
        raw = component_vector(results).double()
        raw[:, 2] = results["consistency"].sub["style"].double() * temporal.double()
        totals = unifier(raw.cpu().numpy(), update=False).total
        out[lo : lo + len(chunk)] = np.asarray(totals, dtype=np.float64).reshape(len(chunk), -1)
    return out


def blind_search(
    task: str = "unified",
    *,
    library: Sequence[Any] | None = None,
    depth: int = 2,
    beam: int = 4,
    n_episodes: int = 16,
    seed: int = 0,
    prompt_split: str | None = "heldout",
    weights: tuple[float, float, float] | None = None,
    size: int = 48,
    horizon: int = 8,
    device: str | torch.device = "auto",
    perceptual_backend: str = "auto",
    edit_fraction: float = 0.5,
) -> BlindResult:
    """Beam search for the best prompt-blind open-loop sequence of library actions.

    Level 1 scores every library action alone; each next level extends the ``beam`` best
    sequences so far by every library action. The best sequence of any length up to
    ``depth`` is returned (a shorter one wins a tie).

    :param task: ``"generate"``, ``"edit"`` or ``"unified"``.
    :param library: ``(op, params)`` entries as for the ``discrete`` encoding; default
        :func:`~unigen_sb3.wrappers.actions.default_action_library`.
    :param depth: the longest sequence searched (>= 1, <= ``horizon``).
    :param beam: sequences kept per level (>= 1).
    :param n_episodes: tasks scored (episode ``j`` draws its task from ``seed + j``, as
        :func:`~unigen_sb3.evaluation.rollout_episodes` does).
    :param seed: base seed of the task set.
    :param prompt_split: the prompts' split.
    :param weights: ``(w_quality, w_edit, w_consistency)``; default: the default weights.
    :param size: canvas side.
    :param horizon: episode horizon.
    :param device: where the search runs.
    :param perceptual_backend: the reward's perceptual backend.
    :param edit_fraction: share of editing tasks under ``"unified"``.
    :return: the :class:`BlindResult`.
    :raises ValueError: for a bad ``depth``, ``beam`` or ``n_episodes``.
    """
    for name, value, low in (("depth", depth, 1), ("beam", beam, 1), ("n_episodes", n_episodes, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} must be an int >= {low}")
    if depth > horizon:
        raise ValueError(f"depth={depth} cannot exceed horizon={horizon}")
    actions = library_actions(library)
    sampler = TaskSampler(task, size=size, edit_fraction=edit_fraction, prompt_split=prompt_split)
    tasks = [sampler.sample(np.random.default_rng(seed + j)) for j in range(n_episodes)]
    kwargs: dict[str, Any] = {
        "size": size,
        "horizon": horizon,
        "device": device,
        "perceptual_backend": perceptual_backend,
        "weights": weights,
    }
    best: tuple[float, tuple[Action, ...], np.ndarray] | None = None
    frontier: list[tuple[Action, ...]] = [()]
    evaluated = 0
    for _ in range(depth):
        candidates = [(*prefix, a) for prefix in frontier for a in actions]
        scores = score_sequences(candidates, tasks, **kwargs)
        evaluated += len(candidates)
        means = scores.mean(axis=1)
        order = np.argsort(-means, kind="stable")
        top = int(order[0])
        if best is None or means[top] > best[0]:
            best = (float(means[top]), candidates[top], scores[top])
        frontier = [candidates[int(i)] for i in order[:beam]]
    if best is None:  # unreachable: depth >= 1 was checked
        raise RuntimeError("blind_search scored no sequence")
    score, seq, per_episode = best
    return BlindResult(
        actions=seq,
        names=tuple(_describe(a) for a in seq),
        score=score,
        per_episode=per_episode,
        evaluated=evaluated,
    )
