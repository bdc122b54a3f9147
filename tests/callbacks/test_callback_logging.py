"""The callbacks log every reward component and image grids through SB3's logger.

A short PPO run on 2 envs with all three callbacks writes a TensorBoard event file that is
read back with tensorboard's ``EventAccumulator``; the in-memory trackers are checked
against SB3's own ``Monitor`` episode records, and the per-step/per-episode means against
hand-computed values.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from unigen_sb3 import make_unigen_env
from unigen_sb3.callbacks import ImageLogCallback, RewardComponentCallback, UniGenEvalCallback
from unigen_sb3.callbacks.images import env_cores, image_grid
from unigen_sb3.callbacks.reward_components import EPISODE_FIELDS
from unigen_sb3.envs.core import UniGenCore

SIZE, HORIZON, N_ENVS, N_STEPS, TOTAL = 36, 3, 2, 8, 32
ENV_KWARGS = {"size": SIZE, "horizon": HORIZON}
COMPONENTS = ("quality", "edit", "consistency")
IMAGE_KEY = "images/start_canvas_target_mask"


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    log_dir = tmp_path_factory.mktemp("tb")
    venv = make_vec_env(make_unigen_env, n_envs=N_ENVS, seed=0, env_kwargs=ENV_KWARGS)
    rewards = RewardComponentCallback()
    images = ImageLogCallback(log_freq=4, n_envs=2)
    evaluation = UniGenEvalCallback(ENV_KWARGS, eval_freq=8, n_episodes=2, seed=3)
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=N_STEPS,
        batch_size=16,
        n_epochs=1,
        seed=0,
        tensorboard_log=str(log_dir),
    )
    model.learn(TOTAL, callback=[rewards, images, evaluation], tb_log_name="run")
    run_dir = log_dir / "run_1"
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return {
        "model": model,
        "rewards": rewards,
        "images": images,
        "evaluation": evaluation,
        "acc": acc,
        "run_dir": run_dir,
    }


def _scalar_values(acc: EventAccumulator, tag: str) -> list[float]:
    assert tag in acc.Tags()["scalars"], (tag, sorted(acc.Tags()["scalars"]))
    return [e.value for e in acc.Scalars(tag)]


@pytest.mark.parametrize(
    "tag",
    [
        *(f"reward/{c}" for c in (*COMPONENTS, "total")),
        *(f"reward/{c}_contrib" for c in COMPONENTS),
        *(f"reward/{c}_raw" for c in COMPONENTS),
        *(f"state/{c}" for c in COMPONENTS),
        *(f"episode/{c}" for c in (*COMPONENTS, "total", "length")),
        "sub/quality/perceptual",
        "sub/edit/accuracy",
        "eval/reward_total",
        "eval/ssim",
        "eval/frechet_distance",
    ],
)
def test_component_scalars_are_in_tensorboard_and_finite(ppo_run: dict[str, Any], tag: str) -> None:
    values = _scalar_values(ppo_run["acc"], tag)
    assert values and all(math.isfinite(v) for v in values), (tag, values)


def test_paid_reward_means_are_consistent(ppo_run: dict[str, Any]) -> None:
    acc = ppo_run["acc"]
    # Components and totals are in [0, 1]; the paid per-step mean of a component is at most
    # its per-episode return divided by the shortest episode (one payment per episode).
    for c in (*COMPONENTS, "total"):
        assert all(0.0 <= v <= 1.0 for v in _scalar_values(acc, f"reward/{c}"))
    for c in COMPONENTS:
        assert all(0.0 <= v <= 1.0 for v in _scalar_values(acc, f"state/{c}"))
    assert all(1 <= v <= HORIZON for v in _scalar_values(acc, "episode/length"))


def test_image_grid_is_in_tensorboard(ppo_run: dict[str, Any]) -> None:
    acc = ppo_run["acc"]
    assert IMAGE_KEY in acc.Tags()["images"], acc.Tags()["images"]
    events = acc.Images(IMAGE_KEY)
    # log_freq=4 calls = 8 timesteps on 2 envs: a grid at 8, 16, 24, 32.
    assert [e.step for e in events] == [8, 16, 24, 32]
    assert ppo_run["images"].n_logged == 4
    # Two rows of 36 px with a 2 px separator; four panels with three separators.
    assert (events[0].height, events[0].width) == (2 * SIZE + 2, 4 * SIZE + 3 * 2)


def test_trackers_match_sb3_monitor_episodes(ppo_run: dict[str, Any]) -> None:
    rewards: RewardComponentCallback = ppo_run["rewards"]
    monitor = list(ppo_run["model"].ep_info_buffer)
    assert len(rewards.episodes) == len(monitor) >= TOTAL // HORIZON - N_ENVS
    # Monitor records the scalar the algorithm was trained on (rounded to 6 decimals).
    np.testing.assert_allclose(
        rewards.episode_values("total"), [ep["r"] for ep in monitor], atol=2e-6
    )
    np.testing.assert_array_equal(rewards.episode_values("length"), [ep["l"] for ep in monitor])
    # The unified total is the sum of the weighted contributions.
    contrib = sum(rewards.episode_values(f"{c}_contrib") for c in COMPONENTS)
    np.testing.assert_allclose(rewards.episode_values("total"), contrib, atol=1e-9)
    summary = rewards.summary()
    assert summary["total"]["n"] == len(monitor)
    assert summary["total"]["mean"] == pytest.approx(np.mean([ep["r"] for ep in monitor]), abs=2e-6)


def test_eval_callback_keeps_a_history_and_writes_json(ppo_run: dict[str, Any]) -> None:
    evaluation: UniGenEvalCallback = ppo_run["evaluation"]
    # eval_freq=8 calls = 16 timesteps: evaluations at 16 and 32 (the end was evaluated).
    assert [t for t, _ in evaluation.history] == [16.0, 32.0]
    path = ppo_run["run_dir"] / "eval.json"
    report = json.loads(Path(path).read_text())
    assert report["history"] == evaluation.history
    assert report["timesteps"] == 32
    assert report["metrics"]["reward_total"]["mean"] == evaluation.history[-1][1]
    tb = _scalar_values(ppo_run["acc"], "eval/reward_total")
    np.testing.assert_allclose(tb, [s for _, s in evaluation.history], atol=1e-6)


class _Recorder(KVWriter):
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, Any]]] = []

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        self.rows.append((step, dict(key_values)))


class _StubModel:
    """What BaseCallback.init_callback reads from a model."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        self.num_timesteps = 0

    def get_env(self) -> None:
        return None


def _info(q: float, e: float, c: float, *, final: bool) -> dict[str, Any]:
    w = {"quality": 0.4, "edit": 0.4, "consistency": 0.2}
    comps = {"quality": q, "edit": e, "consistency": c} if final else dict.fromkeys(w, 0.0)
    contrib = {k: w[k] * comps[k] for k in w}
    return {
        "reward_components": comps,
        "reward_raw": dict(comps),
        "reward_weights": w,
        "reward_contrib": contrib,
        "reward_total": sum(contrib.values()),
        "state_components": np.array([q, e, c], dtype=np.float32),
        "sub_metrics": {"quality/perceptual": q},
        "reward_is_final": final,
    }


def test_means_and_episode_sums_match_hand_computed_values() -> None:
    recorder = _Recorder()
    logger = Logger(None, [recorder])
    cb = RewardComponentCallback()
    cb.init_callback(_StubModel(logger))  # type: ignore[arg-type]
    # Two envs, three steps. Env 0: episode of 2 steps paid (0.5, 1.0, 0.8), then one step.
    # Env 1: episode of 3 steps paid (0.2, 0.4, 1.0).
    steps = [
        ([_info(0.3, 0.6, 0.9, final=False), _info(0.1, 0.2, 0.9, final=False)], [False, False]),
        ([_info(0.5, 1.0, 0.8, final=True), _info(0.1, 0.3, 0.9, final=False)], [True, False]),
        ([_info(0.0, 0.5, 1.0, final=False), _info(0.2, 0.4, 1.0, final=True)], [False, True]),
    ]
    for infos, dones in steps:
        cb.update_locals({"infos": infos, "dones": np.array(dones)})
        cb.on_step()
    logger.dump(step=6)
    ((step, row),) = recorder.rows
    assert step == 6
    # Per-step mean over all 6 env steps: only two steps paid.
    assert row["reward/quality"] == pytest.approx((0.5 + 0.2) / 6)
    assert row["reward/edit"] == pytest.approx((1.0 + 0.4) / 6)
    total_a, total_b = 0.4 * 0.5 + 0.4 * 1.0 + 0.2 * 0.8, 0.4 * 0.2 + 0.4 * 0.4 + 0.2 * 1.0
    assert row["reward/total"] == pytest.approx((total_a + total_b) / 6)
    assert row["reward/consistency_contrib"] == pytest.approx(0.2 * (0.8 + 1.0) / 6)
    # The state score is the mean over every step.
    assert row["state/quality"] == pytest.approx((0.3 + 0.1 + 0.5 + 0.1 + 0.0 + 0.2) / 6)
    assert row["sub/quality/perceptual"] == pytest.approx(row["state/quality"])
    # Per-episode returns: mean over the two finished episodes.
    assert row["episode/quality"] == pytest.approx((0.5 + 0.2) / 2)
    assert row["episode/total"] == pytest.approx((total_a + total_b) / 2)
    assert row["episode/length"] == pytest.approx((2 + 3) / 2)
    assert [ep["env"] for ep in cb.episodes] == [0.0, 1.0]
    np.testing.assert_allclose(cb.episode_values("edit"), [1.0, 0.4])
    np.testing.assert_allclose(cb.episode_values("total"), [total_a, total_b])
    assert set(cb.summary()) == {*EPISODE_FIELDS, "length"}
    # Env 0's new episode (one step so far) is not reported yet.
    assert len(cb.episodes) == 2


def test_infos_without_components_warn_once_and_are_skipped() -> None:
    recorder = _Recorder()
    logger = Logger(None, [recorder])
    cb = RewardComponentCallback()
    cb.init_callback(_StubModel(logger))  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="reward_components"):
        for _ in range(3):
            cb.update_locals({"infos": [{}], "dones": np.array([False])})
            cb.on_step()
    assert not any(k.startswith("reward/") for k in logger.name_to_value)


def test_off_policy_sac_fills_the_trackers() -> None:
    venv = make_vec_env(make_unigen_env, n_envs=1, seed=1, env_kwargs=ENV_KWARGS)
    cb = RewardComponentCallback()
    # learning_starts beyond the run: only the off-policy rollout loop runs (fast).
    model = SAC("CnnPolicy", venv, buffer_size=64, learning_starts=1000, seed=0)
    model.learn(12, callback=cb)
    monitor = list(model.ep_info_buffer or ())
    assert len(cb.episodes) == len(monitor) >= 12 // HORIZON
    np.testing.assert_allclose(cb.episode_values("total"), [ep["r"] for ep in monitor], atol=2e-6)


def test_image_grid_layout_is_start_canvas_target_mask() -> None:
    b, h, w, s = 2, 4, 5, 2
    start = torch.full((b, 3, h, w), 0.0)
    canvas = torch.full((b, 3, h, w), 1.0)
    target = torch.zeros(b, 3, h, w)
    target[:, 0] = 1.0  # red
    mask = torch.zeros(b, 1, h, w, dtype=torch.bool)
    mask[1, :, :2] = True
    grid = image_grid(start, canvas, target, mask, separator=s)
    assert grid.dtype == np.uint8 and grid.shape == (3, b * h + s, 4 * w + 3 * s)
    col = [k * (w + s) for k in range(4)]
    assert (grid[:, :h, col[0] : col[0] + w] == 0).all()
    assert (grid[:, :h, col[1] : col[1] + w] == 255).all()
    assert grid[:, 0, col[2]].tolist() == [255, 0, 0]
    assert (grid[:, :h, col[3] : col[3] + w] == 0).all()  # env 0: empty mask
    row1 = h + s
    assert (grid[:, row1 : row1 + 2, col[3] : col[3] + w] == 255).all()
    assert (grid[:, row1 + 2 : row1 + h, col[3] : col[3] + w] == 0).all()
    assert (grid[:, h:row1, :] == 128).all()  # the grey separator row


def test_env_cores_finds_dummy_and_batched_vecenvs() -> None:
    venv = make_vec_env(make_unigen_env, n_envs=2, seed=0, env_kwargs=ENV_KWARGS)
    venv.reset()
    pairs = env_cores(venv, 5)
    assert len(pairs) == 2
    assert all(core is env.unwrapped.core for (core, _), env in zip(pairs, venv.envs, strict=True))  # type: ignore[attr-defined]

    class Batched:  # a batched VecEnv exposes its UniGenCore as ``core``
        num_envs = 3
        core = UniGenCore(
            3, size=SIZE, horizon=HORIZON, device=torch.device("cpu"), rewards=pairs[0][0].rewards
        )

        @property
        def unwrapped(self) -> Batched:
            return self

    batched = Batched()
    assert env_cores(batched, 2) == [(batched.core, 0), (batched.core, 1)]  # type: ignore[arg-type]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="log_freq"):
        ImageLogCallback(log_freq=0)
    with pytest.raises(ValueError, match="n_envs"):
        ImageLogCallback(n_envs=0)
    with pytest.raises(ValueError, match="max_episodes"):
        RewardComponentCallback(max_episodes=0)
    with pytest.raises(ValueError, match="n_episodes"):
        UniGenEvalCallback(n_episodes=1)


@pytest.mark.parametrize("kind", ["batched", "dummy"])
def test_eval_settings_are_the_training_stacks_spec(kind: str) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    from unigen_sb3 import make_unigen_vec_env, spec_of

    venv = make_unigen_vec_env(
        2,
        "edit",
        action="multidiscrete",
        w_quality=0.5,
        w_edit=0.5,
        w_consistency=0.0,
        vec_env_kind=kind,
        size=SIZE,
        horizon=HORIZON,
        device="cpu",
    )
    model = PPO("CnnPolicy", venv, n_steps=8, batch_size=8, seed=0, device="cpu")
    model.set_logger(configure(None, []))
    callback = UniGenEvalCallback(eval_freq=1, n_episodes=2)
    callback.init_callback(model)
    # No wrapper walk: the callback holds the very spec the stack was built from.
    assert callback.env_or_config is spec_of(venv)
    report = callback.evaluate()
    assert report["task"] == "edit" and report["size"] == SIZE
    assert report["weights"] == {"quality": 0.5, "edit": 0.5, "consistency": 0.0}
    venv.close()


def test_eval_settings_are_refused_from_a_stack_without_a_unigen_env() -> None:
    # A VecEnv not built by the composition root has no spec: refused at the start of
    # training instead of evaluating default settings (wrong task, size or encoding).
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    other = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    model = PPO("MlpPolicy", other, n_steps=8, batch_size=8, device="cpu")
    model.set_logger(configure(None, []))
    with pytest.raises(ValueError, match=r"cannot read the evaluation settings .* no UniGenSpec"):
        UniGenEvalCallback(eval_freq=1).init_callback(model)


def test_add_callbacks_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    example = Path(__file__).parents[2] / "examples" / "add_callbacks.py"
    monkeypatch.setattr(
        "sys.argv", ["add_callbacks.py", "--timesteps", "128", "--log", str(tmp_path)]
    )
    runpy.run_path(str(example), run_name="__main__")
    report = json.loads((tmp_path / "PPO_1" / "eval.json").read_text())
    assert report["history"][0][0] == 128.0 and report["prompt_split"] == "heldout"
