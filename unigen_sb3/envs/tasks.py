"""Task sampling: turns the data packages into generation and editing tasks.

Both modes draw on the same data backbone (the ``shapes``, ``photos`` and ``prompts``
packages). A task is everything one episode needs:

- **generate** — a prompt ``"draw a <colour> <shape>"`` gives a shapes scene that holds that
  shape in that colour; the agent paints it on a blank white canvas. ``target`` is the
  reference scene, ``mask`` the whole canvas, ``start`` the blank canvas.
- **edit** — the canvas starts as a shapes scene or a photo patch; ``mask`` is the region to
  change (an object, or a few SLIC superpixels of a photo) and ``target`` the **ground-truth
  edited image**: the start image with the requested attributes rendered inside the mask
  and nothing changed outside it. Recolour prompts (``"make the square red"``, ``"paint the
  selected region pink"``) are rendered with the canvas engine's ``fill`` op (shading kept);
  attribute prompts (``"make the image darker"``) with its ``attribute`` op. So every edit
  target is reachable with one action, which :attr:`Task.solution` records (privileged
  information for the oracle policy, never in an observation).

The prompt's structured attributes are encoded as the ``attributes`` observation
(:data:`ATTRIBUTE_NAMES`, all in ``[-1, 1]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from unigen_sb3.data.photos import PhotoPatch, load_photo_patches
from unigen_sb3.data.prompts import Prompt, load_prompts
from unigen_sb3.data.shapes import ShapeScene, edit_scene, generate_scene, load_shapes_spec
from unigen_sb3.envs.canvas import NUM_PARAMS, OP_ATTRIBUTE, OP_FILL, apply_ops
from unigen_sb3.utils import is_int

TASK_KINDS = ("generate", "edit", "unified")
"""The env's ``task`` argument: one mode, or the mixture of both."""

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
    "mask_area",
)
"""Meaning of each entry of the ``attributes`` observation (prompt encoding), in order.

``target_*`` is the requested colour (0 when the prompt names none), ``has_colour`` is 1
when it names one; ``brightness`` / ``saturation`` / ``hue`` are the requested changes
(brightness and hue doubled, so a hue turn of 1/2 is 1); ``shape_*`` one-hot of the
object the prompt is about; ``mask_area`` the fraction of the canvas the task mask covers.
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
    :param segments: ``(H,W)`` int64 superpixels of the start image.
    :param attributes: ``(len(ATTRIBUTE_NAMES),)`` float32 prompt encoding.
    :param solution: privileged: raw actions that reach ``target`` from ``start`` (empty when
        none is known, as in generation).
    :param pending_render: ``(op, params)`` still to render into ``target`` (which holds a
        copy of ``start`` until then); set by ``TaskSampler.sample(render=False)`` so that
        :class:`~unigen_sb3.envs.core.UniGenCore` renders every new edit target of a reset in
        one batched canvas call on its device. ``None`` once ``target`` is final.
    """

    kind: str
    source: str
    prompt: Prompt
    target: torch.Tensor
    start: torch.Tensor
    mask: torch.Tensor
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
    vec[11] = mask_area
    return vec


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
    p[7] = -1.0  # region: the task mask
    return np.clip(p, -1.0, 1.0)


def _render(
    image: torch.Tensor, mask: torch.Tensor, seg: torch.Tensor, op: int, params: np.ndarray
) -> torch.Tensor:
    return apply_ops(
        image[None],
        torch.tensor([op]),
        torch.from_numpy(params)[None],
        mask=mask[None],
        segments=seg[None],
    )[0]


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
        dil = torch.nn.functional.max_pool2d(mask[None, None].float(), 3, 1, 1)[0, 0] > 0
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
        if prompt_split not in ("train", "heldout", None):
            raise ValueError(f"prompt_split={prompt_split!r} must be 'train', 'heldout' or None")
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
        :param render: render an edit target now (on the host); ``False`` leaves it in
            :attr:`Task.pending_render` for the batched core to render on its device.
        """
        if self.task == "unified":
            kind = "edit" if rng.random() < self.edit_fraction else "generate"
        else:
            kind = self.task
        if kind == "generate":
            return self._generate(rng)
        return self._edit(rng, render=render)

    def _generate(self, rng: np.random.Generator) -> Task:
        prompt = self.generate_prompts[int(rng.integers(len(self.generate_prompts)))]
        a = prompt.attributes
        scene, idx = _scene_with(rng, self.size, a.shape, avoid=None)
        if a.colour is None:
            raise ValueError(f"generation prompt {prompt.id} names no colour: {prompt.text!r}")
        target, _ = edit_scene(scene, idx, a.colour)
        start = torch.full_like(target, _BLANK)
        mask = torch.ones(1, self.size, self.size)
        return Task(
            kind="generate",
            source="shapes",
            prompt=prompt,
            target=target,
            start=start,
            mask=mask,
            segments=_empty_segments(self.size),
            attributes=_encode_attributes(prompt, "generate", 1.0),
        )

    def _edit(self, rng: np.random.Generator, *, render: bool) -> Task:
        prompt = self.edit_prompts[int(rng.integers(len(self.edit_prompts)))]
        a = prompt.attributes
        op = OP_FILL if a.rgb is not None else OP_ATTRIBUTE
        params = _solution_params(prompt, op)
        if a.shape is not None:
            scene, idx = _scene_with(rng, self.size, a.shape, avoid=a.colour)
            start, mask = scene.image.clone(), scene.masks[idx].clone()
            segments, source = _empty_segments(self.size), "shapes"
        else:
            patch = self.photos[int(rng.integers(len(self.photos)))]
            start, segments, source = patch.image.clone(), patch.segments.clone(), "photos"
            mask = _photo_region(rng, patch)
        target = _render(start, mask, segments, op, params) if render else start.clone()
        return Task(
            kind="edit",
            source=source,
            prompt=prompt,
            target=target,
            start=start,
            mask=mask,
            segments=segments,
            attributes=_encode_attributes(prompt, "edit", float(mask.mean())),
            solution=[(op, params)],
            pending_render=None if render else (op, params),
        )


def reference_images(size: int, n_scenes: int = 48) -> torch.Tensor:
    """Images that define 'realistic' for the FID-like realism score, (N,3,H,W).

    All photo patches plus ``n_scenes`` shapes scenes (seeds 0..n_scenes-1): the two image
    families the env asks the agent to produce.
    """
    photos = [p.image for p in load_photo_patches(size)]
    scenes = [generate_scene(s, size=size).image for s in range(n_scenes)]
    return torch.stack(photos + scenes)
