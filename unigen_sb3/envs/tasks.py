"""Task sampling: turns the data packages into generation and editing tasks.

Both modes draw on the same data backbone (the ``shapes``, ``photos`` and ``prompts``
packages). A task is everything one episode needs:

- **generate** — a prompt that names everything the target depends on ("a large blue
  circle at the top left on a grey background") is rendered into the target scene with the
  canvas engine's own ops: ``fill`` the canvas with the background, then ``fill`` the brush
  shape of the object at its grid cell and size. The agent paints it on a blank white
  canvas. ``mask`` is the whole canvas, ``focus`` the object, ``start`` the blank canvas.
- **edit** — the canvas starts as a shapes scene or a photo patch; ``mask`` is the region to
  change (an object, or a few SLIC superpixels of a photo) and ``target`` the **ground-truth
  edited image**: the start image with the requested attributes rendered inside the mask
  and nothing changed outside it. Recolour prompts (``"make the square red"``, ``"paint the
  selected region pink"``) are rendered with the canvas engine's ``fill`` op (shading kept);
  attribute prompts (``"make the image darker"``) with its ``attribute`` op. An edit whose
  target differs from its start in less than half of the mask (:data:`MIN_NEED_FRACTION`,
  e.g. "darker" on an already black region) is redrawn: it would pay for doing nothing.

Every target is reachable with the actions :attr:`Task.solution` records (privileged
information for the oracle policy, never in an observation). The target image itself is
privileged too: the reward, the oracle and evaluation read it, the agent does not (unless
the env is built with ``reference="observed"``, the reconstruction task).

The prompt's structured attributes are encoded as the ``attributes`` observation
(:data:`ATTRIBUTE_NAMES`, all in ``[-1, 1]``): with them the prompt determines the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

import numpy as np
import torch

from unigen_sb3.data.photos import PhotoPatch, load_photo_patches
from unigen_sb3.data.prompts import CENTRES, HALF_EXTENTS, SPLITS, Prompt, load_prompts
from unigen_sb3.data.shapes import ShapeScene, generate_scene, load_shapes_spec
from unigen_sb3.envs.canvas import (
    NUM_PARAMS,
    OP_ATTRIBUTE,
    OP_FILL,
    REGION_TASK_MASK,
    SHAPE_REGIONS,
    apply_ops,
    region_param,
)
from unigen_sb3.rewards.components import DEFAULT_COLOR_TOL, delta_e
from unigen_sb3.rewards.metrics import rgb_to_lab, window_max
from unigen_sb3.utils import is_int

TASK_KINDS = ("generate", "edit", "unified")
"""The env's ``task`` argument: one mode, or the mixture of both."""

REFERENCE_MODES = ("hidden", "observed")
"""The env's ``reference`` argument: ``"hidden"`` (default: the agent sees the prompt, never
the target image) or ``"observed"`` (the target is part of the observation: a different,
reconstruction task, "paint the shown reference", with baselines of its own)."""

PROMPT_SPLITS: tuple[str | None, ...] = (*SPLITS, None)
"""Accepted ``prompt_split`` values: the training prompts, the held-out prompts (combinations
never trained on), or ``None`` for all prompts."""

MIN_NEED_FRACTION = 0.5
"""An edit task must change at least this fraction of its mask by more than the reward's
colour tolerance (:data:`~unigen_sb3.rewards.components.DEFAULT_COLOR_TOL`); others are
redrawn."""

ATTRIBUTE_NAMES: tuple[str, ...] = (
    "is_edit",
    "target_red",
    "target_green",
    "target_blue",
    "has_colour",
    "brightness",
    "saturation",
    "hue",
    "shape_circle",
    "shape_square",
    "shape_triangle",
    "size",
    "x",
    "y",
    "background_red",
    "background_green",
    "background_blue",
    "has_background",
    "mask_area",
)
"""Meaning of each entry of the ``attributes`` observation (prompt encoding), in order.

``target_*`` is the requested colour (0 when the prompt names none), ``has_colour`` is 1
when it names one; ``brightness`` / ``saturation`` / ``hue`` are the requested changes
(brightness and hue doubled, so a hue turn of 1/2 is 1); ``shape_*`` one-hot of the
object the prompt is about. Generation prompts also give ``size``, ``x`` and ``y`` (the
object's half extent and grid-cell centre in the canvas engine's radius and position
parameters, see :data:`~unigen_sb3.data.prompts.HALF_EXTENTS` and
:data:`~unigen_sb3.data.prompts.CENTRES`) and ``background_*`` (with ``has_background``
1); these are 0 for edits.
``mask_area`` is the fraction of the canvas the task mask covers.
"""

_MAX_SCENE_TRIES = 256
_REGION_TARGET_AREA = 0.12  # photo edit regions grow superpixel by superpixel to >= 12 %
_BLANK = 1.0  # generation starts on a white canvas


@dataclass
class Task:
    """One episode's task.

    :param kind: ``"generate"`` or ``"edit"``.
    :param source: ``"shapes"`` or ``"photos"``.
    :param prompt: the prompt record.
    :param target: ``(3,H,W)`` reference or ground-truth edited image, float in [0,1].
    :param start: ``(3,H,W)`` the canvas at reset.
    :param mask: ``(1,H,W)`` float in {0,1}, where change is asked for.
    :param focus: ``(1,H,W)`` float in {0,1}, what the prompt is about: the edit mask, or the
        generated object (the reward scores it apart from the background).
    :param segments: ``(H,W)`` int64 superpixels of the start image.
    :param attributes: ``(len(ATTRIBUTE_NAMES),)`` float32 prompt encoding.
    :param solution: privileged: raw actions that reach ``target`` from ``start``.
    :param pending_render: ``(op, params)`` still to render onto ``target``, which holds the
        image it is rendered onto until then (an edit's ``start``; a generation's background,
        then ``focus`` is empty until the render sets it to the pixels the op changed); set by
        ``TaskSampler.sample(render=False)`` so that
        :class:`~unigen_sb3.envs.core.UniGenCore` renders every new target of a reset in one
        batched canvas call (:func:`render_targets`). ``None``
        once ``target`` is final.
    """

    kind: str
    source: str
    prompt: Prompt
    target: torch.Tensor
    start: torch.Tensor
    mask: torch.Tensor
    focus: torch.Tensor
    segments: torch.Tensor
    attributes: np.ndarray
    solution: list[tuple[int, np.ndarray]] = field(default_factory=list)
    pending_render: tuple[int, np.ndarray] | None = None


def _encode_attributes(prompt: Prompt, kind: str, mask_area: float) -> np.ndarray:
    a = prompt.attributes
    vec = np.zeros(len(ATTRIBUTE_NAMES), dtype=np.float32)
    vec[0] = 1.0 if kind == "edit" else 0.0
    if a.rgb is not None:
        vec[1:4] = a.rgb
        vec[4] = 1.0
    vec[5] = np.clip(2.0 * a.brightness, -1, 1)
    vec[6] = np.clip(a.saturation, -1, 1)
    vec[7] = np.clip(2.0 * a.hue, -1, 1)
    shapes = ("circle", "square", "triangle")
    if a.shape in shapes:
        vec[8 + shapes.index(a.shape)] = 1.0
    if a.size is not None:
        vec[11] = HALF_EXTENTS[a.size]
    if a.horizontal is not None and a.vertical is not None:
        vec[12] = CENTRES["horizontal"][a.horizontal]
        vec[13] = CENTRES["vertical"][a.vertical]
    if a.background_rgb is not None:
        vec[14:17] = a.background_rgb
        vec[17] = 1.0
    vec[18] = mask_area
    return vec


def _colour_params(rgb: tuple[float, float, float] | None, what: str) -> np.ndarray:
    if rgb is None:
        raise ValueError(f"a fill solution needs a {what} colour, got None")
    return 2.0 * np.asarray(rgb, dtype=np.float32) - 1.0


def generation_solution(prompt: Prompt, size: int) -> list[tuple[int, np.ndarray]]:
    """The two actions that render a generation prompt on a ``size`` x ``size`` canvas.

    ``fill`` the task mask (the whole canvas) with the background, then ``fill`` the brush
    shape of the prompt's shape at its grid cell, half extent and colour.

    :raises ValueError: for a prompt that does not name every generation attribute.
    """
    a = prompt.attributes
    if None in (a.shape, a.size, a.horizontal, a.vertical) or a.shape not in SHAPE_REGIONS:
        raise ValueError(f"generation prompt {prompt.id} does not name its whole scene: {a}")
    background = np.zeros(NUM_PARAMS, dtype=np.float32)
    background[3:6] = _colour_params(a.background_rgb, "background")
    background[6] = 1.0
    background[7] = region_param(REGION_TASK_MASK)
    obj = np.zeros(NUM_PARAMS, dtype=np.float32)
    obj[0] = CENTRES["horizontal"][str(a.horizontal)]
    obj[1] = CENTRES["vertical"][str(a.vertical)]
    obj[2] = HALF_EXTENTS[str(a.size)]
    obj[3:6] = _colour_params(a.rgb, "object")
    obj[6] = 1.0
    obj[7] = region_param(SHAPE_REGIONS[str(a.shape)])
    return [(OP_FILL, background), (OP_FILL, obj)]


def _solution_params(prompt: Prompt, op: int) -> np.ndarray:
    """Raw params that render ``prompt`` with ``op`` inside the task mask."""
    a = prompt.attributes
    p = np.zeros(NUM_PARAMS, dtype=np.float32)
    if op == OP_FILL:
        if a.rgb is None:
            raise ValueError(f"a fill solution needs a colour; prompt attributes: {a}")
        p[3:6] = 2.0 * np.asarray(a.rgb, dtype=np.float32) - 1.0
    else:  # attribute: V += 0.5*p3, S *= 1+p4, H += 0.5*p5 turns (see the canvas engine)
        p[3] = 2.0 * a.brightness
        p[4] = a.saturation
        p[5] = 2.0 * a.hue
    p[6] = 1.0  # full strength
    p[7] = region_param(REGION_TASK_MASK)
    return np.clip(p, -1.0, 1.0)


def _render(
    image: torch.Tensor,
    mask: torch.Tensor,
    seg: torch.Tensor,
    actions: list[tuple[int, np.ndarray]],
) -> torch.Tensor:
    for op, params in actions:
        image = apply_ops(
            image[None],
            torch.tensor([op]),
            torch.from_numpy(params)[None],
            mask=mask[None],
            segments=seg[None],
        )[0]
    return image


def finish_render(tasks: Sequence[Task], rendered: torch.Tensor) -> None:
    """Put ``rendered`` ``(K,3,H,W)``, the images of ``tasks``' pending renders, into their
    targets: a generation task's ``focus`` becomes the pixels its object changed."""
    for task, image in zip(tasks, rendered, strict=True):
        if task.kind == "generate":
            task.focus = ((image - task.target).abs().amax(0) > 0).float()[None]
        task.target = image
        task.pending_render = None


@lru_cache(maxsize=256)
def _background(size: int, op: int, params: bytes) -> torch.Tensor:
    """The blank generation canvas after the background action ``(op, params)`` (the first
    of :func:`generation_solution`), rendered once per colour and size; read-only."""
    start = torch.full((3, size, size), _BLANK)
    whole = torch.ones(1, size, size)
    action = (op, np.frombuffer(params, dtype=np.float32).copy())
    return _render(start, whole, _empty_segments(size), [action])


def need_fraction(start: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Fraction of the mask where ``target`` differs from ``start`` by more than
    :data:`~unigen_sb3.rewards.components.DEFAULT_COLOR_TOL` (CIELAB Delta-E).

    :param start: ``(3,H,W)``.
    :param target: ``(3,H,W)``.
    :param mask: ``(1,H,W)`` in {0, 1}.
    """
    return _changed_fraction(delta_e(rgb_to_lab(start[None]), rgb_to_lab(target[None]))[0, 0], mask)


def _changed_fraction(de: torch.Tensor, mask: torch.Tensor) -> float:
    """Fraction of ``mask`` ``(1,H,W)`` where the Delta-E map ``de`` ``(H,W)`` exceeds the
    colour tolerance (0 for an empty mask)."""
    m = mask[0] > 0.5
    return float((de[m] > DEFAULT_COLOR_TOL).float().mean()) if bool(m.any()) else 0.0


@lru_cache(maxsize=8)
def _prompts(split: str | None) -> tuple[Prompt, ...]:
    return tuple(load_prompts(split))


def _scene_with(
    rng: np.random.Generator, size: int, shape: str | None, avoid: str | None
) -> tuple[ShapeScene, int]:
    """A scene holding an object of ``shape`` (any when None) whose colour is not ``avoid``."""
    for _ in range(_MAX_SCENE_TRIES):
        scene = generate_scene(int(rng.integers(2**31 - 1)), size=size)
        idx = [
            i
            for i, o in enumerate(scene.objects)
            if (shape is None or o.shape == shape) and o.colour != avoid
        ]
        if idx:
            return scene, int(idx[int(rng.integers(len(idx)))])
    raise RuntimeError(
        f"no shapes scene with a {shape} not coloured {avoid} in {_MAX_SCENE_TRIES} seeds; "
        "the shapes package spec may be broken"
    )


def _photo_region(rng: np.random.Generator, patch: PhotoPatch) -> torch.Tensor:
    """A connected-ish edit region: a random superpixel, grown by neighbours to >= 12 %."""
    seg = patch.segments
    labels = torch.unique(seg)
    chosen = {int(labels[int(rng.integers(len(labels)))])}
    mask = torch.isin(seg, torch.tensor(sorted(chosen)))
    h, w = seg.shape
    while mask.float().mean() < _REGION_TARGET_AREA:
        # Neighbours: labels under the one-pixel dilation of the mask.
        dil = window_max(mask[None].float(), 3, padding=1)[0] > 0
        border = torch.unique(seg[dil & ~mask]).tolist()
        if not border:
            break
        chosen.add(int(border[int(rng.integers(len(border)))]))
        mask = torch.isin(seg, torch.tensor(sorted(chosen)))
    return mask.float().view(1, h, w)


def _empty_segments(size: int) -> torch.Tensor:
    return torch.zeros(size, size, dtype=torch.int64)


class TaskSampler:
    """Draws tasks from the data packages with a numpy Generator (reproducible per seed).

    :param task: ``"generate"``, ``"edit"`` or ``"unified"`` (a mixture of both).
    :param size: canvas side in pixels.
    :param edit_fraction: probability of an editing task under ``"unified"``.
    :param prompt_split: ``"train"``, ``"heldout"`` or ``None`` (all prompts).
    """

    def __init__(
        self,
        task: str = "unified",
        *,
        size: int = 64,
        edit_fraction: float = 0.5,
        prompt_split: str | None = "train",
    ) -> None:
        if task not in TASK_KINDS:
            raise ValueError(f"task={task!r} is not one of {TASK_KINDS}")
        min_size = int(load_shapes_spec()["min_size"])
        if not is_int(size) or size < min_size:
            raise ValueError(f"size={size!r} must be an int >= {min_size}")
        if (
            isinstance(edit_fraction, bool)
            or not isinstance(edit_fraction, int | float | np.integer | np.floating)
            or not 0.0 <= edit_fraction <= 1.0
        ):
            raise ValueError(f"edit_fraction={edit_fraction!r} must be a number in [0, 1]")
        if prompt_split not in PROMPT_SPLITS:
            raise ValueError(f"prompt_split={prompt_split!r} is not one of {PROMPT_SPLITS}")
        self.task = task
        self.size = int(size)
        self.edit_fraction = float(edit_fraction)
        self.prompt_split = prompt_split
        prompts = _prompts(prompt_split)
        self.generate_prompts = [p for p in prompts if p.task == "generate"]
        self.edit_prompts = [p for p in prompts if p.task == "edit"]
        if not self.generate_prompts or not self.edit_prompts:
            raise ValueError(f"prompt split {prompt_split!r} lacks generate or edit prompts")
        shapes = set(load_shapes_spec()["shapes"])
        self.photos = load_photo_patches(self.size)
        self._shapes = shapes

    def sample(self, rng: np.random.Generator, *, render: bool = True) -> Task:
        """Draw one task.

        :param rng: the generator the task is drawn from.
        :param render: render the target now (on the host); ``False`` leaves its last
            action in :attr:`Task.pending_render` for the batched core to render with the
            other new tasks' in one canvas call
            (:func:`render_targets`).
        """
        return self.sample_many([rng], render=render)[0]

    def _generate(self, rng: np.random.Generator) -> Task:
        """A generation task drawn from ``rng``, its object not drawn yet (``pending_render``)."""
        prompt = self.generate_prompts[int(rng.integers(len(self.generate_prompts)))]
        solution = generation_solution(prompt, self.size)
        start = torch.full((3, self.size, self.size), _BLANK)
        mask = torch.ones(1, self.size, self.size)
        segments = _empty_segments(self.size)
        # The solution is (background fill, object fill); the background image depends on
        # its colour only, so it is rendered once per colour and the object drawn on it.
        op, params = solution[0]
        background = _background(self.size, op, params.tobytes())
        return Task(
            kind="generate",
            source="shapes",
            prompt=prompt,
            target=background.clone(),
            start=start,
            mask=mask,
            focus=torch.zeros(1, self.size, self.size),
            segments=segments,
            attributes=_encode_attributes(prompt, "generate", 1.0),
            solution=solution,
            pending_render=solution[1],
        )

    def sample_many(
        self, rngs: Sequence[np.random.Generator], *, render: bool = True
    ) -> list[Task]:
        """One task from each generator, each bit for bit the task that generator gives
        alone (:meth:`sample` is this with one generator), with the edit candidates that
        must be checked (rendered, then redrawn if they change too little of their mask)
        rendered and checked together.

        :param render: render every target (``False``: only those a check needs; the others
            keep their last action in :attr:`Task.pending_render`). Either way the targets
            of a round are rendered in one canvas call: the first round's holds the
            generation targets and every edit candidate, a later one the redrawn candidates.

        Each generator is advanced as if it were alone: a candidate's draws all come before
        its check. The canvas ops and a check's CIELAB conversion give an image the same
        values in a batch as alone (:func:`~unigen_sb3.envs.canvas.apply_ops`,
        :func:`~unigen_sb3.rewards.metrics.rgb_to_lab`), so batching changes no outcome.
        """
        tasks: list[Task | None] = [None] * len(rngs)
        candidates: dict[int, Task] = {}
        for i, rng in enumerate(rngs):
            if self.task == "unified":
                kind = "edit" if rng.random() < self.edit_fraction else "generate"
            else:
                kind = self.task
            if kind == "generate":
                tasks[i] = self._generate(rng)
            else:
                candidates[i] = self._edit_candidate(rng)
        # Generation targets go with the first round's candidates: one canvas call.
        generated = [t for t in tasks if t is not None] if render else []
        tries = dict.fromkeys(candidates, 1)
        while candidates:
            checked = [i for i, t in candidates.items() if self._needs_check(t)]
            render_targets(
                generated + [candidates[i] for i in candidates if render or i in checked]
            )
            generated = []
            passed = set(candidates) - set(checked)
            passed |= {
                i
                for i, ok in zip(
                    checked,
                    need_fractions_reached([candidates[i] for i in checked]),
                    strict=True,
                )
                if ok
            }
            for i in passed:
                tasks[i] = candidates.pop(i)
            for i in list(candidates):
                if tries[i] >= _MAX_SCENE_TRIES:
                    raise RuntimeError(_no_edit_task_message())
                tries[i] += 1
                candidates[i] = self._edit_candidate(rngs[i])
        render_targets(generated)  # when no task was an edit
        return cast(list[Task], tasks)

    @staticmethod
    def _needs_check(task: Task) -> bool:
        # A recolour of a flat shapes object to another palette colour always changes it
        # all; attribute edits and photo regions are checked (and so rendered at once).
        op = task.solution[0][0]
        return op == OP_ATTRIBUTE or task.source == "photos"

    def _edit_candidate(self, rng: np.random.Generator) -> Task:
        """An edit task drawn from ``rng``, its target not rendered (``pending_render``)."""
        prompt = self.edit_prompts[int(rng.integers(len(self.edit_prompts)))]
        a = prompt.attributes
        op = OP_FILL if a.rgb is not None else OP_ATTRIBUTE
        solution = [(op, _solution_params(prompt, op))]
        if a.shape is not None:
            scene, idx = _scene_with(rng, self.size, a.shape, avoid=a.colour)
            start, mask = scene.image.clone(), scene.masks[idx].clone()
            segments, source = _empty_segments(self.size), "shapes"
        else:
            patch = self.photos[int(rng.integers(len(self.photos)))]
            start, segments, source = patch.image.clone(), patch.segments.clone(), "photos"
            mask = _photo_region(rng, patch)
        return Task(
            kind="edit",
            source=source,
            prompt=prompt,
            target=start.clone(),
            start=start,
            mask=mask,
            focus=mask.clone(),
            segments=segments,
            attributes=_encode_attributes(prompt, "edit", float(mask.mean())),
            solution=solution,
            pending_render=solution[0],
        )


def _no_edit_task_message() -> str:
    return (
        f"no edit task changing >= {MIN_NEED_FRACTION:.0%} of its mask in "
        f"{_MAX_SCENE_TRIES} draws; the data packages may be broken"
    )


def render_targets(tasks: Sequence[Task]) -> list[int]:
    """Render the targets :meth:`TaskSampler.sample` left pending (``render=False``), in one
    canvas call on the host; returns the positions in ``tasks`` whose targets were rendered.

    Targets are task data: rendering them on the host, whatever the env's device, keeps
    them the same on every device (CUDA and CPU kernels round differently, which would move
    the thresholded metrics). One batched call instead of one per task is what saves the
    time.
    """
    specs = [(k, t.pending_render) for k, t in enumerate(tasks) if t.pending_render is not None]
    if not specs:
        return []
    picked = [tasks[k] for k, _ in specs]
    rendered = apply_ops(
        torch.stack([t.target for t in picked]),
        torch.tensor([op for _, (op, _) in specs]),
        torch.from_numpy(np.stack([p for _, (_, p) in specs])),
        mask=torch.stack([t.mask for t in picked]),
        segments=torch.stack([t.segments for t in picked]),
    )
    finish_render(picked, rendered)
    return [k for k, _ in specs]


def need_fractions_reached(tasks: Sequence[Task]) -> list[bool]:
    """Whether each rendered edit task changes at least :data:`MIN_NEED_FRACTION` of its
    mask (:func:`need_fraction`, with all images converted in one call)."""
    if not tasks:
        return []
    de = delta_e(
        rgb_to_lab(torch.stack([t.start for t in tasks])),
        rgb_to_lab(torch.stack([t.target for t in tasks])),
    )[:, 0]
    return [
        _changed_fraction(d, t.mask) >= MIN_NEED_FRACTION for d, t in zip(de, tasks, strict=True)
    ]


def reference_images(size: int, n_scenes: int = 48, n_generated: int = 48) -> torch.Tensor:
    """Images that define 'realistic' for the FID-like realism score, (N,3,H,W).

    All photo patches, ``n_scenes`` shapes scenes (seeds 0..n_scenes-1: what edits start
    from) and ``n_generated`` generation targets (every k-th generation prompt of both
    splits, rendered): the image families the env asks the agent to produce.
    """
    photos = [p.image for p in load_photo_patches(size)]
    scenes = [generate_scene(s, size=size).image for s in range(n_scenes)]
    prompts = [p for p in _prompts(None) if p.task == "generate"]
    step = max(1, len(prompts) // max(n_generated, 1))
    start = torch.full((3, size, size), _BLANK)
    whole = torch.ones(1, size, size)
    seg = _empty_segments(size)
    generated = [_render(start, whole, seg, generation_solution(p, size)) for p in prompts[::step]][
        :n_generated
    ]
    return torch.stack(photos + scenes + generated)
