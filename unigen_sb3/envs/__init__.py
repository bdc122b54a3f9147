"""The UniGen environment: canvas engine, tasks, the env, the batched VecEnv, registration."""

from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.envs.factory import make_unigen_env
from unigen_sb3.envs.registration import ENV_IDS, register_envs
from unigen_sb3.envs.vec_env import VEC_ENV_KINDS, UniGenVecEnv, make_unigen_vec_env

__all__ = [
    "ENV_IDS",
    "VEC_ENV_KINDS",
    "UniGenEnv",
    "UniGenVecEnv",
    "make_unigen_env",
    "make_unigen_vec_env",
    "register_envs",
]
