"""The baselines of docs/baselines.md, each end to end on a tiny budget: separate-reward RL
(the shipped ``baseline_*`` configs and the task-kind router), behaviour cloning from Oracle
demos (collector, trainer, ``unigen-sb3 eval`` of its run) and the CEM planner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import load_config
from unigen_sb3.configs.schema import config_to_dict
from unigen_sb3.envs.canvas import NUM_PARAMS, OP_FILL, OP_STOP
from unigen_sb3.envs.policies import OraclePolicy
from unigen_sb3.envs.vec_env import UniGenVecEnv
from unigen_sb3.evaluation import evaluate_unigen, rollout_episodes
from unigen_sb3.evaluation.planner import CEMPlanner
from unigen_sb3.evaluation.routing import TaskKindRouter, observed_is_edit
from unigen_sb3.experiments.bc import train_bc
from unigen_sb3.experiments.demos import collect_demos, load_demos
from unigen_sb3.experiments.runner import evaluate_run, train
from unigen_sb3.make import stack_spaces
from unigen_sb3.rewards.unifier import RewardUnifier
from unigen_sb3.spec import UniGenSpec

TINY = [
    "env.size=36",
    "env.horizon=2",
    "training.total_timesteps=16",
    "training.n_envs=2",
    "algorithm.kwargs.n_steps=8",
    "algorithm.kwargs.batch_size=16",
    "algorithm.kwargs.n_epochs=1",
    "training.checkpoint_freq=0",
    "training.tensorboard=false",
    "training.progress_bar=false",
    "evaluation.n_episodes=2",
]
RL_BASELINES = ["baseline_quality", "baseline_edit", "baseline_consistency", "baseline_raw_sum"]
#: What each shipped baseline config may change from quickstart.yaml (everything else equal).
ALLOWED_CHANGES = {
    "baseline_quality": {"reward.weights", "reward.shaping.potential"},
    "baseline_edit": {"reward.weights"},
    "baseline_consistency": {"reward.weights", "reward.shaping.potential"},
    "baseline_raw_sum": {"reward.normalization"},
    "baseline_generate_only": {"env.task"},
    "baseline_edit_only": {"env.task"},
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: two on a machine whose cores other jobs use run several times slower
    (docs/notes/torch_threads.md); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict) or prefix in ("reward.weights", "evaluation.weights"):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return out


@pytest.mark.parametrize("name", list(ALLOWED_CHANGES))
def test_each_baseline_config_is_quickstart_but_for_its_reward_or_task(name: str) -> None:
    base, mine = (
        _flat(config_to_dict(load_config("quickstart"))),
        _flat(config_to_dict(load_config(name))),
    )
    changed = {k for k in base if base[k] != mine[k]}
    # evaluation.weights: written out as the base weights (quickstart's null means the same).
    assert mine["evaluation.weights"] == {"quality": 0.4, "edit": 0.4, "consistency": 0.2}
    assert changed - {"evaluation.weights"} == ALLOWED_CHANGES[name]


@pytest.mark.parametrize("name", RL_BASELINES)
def test_separate_reward_baselines_train_and_are_scored_on_the_base_weights(
    name: str, tmp_path: Path
) -> None:
    result = train(load_config(name, TINY), tmp_path / name)
    assert result.eval is not None and result.num_timesteps >= 16
    assert result.eval["weights"] == {"quality": 0.4, "edit": 0.4, "consistency": 0.2}
    assert result.eval["task"] == "unified" and result.eval["prompt_swap"] is not None


class _Constant:
    """A stand-in model: always the same ``discrete`` action; records what it was shown."""

    def __init__(self, action: int, obs_space: Any, action_space: Any) -> None:
        self.action, self.observation_space, self.action_space = action, obs_space, action_space

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.full(len(obs), self.action, dtype=np.int64), None


def test_router_sends_each_episode_to_its_task_kinds_specialist() -> None:
    spec = UniGenSpec(task="unified", action="discrete", size=36, horizon=2)
    obs_space, action_space = stack_spaces(spec)
    # Library entry 0 is stop, entry 1 a fill: which one an episode took shows who acted.
    router = TaskKindRouter(
        _Constant(0, obs_space, action_space), _Constant(1, *stack_spaces(spec))
    )
    rollout = rollout_episodes(_model(router), spec, n_episodes=6, seed=0)
    kinds = [t.kind for t in rollout.tasks]
    assert set(kinds) == {"generate", "edit"}  # both kinds are in the set
    for kind, actions in zip(kinds, rollout.actions, strict=True):
        assert [op for op, _ in actions] == ([OP_STOP] if kind == "generate" else [OP_FILL] * 2)
    # The batch is predicted whole at each of the 2 steps (ended episodes too, their actions
    # ignored), each row by the specialist of its own kind.
    assert router.routed == {
        "generate": 2 * kinds.count("generate"),
        "edit": 2 * kinds.count("edit"),
    }
    # The dict observation carries the same flag.
    batch = {"attributes": np.array([[1.0] + [0.0] * 18, [0.0] * 19], np.float32)}
    dict_space = spaces.Dict({"attributes": spaces.Box(-1, 1, (19,), np.float32)})
    assert observed_is_edit(batch, dict_space).tolist() == [True, False]
    with pytest.raises(ValueError, match="must share their action_space"):
        TaskKindRouter(router.generate_model, _Constant(0, obs_space, spaces.Discrete(3)))


def _model(router: TaskKindRouter) -> Any:
    from unigen_sb3.evaluation import ModelPolicy

    return ModelPolicy(router)


def test_specialists_train_and_their_routed_pair_runs_the_evaluation_suite(
    tmp_path: Path,
) -> None:
    models = {}
    for name in ("baseline_generate_only", "baseline_edit_only"):
        result = train(load_config(name, TINY), tmp_path / name)
        assert result.eval is not None and result.eval["task"] == name.split("_")[1]
        models[name] = result.model
    router = TaskKindRouter(models["baseline_generate_only"], models["baseline_edit_only"])
    spec = UniGenSpec.from_config(load_config("quickstart", TINY), evaluation=True)
    report = evaluate_unigen(router, spec, 4, seed=0)
    assert report["policy"] == "TaskKindRouter" and report["task"] == "unified"
    assert sum(router.routed.values()) >= 4 and report["prompt_swap"] is not None


def test_demos_are_versioned_checked_and_deterministic_by_seed(tmp_path: Path) -> None:
    config = load_config("quickstart", TINY)
    a = collect_demos(config, tmp_path / "a", n_episodes=6, seed=3, batch=4)
    b = collect_demos(config, tmp_path / "b", n_episodes=6, seed=3, batch=4)
    c = collect_demos(config, tmp_path / "c", n_episodes=6, seed=4, batch=4)
    d = collect_demos(config, tmp_path / "d", n_episodes=6, seed=3, batch=6)
    assert (tmp_path / "a" / "demos.npz").read_bytes() == (
        tmp_path / "b" / "demos.npz"
    ).read_bytes()
    assert a.manifest == b.manifest and a.manifest["sha256"] != c.manifest["sha256"]
    assert not np.array_equal(a.actions, c.actions)
    # Another batch: the same steps in the same order; returns up to float32 noise.
    for key in ("obs", "actions", "episode", "step", "exact", "lengths", "seeds"):
        assert np.array_equal(a.arrays[key], d.arrays[key]), key
    np.testing.assert_allclose(a.arrays["returns"], d.arrays["returns"], atol=1e-5)
    m = a.manifest
    assert (m["format"], m["version"], m["seeds"], m["n_episodes"]) == (
        "unigen-sb3-demos",
        1,
        [3, 4, 5, 6, 7, 8],
        6,
    )
    assert m["spec"]["action"] == "discrete" and m["config"]["env"]["size"] == 36
    # The Oracle's actions are in the discrete library (each solution is one or two entries).
    assert m["n_nearest"] == 0 and m["n_exact"] == m["n_steps"] == a.actions.size
    obs_space, _ = stack_spaces(UniGenSpec(size=36))
    assert a.observations.shape == (m["n_steps"], *obs_space.shape)
    assert m["mean_return"] == pytest.approx(1.0, abs=0.02)
    assert np.array_equal(np.unique(a.episode), np.arange(6))
    loaded = load_demos(tmp_path / "a")
    assert all(np.array_equal(loaded.arrays[k], v) for k, v in a.arrays.items())
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        collect_demos(config, tmp_path / "a", n_episodes=2)
    (tmp_path / "a" / "demos.npz").write_bytes(b"changed")
    with pytest.raises(ValueError, match=r"SHA-256 .* is not the manifest's"):
        load_demos(tmp_path / "a")
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    manifest["version"] = 99
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="version 1; got format 'unigen-sb3-demos' version 99"):
        load_demos(tmp_path / "c")


def test_behaviour_cloning_writes_a_run_that_eval_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demos, run = tmp_path / "demos", tmp_path / "bc"
    sets = [w for s in TINY for w in ("--set", s)]
    assert main(["demos", "quickstart", "--episodes", "8", "--out", str(demos), *sets]) == 0
    assert "8 episodes" in capsys.readouterr().out
    code = main(["bc", str(demos), "--out", str(run), "--epochs", "40", "--patience", "2"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((run / "bc.json").read_text())
    assert report["train_episodes"] + report["val_episodes"] == 8 and report["val_episodes"] == 2
    assert report["epochs"] < 40 and report["epochs"] - report["best_epoch"] == 2  # stopped early
    best = min(h["val_loss"] for h in report["history"])
    assert report["val_loss"] == best == report["history"][report["best_epoch"] - 1]["val_loss"]
    assert report["history"][0]["train_loss"] > report["history"][-1]["train_loss"]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["behaviour_cloning"] is True
    # Cloning's minibatches get the training allocator settings too (experiments/allocator.py).
    assert set(meta["host_allocator"]) == {"applied", "reason", "settings"}
    # An ordinary run: `unigen-sb3 eval` loads its PPO zip (SHA-256 checked) like any other.
    results, path = evaluate_run(run, out=tmp_path / "again")
    assert results["policy"] == "PPO" and path.exists()
    assert results == json.loads((run / "eval.json").read_text())
    # Demos for another stack are refused, naming the difference.
    other = load_config("quickstart", [*TINY, "env.action=box"])
    with pytest.raises(ValueError, match="action: demos 'discrete', config 'box'"):
        train_bc(demos, other, tmp_path / "bc2")
    assert main(["bc", str(demos), "--out", str(tmp_path / "bc3"), "--set", "env.size=40"]) == (
        EXIT_CONFIG_ERROR
    )
    assert "size: demos 36, config 40" in capsys.readouterr().err


def test_planner_scores_what_the_env_pays_and_leaves_the_episode_alone() -> None:
    venv = UniGenVecEnv(1, "edit", size=36, horizon=3, seed=53, prompt_split="heldout")
    venv.reset()
    core = venv.core
    before = (core.canvas.clone(), core.steps.copy(), core.temporal_min.copy())
    planner = CEMPlanner(16, seed=0)
    action = planner.act_core(core, 0)
    assert planner.evaluations == 16 and planner.best_score > 0.0
    assert core.canvas.equal(before[0]) and (core.steps, core.temporal_min) == before[1:]
    venv.step({"op": np.array([action["op"]]), "params": action["params"][None]})
    _, reward, dones, _ = venv.step(
        {"op": np.array([OP_STOP]), "params": np.zeros((1, NUM_PARAMS))}
    )
    assert dones[0]
    paid = float(RewardUnifier()(reward[0], update=False).total)
    assert paid == pytest.approx(planner.best_score, abs=1e-5)
    with pytest.raises(ValueError, match="budget=10 must be an int multiple of iterations=4"):
        CEMPlanner(10)


def test_planner_runs_end_to_end_and_never_beats_the_oracle_on_its_own_tasks() -> None:
    # Edit seeds 52-54 at 36x36 include one (53) where the Oracle scores below 1 (a photo edit
    # whose colours fall short of the target's): room a leaking search could use.
    settings = {"size": 36, "horizon": 3, "prompt_split": "heldout"}
    oracle = rollout_episodes(OraclePolicy(), "edit", n_episodes=3, seed=52, **settings)
    assert oracle.totals.min() < 0.99
    planner = CEMPlanner(16, seed=0)
    mine = rollout_episodes(planner, "edit", n_episodes=3, seed=52, **settings)
    assert mine.totals.mean() <= oracle.totals.mean() + 1e-3
    assert planner.evaluations == 16 * int(mine.lengths.sum())  # the stated budget, every step
