"""Gymnasium registration of the UniGen env ids (done on import of ``unigen_sb3``).

Each id makes the SB3-ready stack of :func:`~unigen_sb3.make.make_unigen_env`
for one task; keyword arguments of ``gymnasium.make`` pass through to it.
"""

from __future__ import annotations

import gymnasium as gym

ENV_IDS: dict[str, str] = {
    "UniGen/Generate-v0": "generate",
    "UniGen/Edit-v0": "edit",
    "UniGen/Unified-v0": "unified",
}


def register_envs() -> None:
    """Register every id in :data:`ENV_IDS` (idempotent)."""
    for env_id, task in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="unigen_sb3.make:make_unigen_env",
                kwargs={"task": task},
                # The env's own horizon truncates; no TimeLimit on top.
                disable_env_checker=True,
            )
