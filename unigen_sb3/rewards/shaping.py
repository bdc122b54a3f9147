"""Potential-based shaping: ``F = scale * (gamma * Phi(s') - Phi(s))``, ``Phi(terminal) = 0``.

Adding ``F`` to every reward gives a dense learning signal while leaving the
optimal policy unchanged (Ng, Harada & Russell, 1999), *provided* ``gamma`` is
the discount the learning algorithm uses: the shaped return of an episode is
then the unshaped one minus ``Phi(s_0)``, a constant no action can change. With
any other ``gamma`` the leftover ``(gamma_shaping - gamma_algo) * Phi(s')`` is a
plain state reward that can change which policy is optimal;
:func:`check_shaping_gamma` catches that mistake.

Truncation (a time limit) is not termination: the state after a truncated
step still has its potential, just as SB3 still bootstraps its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from unigen_sb3.rewards.names import COMPONENT_NAMES

#: A potential function: (normalized state components or None, step info) -> Phi.
PotentialFn = Callable[[np.ndarray | None, dict[str, Any]], float]


class PotentialShaping:
    """Potential-based shaping term.

    :param gamma: discount of the shaping term; must equal the algorithm's
        discount (see :func:`check_shaping_gamma`).
    :param potential: ``"quality"``, ``"edit"`` or ``"consistency"`` reads that
        entry of the *normalized* state components (``info["state_components"]``
        of the UniGen env, normalized like the reward); a callable receives
        ``(normalized_state_components, info)`` -- the components are ``None``
        for envs that do not report them -- and returns ``Phi`` as a float.
    :param scale: multiplies ``F`` (equivalent to scaling the potential).

    Example:
        >>> shaping = PotentialShaping(gamma=0.9, potential="quality")
        >>> round(shaping.shaping_term(phi_s=0.2, phi_next=0.5, terminated=False), 6)
        0.25
        >>> round(shaping.shaping_term(phi_s=0.2, phi_next=0.5, terminated=True), 6)
        -0.2
    """

    def __init__(
        self,
        gamma: float,
        potential: str | PotentialFn = "quality",
        scale: float = 1.0,
    ) -> None:
        gamma = float(gamma)
        if not (math.isfinite(gamma) and 0.0 <= gamma <= 1.0):
            raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
        scale = float(scale)
        if not math.isfinite(scale):
            raise ValueError(f"scale must be finite, got {scale!r}")
        if isinstance(potential, str):
            if potential not in COMPONENT_NAMES:
                raise ValueError(
                    f"potential={potential!r} is not a component; use one of "
                    f"{list(COMPONENT_NAMES)} or a callable (components, info) -> float"
                )
        elif not callable(potential):
            raise TypeError(
                f"potential must be a component name or a callable, got {type(potential).__name__}"
            )
        self.gamma = gamma
        self.potential = potential
        self.scale = scale

    def potential_of(self, components: np.ndarray | None, info: dict[str, Any]) -> float:
        """Evaluate ``Phi`` of a state.

        :param components: the state's normalized components ``(3,)`` in
            ``[0, 1]``, or ``None`` if the env does not report them.
        :param info: the info dict of the step (or reset) that produced the state.
        :return: ``Phi(s)``.
        :raises ValueError: if a named potential has no components to read,
            or the callable returns a non-finite value.
        """
        if isinstance(self.potential, str):
            if components is None:
                raise ValueError(
                    f"potential={self.potential!r} reads info['state_components'], which this env "
                    "does not provide (a UniGen env provides it every step when built with "
                    f"dense_components={[self.potential]!r}, as make_unigen_env does for "
                    "shaping); or pass a callable potential (components, info) -> float"
                )
            value = float(components[COMPONENT_NAMES.index(self.potential)])
            if not math.isfinite(value):
                raise ValueError(
                    f"potential={self.potential!r}: info['state_components'] holds no value for "
                    f"it ({value}); the env computes it every step only when asked "
                    f"(dense_components={[self.potential]!r}, which make_unigen_env passes "
                    "when shaping reads a component)"
                )
            return value
        value = float(self.potential(components, info))
        if not math.isfinite(value):
            raise ValueError(f"the potential function returned {value}; it must be finite")
        return value

    def shaping_term(self, phi_s: float, phi_next: float, terminated: bool) -> float:
        """``F = scale * (gamma * Phi(s') - Phi(s))`` with ``Phi(s') = 0`` when ``s'`` is terminal.

        :param phi_s: potential of the state the step started from.
        :param phi_next: potential of the state the step reached.
        :param terminated: True if ``s'`` is terminal (not merely truncated).
        :return: ``F``.
        """
        next_value = 0.0 if terminated else float(phi_next)
        return self.scale * (self.gamma * next_value - float(phi_s))

    def __repr__(self) -> str:
        pot = self.potential if isinstance(self.potential, str) else "<callable>"
        return f"PotentialShaping(gamma={self.gamma}, potential={pot!r}, scale={self.scale})"


def check_shaping_gamma(model_or_gamma: Any, shaping: PotentialShaping | None) -> None:
    """Refuse a shaping discount that differs from the algorithm's discount.

    Potential-based shaping preserves the optimal policy only when its ``gamma``
    equals the discount the algorithm optimizes: otherwise the shaped reward
    contains an extra state reward ``(gamma_shaping - gamma_algo) * Phi(s')``
    that can make a different policy optimal (e.g. one that lingers in
    high-potential states instead of finishing the task).

    :param model_or_gamma: an SB3 model (its ``.gamma`` is read) or a float.
    :param shaping: the shaping in use; ``None`` means no shaping (nothing to check).
    :raises ValueError: naming both discounts if they differ by more than ``1e-9``.
    :raises TypeError: if no discount can be read from ``model_or_gamma``.
    """
    if shaping is None:
        return
    raw = getattr(model_or_gamma, "gamma", model_or_gamma)
    try:
        algo_gamma = float(raw)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "model_or_gamma must be an SB3 model (with .gamma) or a float, "
            f"got {type(model_or_gamma).__name__}"
        ) from exc
    if abs(algo_gamma - shaping.gamma) > 1e-9:
        raise ValueError(
            f"shaping gamma={shaping.gamma} differs from the algorithm's gamma={algo_gamma}; "
            "potential-based shaping keeps the optimal policy only when they are equal: "
            f"use PotentialShaping(gamma={algo_gamma}, ...)"
        )
