"""The ``shapes`` data package: procedural scenes of coloured circles, squares and triangles.

The package ships only its generator spec (``shapes_spec.json``: spec version, shapes, the
colour palette, backgrounds and size ranges), checked against the manifest's SHA-256 when
loaded. A scene is a pure function of ``(seed, size, spec)``, so scenes are reproducible and
versioned with the spec. The palette here is the single source of truth for colour names
(the ``prompts`` package uses it).

Objects never overlap (their bounding circles are kept apart), so every object's mask is
exactly the pixels it covers, and recolouring one object changes nothing else.

Example:
    >>> scene = generate_scene(7, size=32)
    >>> scene.image.shape, scene.masks.shape[1:]
    (torch.Size([3, 32, 32]), torch.Size([1, 32, 32]))
    >>> edited, mask = edit_scene(scene, 0, "blue")
    >>> bool(((edited != scene.image).any(0) <= mask[0].bool()).all())
    True
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigen_sb3.data.packages import DataPackageError, read_package_file
from unigen_sb3.utils import is_int

__all__ = [
    "PACKAGE",
    "SPEC_FILE",
    "ShapeObject",
    "ShapeScene",
    "edit_scene",
    "generate_scene",
    "load_palette",
    "load_shapes_spec",
]

PACKAGE = "shapes"
SPEC_FILE = "shapes_spec.json"

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class ShapeObject:
    """One object of a scene.

    :param shape: ``"circle"``, ``"square"`` or ``"triangle"``.
    :param colour: colour name from the palette.
    :param rgb: the colour, three floats in ``[0, 1]``.
    :param half_extent: half the width of the object's bounding box, in pixels.
    :param centre: ``(x, y)`` centre in pixels (column, row).
    :param size_label: ``"small"`` or ``"large"`` (half extent below or above the spec's
        ``small_below_fraction`` of the image side).
    :param horizontal: ``"left"``, ``"centre"`` or ``"right"`` third of the image.
    :param vertical: ``"top"``, ``"middle"`` or ``"bottom"`` third of the image.
    """

    shape: str
    colour: str
    rgb: RGB
    half_extent: float
    centre: tuple[float, float]
    size_label: str
    horizontal: str
    vertical: str

    @property
    def attributes(self) -> dict[str, str]:
        """Attribute labels: shape, colour, size (small/large), horizontal, vertical."""
        return {
            "shape": self.shape,
            "colour": self.colour,
            "size": self.size_label,
            "horizontal": self.horizontal,
            "vertical": self.vertical,
        }


@dataclass(frozen=True)
class ShapeScene:
    """A rendered scene.

    :param seed: the seed it was generated from.
    :param size: image side in pixels.
    :param spec_version: the generator spec version.
    :param objects: the objects, in drawing order.
    :param background: background colour name.
    :param background_rgb: background colour.
    :param image: ``(3, size, size)`` float32 in ``[0, 1]``.
    :param masks: ``(N, 1, size, size)`` float32 in ``{0, 1}``, one per object (disjoint).
    """

    seed: int
    size: int
    spec_version: int
    objects: tuple[ShapeObject, ...]
    background: str
    background_rgb: RGB
    image: torch.Tensor
    masks: torch.Tensor

    @property
    def labels(self) -> list[dict[str, str]]:
        """Attribute labels of every object (see :attr:`ShapeObject.attributes`)."""
        return [o.attributes for o in self.objects]


def _check_rgb_table(table: Any, key: str) -> dict[str, RGB]:
    if not isinstance(table, dict) or not table:
        raise DataPackageError(f"{SPEC_FILE}: {key!r} must be a non-empty object name -> RGB")
    out: dict[str, RGB] = {}
    for name, rgb in table.items():
        ok = isinstance(rgb, list) and len(rgb) == 3
        ok = ok and all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in rgb)
        if not ok:
            raise DataPackageError(
                f"{SPEC_FILE}: {key}[{name!r}] must be three numbers in [0, 1], got {rgb!r}"
            )
        out[name] = (float(rgb[0]), float(rgb[1]), float(rgb[2]))
    return out


@lru_cache(maxsize=8)
def _load_spec(root: str | None) -> dict[str, Any]:
    spec = json.loads(read_package_file(PACKAGE, SPEC_FILE, root).decode("utf-8"))
    required = {
        "generator",
        "spec_version",
        "shapes",
        "palette",
        "backgrounds",
        "min_objects",
        "max_objects",
        "half_extent_fraction",
        "small_below_fraction",
        "placement_tries",
        "min_size",
    }
    if not isinstance(spec, dict) or not required <= set(spec):
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise DataPackageError(f"{SPEC_FILE} must hold keys {sorted(required)}, got {got}")
    spec["palette"] = _check_rgb_table(spec["palette"], "palette")
    spec["backgrounds"] = _check_rgb_table(spec["backgrounds"], "backgrounds")
    unknown = set(spec["shapes"]) - {"circle", "square", "triangle"}
    if unknown:
        raise DataPackageError(f"{SPEC_FILE}: unknown shapes {sorted(unknown)}")
    return spec


def load_shapes_spec(root: str | Path | None = None) -> dict[str, Any]:
    """The generator spec of the ``shapes`` package (checksum-verified, cached).

    :param root: packages folder; ``None`` means the shipped packages.
    :return: a copy of the spec; ``palette`` and ``backgrounds`` map names to RGB tuples.
    :raises DataPackageError: if the spec file is missing, corrupt or malformed.
    """
    return dict(_load_spec(None if root is None else str(root)))


def load_palette(root: str | Path | None = None) -> dict[str, RGB]:
    """The shared colour palette: colour name -> RGB in ``[0, 1]``.

    :param root: packages folder; ``None`` means the shipped packages.
    :return: a new dict, in the spec's order.
    """
    return dict(load_shapes_spec(root)["palette"])


# Draws use only Random.random(), whose stream Python keeps stable across versions.
def _pick(rng: random.Random, n: int) -> int:
    return min(int(rng.random() * n), n - 1)


def _uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo + (hi - lo) * rng.random()


def _shuffled(rng: random.Random, items: Sequence[str]) -> list[str]:
    out = list(items)
    for i in range(len(out) - 1, 0, -1):  # Fisher-Yates
        j = _pick(rng, i + 1)
        out[i], out[j] = out[j], out[i]
    return out


@lru_cache(maxsize=8)
def _pixel_grid(size: int) -> np.ndarray:
    grid = np.mgrid[0:size, 0:size].astype(np.float64)
    grid.flags.writeable = False  # shared by every scene of this size
    return grid


def _shape_mask(shape: str, cx: float, cy: float, s: float, size: int) -> np.ndarray:
    ys, xs = _pixel_grid(size)
    if shape == "circle":
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= s * s
    if shape == "square":
        return (np.abs(xs - cx) <= s) & (np.abs(ys - cy) <= s)
    # Upward triangle in the box [cx - s, cx + s] x [cy - s, cy + s]: apex at the top centre.
    return (ys <= cy + s) & (np.abs(xs - cx) <= (ys - (cy - s)) / 2.0)


def _label(v: float, size: int, names: tuple[str, str, str]) -> str:
    return names[min(int(3 * v / size), 2)]


def generate_scene(seed: int, size: int = 64, *, root: str | Path | None = None) -> ShapeScene:
    """Generate a scene deterministically from ``seed``.

    :param seed: non-negative integer seed.
    :param size: image side in pixels (at least the spec's ``min_size``, 16).
    :param root: packages folder; ``None`` means the shipped packages.
    :return: the scene.
    :raises ValueError: for a negative or non-integer seed or a too small size.
    """
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    spec = load_shapes_spec(root)
    if not isinstance(size, int | np.integer) or size < spec["min_size"]:
        raise ValueError(f"size must be an integer >= {spec['min_size']}, got {size!r}")
    seed, size = int(seed), int(size)
    palette: dict[str, RGB] = spec["palette"]
    backgrounds: dict[str, RGB] = spec["backgrounds"]
    shapes: list[str] = list(spec["shapes"])
    lo_frac, hi_frac = spec["half_extent_fraction"]

    # The spec version is part of the seed so a new spec gives new scenes, not edited ones.
    rng = random.Random(seed * 1000 + int(spec["spec_version"]))
    background = list(backgrounds)[_pick(rng, len(backgrounds))]
    n_target = spec["min_objects"] + _pick(rng, spec["max_objects"] - spec["min_objects"] + 1)
    colours = _shuffled(rng, list(palette))

    objects: list[ShapeObject] = []
    image = np.empty((3, size, size), dtype=np.float32)
    image[:] = np.asarray(backgrounds[background], dtype=np.float32).reshape(3, 1, 1)
    masks: list[np.ndarray] = []
    for k in range(n_target):
        shape = shapes[_pick(rng, len(shapes))]
        s = _uniform(rng, lo_frac, hi_frac) * size
        bound = s * math.sqrt(2.0)  # bounding circle of every shape with half extent s
        placed = None
        for _ in range(spec["placement_tries"]):
            cx = _uniform(rng, s, size - 1 - s)
            cy = _uniform(rng, s, size - 1 - s)
            if all(
                math.hypot(cx - o.centre[0], cy - o.centre[1])
                > bound + o.half_extent * math.sqrt(2.0) + 1.0
                for o in objects
            ):
                placed = (cx, cy)
                break
        if placed is None:
            continue  # no room left: the scene keeps fewer objects (still deterministic)
        cx, cy = placed
        colour = colours[k % len(colours)]
        obj = ShapeObject(
            shape=shape,
            colour=colour,
            rgb=palette[colour],
            half_extent=s,
            centre=(cx, cy),
            size_label="small" if s < spec["small_below_fraction"] * size else "large",
            horizontal=_label(cx, size, ("left", "centre", "right")),
            vertical=_label(cy, size, ("top", "middle", "bottom")),
        )
        m = _shape_mask(shape, cx, cy, s, size)
        image[:, m] = np.asarray(obj.rgb, dtype=np.float32).reshape(3, 1)
        objects.append(obj)
        masks.append(m)

    mask_arr = (
        np.stack(masks).astype(np.float32)[:, None]
        if masks
        else np.zeros((0, 1, size, size), dtype=np.float32)
    )
    return ShapeScene(
        seed=seed,
        size=size,
        spec_version=int(spec["spec_version"]),
        objects=tuple(objects),
        background=background,
        background_rgb=backgrounds[background],
        image=torch.from_numpy(image),
        masks=torch.from_numpy(mask_arr),
    )


def edit_scene(
    scene: ShapeScene,
    object_index: int,
    new_colour: str | Sequence[float],
    *,
    root: str | Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth for recolouring one object.

    :param scene: the scene.
    :param object_index: which object, ``0 <= object_index < len(scene.objects)``.
    :param new_colour: a palette colour name, or three floats in ``[0, 1]``.
    :param root: packages folder for the palette; ``None`` means the shipped packages.
    :return: ``(image, mask)``: the edited ``(3, H, W)`` image (a new tensor) and the
        object's ``(1, H, W)`` mask. Pixels outside the mask equal the original.
    :raises IndexError: if ``object_index`` is out of range.
    :raises ValueError: for an unknown colour name or an invalid RGB value.
    """
    n = len(scene.objects)
    if not isinstance(object_index, int) or not 0 <= object_index < n:
        raise IndexError(f"object_index must be in [0, {n}), got {object_index!r}")
    if isinstance(new_colour, str):
        palette = load_palette(root)
        if new_colour not in palette:
            raise ValueError(f"unknown colour {new_colour!r}; palette colours: {list(palette)}")
        rgb: Sequence[float] = palette[new_colour]
    else:
        rgb = [float(v) for v in new_colour]
        if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
            raise ValueError(f"new_colour must be 3 floats in [0, 1], got {new_colour!r}")
    mask = scene.masks[object_index]
    colour = torch.tensor(rgb, dtype=scene.image.dtype).view(3, 1, 1)
    image = torch.where(mask.bool(), colour, scene.image)
    return image, mask.clone()
