"""evaluate_unigen: schema, JSON round trip, determinism, reference metrics; stability summaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from skimage.color import deltaE_cie76, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from stable_baselines3 import PPO

from unigen_sb3 import UniGenEnv, make_unigen_env
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_FILL, OP_STOP, OP_STROKE
from unigen_sb3.envs.policies import NoOpPolicy, OraclePolicy, ScriptedPolicy
from unigen_sb3.envs.tasks import Task
from unigen_sb3.evaluation import (
    EVAL_METRICS,
    PSNR_CAP_DB,
    dumps_report,
    episode_returns,
    evaluate_unigen,
    kid_subset_size,
    load_report,
    stability_summary,
    steps_to_fraction,
    write_report,
)
from unigen_sb3.rewards.components import SUB_METRICS
from unigen_sb3.rewards.perceptual import (
    PerceptualDistance,
    frechet_distance,
    kernel_inception_distance,
)
from unigen_sb3.wrappers.actions import HybridAction
from unigen_sb3.wrappers.reward import UnifiedRewardWrapper

SIZE, HORIZON = 36, 4
CONFIG = {"task": "unified", "size": SIZE, "horizon": HORIZON}
N, SEED = 4, 11
COLOR_TOL = 10.0  # documented attribute-accuracy threshold: Delta-E (CIE76) < 10
SSIM_PAD = 3  # (win_size 7 - 1) // 2: the border cropped from the SSIM map


class FixedActionsPolicy(ScriptedPolicy):
    """A non-oracle policy: the same fill and stroke for every task, then stop.

    It depends only on the step, so the batched evaluation and a one-by-one replay act alike,
    and its edit episodes miss their targets (region SSIM differs from SSIM).
    """

    ACTIONS = (
        (OP_FILL, (0.2, -0.1, 0.3, 0.9, -0.6, 0.1, 1.0, 0.0)),
        (OP_STROKE, (-0.5, 0.5, -0.2, -0.8, 0.7, 0.4, 0.6, 0.0)),
    )

    def act_state(self, canvas: torch.Tensor, task: Task, step: int, horizon: int) -> HybridAction:
        op, params = self.ACTIONS[step] if step < len(self.ACTIONS) else (OP_STOP, (0.0,) * 8)
        assert len(params) == NUM_PARAMS
        return {"op": op, "params": np.asarray(params, dtype=np.float32)}


def _replay(policy: ScriptedPolicy) -> dict[str, list[Any]]:
    """Replay the seeded tasks one by one in the single env; canvases as (H, W, 3) float64."""
    base = UniGenEnv("unified", size=SIZE, horizon=HORIZON, prompt_split="heldout")
    env = UnifiedRewardWrapper(base)
    out: dict[str, list[Any]] = {
        k: [] for k in ("start", "final", "target", "mask", "kind", "total", "length", "sub")
    }
    for j in range(N):
        env.reset(seed=SEED + j)
        core = base.core
        out["start"].append(core.start[0].numpy().transpose(1, 2, 0).astype(np.float64))
        done, total, steps = False, 0.0, 0
        while not done:
            _, r, term, trunc, info = env.step(policy.act(env))
            total, steps, done = total + float(r), steps + 1, term or trunc
        out["sub"].append({**info["sub_metrics"], "consistency/temporal_min": info["temporal_min"]})
        out["final"].append(core.canvas[0].numpy().transpose(1, 2, 0).astype(np.float64))
        out["target"].append(core.target[0].numpy().transpose(1, 2, 0).astype(np.float64))
        out["mask"].append(core.mask[0, 0].numpy() > 0.5)
        task = core.tasks[0]
        assert task is not None
        out["kind"].append(task.kind)
        out["total"].append(total)
        out["length"].append(steps)
    return out


def _batch(images: list[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) float64 images -> a (N, 3, H, W) float32 batch."""
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2)).float()


@pytest.fixture(scope="module")
def oracle_report() -> dict[str, Any]:
    return evaluate_unigen(OraclePolicy(), CONFIG, N, SEED)


@pytest.fixture(scope="module")
def oracle_replay() -> dict[str, list[Any]]:
    return _replay(OraclePolicy())


@pytest.fixture(scope="module")
def fixed_report() -> dict[str, Any]:
    return evaluate_unigen(FixedActionsPolicy(), CONFIG, N, SEED)


@pytest.fixture(scope="module")
def fixed_replay() -> dict[str, list[Any]]:
    return _replay(FixedActionsPolicy())


@pytest.fixture(scope="module")
def perceptual(oracle_report: dict[str, Any]) -> PerceptualDistance:
    # A fresh network of the report's backend: the reference does not reuse the env's.
    return PerceptualDistance(oracle_report["backend"], device="cpu")


def test_report_has_the_documented_schema(oracle_report: dict[str, Any]) -> None:
    r = oracle_report
    assert r["schema"] == 1 and r["n_episodes"] == N and r["seed"] == SEED
    assert r["task"] == "unified" and r["prompt_split"] == "heldout"
    assert r["reference"] == "hidden" and r["prompt_swap"] is None  # a scripted policy
    assert r["backend"] in ("stlpips", "lpips")
    assert r["weights"] == {"quality": 0.4, "edit": 0.4, "consistency": 0.2}
    assert set(r["metrics"]) == set(EVAL_METRICS)
    assert all(set(v) == {"mean", "std"} for v in r["metrics"].values())
    assert set(r["set_metrics"]) == {"frechet_distance", "kid_mean", "kid_std"}
    assert set(r["sub_metrics"]) == {
        f"{component}/{name}" for component, names in SUB_METRICS.items() for name in names
    } | {"consistency/temporal_min"}
    assert r["psnr_cap_db"] == PSNR_CAP_DB
    assert r["metrics"]["psnr"]["mean"] <= PSNR_CAP_DB
    assert r["set_metrics"]["frechet_distance"] >= 0


def test_json_round_trip(oracle_report: dict[str, Any], tmp_path: Path) -> None:
    path = write_report(oracle_report, tmp_path / "sub" / "eval.json")
    assert load_report(path) == oracle_report
    assert path.read_text() == dumps_report(oracle_report)
    assert not [p for p in path.parent.iterdir() if p.name != "eval.json"]  # no temp files left


def test_metrics_match_a_single_env_replay_and_skimage(
    oracle_report: dict[str, Any], oracle_replay: dict[str, list[Any]]
) -> None:
    """Replay the same seeded tasks one by one in the single env; compute metrics with skimage."""
    rep = oracle_replay
    ssims, psnrs, ious = [], [], []
    for start, final, target, mask in zip(
        rep["start"], rep["final"], rep["target"], rep["mask"], strict=True
    ):
        ssims.append(structural_similarity(final, target, channel_axis=2, data_range=1.0))
        with np.errstate(divide="ignore"):  # identical images: skimage gives inf
            psnrs.append(min(peak_signal_noise_ratio(target, final, data_range=1.0), PSNR_CAP_DB))
        changed = np.abs(final - start).max(axis=2) > 0.05
        union = (changed | mask).sum()
        ious.append((changed & mask).sum() / union if union else 1.0)
    m = oracle_report["metrics"]
    assert m["reward_total"]["mean"] == pytest.approx(np.mean(rep["total"]), abs=1e-6)
    assert m["reward_total"]["std"] == pytest.approx(np.std(rep["total"]), abs=1e-6)
    assert m["episode_length"]["mean"] == pytest.approx(np.mean(rep["length"]), abs=0)
    # float32 torch SSIM vs float64 skimage.
    assert m["ssim"]["mean"] == pytest.approx(np.mean(ssims), abs=1e-4)
    assert m["psnr"]["mean"] == pytest.approx(np.mean(psnrs), rel=1e-4)
    assert m["mask_iou"]["mean"] == pytest.approx(np.mean(ious), abs=1e-6)


@pytest.mark.parametrize("which", ["oracle", "fixed"])
def test_sub_metrics_are_the_ones_the_env_computed(
    which: str, request: pytest.FixtureRequest
) -> None:
    """eval.json's reward sub-metrics are the env's own (its final step's info), not a
    recomputation beside it: a one-by-one replay in the single env reports the same."""
    report = request.getfixturevalue(f"{which}_report")
    replay = request.getfixturevalue(f"{which}_replay")
    for key, stats in report["sub_metrics"].items():
        values = [episode[key] for episode in replay["sub"]]
        assert stats["mean"] == pytest.approx(np.mean(values), abs=1e-6), key
        assert stats["std"] == pytest.approx(np.std(values), abs=1e-6), key
    # The paid consistency is style times the episode's lowest temporal coherence.
    paid = [e["consistency/style"] * e["consistency/temporal_min"] for e in replay["sub"]]
    assert report["metrics"]["reward_consistency"]["mean"] == pytest.approx(np.mean(paid), abs=1e-6)


def _region_ssim_reference(final: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """The documented region SSIM: skimage's full SSIM map, averaged over the channels, then
    over the mask pixels inside the padding-free area (3 px cropped per border); 1.0 if none."""
    _, smap = structural_similarity(
        final, target, channel_axis=2, data_range=1.0, win_size=7, full=True
    )
    inner = smap.mean(axis=2)[SSIM_PAD:-SSIM_PAD, SSIM_PAD:-SSIM_PAD]
    region = mask[SSIM_PAD:-SSIM_PAD, SSIM_PAD:-SSIM_PAD]
    return float(inner[region].mean()) if region.any() else 1.0


def test_region_attribute_and_lpips_metrics_match_references_off_target(
    fixed_report: dict[str, Any], perceptual: PerceptualDistance
) -> None:
    """A non-oracle policy: region_ssim, attribute_accuracy and lpips against references.

    Pins region_ssim (mask-restricted skimage SSIM map), attribute_accuracy (skimage CIE76
    Delta-E of rgb2lab < 10, over the mask only) and lpips (PerceptualDistance.distance of
    final vs target) of the report, mean and std over episodes. Tolerances: 1e-4 for the SSIM
    (float32 torch vs float64 skimage, as above); 1e-6 for the accuracy, after checking no
    mask pixel lies within 1e-3 of the threshold (so float32 Lab cannot flip one); 1e-4
    relative for LPIPS (float32 network, another batch size).
    """
    rep = _replay(FixedActionsPolicy())
    assert rep["kind"].count("edit") >= 2 and rep["length"] == [3] * N
    ssims, regions, accuracies = [], [], []
    for final, target, mask in zip(rep["final"], rep["target"], rep["mask"], strict=True):
        ssims.append(structural_similarity(final, target, channel_axis=2, data_range=1.0))
        regions.append(_region_ssim_reference(final, target, mask))
        delta_e = deltaE_cie76(rgb2lab(final), rgb2lab(target))
        assert np.abs(delta_e[mask] - COLOR_TOL).min() > 1e-3
        accuracies.append(float((delta_e[mask] < COLOR_TOL).mean()) if mask.any() else 1.0)
    lpips = perceptual.distance(_batch(rep["final"]), _batch(rep["target"])).double().numpy()
    # The edit episodes miss their targets, so the region differs from the whole image, and
    # the accuracy over the mask differs from the accuracy over the whole canvas.
    edits = [j for j, kind in enumerate(rep["kind"]) if kind == "edit"]
    assert all(abs(regions[j] - ssims[j]) > 0.05 for j in edits)
    m = fixed_report["metrics"]
    assert m["region_ssim"]["mean"] == pytest.approx(np.mean(regions), abs=1e-4)
    assert m["region_ssim"]["std"] == pytest.approx(np.std(regions), abs=1e-4)
    assert m["attribute_accuracy"]["mean"] == pytest.approx(np.mean(accuracies), abs=1e-6)
    assert m["attribute_accuracy"]["std"] == pytest.approx(np.std(accuracies), abs=1e-6)
    assert m["lpips"]["mean"] == pytest.approx(lpips.mean(), rel=1e-4)
    assert m["lpips"]["std"] == pytest.approx(lpips.std(), rel=1e-4)
    assert m["ssim"]["mean"] == pytest.approx(np.mean(ssims), abs=1e-4)


def test_set_metrics_match_embedding_distances_of_a_replay(
    fixed_report: dict[str, Any],
    perceptual: PerceptualDistance,
) -> None:
    """Pins set_metrics: FD and KID (mean, std) of PerceptualDistance.embed of the final
    canvases vs the targets, KID with the report's seed and 100 subsets of N // 2 rows.

    Tolerance: 1e-4 relative plus 1e-6 absolute; the report keeps 7 significant digits and
    the replay's embeddings differ from the batched rollout's by float32 rounding only.
    """
    replay = _replay(FixedActionsPolicy())
    emb_final = perceptual.embed(_batch(replay["final"]))
    emb_target = perceptual.embed(_batch(replay["target"]))
    fd = frechet_distance(emb_final, emb_target)
    assert fixed_report["kid_subset_size"] == N // 2
    kid_mean, kid_std = kernel_inception_distance(
        emb_final, emb_target, subset_size=N // 2, n_subsets=100, seed=SEED
    )
    assert fd > 1e-3  # the fixed actions miss their targets
    assert kid_std > 1e-6  # subsets of half the episodes differ (of all N they would not)
    sm = fixed_report["set_metrics"]
    assert sm["frechet_distance"] == pytest.approx(fd, rel=1e-4, abs=1e-6)
    assert sm["kid_mean"] == pytest.approx(kid_mean, rel=1e-4, abs=1e-6)
    assert sm["kid_std"] == pytest.approx(kid_std, rel=1e-4, abs=1e-6)


def test_kid_subset_size_is_half_the_episodes_within_bounds() -> None:
    assert [kid_subset_size(n) for n in (2, 3, 4, 5, 32, 2000, 5000)] == [
        2,
        2,
        2,
        2,
        16,
        1000,
        1000,
    ]


def test_the_oracle_scores_above_doing_nothing(oracle_report: dict[str, Any]) -> None:
    noop = evaluate_unigen(NoOpPolicy(), CONFIG, N, SEED)
    assert noop["metrics"]["episode_length"] == {"mean": 1.0, "std": 0.0}
    assert (
        oracle_report["metrics"]["reward_total"]["mean"] > noop["metrics"]["reward_total"]["mean"]
    )
    assert oracle_report["metrics"]["lpips"]["mean"] < noop["metrics"]["lpips"]["mean"]


def test_rewards_agree_with_episode_returns(oracle_report: dict[str, Any]) -> None:
    returns = episode_returns(
        OraclePolicy(),
        n_episodes=N,
        seed=SEED,
        prompt_split="heldout",
        size=SIZE,
        horizon=HORIZON,
    )
    assert oracle_report["metrics"]["reward_total"]["mean"] == pytest.approx(
        returns.mean(), abs=1e-6
    )


@pytest.fixture(scope="module")
def ppo_model() -> PPO:
    return PPO(
        "CnnPolicy",
        make_unigen_env(size=SIZE, horizon=HORIZON, seed=0),
        n_steps=16,
        batch_size=16,
        seed=0,
    )


def test_same_model_and_seed_give_byte_identical_json(ppo_model: PPO, tmp_path: Path) -> None:
    a = evaluate_unigen(ppo_model, CONFIG, 3, 5, json_path=tmp_path / "a.json")
    b = evaluate_unigen(ppo_model, CONFIG, 3, 5, json_path=tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert a == b and a["policy"] == "PPO"
    other = evaluate_unigen(ppo_model, CONFIG, 3, 6)
    assert dumps_report(other) != dumps_report(a)  # the seed picks the task set


def test_settings_are_read_from_a_built_env() -> None:
    env = make_unigen_env(
        "edit",
        size=SIZE,
        horizon=3,
        w_quality=0.5,
        w_edit=0.5,
        w_consistency=0.0,
        prompt_split="train",
    )
    report = evaluate_unigen(OraclePolicy(), env, 2, 0)
    assert report["task"] == "edit" and report["horizon"] == 3 and report["size"] == SIZE
    assert report["weights"] == {"quality": 0.5, "edit": 0.5, "consistency": 0.0}
    assert report["prompt_split"] == "heldout"
    m = report["metrics"]
    expected = 0.5 * m["reward_quality"]["mean"] + 0.5 * m["reward_edit"]["mean"]
    assert m["reward_total"]["mean"] == pytest.approx(expected, abs=1e-6)  # 7-digit JSON
    assert evaluate_unigen(OraclePolicy(), env, 2, 0, prompt_split="env")["prompt_split"] == "train"


def test_bad_inputs_are_refused(ppo_model: PPO) -> None:
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_unigen(OraclePolicy(), CONFIG, 1, 0)
    with pytest.raises(ValueError, match="prompt_split"):
        evaluate_unigen(OraclePolicy(), CONFIG, 2, 0, prompt_split="test")
    with pytest.raises(TypeError, match="predict"):
        evaluate_unigen(object(), CONFIG, 2, 0)
    with pytest.raises(TypeError, match="env_or_config"):
        evaluate_unigen(OraclePolicy(), "unified", 2, 0)  # type: ignore[arg-type]

    class WrongCodec:
        space = spaces.Box(-1, 1, (3,))

    with pytest.raises(TypeError, match="codec must be an action encoding name"):
        evaluate_unigen(ppo_model, CONFIG, 2, 0, codec=WrongCodec())  # type: ignore[arg-type]
    # A box-trained model evaluated in another encoding: refused before any episode.
    with pytest.raises(ValueError, match=r"action_space .* is not the evaluation stack's"):
        evaluate_unigen(ppo_model, CONFIG, 2, 0, codec="discrete")
    with pytest.raises(ValueError, match="schema"):
        load_report({"schema": 99, "metrics": {}})


# --------------------------------------------------------------------------- stability


def _run(seed: int, score: float, length: float, history: list[list[float]] | None) -> dict:
    run: dict[str, Any] = {
        "schema": 1,
        "seed": seed,
        "metrics": {
            "reward_total": {"mean": score, "std": 0.1 * seed},
            "episode_length": {"mean": length, "std": 1.0},
        },
    }
    if history is not None:
        run["history"] = history
    return run


RUNS = [
    _run(1, 0.5, 4.0, [[100, 0.1], [200, 0.45], [300, 0.5]]),
    _run(2, 0.6, 6.0, [[100, 0.6], [200, 0.5], [300, 0.6]]),
    _run(3, 0.7, 8.0, None),
]


def test_stability_summary_known_answers(tmp_path: Path) -> None:
    paths = []
    for k, run in enumerate(RUNS):
        paths.append(tmp_path / f"run{k}.json")
        paths[-1].write_text(json.dumps(run))
    for source in (RUNS, paths):
        s = stability_summary(source, fractions=(0.5, 0.9))
        assert s["n_runs"] == 3 and s["seeds"] == [1, 2, 3]
        assert s["final"]["per_run"] == [0.5, 0.6, 0.7]
        assert s["final"]["mean"] == pytest.approx(0.6)
        assert s["final"]["variance"] == pytest.approx(0.01)  # sample variance, ddof=1
        assert s["final"]["std"] == pytest.approx(0.1)
        assert s["within_run_std"]["mean"] == pytest.approx(0.2)
        assert s["episode_length"]["mean"] == pytest.approx(6.0)
        assert s["episode_length"]["std"] == pytest.approx(2.0)
        assert s["episode_length"]["cv"] == pytest.approx(1 / 3)
        assert s["episode_length"]["mean_within_run_std"] == pytest.approx(1.0)
        # Run 1: 90 % of 0.5 = 0.45 first reached at 200; run 2: 0.54 at 100; run 3: no curve.
        assert s["steps_to_fraction"]["0.9"]["per_run"] == [200.0, 100.0, None]
        assert s["steps_to_fraction"]["0.9"]["mean"] == pytest.approx(150.0)
        assert s["steps_to_fraction"]["0.9"]["n_runs_with_history"] == 2
        assert s["steps_to_fraction"]["0.5"]["per_run"] == [200.0, 100.0, None]


def test_stability_of_one_run_and_errors() -> None:
    s = stability_summary(RUNS[:1])
    assert s["final"]["variance"] is None and s["final"]["mean"] == 0.5
    assert steps_to_fraction([[10, 0.0], [20, 0.3], [30, 0.4]], 0.7) == 20.0
    assert steps_to_fraction([], 0.9) is None
    with pytest.raises(ValueError, match="at least one"):
        stability_summary([])
    with pytest.raises(ValueError, match="fraction"):
        stability_summary(RUNS, fractions=(1.5,))
    with pytest.raises(ValueError, match="no metric 'ssim'"):
        stability_summary(RUNS, metric="ssim")


class _PromptReader:
    """A stand-in for a trained model that reads the prompt encoding and nothing else.

    It decodes the ``attributes`` observation into the prompt's solution (background and
    object fills, a recolour or an attribute change) and acts through the ``box``
    encoding, so an evaluation that swaps prompts between episodes sees it fail.
    """

    def __init__(self, horizon: int) -> None:
        from unigen_sb3.envs.env import observation_space

        self.observation_space = observation_space(SIZE)
        self.action_space = spaces.Box(-1, 1, (NUM_OPS + NUM_PARAMS,), np.float32)
        self.horizon = horizon

    def _act(self, attrs: np.ndarray, step: int) -> np.ndarray:
        from unigen_sb3.envs.canvas import OP_ATTRIBUTE, SHAPE_REGIONS, region_param
        from unigen_sb3.envs.tasks import ATTRIBUTE_NAMES

        a = dict(zip(ATTRIBUTE_NAMES, attrs, strict=True))
        op, p = OP_STOP, np.zeros(NUM_PARAMS, np.float32)
        p[6], p[7] = 1.0, region_param(0)
        colour = 2 * np.array([a["target_red"], a["target_green"], a["target_blue"]]) - 1
        if a["is_edit"] < 0.5 and step == 0:
            op = OP_FILL
            p[3:6] = 2 * np.array([a[f"background_{c}"] for c in ("red", "green", "blue")]) - 1
        elif a["is_edit"] < 0.5 and step == 1:
            shape = ("circle", "square", "triangle")[
                int(np.argmax([a["shape_circle"], a["shape_square"], a["shape_triangle"]]))
            ]
            op = OP_FILL
            p[0], p[1], p[2], p[3:6] = a["x"], a["y"], a["size"], colour
            p[7] = region_param(SHAPE_REGIONS[shape])
        elif a["is_edit"] > 0.5 and step == 0:
            op = OP_FILL if a["has_colour"] > 0.5 else OP_ATTRIBUTE
            if op == OP_FILL:
                p[3:6] = colour
            else:
                p[3], p[4], p[5] = a["brightness"], a["saturation"], a["hue"]
        flat = -np.ones(NUM_OPS + NUM_PARAMS, np.float32)
        flat[op] = 1.0
        flat[NUM_OPS:] = p
        return flat

    def predict(self, obs: dict[str, np.ndarray], deterministic: bool = True) -> tuple[Any, None]:
        steps = np.rint(obs["recent"][:, 3] * self.horizon).astype(int)
        return np.stack(
            [self._act(a, s) for a, s in zip(obs["attributes"], steps, strict=True)]
        ), None


class _ConstantModel(_PromptReader):
    """The same action whatever the observation: a prompt-blind model."""

    def predict(self, obs: dict[str, np.ndarray], deterministic: bool = True) -> tuple[Any, None]:
        flat = -np.ones(NUM_OPS + NUM_PARAMS, np.float32)
        flat[OP_FILL] = 1.0
        flat[NUM_OPS + 6] = 1.0
        return np.repeat(flat[None], len(obs["recent"]), axis=0), None


def test_prompt_swap_shows_whether_a_model_reads_the_prompt() -> None:
    config = {"task": "unified", "size": SIZE, "horizon": HORIZON}
    reader = evaluate_unigen(_PromptReader(HORIZON), config, 8, SEED)
    swap = reader["prompt_swap"]
    assert reader["metrics"]["reward_total"]["mean"] > 0.95  # it solves its own prompts
    assert swap["n_swapped"] >= 6
    assert swap["drop"] > 0.4 and swap["reward_total"] < 0.6
    assert swap["drop"] == pytest.approx(
        reader["metrics"]["reward_total"]["mean"] - swap["reward_total"], abs=1e-6
    )
    blind = evaluate_unigen(_ConstantModel(HORIZON), config, 8, SEED)
    assert blind["prompt_swap"]["drop"] == 0.0  # nothing to lose by swapping
    # Scripted policies read their task, not the observation: no counterfactual.
    assert evaluate_unigen(OraclePolicy(), config, 2, SEED)["prompt_swap"] is None


def test_swap_permutation_deranges_each_task_kind() -> None:
    from unigen_sb3.evaluation import swap_permutation

    kinds = ["edit", "generate", "edit", "edit", "generate", "generate", "edit"]
    perm = swap_permutation(kinds)
    assert sorted(perm) == list(range(len(kinds)))
    assert all(kinds[i] == kinds[j] and i != j for i, j in enumerate(perm))
    assert swap_permutation(["edit", "generate"]) == [0, 1]  # nothing to swap with
