"""The batched state machine behind both :class:`UniGenEnv` (a batch of one) and the batched VecEnv.

:class:`UniGenCore` holds ``N`` episodes as tensors on one device and steps them together:
one canvas-engine call, one perceptual-network forward and one set of metric calls per
step for all ``N``. The forward covers only the canvases the step changed: the others (a
``stop``, an op that left every pixel equal) keep their cached features, and the features of
a blank start canvas are computed once. Task sampling (numpy/scikit-image) happens on the
host at reset.

Reward schedule: the raw reward is the vector ``[quality, edit, consistency]`` of the
*final* canvas, paid once when the episode ends (``stop`` or the horizon); every other step
pays the zero vector and reports ``info["reward_is_final"] = False``. Episode return is thus
the score of the image the agent leaves behind, so neither stopping at once nor dawdling
can collect more than the start image is worth. The final ``consistency`` is the final
canvas's ``style`` progress times the *lowest* ``temporal`` coherence over the episode's
steps (its most jarring transition, which idle steps cannot dilute).

Lazy scoring: the paid reward needs the components of an episode's final canvas only, so a
step computes the per-step components the core was asked for (``step_components``) and, for
the episodes that end on it, all three. The perceptual network (``quality``'s) runs on an
episode's target, start and final canvas at its end, in one forward for all the episodes
ending on that step (a blank start's features are computed once per process and colour, a
photo start's once per process and patch, a final canvas equal to its start takes the
start's, and a task bank that keeps its tasks' features runs a replayed task's target and
start not at all, nor recomputes their scores: ``target_cache``), unless ``quality`` is a
step component (then it runs at every reset and on every changed canvas, and all three
components are computed every step: the *dense* schedule).
``temporal`` is computed every step for the canvases that changed (its minimum over the
episode is paid), and is exactly 1 for the others (SSIM of an image with itself). The
current canvas's components are reported as ``info["state_components"]`` (the potential for
optional shaping): all three on an episode's last step and on every step of the dense
schedule; with some step components, NaN for the others; with none, the key is left out of
the other steps' infos (and of reset infos). ``info["sub_metrics"]`` holds the sub-metrics
of the components computed on that step, and ``consistency/temporal`` on every step. An
image's features do not depend on the batch they are computed in (see
:meth:`PerceptualDistance._run_slices`), so the lazy and the dense schedule pay
bit-identical rewards (``tests/envs/test_lazy_reward.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_ATTRIBUTE, OP_STOP, OPS, apply_ops
from unigen_sb3.envs.tasks import ATTRIBUTE_NAMES, Task, render_targets
from unigen_sb3.rewards.components import (
    ComponentResult,
    RewardComputer,
    TaskBatch,
)
from unigen_sb3.rewards.names import COMPONENT_NAMES, COMPONENT_RANGES, SUB_METRICS

if TYPE_CHECKING:
    from unigen_sb3.envs.bank import TargetFeatureCache

RECENT_NAMES: tuple[str, ...] = ("changed_area", "mean_change", "last_op", "step_fraction")
"""Meaning of the ``recent`` observation: the fraction of pixels the last step changed, the
mean absolute change it made, the last op id / (K - 1), and steps taken / horizon."""

_CHANGE_THRESHOLD = 1.0 / 255.0
# Single-colour start canvases whose features are kept (generation uses one: white).
_MAX_FLAT_COLOURS = 8
# Photo start canvases whose features are kept (RewardComputer.start_features): the photos
# package has a few patches per size (13 at 64x64); the cache is emptied if it ever holds more.
_MAX_PHOTO_STARTS = 64


def op_validity(kind_is_edit: torch.Tensor) -> torch.Tensor:
    """Which ops make sense per episode, (N, K) bool.

    All ops are valid when editing. When generating there is no existing content whose
    brightness/saturation/hue an ``attribute`` op could change as the prompt asks, so it is
    masked; everything else stays valid.
    """
    valid = torch.ones(kind_is_edit.shape[0], NUM_OPS, dtype=torch.bool, device=kind_is_edit.device)
    valid[:, OP_ATTRIBUTE] = kind_is_edit
    return valid


#: The targets ``TaskSampler.sample(render=False)`` left pending, rendered in one canvas call
#: on the host (the name this module has exported; :func:`~unigen_sb3.envs.tasks.render_targets`).
render_pending_targets = render_targets


TASK_IMAGES: tuple[str, ...] = ("target", "start", "mask", "focus", "segments")
"""The per-task tensors a reset copies into the core (see :meth:`UniGenCore.reset`)."""


@dataclass
class StepResult:
    """What :meth:`UniGenCore.step` returns, all numpy on the host."""

    reward: np.ndarray  # (N, 3) float32
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    infos: list[dict[str, Any]]


class UniGenCore:
    """``N`` UniGen episodes as tensors, stepped together.

    :param n: number of episodes held (1 for the single env).
    :param size: canvas side ``H = W`` in pixels.
    :param horizon: steps before truncation.
    :param device: where the state and the metric network live.
    :param rewards: the component computer (shared across cores).
    :param observe_target: put the target image in the observations (the ``"observed"``
        reference mode, a reconstruction task); by default the agent never sees it.
    :param step_components: the components computed on every step (for shaping or per-step
        logging); the others are computed for an episode's final canvas only (see the
        module docstring). Default: all three (the dense schedule). Any set that holds
        ``quality`` runs the dense schedule.
    :raises ValueError: for an unknown component name.
    """

    def __init__(
        self,
        n: int,
        *,
        size: int,
        horizon: int,
        device: torch.device,
        rewards: RewardComputer,
        observe_target: bool = False,
        step_components: Sequence[str] = COMPONENT_NAMES,
    ) -> None:
        self.n, self.size, self.horizon, self.device = int(n), int(size), int(horizon), device
        self.rewards = rewards
        wanted = set(step_components)
        unknown = sorted(wanted - set(COMPONENT_NAMES))
        if unknown:
            raise ValueError(
                f"step_components: unknown components {unknown}; accepted: {list(COMPONENT_NAMES)}"
            )
        #: ``True``: the network runs at every reset and changed canvas, and all three
        #: components every step (``quality`` was asked for per step).
        self.dense = "quality" in wanted
        #: The components computed on every step, in :data:`COMPONENT_NAMES` order.
        self.step_components: tuple[str, ...] = (
            COMPONENT_NAMES if self.dense else tuple(c for c in COMPONENT_NAMES if c in wanted)
        )
        self.observe_target = bool(observe_target)
        h = w = self.size
        self.canvas = torch.zeros(n, 3, h, w, device=device)
        self.target = torch.zeros(n, 3, h, w, device=device)
        self.start = torch.zeros(n, 3, h, w, device=device)
        self.mask = torch.zeros(n, 1, h, w, device=device)
        self.focus = torch.zeros(n, 1, h, w, device=device)
        self.segments = torch.zeros(n, h, w, dtype=torch.int64, device=device)
        self.is_edit = torch.zeros(n, dtype=torch.bool, device=device)
        self.target_features: list[torch.Tensor] | None = None
        #: The current canvases' perceptual features, kept so that a step recomputes
        #: them only for the canvases it changed (``stop`` and no-op steps reuse them).
        self.canvas_features: list[torch.Tensor] | None = None
        # Features of single-colour start canvases (generation's blank one), by colour.
        self._flat_features: dict[float, list[torch.Tensor]] = {}
        self.target_lab = torch.zeros(n, 3, h, w, device=device)
        self.target_style = torch.zeros(n, 2, 6, device=device)
        self.outside = torch.zeros(n, 1, h, w, device=device)
        self.need = torch.zeros(n, 1, h, w, dtype=torch.bool, device=device)
        self.start_distance = torch.ones(n, device=device)
        self.start_style_gap = torch.ones(n, 2, device=device)
        self.target_m2: torch.Tensor | None = None
        self.attributes = np.zeros((n, len(ATTRIBUTE_NAMES)), dtype=np.float32)
        self.recent = np.zeros((n, len(RECENT_NAMES)), dtype=np.float32)
        self.steps = np.zeros(n, dtype=np.int64)
        self.temporal_min = np.ones(n, dtype=np.float64)
        self.state_components = np.zeros((n, 3), dtype=np.float32)
        self.tasks: list[Task | None] = [None] * n
        #: Each episode's task bank row (-1: not from a bank), the key of :attr:`target_cache`.
        self.bank_rows = np.full(n, -1, dtype=np.int64)
        #: What the network gave per bank row (a task bank's
        #: :class:`~unigen_sb3.envs.bank.TargetFeatureCache`: target features, a shapes
        #: scene start's, the start distance and target realism): computed at a banked
        #: task's first episode, read from here when it comes back.
        self.target_cache: TargetFeatureCache | None = None

    # ------------------------------------------------------------------ reset
    def reset(
        self,
        indices: Sequence[int],
        tasks: Sequence[Task],
        images: Mapping[str, torch.Tensor] | None = None,
        bank_rows: Sequence[int] | np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """Start new episodes at ``indices`` with ``tasks``; returns their reset infos.

        :param images: the tasks' :data:`TASK_IMAGES` already stacked on the device, their
            targets rendered (a task bank's rows): then nothing is stacked, copied from the
            host or rendered here.
        :param bank_rows: the tasks' task bank rows, the keys of :attr:`target_cache`
            (default: not from a bank).
        """
        ids = np.asarray(indices, dtype=np.int64)
        idx = torch.as_tensor(ids, device=self.device)
        dev = self.device
        self.bank_rows[ids] = -1 if bank_rows is None else np.asarray(bank_rows, dtype=np.int64)
        if images is None:
            render_targets(tasks)
            images = {
                name: torch.stack([getattr(t, name) for t in tasks]).to(dev) for name in TASK_IMAGES
            }
        self.target[idx] = images["target"]
        self.start[idx] = images["start"]
        self.canvas[idx] = self.start[idx]
        self.mask[idx] = images["mask"]
        self.focus[idx] = images["focus"]
        self.segments[idx] = images["segments"]
        self.is_edit[idx] = torch.tensor([t.kind == "edit" for t in tasks], device=dev)
        batch = TaskBatch(self.target[idx], self.mask[idx], self.start[idx], focus=self.focus[idx])
        start_feats: list[torch.Tensor] | None = None
        if self.dense:
            new_feats, start_feats, _ = self._reset_features(idx, ids, tasks=tasks)
            if self.target_features is None or self.canvas_features is None:
                self.target_features, self.canvas_features = (
                    [
                        torch.zeros((self.n, *f.shape[1:]), dtype=f.dtype, device=dev)
                        for f in new_feats
                    ]
                    for _ in range(2)
                )
            for cache, f in zip(self.target_features, new_feats, strict=True):
                cache[idx] = f
            for cache, f in zip(self.canvas_features, start_feats, strict=True):
                cache[idx] = f
            batch = replace(batch, target_features=new_feats, start_features=start_feats)
        prepared = self.rewards.prepare(batch, perceptual=self.dense)
        self.target_lab[idx] = cast(torch.Tensor, prepared.target_lab)
        self.target_style[idx] = cast(torch.Tensor, prepared.target_style)
        self.outside[idx] = cast(torch.Tensor, prepared.outside)
        self.need[idx] = cast(torch.Tensor, prepared.need)
        self.start_style_gap[idx] = cast(torch.Tensor, prepared.start_style_gap)
        if self.dense:
            self._store_perceptual(idx, prepared)
        for i, t in zip(indices, tasks, strict=True):
            self.tasks[i] = t
            self.attributes[i] = t.attributes
        self.recent[ids] = 0.0
        self.steps[ids] = 0
        self.temporal_min[ids] = 1.0
        k = len(ids)
        values, sub = self._empty_rows(k)
        if self.step_components:
            canvas = self.canvas[idx]
            results = self._components(idx, canvas, canvas, start_feats, self.step_components)
            self._put(values, sub, None, results)
        extras = {"op_mask": op_validity(self.is_edit[idx]).float()}
        host = self._to_host(values, sub, extras)
        self.state_components[ids] = host["values"]
        masks = host["op_mask"] > 0.5
        return self._infos(ids, host["sub"], masks, np.zeros(k, dtype=bool))

    def _perceptual_scores(self, idx: torch.Tensor, ids: np.ndarray, batch: TaskBatch) -> None:
        """Fill the start distances and target realism of episodes ``idx`` (``ids`` on the
        host) from ``batch`` (their targets' and starts' features): read from the task
        bank's :attr:`target_cache` when it holds every episode's, computed otherwise (and
        kept there for the banked ones). Kept values are the computed ones: the distance
        heads and the realism model score fixed-size blocks of rows, so a value does not
        depend on the batch it was computed in."""
        cache = self.target_cache
        if cache is None:
            self._store_perceptual(idx, self.rewards.prepare_perceptual(batch))
            return
        rows = self.bank_rows[ids]
        banked = rows >= 0
        if banked.all() and cache.scored[rows].all():
            distance, m2 = cache.scores(rows)
            self._store_perceptual(idx, replace(batch, start_distance=distance, target_m2=m2))
            return
        prepared = self.rewards.prepare_perceptual(batch)
        self._store_perceptual(idx, prepared)
        if banked.any():
            keep = torch.as_tensor(np.flatnonzero(banked), device=self.device)
            m2 = prepared.target_m2
            cache.store_scores(
                rows[banked],
                cast(torch.Tensor, prepared.start_distance)[keep],
                None if m2 is None else m2[keep.to(m2.device)],
            )

    def _store_perceptual(self, idx: torch.Tensor, prepared: TaskBatch) -> None:
        """Keep the network-derived caches of episodes ``idx`` (start distance, target m2)."""
        self.start_distance[idx] = cast(torch.Tensor, prepared.start_distance)
        if prepared.target_m2 is not None:
            if self.target_m2 is None:
                self.target_m2 = torch.zeros(
                    self.n, dtype=prepared.target_m2.dtype, device=self.device
                )
            self.target_m2[idx] = prepared.target_m2.to(self.device)

    def _reset_features(
        self,
        idx: torch.Tensor,
        ids: np.ndarray,
        extra: torch.Tensor | None = None,
        tasks: Sequence[Task | None] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor] | None]:
        """Perceptual features of the targets and start canvases at ``idx`` (and of ``extra``
        images, e.g. final canvases, in the same forward).

        One network forward for the targets, the start canvases and ``extra`` together, except
        for images whose features are known already: a single-colour start canvas
        (generation's blank one) is computed once per colour, a photo start (one of the
        photos package's few patches) once per image, a banked task's target, and its start
        when that is a shapes scene, once per bank row (with a :attr:`target_cache`), and an
        ``extra`` image equal to its start canvas (an episode that never changed it) takes the
        start's features. An image's features do not depend on the batch it is computed in,
        so reuse changes no value.

        :param ids: the episodes ``idx`` on the host (read there: no device sync).
        :param extra: ``(len(idx), 3, H, W)`` images, one per episode of ``idx``.
        :param tasks: the episodes' tasks (default: the running ones, :attr:`tasks`).
        :return: ``(target features, start features, extra's features or None)``.
        """
        k = int(idx.numel())
        if tasks is None:
            tasks = [self.tasks[i] for i in ids.tolist()]
        starts = self.start[idx]
        flat = starts.flatten(1)
        uniform = (flat == flat[:, :1]).all(dim=1).tolist()
        colours = flat[:, 0].tolist()
        wanted = {c for c, u in zip(colours, uniform, strict=True) if u}
        if len(self._flat_features.keys() | wanted) > _MAX_FLAT_COLOURS:
            self._flat_features.clear()
        for colour in wanted - self._flat_features.keys():
            image = torch.full((1, *starts.shape[1:]), colour, device=self.device)
            self._flat_features[colour] = self.rewards.perceptual.features(image)
        cache = self.target_cache
        rows = np.full(k, -1, dtype=np.int64)
        if cache is not None:
            rows = self.bank_rows[ids]
        # Known start features per row: a flat colour's, a photo start seen before, or a
        # banked task's start kept by the task bank.
        known: dict[int, list[torch.Tensor]] = {
            j: self._flat_features[colours[j]] for j in range(k) if uniform[j]
        }
        photo_keys: dict[int, bytes] = {}
        bank_starts: list[int] = []
        for j, task in enumerate(tasks):
            if uniform[j]:
                continue
            if task is not None and task.source == "photos":
                key = hashlib.blake2b(starts[j].cpu().numpy().tobytes(), digest_size=16).digest()
                if key in self.rewards.start_features:
                    known[j] = self.rewards.start_features[key]
                else:
                    photo_keys[j] = key
            elif cache is not None and rows[j] >= 0:
                kept_start = cache.starts.get(int(rows[j]))
                if kept_start is not None:
                    known[j] = kept_start
                else:
                    bank_starts.append(j)
        run = [j for j in range(k) if j not in known]
        moved: list[int] = []
        if extra is not None:
            moved = torch.nonzero((extra != starts).flatten(1).any(dim=1)).flatten().tolist()
        # Targets whose features a task bank keeps (``hit``) and those to compute (``fresh``).
        hit = []
        if cache is not None:
            hit = [j for j in range(k) if rows[j] >= 0 and cache.filled[rows[j]]]
        fresh = sorted(set(range(k)) - set(hit))
        targets = self.target[idx] if not hit else self.target[idx[fresh]]
        images = [targets, starts[run]] + ([] if extra is None else [extra[moved]])
        both: list[torch.Tensor] = []
        if len(fresh) + len(run) + len(moved):
            both = self.rewards.perceptual.features(torch.cat(images))
        if not hit:
            new_feats = [f[:k] for f in both]
        else:
            kept = cast("TargetFeatureCache", cache).lookup(rows[hit])
            if not fresh:
                new_feats = kept
            else:
                new_feats = [
                    torch.empty((k, *f.shape[1:]), dtype=f.dtype, device=f.device) for f in kept
                ]
                for dest, f, g in zip(new_feats, kept, both, strict=True):
                    dest[hit] = f
                    dest[fresh] = g[: len(fresh)]
        if cache is not None:
            store = [j for j in fresh if rows[j] >= 0]
            if store:
                cache.store(rows[store], [f[store] for f in new_feats])
        # ``both`` holds the fresh targets, then the start canvases computed, then ``extra``.
        n_targets = len(fresh)
        end = n_targets + len(run)
        if not known:
            start_feats = [f[n_targets:end] for f in both]
        else:
            # Rows that share known features (one colour, one photo) are written in one
            # indexed copy per layer, not one per row and layer (~60 per step at N=64).
            shared: dict[int, tuple[list[torch.Tensor], list[int]]] = {}
            for j, feats in known.items():
                shared.setdefault(id(feats), (feats, []))[1].append(j)
            start_feats = [torch.empty_like(f) for f in new_feats]
            for layer, dest in enumerate(start_feats):
                if run:
                    dest[run] = both[layer][n_targets:end]
                for feats, same in shared.values():
                    dest[same] = feats[layer]
        if photo_keys:
            if len(self.rewards.start_features) + len(photo_keys) > _MAX_PHOTO_STARTS:
                self.rewards.start_features.clear()
            for j, key in photo_keys.items():
                self.rewards.start_features[key] = [f[j : j + 1].clone() for f in start_feats]
        for j in bank_starts:
            cast("TargetFeatureCache", cache).store_start(
                int(rows[j]), [f[j : j + 1] for f in start_feats]
            )
        if extra is None:
            return new_feats, start_feats, None
        if len(moved) == k:
            return new_feats, start_feats, [f[end:] for f in both]
        extra_feats = [f.clone() for f in start_feats]
        if moved:
            for dest, f in zip(extra_feats, both, strict=True):
                dest[moved] = f[end:]
        return new_feats, start_feats, extra_feats

    # ------------------------------------------------------------------ step
    def step(self, ops: np.ndarray, params: np.ndarray) -> StepResult:
        """Step all ``N`` episodes with validated ``ops`` (N,) and clipped ``params`` (N,P)."""
        prev = self.canvas
        op_t = torch.as_tensor(ops, dtype=torch.int64, device=self.device)
        par_t = torch.as_tensor(params, dtype=torch.float32, device=self.device)
        new = apply_ops(prev, op_t, par_t, mask=self.mask, segments=self.segments)
        diff = (new - prev).abs()
        largest = diff.amax(dim=1)
        terminated = np.asarray(ops) == OP_STOP
        truncated = (self.steps + 1 >= self.horizon) & ~terminated
        final = terminated | truncated
        extras = {
            "changed": (largest > _CHANGE_THRESHOLD).float().mean(dim=(1, 2)),
            "mean_change": diff.mean(dim=(1, 2, 3)),
        }
        values, sub = self._empty_rows(self.n)
        if self.dense:
            results = self._components(None, prev, new, self._step_features(new, largest))
            self._put(values, sub, None, results)
            extras["temporal"] = results["consistency"].sub["temporal"]
        else:
            extras["temporal"] = self._temporal(prev, new, largest)
            self._lazy_components(prev, new, final, values, sub, extras["temporal"])
            # Computed for every episode on every step (its minimum is paid): reported.
            sub["consistency/temporal"] = extras["temporal"]
        self.canvas = new
        extras["op_mask"] = op_validity(self.is_edit).float()
        # Everything the infos and the reward read comes to the host in one transfer.
        host = self._to_host(values, sub, extras)
        self.state_components[:] = host["values"]
        self.steps += 1
        np.minimum(self.temporal_min, host["temporal"], out=self.temporal_min)
        self.recent[:, 0] = host["changed"]
        self.recent[:, 1] = host["mean_change"]
        self.recent[:, 2] = np.asarray(ops, dtype=np.float32) / (NUM_OPS - 1)
        self.recent[:, 3] = self.steps / self.horizon
        reward = np.zeros((self.n, 3), dtype=np.float32)
        reward[final] = host["values"][final]
        style = host["sub"]["consistency/style"].astype(np.float64)
        reward[final, 2] = (style[final] * self.temporal_min[final]).astype(np.float32)
        masks = host["op_mask"] > 0.5
        infos = self._infos(range(self.n), host["sub"], masks, final)
        return StepResult(reward, terminated, truncated, infos)

    def _temporal(
        self, prev: torch.Tensor, new: torch.Tensor, largest: torch.Tensor
    ) -> torch.Tensor:
        """``temporal`` of every episode's transition, (N,): computed for the canvases that
        changed, exactly 1 for the others (the SSIM of an image with itself)."""
        out = torch.ones(self.n, device=self.device)
        moved = torch.nonzero(largest.flatten(1).amax(dim=1) > 0).flatten()
        if moved.numel():
            out[moved] = self.rewards.temporal(prev[moved], new[moved], self.outside[moved])
        return out

    def _lazy_components(
        self,
        prev: torch.Tensor,
        new: torch.Tensor,
        final: np.ndarray,
        values: torch.Tensor,
        sub: dict[str, torch.Tensor],
        temporal: torch.Tensor,
    ) -> None:
        """Fill ``values``/``sub`` rows: all three components for the episodes ending on
        this step (one network forward for their targets, start canvases and final
        canvases), the step components for the others.

        :param temporal: every episode's ``temporal`` of this step (:meth:`_temporal`),
            which ``consistency`` reads instead of computing it again."""
        rest = np.flatnonzero(~final)
        if self.step_components and rest.size:
            ridx = torch.as_tensor(rest, dtype=torch.int64, device=self.device)
            results = self._components(
                ridx, prev[ridx], new[ridx], None, self.step_components, temporal=temporal[ridx]
            )
            self._put(values, sub, ridx, results)
        ended = np.flatnonzero(final)
        if not ended.size:
            return
        fidx = torch.as_tensor(ended, dtype=torch.int64, device=self.device)
        canvas = new[fidx]
        tfeats, sfeats, cfeats = self._reset_features(fidx, ended, extra=canvas)
        batch = TaskBatch(
            self.target[fidx],
            self.mask[fidx],
            self.start[fidx],
            tfeats,
            focus=self.focus[fidx],
            start_features=sfeats,
        )
        self._perceptual_scores(fidx, ended, batch)
        results = self._components(
            fidx, prev[fidx], canvas, cfeats, COMPONENT_NAMES, tfeats, temporal[fidx]
        )
        self._put(values, sub, fidx, results)

    def _empty_rows(self, k: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """NaN component values (k, 3) and sub-metrics (k,) to fill: NaN means not computed."""
        nan = float("nan")
        values = torch.full((k, len(COMPONENT_NAMES)), nan, device=self.device)
        names = [
            f"{comp}/{name}"
            for comp in COMPONENT_RANGES
            for name in SUB_METRICS[comp]
            if not (name == "realism" and self.rewards.realism is None)
        ]
        return values, {n: torch.full((k,), nan, device=self.device) for n in names}

    def _put(
        self,
        values: torch.Tensor,
        sub: dict[str, torch.Tensor],
        rows: torch.Tensor | None,
        results: dict[str, ComponentResult],
    ) -> None:
        """Write ``results`` (of episodes ``rows``; ``None``: all) into ``values``/``sub``."""
        for j, comp in enumerate(COMPONENT_NAMES):
            res = results.get(comp)
            if res is None:
                continue
            if rows is None:
                values[:, j] = res.value
            else:
                values[rows, j] = res.value.to(values.dtype)
            for name, v in res.sub.items():
                key = f"{comp}/{name}"
                if rows is None:
                    sub[key] = v.float()
                else:
                    sub[key][rows] = v.float()

    def _to_host(
        self,
        values: torch.Tensor,
        sub: dict[str, torch.Tensor],
        extras: dict[str, torch.Tensor],
    ) -> dict[str, Any]:
        """``values``, ``sub`` and ``extras`` (each (k,) or (k, m)) as numpy, in one
        device-to-host copy (one sync on CUDA, however many entries and episodes)."""
        parts: list[tuple[str, torch.Tensor]] = [("values", values.float())]
        parts += [(f"sub:{n}", v.float()[:, None]) for n, v in sub.items()]
        parts += [
            (n, (v.float() if v.dim() == 2 else v.float()[:, None])) for n, v in extras.items()
        ]
        flat = torch.cat([t for _, t in parts], dim=1).cpu().numpy()
        out: dict[str, Any] = {"sub": {}}
        col = 0
        for name, t in parts:
            width = t.shape[1]
            block = flat[:, col : col + width]
            col += width
            if name.startswith("sub:"):
                out["sub"][name[4:]] = block[:, 0]
            elif name in ("values", "op_mask"):
                out[name] = block.copy()
            else:
                out[name] = block[:, 0]
        return out

    # ------------------------------------------------------------------ helpers
    def _step_features(self, new: torch.Tensor, largest: torch.Tensor) -> list[torch.Tensor]:
        """Features of the canvases ``new``; the network runs only on those a step changed.

        :param largest: ``(N, H, W)`` largest absolute change per pixel; a canvas whose
            pixels all stayed exactly equal keeps its cached features.
        """
        if self.canvas_features is None:
            raise RuntimeError("reset() must run before step()")
        moved = torch.nonzero(largest.flatten(1).amax(dim=1) > 0).flatten()
        count = int(moved.numel())
        if count == self.n:
            self.canvas_features = self.rewards.perceptual.features(new)
        elif count:
            fresh = self.rewards.perceptual.features(new[moved])
            for cache, f in zip(self.canvas_features, fresh, strict=True):
                cache[moved] = f
        return self.canvas_features

    def _components(
        self,
        idx: torch.Tensor | None,
        prev: torch.Tensor,
        canvas: torch.Tensor,
        canvas_features: list[torch.Tensor] | None = None,
        components: Sequence[str] = COMPONENT_NAMES,
        target_features: list[torch.Tensor] | None = None,
        temporal: torch.Tensor | None = None,
    ) -> dict[str, ComponentResult]:
        """Components of episodes ``idx`` (``None``: all ``N``, without copying the caches).

        :param target_features: the targets' features of episodes ``idx`` (default: the
            dense schedule's cache; needed only for ``quality``).
        :param temporal: the transitions' ``temporal`` when already computed (default:
            ``consistency`` computes it).
        """

        def rows(x: torch.Tensor) -> torch.Tensor:
            return x if idx is None else x[idx]

        if target_features is None and self.target_features is not None:
            target_features = [rows(f) for f in self.target_features]
        if "quality" in components and target_features is None:
            raise RuntimeError("reset() must run before components are computed")
        task = TaskBatch(
            target=rows(self.target),
            mask=rows(self.mask),
            start=rows(self.start),
            target_features=target_features,
            focus=rows(self.focus),
            target_lab=rows(self.target_lab),
            target_style=rows(self.target_style),
            outside=rows(self.outside),
            need=rows(self.need),
            start_distance=rows(self.start_distance),
            start_style_gap=rows(self.start_style_gap),
            target_m2=None if self.target_m2 is None else rows(self.target_m2),
        )
        return self.rewards(
            prev,
            canvas,
            task,
            canvas_features=canvas_features,
            components=components,
            temporal=temporal,
        )

    def _infos(
        self,
        ids: Sequence[int] | np.ndarray,
        sub_metrics: dict[str, np.ndarray],
        op_masks: np.ndarray,
        final: Sequence[bool] | np.ndarray,
    ) -> list[dict[str, Any]]:
        """The infos of episodes ``ids``; row ``k`` of ``sub_metrics``/``op_masks``/``final``
        belongs to ``ids[k]``. Each array is read once for all episodes (NaN tests and
        conversions to Python numbers), not per episode and key."""
        rows = np.asarray(ids, dtype=np.int64)
        tasks = [self.tasks[i] for i in rows.tolist()]
        for i, task in zip(rows.tolist(), tasks, strict=True):
            if task is None:
                raise RuntimeError(f"episode {i} has no task; reset() it first")
        # Not computed on this step (lazy scoring): NaN in state_components, left out of
        # sub_metrics; no state_components at all when none was computed.
        columns = [
            (key, values.tolist(), (~np.isnan(values)).tolist())
            for key, values in sub_metrics.items()
        ]
        states = self.state_components[rows]
        has_state = cast(list[bool], (~np.isnan(states)).any(axis=1).tolist())
        temporal_min = self.temporal_min[rows].tolist()
        steps = self.steps[rows].tolist()
        is_final = np.asarray(final, dtype=bool).tolist()
        infos: list[dict[str, Any]] = []
        for k, task in enumerate(tasks):
            info: dict[str, Any] = {
                "prompt": task.prompt.text,
                "prompt_id": task.prompt.id,
                "task": task.kind,
                "source": task.source,
            }
            if has_state[k]:
                info["state_components"] = states[k].copy()
            info["sub_metrics"] = {key: vals[k] for key, vals, ok in columns if ok[k]}
            info["temporal_min"] = temporal_min[k]
            info["reward_is_final"] = is_final[k]
            info["op_mask"] = op_masks[k].copy()
            info["step"] = steps[k]
            infos.append(info)
        return infos

    def observations(self, indices: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Observations, batched (leading axis ``N``), uint8 images on the host.

        The target image is among them only when the core observes it (``observe_target``).

        :param indices: which episodes (default: all ``N``); only their rows are converted
            and copied off the device.
        """
        ids = np.arange(self.n) if indices is None else np.asarray(indices, dtype=np.int64)
        sel = slice(None) if indices is None else torch.as_tensor(ids, device=self.device)

        def u8(x: torch.Tensor) -> np.ndarray:
            return (x[sel] * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()

        obs = {"canvas": u8(self.canvas)}
        if self.observe_target:
            obs["target"] = u8(self.target)
        obs["mask"] = u8(self.mask)
        obs["attributes"] = self.attributes[ids]
        obs["recent"] = self.recent[ids]
        return obs

    def op_masks(self) -> np.ndarray:
        """(N, K) bool: the valid ops of each episode (see :func:`op_validity`)."""
        return op_validity(self.is_edit).cpu().numpy()

    def copy_episode_from(self, source: UniGenCore, row: int, rows: Sequence[int]) -> None:
        """Make episodes ``rows`` of this core exact copies of episode ``row`` of ``source``.

        Generic on purpose, so that it keeps up with the state the core holds: every
        attribute of ``source`` that is per episode is copied, found by its shape, not by
        its name: a tensor or ndarray whose leading dimension is ``source.n``, a list of such
        tensors (the perceptual feature caches) and a list of ``source.n`` items (the tasks,
        shared, not copied: a :class:`~unigen_sb3.envs.tasks.Task` is read-only once reset).
        A per-episode attribute this core does not hold yet (a cache made at the first
        reset) is allocated here; one the source holds as ``None`` (a cache it has not
        computed) is set to ``None`` here too. After the copy, stepping row ``r`` of this core and
        ``row`` of ``source`` with the same action gives the same canvas, reward and info.
        What lookahead search needs: a population of candidate actions from one state is
        one batched step of a core of population size.

        :param source: the core to copy from (same ``size``, ``horizon`` and target
            observation; it may hold another number of episodes and live on another device).
        :param row: the episode of ``source`` to copy, ``0 <= row < source.n``.
        :param rows: the episodes of this core that become copies of it.
        :raises ValueError: for a row out of range, or cores of different settings.
        """
        for name in ("size", "horizon", "observe_target"):
            if getattr(source, name) != getattr(self, name):
                raise ValueError(
                    f"copy_episode_from: the source core has {name}={getattr(source, name)!r}, "
                    f"this one {getattr(self, name)!r}; both must be built with the same settings"
                )
        if self.dense and not source.dense:
            raise ValueError(
                "copy_episode_from: this core scores densely (step_components holds quality) "
                "and needs the feature caches a lazily scoring source does not keep; build it "
                f"with the source's step_components={source.step_components!r} (or none)"
            )
        if (
            isinstance(row, bool)
            or not isinstance(row, int | np.integer)
            or not 0 <= row < source.n
        ):
            raise ValueError(f"row={row!r} must be an episode of the source, in [0, {source.n})")
        dest = [int(r) for r in rows]
        bad = [r for r in dest if not 0 <= r < self.n]
        if bad or not dest:
            raise ValueError(
                f"rows={list(rows)!r} must be a non-empty list of episodes in [0, {self.n})"
            )
        src, n = int(row), source.n
        ids = torch.as_tensor(dest, dtype=torch.int64, device=self.device)
        ids_np = np.asarray(dest, dtype=np.int64)

        def per_episode_tensor(x: object) -> bool:
            return isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[0] == n

        def copy_tensor(current: object, value: torch.Tensor) -> torch.Tensor:
            fits = (
                isinstance(current, torch.Tensor)
                and current.shape == (self.n, *value.shape[1:])
                and current.dtype == value.dtype
            )
            out = cast(torch.Tensor, current) if fits else None
            if out is None:
                out = torch.zeros((self.n, *value.shape[1:]), dtype=value.dtype, device=self.device)
            out[ids] = value[src].to(self.device)
            return out

        def per_row_here(x: object) -> bool:
            rows_of = [x] if not isinstance(x, list) else x
            return bool(rows_of) and all(
                isinstance(t, torch.Tensor) and t.ndim >= 1 and t.shape[0] == self.n
                for t in rows_of
            )

        for name, value in vars(source).items():
            current = getattr(self, name, None)
            if value is None:
                # Not held by the source (a cache not computed yet): drop ours too rather than
                # keep values that are not the copied episode's.
                if per_row_here(current):
                    setattr(self, name, None)
            elif per_episode_tensor(value):
                setattr(self, name, copy_tensor(current, value))
            elif isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
                shape = (self.n, *value.shape[1:])
                array = current if isinstance(current, np.ndarray) else None
                if array is None or array.shape != shape or array.dtype != value.dtype:
                    array = np.zeros(shape, dtype=value.dtype)
                array[ids_np] = value[src]
                setattr(self, name, array)
            elif isinstance(value, list) and value and all(map(per_episode_tensor, value)):
                old = current if isinstance(current, list) and len(current) == len(value) else None
                setattr(
                    self,
                    name,
                    [copy_tensor(None if old is None else old[k], v) for k, v in enumerate(value)],
                )
            elif isinstance(value, list) and len(value) == n:
                out_list = current if isinstance(current, list) and len(current) == self.n else None
                if out_list is None:
                    out_list = [None] * self.n
                for r in dest:
                    out_list[r] = value[src]
                setattr(self, name, out_list)


__all__ = [
    "NUM_PARAMS",
    "OPS",
    "RECENT_NAMES",
    "TASK_IMAGES",
    "StepResult",
    "UniGenCore",
    "op_validity",
    "render_pending_targets",
]
