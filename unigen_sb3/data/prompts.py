"""The ``prompts`` data package: text prompts with structured target attributes.

``prompts.jsonl`` holds one JSON object per line::

    {"id": "p0024", "text": "a large blue circle at the top left on a grey background",
     "task": "generate",
     "attributes": {"colour": "blue", "rgb": [0.15, 0.3, 0.85], "brightness": 0.0,
                    "saturation": 0.0, "hue": 0.0, "shape": "circle", "size": "large",
                    "horizontal": "left", "vertical": "top", "background": "grey",
                    "background_rgb": [0.5, 0.5, 0.5]},
     "split": "train"}

- ``task`` is ``"generate"`` (draw from a blank canvas) or ``"edit"`` (change an image).
- A **generation** prompt says everything its target scene depends on: the object's shape,
  colour, size (:data:`HALF_EXTENTS`), position (a cell of a 3 x 3 grid, :data:`CENTRES`)
  and the background colour (one of :data:`GENERATION_BACKGROUNDS`). The target is rendered
  from these attributes alone, so nothing the reward checks is left unsaid.
- An **edit** prompt carries the target colour (recolour) or the attribute change
  (``brightness`` added to HSV value, ``saturation`` a relative change with ``-1`` grey,
  ``hue`` a rotation in turns: the canvas ``attribute`` op's meaning); where to edit is the
  task's mask. ``size``, ``horizontal``, ``vertical`` and ``background`` are ``null``.
- ``colour``/``rgb`` come from the ``shapes`` package's palette (the single source of truth
  for colour names), ``background``/``background_rgb`` from :data:`GENERATION_BACKGROUNDS`;
  :func:`load_prompts` checks every record against them. Both are ``null`` where unused.
- ``split``: the held-out prompts hold out **combinations**, never single words:
  the colour x shape pairs of :data:`HELDOUT_PAIRS` (every generation and recolour prompt
  with such a pair), the attribute phrase x subject pairs of :data:`HELDOUT_ATTRIBUTE_EDITS`
  and the region colours of :data:`HELDOUT_REGION_COLOURS`. Every colour, shape, phrase,
  size, position and background still appears in training, so the held-out split measures
  whether an agent composes what it learned (e.g. a cyan triangle, when it saw cyan squares
  and blue triangles).

The file is produced by :func:`build_prompt_records` from the shapes spec; a test checks that
the shipped file equals its output, so edit the generator and regenerate rather than editing
the file by hand::

    python -c "from unigen_sb3.data.prompts import write_prompts_file; write_prompts_file()"

(then rebuild the manifest with :func:`unigen_sb3.data.packages.build_manifest`).

Example:
    >>> heldout = load_prompts("heldout")
    >>> all(p.split == "heldout" for p in heldout)
    True
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from unigen_sb3.data.packages import DataPackageError, package_dir, read_package_file
from unigen_sb3.data.shapes import load_palette, load_shapes_spec

__all__ = [
    "CENTRES",
    "GENERATION_BACKGROUNDS",
    "HALF_EXTENTS",
    "HELDOUT_ATTRIBUTE_EDITS",
    "HELDOUT_PAIRS",
    "HELDOUT_REGION_COLOURS",
    "PACKAGE",
    "PROMPTS_FILE",
    "SPLITS",
    "TASKS",
    "Prompt",
    "PromptAttributes",
    "build_prompt_records",
    "load_prompts",
    "prompts_jsonl",
    "write_prompts_file",
]

PACKAGE = "prompts"
PROMPTS_FILE = "prompts.jsonl"
TASKS = ("generate", "edit")
SPLITS = ("train", "heldout")

#: Backgrounds of generation targets, name -> RGB: three greys and three muted colours, all
#: far (CIELAB Delta-E > 15) from white, from each other and from the palette. White is left
#: out: the canvas starts white, so a white background would be painted for free. Six
#: distinct backgrounds keep a fixed guess right for one prompt in six.
GENERATION_BACKGROUNDS: dict[str, tuple[float, float, float]] = {
    "light_grey": (0.75, 0.75, 0.75),
    "grey": (0.5, 0.5, 0.5),
    "dark_grey": (0.2, 0.2, 0.2),
    "cream": (0.93, 0.87, 0.7),
    "navy": (0.1, 0.12, 0.35),
    "sage": (0.6, 0.7, 0.55),
}
#: Object centre of each grid cell as the canvas engine's position parameter (``x = (p + 1)
#: / 2 * (W - 1)`` pixels: 20 %, 50 % and 80 % of the way across), so a target is exactly
#: reachable at any canvas size.
CENTRES: dict[str, dict[str, float]] = {
    "horizontal": {"left": -0.6, "centre": 0.0, "right": 0.6},
    "vertical": {"top": -0.6, "middle": 0.0, "bottom": 0.6},
}
#: Object half extent (a disk's radius) as the canvas engine's radius parameter (``1 + (p
#: + 1) / 2 * (side / 4 - 1)`` pixels: 5.4 and 8.7 px at 48 x 48, so a large object in a
#: corner cell stays inside the canvas). Centres and sizes lie on the ``multidiscrete``
#: encoding's default 11-bin grid.
HALF_EXTENTS: dict[str, float] = {"small": -0.2, "large": 0.4}
#: Held-out colour x shape pairs: each shape loses two colours and each colour at most one
#: shape, so every colour and shape is still seen in training.
HELDOUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("red", "circle"),
    ("orange", "circle"),
    ("yellow", "square"),
    ("green", "square"),
    ("cyan", "triangle"),
    ("blue", "triangle"),
)
#: Held-out attribute edits: (phrase index in the attribute edits, subject or None).
HELDOUT_ATTRIBUTE_EDITS: tuple[tuple[int, str | None], ...] = (
    (0, "circle"),
    (1, "square"),
    (2, "triangle"),
    (3, None),
)
#: Held-out colours of "paint the selected region <colour>".
HELDOUT_REGION_COLOURS: tuple[str, ...] = ("purple", "pink")

_ATTRIBUTE_KEYS = (
    "colour",
    "rgb",
    "brightness",
    "saturation",
    "hue",
    "shape",
    "size",
    "horizontal",
    "vertical",
    "background",
    "background_rgb",
)
_RECORD_KEYS = ("id", "text", "task", "attributes", "split")

# (phrase, brightness, saturation, hue) of the attribute edits.
_ATTRIBUTE_EDITS: tuple[tuple[str, float, float, float], ...] = (
    ("make {target} brighter", 0.3, 0.0, 0.0),
    ("make {target} darker", -0.3, 0.0, 0.0),
    ("make {target} more saturated", 0.0, 0.5, 0.0),
    ("make {target} more muted", 0.0, -0.5, 0.0),
    ("rotate the hue of {target} by 60 degrees", 0.0, 0.0, 1.0 / 6.0),
)


@dataclass(frozen=True)
class PromptAttributes:
    """Structured target of a prompt.

    :param colour: palette colour name, or ``None``.
    :param rgb: the colour's RGB in ``[0, 1]``, or ``None``.
    :param brightness: HSV value change.
    :param saturation: relative saturation change.
    :param hue: hue rotation in turns.
    :param shape: the object the prompt is about, or ``None`` for the whole image / region.
    :param size: generation: ``"small"`` or ``"large"`` (see :data:`HALF_EXTENTS`).
    :param horizontal: generation: ``"left"``, ``"centre"`` or ``"right"``.
    :param vertical: generation: ``"top"``, ``"middle"`` or ``"bottom"``.
    :param background: generation: the background colour name.
    :param background_rgb: generation: the background colour.
    """

    colour: str | None
    rgb: tuple[float, float, float] | None
    brightness: float
    saturation: float
    hue: float
    shape: str | None
    size: str | None = None
    horizontal: str | None = None
    vertical: str | None = None
    background: str | None = None
    background_rgb: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Prompt:
    """One prompt.

    :param id: stable identifier, e.g. ``"p024"``.
    :param text: the prompt text.
    :param task: ``"generate"`` or ``"edit"``.
    :param attributes: the structured target.
    :param split: ``"train"`` or ``"heldout"``.
    """

    id: str
    text: str
    task: str
    attributes: PromptAttributes
    split: str


def _attrs(
    colour: str | None,
    palette: Mapping[str, Sequence[float]],
    shape: str | None,
    brightness: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
) -> dict[str, Any]:
    return {
        "colour": colour,
        "rgb": None if colour is None else [float(v) for v in palette[colour]],
        "brightness": brightness,
        "saturation": saturation,
        "hue": hue,
        "shape": shape,
        "size": None,
        "horizontal": None,
        "vertical": None,
        "background": None,
        "background_rgb": None,
    }


def _where(vertical: str, horizontal: str) -> str:
    if vertical == "middle":
        return "in the centre" if horizontal == "centre" else f"on the {horizontal}"
    return f"at the {vertical}" if horizontal == "centre" else f"at the {vertical} {horizontal}"


def build_prompt_records(
    palette: Mapping[str, Sequence[float]],
    shapes: Sequence[str],
    backgrounds: Mapping[str, Sequence[float]],
) -> list[dict[str, Any]]:
    """Generate the prompt records (deterministic: the order follows the inputs).

    :param palette: colour name -> RGB.
    :param shapes: shape names.
    :param backgrounds: background name -> RGB of the generation targets.
    :return: JSON-ready records with ``id``, ``text``, ``task``, ``attributes``, ``split``.
    """
    items: list[tuple[str, str, dict[str, Any], bool]] = []
    held_pairs = set(HELDOUT_PAIRS)
    for shape in shapes:
        for colour in palette:
            held = (colour, shape) in held_pairs
            for size in HALF_EXTENTS:
                for vertical in CENTRES["vertical"]:
                    for horizontal in CENTRES["horizontal"]:
                        for bg in backgrounds:
                            attrs = _attrs(colour, palette, shape)
                            attrs.update(
                                size=size,
                                horizontal=horizontal,
                                vertical=vertical,
                                background=bg,
                                background_rgb=[float(v) for v in backgrounds[bg]],
                            )
                            text = (
                                f"a {size} {colour} {shape} {_where(vertical, horizontal)} "
                                f"on a {bg.replace('_', ' ')} background"
                            )
                            items.append((text, "generate", attrs, held))
    for shape in shapes:
        for colour in palette:
            held = (colour, shape) in held_pairs
            items.append(
                (f"make the {shape} {colour}", "edit", _attrs(colour, palette, shape), held)
            )
    held_edits = set(HELDOUT_ATTRIBUTE_EDITS)
    for subject in (*shapes, None):
        target = "the image" if subject is None else f"the {subject}"
        for k, (phrase, b, s, h) in enumerate(_ATTRIBUTE_EDITS):
            attrs = _attrs(None, palette, subject, b, s, round(h, 6))
            items.append((phrase.format(target=target), "edit", attrs, (k, subject) in held_edits))
    for colour in palette:
        held = colour in HELDOUT_REGION_COLOURS
        text = f"paint the selected region {colour}"
        items.append((text, "edit", _attrs(colour, palette, None), held))
    return [
        {
            "id": f"p{i:04d}",
            "text": text,
            "task": task,
            "attributes": attrs,
            "split": "heldout" if held else "train",
        }
        for i, (text, task, attrs, held) in enumerate(items)
    ]


def prompts_jsonl(records: Sequence[Mapping[str, Any]]) -> str:
    """Serialise records as JSON lines (the shipped file's exact format).

    :param records: prompt records.
    :return: one compact JSON object per line, each line ending in a newline.
    """
    return "".join(json.dumps(r, separators=(", ", ": ")) + "\n" for r in records)


def write_prompts_file(root: str | Path | None = None) -> Path:
    """Regenerate ``prompts.jsonl`` from the shapes palette (maintainers only).

    :param root: packages folder; ``None`` means the shipped packages.
    :return: the written path. The manifest must be rebuilt afterwards.
    """
    spec = load_shapes_spec(root)
    records = build_prompt_records(spec["palette"], spec["shapes"], GENERATION_BACKGROUNDS)
    path = package_dir(PACKAGE, root) / PROMPTS_FILE
    path.write_text(prompts_jsonl(records), encoding="utf-8")
    return path


def _check_named_rgb(
    where: str,
    name: Any,
    rgb: Any,
    table: Mapping[str, Sequence[float]],
    what: str,
) -> tuple[float, float, float] | None:
    """Check a (name, rgb) pair against the spec's table; return the RGB tuple or None."""
    if name is None:
        if rgb is not None:
            raise DataPackageError(
                f"{where}: {what} rgb must be null when its name is, got {rgb!r}"
            )
        return None
    if name not in table:
        raise DataPackageError(f"{where}: {what} {name!r} is not in the shapes spec {list(table)}")
    if rgb is None or [float(v) for v in rgb] != [float(v) for v in table[name]]:
        raise DataPackageError(
            f"{where}: rgb {rgb!r} of {what} {name!r} differs from the spec's {list(table[name])}"
        )
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def _parse(
    line_no: int,
    raw: Any,
    palette: Mapping[str, Sequence[float]],
    backgrounds: Mapping[str, Sequence[float]],
) -> Prompt:
    where = f"{PROMPTS_FILE} line {line_no}"
    if not isinstance(raw, dict) or set(raw) != set(_RECORD_KEYS):
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DataPackageError(f"{where}: expected keys {list(_RECORD_KEYS)}, got {got}")
    if raw["task"] not in TASKS:
        raise DataPackageError(f"{where}: task must be one of {TASKS}, got {raw['task']!r}")
    if raw["split"] not in SPLITS:
        raise DataPackageError(f"{where}: split must be one of {SPLITS}, got {raw['split']!r}")
    a = raw["attributes"]
    if not isinstance(a, dict) or set(a) != set(_ATTRIBUTE_KEYS):
        got = sorted(a) if isinstance(a, dict) else type(a).__name__
        raise DataPackageError(f"{where}: attributes need keys {list(_ATTRIBUTE_KEYS)}, got {got}")
    rgb = _check_named_rgb(where, a["colour"], a["rgb"], palette, "colour")
    bg_rgb = _check_named_rgb(
        where, a["background"], a["background_rgb"], backgrounds, "background"
    )
    layout = {"size": HALF_EXTENTS, **CENTRES}
    for key, accepted in layout.items():
        if a[key] is not None and a[key] not in accepted:
            raise DataPackageError(f"{where}: {key} {a[key]!r} is not one of {list(accepted)}")
    if raw["task"] == "generate":
        unsaid = [k for k in ("colour", "shape", *layout, "background") if a[k] is None]
        if unsaid:
            raise DataPackageError(f"{where}: a generation prompt must name {unsaid}")
    return Prompt(
        id=str(raw["id"]),
        text=str(raw["text"]),
        task=raw["task"],
        attributes=PromptAttributes(
            colour=a["colour"],
            rgb=rgb,
            brightness=float(a["brightness"]),
            saturation=float(a["saturation"]),
            hue=float(a["hue"]),
            shape=a["shape"],
            size=a["size"],
            horizontal=a["horizontal"],
            vertical=a["vertical"],
            background=a["background"],
            background_rgb=bg_rgb,
        ),
        split=raw["split"],
    )


@lru_cache(maxsize=8)
def _load_all(root: str | None) -> tuple[Prompt, ...]:
    palette = load_palette(root)
    backgrounds = GENERATION_BACKGROUNDS
    text = read_package_file(PACKAGE, PROMPTS_FILE, root).decode("utf-8")
    prompts = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataPackageError(f"{PROMPTS_FILE} line {i} is not valid JSON: {exc}") from exc
        prompts.append(_parse(i, raw, palette, backgrounds))
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise DataPackageError(f"{PROMPTS_FILE}: prompt ids are not unique")
    return tuple(prompts)


def load_prompts(split: str | None = None, *, root: str | Path | None = None) -> list[Prompt]:
    """Load the prompts (checksum-verified, checked against the palette, cached).

    :param split: ``"train"``, ``"heldout"``, or ``None`` for all.
    :param root: packages folder; ``None`` means the shipped packages.
    :return: the prompts in file order.
    :raises ValueError: for an unknown split.
    :raises DataPackageError: if the file is missing, corrupt, or disagrees with the palette.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    prompts = _load_all(None if root is None else str(root))
    return [p for p in prompts if split is None or p.split == split]
