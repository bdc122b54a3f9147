"""The ``prompts`` data package: text prompts with structured target attributes.

``prompts.jsonl`` holds one JSON object per line::

    {"id": "p024", "text": "make the circle red", "task": "edit",
     "attributes": {"colour": "red", "rgb": [0.85, 0.15, 0.15], "brightness": 0.0,
                    "saturation": 0.0, "hue": 0.0, "shape": "circle"},
     "split": "train"}

- ``task`` is ``"generate"`` (draw from a blank canvas) or ``"edit"`` (change an image).
- ``colour``/``rgb`` come from the shared palette of the ``shapes`` package (the single source
  of truth; :func:`load_prompts` checks every record against it), or are ``null`` when the
  prompt asks for no colour.
- ``brightness`` (added to HSV value), ``saturation`` (relative change, ``-1`` is grey) and
  ``hue`` (rotation in turns) use the same meaning as the canvas ``attribute`` op.
- ``shape`` names the object the prompt is about, or is ``null`` for the whole image / region.
- ``split``: ``"heldout"`` for about 20% of the prompts (those whose SHA-256 of the text sorts
  first), ``"train"`` for the rest. The split is by text: a held-out prompt's text never
  appears in training, and each colour and shape still does, but its colour-shape pair may
  (a held-out "draw a cyan triangle" next to a training "make the triangle cyan"), so the
  held-out set measures new instructions, not only unseen colour-shape combinations.

The file is produced by :func:`build_prompt_records` from the palette; a test checks that
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

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from unigen_sb3.data.packages import DataPackageError, package_dir, read_package_file
from unigen_sb3.data.shapes import load_palette, load_shapes_spec

__all__ = [
    "HELDOUT_FRACTION",
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
HELDOUT_FRACTION = 0.2

_ATTRIBUTE_KEYS = ("colour", "rgb", "brightness", "saturation", "hue", "shape")
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
    """

    colour: str | None
    rgb: tuple[float, float, float] | None
    brightness: float
    saturation: float
    hue: float
    shape: str | None


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
    }


def build_prompt_records(
    palette: Mapping[str, Sequence[float]], shapes: Sequence[str]
) -> list[dict[str, Any]]:
    """Generate the prompt records (deterministic: the order follows the inputs).

    :param palette: colour name -> RGB.
    :param shapes: shape names.
    :return: JSON-ready records with ``id``, ``text``, ``task``, ``attributes``, ``split``.
    """
    items: list[tuple[str, str, dict[str, Any]]] = []
    for shape in shapes:
        for colour in palette:
            items.append((f"draw a {colour} {shape}", "generate", _attrs(colour, palette, shape)))
    for shape in shapes:
        for colour in palette:
            items.append((f"make the {shape} {colour}", "edit", _attrs(colour, palette, shape)))
    for subject in (*shapes, None):
        target = "the image" if subject is None else f"the {subject}"
        for phrase, b, s, h in _ATTRIBUTE_EDITS:
            attrs = _attrs(None, palette, subject, b, s, round(h, 6))
            items.append((phrase.format(target=target), "edit", attrs))
    for colour in palette:
        items.append((f"paint the selected region {colour}", "edit", _attrs(colour, palette, None)))

    # Held out: the texts whose SHA-256 sorts first, a fixed and input-order-free choice.
    n_heldout = round(HELDOUT_FRACTION * len(items))
    ranked = sorted(items, key=lambda it: hashlib.sha256(it[0].encode("utf-8")).hexdigest())
    heldout = {text for text, _, _ in ranked[:n_heldout]}
    return [
        {
            "id": f"p{i:03d}",
            "text": text,
            "task": task,
            "attributes": attrs,
            "split": "heldout" if text in heldout else "train",
        }
        for i, (text, task, attrs) in enumerate(items)
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
    records = build_prompt_records(spec["palette"], spec["shapes"])
    path = package_dir(PACKAGE, root) / PROMPTS_FILE
    path.write_text(prompts_jsonl(records), encoding="utf-8")
    return path


def _parse(line_no: int, raw: Any, palette: Mapping[str, Sequence[float]]) -> Prompt:
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
    colour, rgb = a["colour"], a["rgb"]
    if colour is not None:
        if colour not in palette:
            raise DataPackageError(
                f"{where}: colour {colour!r} is not in the shapes palette {list(palette)}"
            )
        if rgb is None or [float(v) for v in rgb] != [float(v) for v in palette[colour]]:
            raise DataPackageError(
                f"{where}: rgb {rgb!r} of {colour!r} differs from the palette's "
                f"{list(palette[colour])}"
            )
    elif rgb is not None:
        raise DataPackageError(f"{where}: rgb must be null when colour is null, got {rgb!r}")
    return Prompt(
        id=str(raw["id"]),
        text=str(raw["text"]),
        task=raw["task"],
        attributes=PromptAttributes(
            colour=colour,
            rgb=None if rgb is None else (float(rgb[0]), float(rgb[1]), float(rgb[2])),
            brightness=float(a["brightness"]),
            saturation=float(a["saturation"]),
            hue=float(a["hue"]),
            shape=a["shape"],
        ),
        split=raw["split"],
    )


@lru_cache(maxsize=8)
def _load_all(root: str | None) -> tuple[Prompt, ...]:
    palette = load_palette(root)
    text = read_package_file(PACKAGE, PROMPTS_FILE, root).decode("utf-8")
    prompts = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataPackageError(f"{PROMPTS_FILE} line {i} is not valid JSON: {exc}") from exc
        prompts.append(_parse(i, raw, palette))
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
