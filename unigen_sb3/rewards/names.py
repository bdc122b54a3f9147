"""The reward components' names, declared ranges and sub-metrics: their one definition.

Kept free of imports so that every module of the package (normalizers, components, the
config schema, callbacks) can take the names from here without an import cycle.
:data:`COMPONENT_NAMES` is derived from :data:`COMPONENT_RANGES`, so a component is added in
one place.
"""

from __future__ import annotations

__all__ = ["COMPONENT_NAMES", "COMPONENT_RANGES", "SUB_METRICS"]

COMPONENT_RANGES: dict[str, tuple[float, float]] = {
    "quality": (0.0, 1.0),
    "edit": (0.0, 1.0),
    "consistency": (0.0, 1.0),
}
"""Declared range of each component (the env's ``reward_space`` is built from it)."""

#: Order of the reward vector's entries in the raw env (MO-Gymnasium ``reward_space``).
COMPONENT_NAMES: tuple[str, ...] = tuple(COMPONENT_RANGES)

SUB_METRICS: dict[str, tuple[str, ...]] = {
    "quality": ("perceptual", "realism"),
    "edit": ("accuracy", "localization", "preservation"),
    "consistency": ("style", "temporal"),
}
"""The sub-metrics of each component, in order."""
