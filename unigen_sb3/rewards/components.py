"""The three reward components of the unified reward, as batched functions of a transition.

Each component is a pure function of ``(prev_canvas, canvas, task)`` that returns a
:class:`ComponentResult`: its value per batch element, its named sub-metrics and its
declared range. All three are in ``[0, 1]`` by construction (higher is better).

Every term pays only for the task. Two kinds of sub-metric make a component:

- **progress** terms measure how far the canvas has come from the start toward the
  target: 0 for the untouched start canvas, 1 for the target, never more for doing
  something else. A component's value is the mean of its progress terms;
- **guard** terms (``realism``, ``preservation``, ``temporal``) measure damage: 1 when
  nothing that had to stay did change, lower otherwise. They *multiply* the progress, so
  they take points away and never give any: doing nothing scores 0, however well it
  preserves. A guard that has nothing to compare in a task kind (``preservation`` and
  ``temporal`` in generation, whose mask is the whole canvas) is 1, which leaves that
  kind's component to its other terms.

==============  =====================================================================
component       definition
==============  =====================================================================
quality         ``perceptual`` x ``realism``.
                ``perceptual`` (progress) = clip(1 - d(canvas, target) / d(start,
                target), 0, 1), d the LPIPS-style distance;
                ``realism`` (guard) = exp(-max(0, m2(canvas) - m2(target)) / m2_ref),
                m2 the squared Mahalanobis distance of the FID-like realism model
                (:class:`RealismScorer`) and m2_ref its typical value: a canvas less
                typical of the image families than its target loses, one as typical
                or more gains nothing.
edit            mean(``accuracy``, ``localization``) x ``preservation``.
                ``accuracy`` (progress): of the pixels the task must change (the
                target differs from the start by more than ``color_tol`` CIELAB
                Delta-E: the *need* region), the fraction now within ``color_tol`` of
                the target; averaged over the part inside the task's ``focus`` (the
                edit mask, or the generated object) and the part outside it (the
                generated background), so a small object weighs as much as its
                background;
                ``localization`` (progress) = |changed and reached and need| /
                |changed or need|: an IoU that counts only changes that reached the
                target, so changes elsewhere, or that do not reach the target, lower it;
                ``preservation`` (guard) = SSIM(canvas, start) away from the mask,
                clipped at 0.
consistency     ``style`` x ``temporal``.
                ``style`` (progress) = clip(1 - g(canvas, target) / g(start, target),
                0, 1), g the distance of the CIELAB per-channel mean/std, averaged
                like ``accuracy`` over the focus and the rest of the mask (the
                generated object and its background);
                ``temporal`` (guard) = SSIM(canvas, prev_canvas) away from the mask,
                clipped at 0 (no jarring change where nothing was asked for). The env
                pays the final ``style`` times the episode's lowest ``temporal`` over
                its steps, so idle steps cannot dilute a jarring one.
==============  =====================================================================

"Away from the mask" means the pixels whose whole SSIM window (7x7) lies outside it: the
mask dilated by 3 pixels is left out, so the change the task asks for does not leak into the
score of what must be preserved (see :func:`~unigen_sb3.rewards.metrics.ssim`'s ``empty``
for the value when nothing is left).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from unigen_sb3.rewards.metrics import changed_mask, rgb_to_lab, ssim, window_max
from unigen_sb3.rewards.names import COMPONENT_NAMES, COMPONENT_RANGES
from unigen_sb3.rewards.names import SUB_METRICS as SUB_METRICS  # also importable from here
from unigen_sb3.rewards.perceptual import PerceptualDistance, RealismScorer

GUARD_METRICS: frozenset[str] = frozenset({"realism", "preservation", "temporal"})
"""The sub-metrics that multiply their component (the others are averaged)."""

_EPS = 1e-6

DEFAULT_COLOR_TOL = 10.0
"""CIELAB Delta-E under which a pixel has its target colour (and above which the target
differs from the start); :class:`RewardComputer`'s default ``color_tol``."""


@dataclass(frozen=True)
class TaskBatch:
    """What the reward needs to know about a batch of tasks.

    :param target: (B,3,H,W) the target image (privileged: the agent never sees it).
    :param mask: (B,1,H,W) in {0,1}: where the task asks for change (all ones in generation).
    :param start: (B,3,H,W) the canvas at the start of the episode.
    :param target_features: cached perceptual features of ``target`` (one network forward per
        episode instead of one per step); computed on demand when ``None``.
    :param focus: (B,1,H,W) in {0,1}: what the prompt is about (the edit mask, the generated
        object); ``None`` means ``mask``.
    :param start_features: perceptual features of ``start``; computed on demand when ``None``.
    :param target_lab: cached :func:`~unigen_sb3.rewards.metrics.rgb_to_lab` of ``target``.
    :param outside: cached :func:`outside_windows` of ``mask``.
    :param target_style: cached (B,2,6) :func:`masked_lab_style_stats` of ``target`` in the
        style parts (:func:`style_parts`).
    :param need: cached (B,1,H,W) bool: the pixels the task must change.
    :param start_distance: cached (B,) perceptual distance of ``start`` from ``target``.
    :param start_style_gap: cached (B,2) style distance of ``start`` from ``target`` per part.
    :param target_m2: cached (B,) squared Mahalanobis distance of ``target`` under the
        realism model.

    :meth:`RewardComputer.prepare` fills the caches; an env does that once per episode.
    """

    target: Tensor
    mask: Tensor
    start: Tensor
    target_features: list[Tensor] | None = None
    focus: Tensor | None = None
    start_features: list[Tensor] | None = None
    target_lab: Tensor | None = None
    outside: Tensor | None = None
    target_style: Tensor | None = None
    need: Tensor | None = None
    start_distance: Tensor | None = None
    start_style_gap: Tensor | None = None
    target_m2: Tensor | None = None


@dataclass
class ComponentResult:
    """A component's value per batch element, its sub-metrics and its declared range."""

    value: Tensor
    sub: dict[str, Tensor] = field(default_factory=dict)
    low: float = 0.0
    high: float = 1.0


SSIM_WINDOW = 7
"""The SSIM window of ``preservation`` and ``temporal`` (scikit-image's default)."""


def outside_windows(mask: Tensor, win_size: int = SSIM_WINDOW) -> Tensor:
    """Pixels whose ``win_size`` x ``win_size`` window does not touch the mask, (B,1,H,W)."""
    pad = win_size // 2
    return 1.0 - window_max(mask.float(), win_size, padding=pad)


def delta_e(lab_x: Tensor, lab_y: Tensor) -> Tensor:
    """Per-pixel CIELAB Delta-E (CIE76) of two image batches in CIELAB, (B,1,H,W)."""
    return (lab_x - lab_y).square().sum(dim=1, keepdim=True).sqrt()


def progress(distance: Tensor, start_distance: Tensor) -> Tensor:
    """``clip(1 - distance / start_distance, 0, 1)``: 0 at the start, 1 at the target.

    A task whose start already is its target (``start_distance`` ~ 0) scores 1 only where
    the canvas is still there.
    """
    ratio = distance / start_distance.clamp_min(_EPS)
    return (1.0 - ratio).clamp(0.0, 1.0)


def masked_lab_style_stats(lab: Tensor, mask: Tensor) -> Tensor:
    """Per-channel mean and (population) std of CIELAB images inside ``mask``, (B, 6).

    An empty mask gives zeros.
    """
    m = (mask > 0.5).to(lab.dtype)
    n = m.flatten(2).sum(dim=2).clamp_min(1.0)
    mean = (lab * m).flatten(2).sum(dim=2) / n
    var = ((lab - mean[..., None, None]).square() * m).flatten(2).sum(dim=2) / n
    return torch.cat([mean, var.sqrt()], dim=1)


def _start_lab(start: Tensor) -> Tensor:
    """:func:`~unigen_sb3.rewards.metrics.rgb_to_lab` of start canvases, (B,3,H,W).

    On a CPU a single-colour canvas (generation's blank start: half of a unified env's
    resets) is converted from one pixel and broadcast: the conversion is per pixel and gives
    a pixel the same bits whatever the image or batch around it, so the values are those of
    converting the whole canvas.
    """
    if start.device.type != "cpu":
        return rgb_to_lab(start)
    flat = start.flatten(2)
    uniform = (flat == flat[:, :, :1]).all(dim=2).all(dim=1)
    if not bool(uniform.any()):
        return rgb_to_lab(start)
    out = torch.empty(start.shape, dtype=torch.promote_types(start.dtype, torch.float32))
    rest = ~uniform
    if bool(rest.any()):
        out[rest] = rgb_to_lab(start[rest])
    out[uniform] = rgb_to_lab(start[uniform][:, :, :1, :1])
    return out


def _style_gap(stats_x: Tensor, stats_y: Tensor) -> Tensor:
    return torch.linalg.vector_norm(stats_x - stats_y, dim=-1)


def style_parts(mask: Tensor, focus: Tensor) -> tuple[Tensor, Tensor]:
    """The regions ``style`` compares: the focus inside the mask and the rest of the mask,
    each (B,1,H,W) bool."""
    m, f = mask > 0.5, focus > 0.5
    return m & f, m & ~f


def _part_stats(lab: Tensor, parts: tuple[Tensor, Tensor]) -> Tensor:
    return torch.stack([masked_lab_style_stats(lab, p) for p in parts], dim=1)


def _mean_over_parts(values: Tensor, present: Tensor) -> Tensor:
    """Mean of (B, k) ``values`` over the ``present`` parts; 1 where none is."""
    count = present.float().sum(dim=1)
    total = (values * present).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1.0), torch.ones_like(total))


def lab_style_stats(lab: Tensor) -> Tensor:
    """Per-channel mean and (population) std of whole CIELAB images, (B, 6)."""
    flat = lab.flatten(2)
    mean = flat.mean(dim=2, keepdim=True)
    # Two passes (mean, then the mean squared deviation) rather than Tensor.std: the same
    # value to ~1e-7 relative, and 11x faster on a CPU for 64 64x64 images (0.15 vs 1.67 ms).
    std = (flat - mean).square_().mean(dim=2).sqrt_()
    return torch.cat([mean.squeeze(2), std], dim=1)


def style_distance(x: Tensor, y: Tensor) -> Tensor:
    """Distance between the CIELAB per-channel mean and std of two whole-image batches, (B,).

    Euclidean over the six statistics, in Delta-E units.
    """
    return _style_gap(lab_style_stats(rgb_to_lab(x)), lab_style_stats(rgb_to_lab(y)))


def _cached(task: TaskBatch, name: str) -> Tensor:
    """A cache of a prepared :class:`TaskBatch` (see :meth:`RewardComputer.prepare`)."""
    value = getattr(task, name)
    if not isinstance(value, Tensor):
        raise RuntimeError(f"TaskBatch.{name} is not filled; RewardComputer.prepare() fills it")
    return value


def _fraction(hit: Tensor, region: Tensor) -> Tensor:
    """(B,) fraction of ``region`` where ``hit`` (0 for an empty region)."""
    count = region.flatten(1).sum(dim=1).float()
    good = (hit & region).flatten(1).sum(dim=1).float()
    return good / count.clamp_min(1.0)


class RewardComputer:
    """Computes the three components for a batch of transitions with one network forward.

    :param perceptual: the perceptual network (its backend is reported in ``backend``).
    :param realism: the FID-like realism scorer; ``None`` drops the ``realism`` guard
        (then ``quality`` is the perceptual progress alone; say so when reporting).
    :param color_tol: CIELAB Delta-E under which a pixel counts as having the target colour,
        and above which the target differs from the start.
    :param change_threshold: per-pixel max channel change above which a pixel counts as changed.
    """

    def __init__(
        self,
        perceptual: PerceptualDistance,
        realism: RealismScorer | None,
        *,
        color_tol: float = DEFAULT_COLOR_TOL,
        change_threshold: float = 0.05,
    ) -> None:
        for name, value in (("color_tol", color_tol), ("change_threshold", change_threshold)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.perceptual = perceptual
        self.realism = realism
        self.color_tol = float(color_tol)
        self.change_threshold = float(change_threshold)
        #: Perceptual features of recurring start images (the photos package's patches), by
        #: a digest of their pixels: filled and read by the env cores that share this
        #: computer (:meth:`~unigen_sb3.envs.core.UniGenCore._reset_features`), so each patch
        #: runs the network once per process. Features do not depend on the batch they are
        #: computed in, so a cached entry equals a fresh one bit for bit.
        self.start_features: dict[bytes, list[Tensor]] = {}

    @property
    def backend(self) -> str:
        """The perceptual backend in use (``"stlpips"`` or ``"lpips"``)."""
        return self.perceptual.backend

    def target_features(self, target: Tensor) -> list[Tensor]:
        """Perceptual features of the targets, to cache in :class:`TaskBatch`."""
        return self.perceptual.features(target)

    def prepare(self, task: TaskBatch, *, perceptual: bool = True) -> TaskBatch:
        """``task`` with its per-episode caches filled (features, CIELAB, the need region,
        the start's distances from the target, the target's realism), so that each step
        computes only what the canvas changes.

        :param perceptual: also fill the caches that need the perceptual network
            (``target_features``, ``start_features``, ``start_distance``, ``target_m2``).
            ``False`` fills the pixel caches only (what ``edit`` and ``consistency`` read);
            :meth:`prepare_perceptual` adds the rest when ``quality`` is first needed.
        """
        target_lab = task.target_lab if task.target_lab is not None else rgb_to_lab(task.target)
        lab_of_start = _start_lab(task.start)
        focus = task.focus if task.focus is not None else task.mask
        parts = style_parts(task.mask, focus)
        target_style = _part_stats(target_lab, parts)
        prepared = replace(
            task,
            focus=focus,
            target_lab=target_lab,
            outside=outside_windows(task.mask),
            target_style=target_style,
            need=delta_e(lab_of_start, target_lab) > self.color_tol,
            start_style_gap=_style_gap(_part_stats(lab_of_start, parts), target_style),
        )
        return self.prepare_perceptual(prepared) if perceptual else prepared

    def prepare_perceptual(self, task: TaskBatch) -> TaskBatch:
        """``task`` with the caches that need the perceptual network filled: the target's
        and start's features (run here unless given), the start's perceptual distance from
        the target and the target's realism (``target_m2``)."""
        tfeats = task.target_features
        if tfeats is None:
            tfeats = self.target_features(task.target)
        sfeats = task.start_features
        if sfeats is None:
            sfeats = self.perceptual.features(task.start)
        target_m2 = None
        if self.realism is not None:
            target_m2 = self.realism.mahalanobis2(self.perceptual.embed_from_features(tfeats))
        return replace(
            task,
            target_features=tfeats,
            start_features=sfeats,
            start_distance=self.perceptual.distance_from_features(sfeats, tfeats),
            target_m2=target_m2,
        )

    def temporal(self, prev_canvas: Tensor, canvas: Tensor, outside: Tensor) -> Tensor:
        """The ``temporal`` guard of ``consistency``, (B,): SSIM(canvas, prev_canvas) away from
        the mask (``outside``: :func:`outside_windows` of it), clipped at 0."""
        return ssim(canvas, prev_canvas, mask=outside, empty=1.0, win_size=SSIM_WINDOW).clamp(
            0.0, 1.0
        )

    def quality(
        self, canvas: Tensor, task: TaskBatch, canvas_features: list[Tensor] | None = None
    ) -> ComponentResult:
        """R_quality: perceptual progress toward the target, guarded by realism.

        :param canvas_features: the canvas's perceptual features when the caller has them.
        """
        task = self._prepared(task)
        if task.start_distance is None or task.target_features is None:
            task = self.prepare_perceptual(task)
        feats = canvas_features if canvas_features is not None else self.perceptual.features(canvas)
        tfeats = task.target_features
        if tfeats is None:
            raise RuntimeError("TaskBatch.target_features is not filled; prepare() fills it")
        dist = self.perceptual.distance_from_features(feats, tfeats)
        sub = {"perceptual": progress(dist, _cached(task, "start_distance"))}
        value = sub["perceptual"]
        if self.realism is not None and task.target_m2 is not None:
            m2 = self.realism.mahalanobis2(self.perceptual.embed_from_features(feats))
            excess = (m2 - task.target_m2.to(m2)).clamp_min(0.0) / self.realism.reference_m2
            sub["realism"] = torch.exp(-excess).float()
            value = value * sub["realism"]
        return ComponentResult(value, sub, *COMPONENT_RANGES["quality"])

    def edit(
        self, canvas: Tensor, task: TaskBatch, canvas_lab: Tensor | None = None
    ) -> ComponentResult:
        """R_edit: the pixels the task must change reached, changes localized, rest preserved.

        :param canvas_lab: the canvas in CIELAB when the caller has it already.
        """
        task = self._prepared(task)
        lab = canvas_lab if canvas_lab is not None else rgb_to_lab(canvas)
        reached = delta_e(lab, _cached(task, "target_lab")) <= self.color_tol
        need = _cached(task, "need")
        focus = _cached(task, "focus") > 0.5
        parts = (need & focus, need & ~focus)
        accuracy = _mean_over_parts(
            torch.stack([_fraction(reached, p) for p in parts], dim=1),
            torch.stack([p.flatten(1).any(dim=1) for p in parts], dim=1),
        )
        changed = changed_mask(task.start, canvas, threshold=self.change_threshold) > 0.5
        hit = (changed & reached & need).flatten(1).sum(dim=1).float()
        union = (changed | need).flatten(1).sum(dim=1).float()
        localization = torch.where(union > 0, hit / union.clamp_min(1.0), torch.ones_like(hit))
        preservation = ssim(
            canvas, task.start, mask=_cached(task, "outside"), empty=1.0, win_size=SSIM_WINDOW
        ).clamp(0.0, 1.0)
        sub = {"accuracy": accuracy, "localization": localization, "preservation": preservation}
        value = 0.5 * (accuracy + localization) * preservation
        return ComponentResult(value, sub, *COMPONENT_RANGES["edit"])

    def consistency(
        self,
        prev_canvas: Tensor,
        canvas: Tensor,
        task: TaskBatch,
        canvas_lab: Tensor | None = None,
        temporal: Tensor | None = None,
    ) -> ComponentResult:
        """R_consistency: colour/style progress in the mask, guarded by temporal coherence.

        :param canvas_lab: the canvas in CIELAB when the caller has it already.
        :param temporal: :meth:`temporal` of ``prev_canvas -> canvas``, (B,), when the caller
            has it already (an env computes it for every transition of a step).
        """
        task = self._prepared(task)
        lab = canvas_lab if canvas_lab is not None else rgb_to_lab(canvas)
        parts = style_parts(task.mask, _cached(task, "focus"))
        gap = _style_gap(_part_stats(lab, parts), _cached(task, "target_style"))
        present = torch.stack([p.flatten(1).any(dim=1) for p in parts], dim=1)
        sub = {
            "style": _mean_over_parts(progress(gap, _cached(task, "start_style_gap")), present),
            "temporal": (
                temporal
                if temporal is not None
                else self.temporal(prev_canvas, canvas, _cached(task, "outside"))
            ),
        }
        value = sub["style"] * sub["temporal"]
        return ComponentResult(value, sub, *COMPONENT_RANGES["consistency"])

    def _prepared(self, task: TaskBatch) -> TaskBatch:
        return task if task.need is not None else self.prepare(task)

    def __call__(
        self,
        prev_canvas: Tensor,
        canvas: Tensor,
        task: TaskBatch,
        *,
        canvas_features: list[Tensor] | None = None,
        components: Collection[str] = COMPONENT_NAMES,
        temporal: Tensor | None = None,
    ) -> dict[str, ComponentResult]:
        """The components for a batch of transitions ``prev_canvas -> canvas``.

        :param canvas_features: the canvas's perceptual features when the caller has them
            (one network forward fewer).
        :param components: which components to compute (default: all three); only
            ``quality`` runs the perceptual network.
        :param temporal: the transitions' :meth:`temporal` when the caller has it (one
            SSIM pass fewer for ``consistency``).
        :return: the requested components by name.
        :raises ValueError: for an unknown component name.
        """
        wanted = set(components)
        unknown = sorted(wanted - set(COMPONENT_NAMES))
        if unknown:
            raise ValueError(f"unknown components {unknown}; accepted: {list(COMPONENT_NAMES)}")
        task = self._prepared(task)
        lab = rgb_to_lab(canvas) if wanted & {"edit", "consistency"} else None
        out: dict[str, ComponentResult] = {}
        if "quality" in wanted:
            out["quality"] = self.quality(canvas, task, canvas_features)
        if "edit" in wanted:
            out["edit"] = self.edit(canvas, task, lab)
        if "consistency" in wanted:
            out["consistency"] = self.consistency(prev_canvas, canvas, task, lab, temporal)
        return out


def component_vector(results: dict[str, ComponentResult]) -> Tensor:
    """Stack component values into a (B,3) tensor in the order quality, edit, consistency."""
    return torch.stack([results[name].value for name in COMPONENT_RANGES], dim=1)
