"""The UniGen environment: canvas engine, tasks, the env, the batched VecEnv, registration.

The SB3-ready stacks (``make_unigen_env``, ``make_unigen_vec_env``) are built by the
composition root, :mod:`unigen_sb3.make`; nothing here imports the wrappers.
"""

from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.envs.registration import ENV_IDS, register_envs
from unigen_sb3.envs.vec_env import UniGenVecEnv

__all__ = ["ENV_IDS", "UniGenEnv", "UniGenVecEnv", "register_envs"]
