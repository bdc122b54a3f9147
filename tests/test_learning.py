"""Off-the-shelf SB3 algorithms train on make_unigen_env() (short smoke runs)."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC

from unigen_sb3 import make_unigen_env


@pytest.mark.slow
def test_ppo_cnn_policy_learns_a_few_hundred_steps() -> None:
    model = PPO(
        "CnnPolicy", make_unigen_env(seed=0), n_steps=128, batch_size=64, n_epochs=2, seed=0
    )
    model.learn(256)
    assert model.num_timesteps == 256
    obs = model.get_env().reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (1, 14) and np.all(np.isfinite(action))


@pytest.mark.slow
def test_sac_cnn_policy_learns_a_few_hundred_steps() -> None:
    model = SAC(
        "CnnPolicy",
        make_unigen_env(seed=0),
        buffer_size=500,
        learning_starts=64,
        batch_size=32,
        train_freq=8,
        gradient_steps=1,
        seed=0,
    )
    model.learn(200)
    assert model.num_timesteps == 200
    assert model.replay_buffer is not None and model.replay_buffer.size() == 200
