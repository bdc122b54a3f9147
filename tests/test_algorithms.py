"""Algorithm matrix: every SB3 and sb3-contrib algorithm trains on UniGen with its encoding.

Each case trains a few hundred steps on a small env (36 x 36, horizon 4) with tiny buffers,
then checks save -> load -> deterministic predict gives the action it gave before saving.
The maskable cases also check that a mask allowing one op forces that op.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sb3_contrib import ARS, QRDQN, TQC, TRPO, CrossQ, MaskablePPO, RecurrentPPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

from unigen_sb3 import make_unigen_env
from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.envs.canvas import NUM_OPS, OP_FILL

STEPS = 256
ENV = {"task": "unified", "size": 36, "horizon": 4}
ON_POLICY = {"n_steps": 64, "batch_size": 32, "n_epochs": 1}
OFF_POLICY = {
    "buffer_size": 300,
    "learning_starts": 64,
    "batch_size": 16,
    "train_freq": 16,
    "gradient_steps": 1,
}
Q_LEARNING = {**OFF_POLICY, "target_update_interval": 64}
# Small heads keep the matrix fast; the CNN feature extractors stay at their defaults.
SMALL_NET = {"net_arch": [32]}


@dataclass(frozen=True)
class Case:
    algo: type[BaseAlgorithm]
    policy: str
    action: str
    obs: str = "image"
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.algo.__name__}-{self.policy}-{self.action}"


CASES = [
    *(
        Case(algo, policy, action, obs, kwargs)
        for algo, kwargs in (
            (PPO, {**ON_POLICY, "policy_kwargs": SMALL_NET}),
            (A2C, {"n_steps": 16, "policy_kwargs": SMALL_NET}),
        )
        for action in ("box", "multidiscrete", "discrete")
        for policy, obs in (("CnnPolicy", "image"), ("MultiInputPolicy", "dict"))
    ),
    Case(SAC, "CnnPolicy", "box", kwargs={**OFF_POLICY, "policy_kwargs": SMALL_NET}),
    Case(TD3, "CnnPolicy", "box", kwargs={**OFF_POLICY, "policy_kwargs": SMALL_NET}),
    Case(DDPG, "CnnPolicy", "box", kwargs={**OFF_POLICY, "policy_kwargs": SMALL_NET}),
    Case(DQN, "CnnPolicy", "discrete", kwargs={**Q_LEARNING, "policy_kwargs": SMALL_NET}),
    Case(TQC, "CnnPolicy", "box", kwargs={**OFF_POLICY, "policy_kwargs": SMALL_NET}),
    # CrossQ has only MlpPolicy: it flattens the image (about 30k inputs at 36 x 36).
    Case(CrossQ, "MlpPolicy", "box", kwargs={**OFF_POLICY, "policy_kwargs": SMALL_NET}),
    Case(TRPO, "CnnPolicy", "box", kwargs={"n_steps": 128, "batch_size": 64}),
    # ARS has no CNN policy: a linear policy on the flattened image.
    Case(ARS, "LinearPolicy", "box", kwargs={"n_delta": 2, "n_eval_episodes": 1}),
    Case(QRDQN, "CnnPolicy", "discrete", kwargs={**Q_LEARNING, "policy_kwargs": SMALL_NET}),
    Case(MaskablePPO, "CnnPolicy", "multidiscrete", kwargs=ON_POLICY),
    Case(MaskablePPO, "CnnPolicy", "discrete", kwargs=ON_POLICY),
    Case(
        RecurrentPPO,
        "CnnLstmPolicy",
        "box",
        kwargs={**ON_POLICY, "policy_kwargs": {"lstm_hidden_size": 32, "net_arch": [32]}},
    ),
]


def _predict(model: BaseAlgorithm, obs: Any, masks: np.ndarray | None) -> np.ndarray:
    if isinstance(model, MaskablePPO):
        action, _ = model.predict(obs, deterministic=True, action_masks=masks)
    elif isinstance(model, RecurrentPPO):
        action, _ = model.predict(
            obs, state=None, episode_start=np.ones(1, bool), deterministic=True
        )
    else:
        action, _ = model.predict(obs, deterministic=True)
    return np.asarray(action)


def _fill_only_masks(codec: Any) -> np.ndarray:
    """Masks in the codec's layout that leave ``fill`` as the only valid op, batch of one."""
    op_mask = np.zeros(NUM_OPS, bool)
    op_mask[OP_FILL] = True
    return codec.action_masks(op_mask)[None]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_algorithm_trains_saves_and_reloads(case: Case, tmp_path: Path) -> None:
    env = make_vec_env(
        make_unigen_env,
        n_envs=1,
        seed=0,
        env_kwargs={**ENV, "action": case.action, "obs": case.obs},
    )
    # SB3 writes into policy_kwargs (SAC adds use_sde): give each case its own copy.
    model = case.algo(case.policy, env, seed=0, device="cpu", **copy.deepcopy(case.kwargs))
    model.learn(STEPS)
    assert model.num_timesteps >= STEPS

    obs = env.reset()
    masks = get_action_masks(env) if isinstance(model, MaskablePPO) else None
    before = _predict(model, obs, masks)
    assert env.action_space.contains(before[0])

    model.save(tmp_path / "model.zip")
    loaded = case.algo.load(tmp_path / "model.zip", device="cpu")
    after = _predict(loaded, obs, masks)
    np.testing.assert_array_equal(after, before)

    if isinstance(model, MaskablePPO):
        # The masks MaskablePPO read come from the action wrapper, in its layout.
        codec = env.get_attr("codec")[0]
        assert masks is not None
        raw_op_mask = env.envs[0].unwrapped.action_masks()
        np.testing.assert_array_equal(masks[0], codec.action_masks(raw_op_mask))
        fill_only = _fill_only_masks(codec)
        for m in (model, loaded):
            forced = _predict(m, obs, fill_only)
            assert codec.decode(forced[0])["op"] == OP_FILL
    env.close()


# ----------------------------------------------------------------------------- rl-zoo3
ZOO_DIR = Path(__file__).resolve().parents[1] / "configs" / "zoo"
ZOO_ALGOS = {"ppo": PPO, "sac": SAC, "a2c": A2C}
# Shrinks a shipped config to a few hundred steps on a 36 x 36 env (command-line overrides).
ZOO_SMALL_ENV = ["--env-kwargs", "size:36", "horizon:4"]
ZOO_SMALL = {
    "ppo": ["n_envs:1", "n_steps:64", "batch_size:32", "n_epochs:1"],
    "a2c": ["n_envs:1"],
    "sac": ["buffer_size:300", "learning_starts:64", "batch_size:16", "train_freq:16"],
}


def _zoo_args(algo: str, env_id: str, log_folder: Path, steps: int) -> list[str]:
    return [
        "--algo", algo, "--env", env_id, "--gym-packages", "unigen_sb3",
        "-conf", str(ZOO_DIR / f"{algo}.yml"),
        "-n", str(steps), "--eval-freq", "-1", "--seed", "0", "-f", str(log_folder),
        *ZOO_SMALL_ENV, "-params", *ZOO_SMALL[algo],
    ]  # fmt: skip


@pytest.mark.parametrize("algo", sorted(ZOO_ALGOS))
def test_zoo_configs_follow_the_zoo_schema(algo: str) -> None:
    import yaml
    from rl_zoo3.utils import ALGOS

    from unigen_sb3 import ENV_IDS

    with open(ZOO_DIR / f"{algo}.yml") as f:
        config = yaml.safe_load(f)
    assert set(config) == set(ENV_IDS)
    assert ALGOS[algo] is ZOO_ALGOS[algo]
    for env_id, hyper in config.items():
        assert hyper["n_timesteps"] > 0 and hyper["policy"] == "CnnPolicy", env_id
        # The encoding each config asks for is one its algorithm accepts (SB3 asserts it).
        env = make_unigen_env(**{**hyper.get("env_kwargs", {}), "size": 36, "horizon": 4})
        small = {"buffer_size": 10} if "buffer_size" in hyper else {}
        model = ZOO_ALGOS[algo](hyper["policy"], env, device="cpu", **small)
        assert model.action_space == env.action_space
        env.close()


@pytest.mark.slow
def test_zoo_trains_ppo_from_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    steps = 256
    args = _zoo_args("ppo", "UniGen/Edit-v0", tmp_path, steps)
    proc = subprocess.run(
        [sys.executable, "-m", "rl_zoo3.train", *args, "--num-threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = tmp_path / "ppo" / "UniGen-Edit-v0_1" / "UniGen-Edit-v0.zip"
    assert saved.is_file(), proc.stdout[-2000:]
    model = PPO.load(saved, device="cpu")
    assert model.num_timesteps == steps and model.n_steps == 64
    assert model.observation_space.shape == (27, 36, 36)  # canvas, mask, 19 + 4 vectors
    monitor = (tmp_path / "ppo" / "UniGen-Edit-v0_1" / "0.monitor.csv").read_text().splitlines()
    assert len(monitor) > 2 + steps // 4  # header lines + episodes of at most 4 steps


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["a2c", "sac"])
def test_zoo_trains_in_process(algo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from rl_zoo3.train import train

    steps = 128
    monkeypatch.setattr(
        sys, "argv", ["train", *_zoo_args(algo, "UniGen/Unified-v0", tmp_path, steps)]
    )
    train()
    saved = tmp_path / algo / "UniGen-Unified-v0_1" / "UniGen-Unified-v0.zip"
    model = ZOO_ALGOS[algo].load(saved, device="cpu")
    assert model.num_timesteps == steps
    # The config's env_kwargs were replaced by --env-kwargs, so the encoding is the default box
    # for SAC and A2C alike; the zoo records what it ran with.
    assert model.action_space.shape == (14,)


# --- algorithm.kwargs checks (fast: no env is built, nothing trained) ---


@pytest.mark.parametrize("gamma", ["fast", None, True, 1.5, -0.1, float("nan"), [0.9]])
def test_algorithm_gamma_refuses_what_is_not_a_discount(gamma: Any) -> None:
    from unigen_sb3.configs.schema import ConfigError
    from unigen_sb3.experiments.algorithms import algorithm_gamma

    with pytest.raises(ConfigError) as info:
        algorithm_gamma(PPO, {"gamma": gamma})
    assert info.value.path == "algorithm.kwargs.gamma"
    assert repr(gamma) in info.value.message and "number in [0, 1]" in info.value.message


@pytest.mark.parametrize(
    ("gamma", "expected"),
    [(0, 0.0), (1, 1.0), (0.95, 0.95), (1.0, 1.0), (np.float32(0.5), 0.5), (np.int64(1), 1.0)],
)
def test_algorithm_gamma_accepts_a_discount(gamma: float, expected: float) -> None:
    from unigen_sb3.experiments.algorithms import algorithm_gamma

    assert algorithm_gamma(PPO, {"gamma": gamma}) == expected
    assert algorithm_gamma(PPO, {}) == 0.99  # PPO's default
    assert algorithm_gamma(ARS, {}) is None  # no discount at all


@pytest.mark.parametrize(
    ("algo", "kwargs", "path", "bad"),
    [
        ("PPO", {"learning_rate": "3e-4"}, "algorithm.kwargs.learning_rate", "3e-4"),
        ("PPO", {"ent_coef": "0.01"}, "algorithm.kwargs.ent_coef", "0.01"),  # a float only
        ("PPO", {"gamma": "0.99"}, "algorithm.kwargs.gamma", "0.99"),
        (
            "PPO",
            {"policy_kwargs": {"optimizer_kwargs": {"eps": "1e-5"}}},
            "algorithm.kwargs.policy_kwargs.optimizer_kwargs.eps",
            "1e-5",
        ),
        ("SAC", {"train_freq": [4, "1e1"]}, "algorithm.kwargs.train_freq[1]", "1e1"),
    ],
)
def test_check_algorithm_refuses_numbers_written_as_strings(
    algo: str, kwargs: dict[str, Any], path: str, bad: str
) -> None:
    from unigen_sb3.configs.schema import ConfigError
    from unigen_sb3.experiments.algorithms import check_algorithm

    with pytest.raises(ConfigError) as info:
        check_algorithm(algo, None, kwargs, "box", "image")
    assert info.value.path == path
    assert repr(bad) in info.value.message
    assert "(YAML reads 3e-4 as a string: write 3.0e-4 or 0.0003)" in info.value.message


@pytest.mark.parametrize(
    ("algo", "kwargs"),
    [
        ("SAC", {"ent_coef": "auto", "target_entropy": "auto"}),
        ("SAC", {"ent_coef": "auto_0.1"}),
        ("SAC", {"ent_coef": "0.1", "target_entropy": "-2.5"}),  # SAC runs float() on these
        ("TQC", {"ent_coef": "auto_1e-3", "train_freq": [1, "episode"]}),
        ("PPO", {"learning_rate": 3.0e-4, "policy_kwargs": {"activation_fn": None}}),
    ],
)
def test_check_algorithm_keeps_genuine_string_kwargs(algo: str, kwargs: dict[str, Any]) -> None:
    from unigen_sb3.experiments.algorithms import check_algorithm

    cls, policy = check_algorithm(algo, None, kwargs, "box", "image")
    assert cls.__name__ == algo and policy == "CnnPolicy"


def test_check_algorithm_refuses_init_setup_model() -> None:
    from unigen_sb3.configs.schema import ConfigError
    from unigen_sb3.experiments.algorithms import check_algorithm

    with pytest.raises(ConfigError) as info:
        check_algorithm("PPO", None, {"_init_setup_model": False}, "box", "image")
    assert info.value.path == "algorithm.kwargs._init_setup_model"
    assert "remove it from kwargs" in info.value.message
    with pytest.raises(ConfigError) as info:
        check_algorithm("PPO", None, {"bogus": 1}, "box", "image")
    assert "_init_setup_model" not in info.value.message  # not offered as accepted


@pytest.mark.parametrize(
    "kwargs",
    ["{gamma: fast}", "{gamma: null}", "{learning_rate: 3e-4}", "{_init_setup_model: false}"],
)
def test_cli_refuses_bad_kwargs_with_exit_2_before_writing(
    kwargs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from unigen_sb3.cli import EXIT_CONFIG_ERROR, main

    out = tmp_path / "run"
    config = shipped_config_path("quickstart")
    code = main(["train", str(config), "--out", str(out), "--set", f"algorithm.kwargs={kwargs}"])
    assert code == EXIT_CONFIG_ERROR
    assert "algorithm.kwargs." in capsys.readouterr().err
    assert not out.exists()  # nothing was written, nothing trained
