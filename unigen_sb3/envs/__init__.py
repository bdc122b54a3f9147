"""The UniGen environment: canvas engine, tasks, the env, registration."""

from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.envs.factory import make_unigen_env
from unigen_sb3.envs.registration import ENV_IDS, register_envs

__all__ = ["ENV_IDS", "UniGenEnv", "make_unigen_env", "register_envs"]
