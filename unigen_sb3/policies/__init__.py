"""Policies that plug into SB3's own algorithm classes.

:class:`HybridCnnPolicy` / :class:`HybridMultiInputPolicy`: a categorical op and per-op
Gaussian parameters on the flat ``box`` action encoding, for PPO and A2C
(``docs/hybrid_policy.md``).

Example:
    >>> from stable_baselines3 import PPO
    >>> from unigen_sb3 import make_unigen_env
    >>> from unigen_sb3.policies import HybridCnnPolicy
    >>> model = PPO(HybridCnnPolicy, make_unigen_env(size=36), n_steps=8, batch_size=8)
"""

from unigen_sb3.policies.hybrid import (
    HybridActorCriticPolicy,
    HybridCnnPolicy,
    HybridDistribution,
    HybridMultiInputPolicy,
    op_param_table,
)

__all__ = [
    "HybridActorCriticPolicy",
    "HybridCnnPolicy",
    "HybridDistribution",
    "HybridMultiInputPolicy",
    "op_param_table",
]
