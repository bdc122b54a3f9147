"""The gaming suite: no prompt-blind or degenerate policy comes near the Oracle.

Scored on seeded held-out tasks of each task kind under the default weights:

- the scripted probes: stop at once, dawdle, random actions, random strokes, fill with the
  canvas's mean or dominant colour, any change inside the mask, a repeated colour cast,
  and the prompt's colour over the whole canvas (a degenerate prompt reader);
- every constant action of the ``discrete`` library, repeated until the horizon;
- the Blind baseline: the best open-loop sequence of up to two library actions, found by
  beam search on these very tasks (an in-sample maximum, so an upper estimate).

The task design promises, on every kind: the Oracle beats the best prompt-blind policy by
at least :data:`MIN_ORACLE_MARGIN` R_total, and that policy gets at most
:data:`MAX_BLIND_SHARE` of the way from NoOp to the Oracle. The figures on more tasks and at
the quickstart size are in docs/baselines.md (``python benchmarks/baselines.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from unigen_sb3.envs.policies import (
    CanvasColourFillPolicy,
    DawdlePolicy,
    MaskChangePolicy,
    NoOpPolicy,
    OraclePolicy,
    PromptColourEverywherePolicy,
    RandomPolicy,
    RandomStrokesPolicy,
    RepeatedStylePolicy,
    ScriptedPolicy,
)
from unigen_sb3.envs.tasks import TaskSampler
from unigen_sb3.evaluation import episode_returns
from unigen_sb3.evaluation.blind import blind_search, library_actions, score_sequences

KINDS = ("generate", "edit", "unified")
MIN_ORACLE_MARGIN = 0.4
MAX_BLIND_SHARE = 0.4
# Small enough for the test run; docs/baselines.md has 48x48 and more episodes.
SETTINGS: dict[str, Any] = {"size": 36, "horizon": 8, "prompt_split": "heldout"}
N_EPISODES = 8
SEED = 5000

PROMPT_BLIND: dict[str, ScriptedPolicy] = {
    "dawdle": DawdlePolicy(),
    "random": RandomPolicy(seed=0),
    "random strokes": RandomStrokesPolicy(seed=0),
    "fill canvas mean": CanvasColourFillPolicy("mean"),
    "fill canvas dominant": CanvasColourFillPolicy("dominant"),
    "change inside mask": MaskChangePolicy(),
    "repeated style": RepeatedStylePolicy(),
}
DEGENERATE: dict[str, ScriptedPolicy] = {"prompt colour everywhere": PromptColourEverywherePolicy()}


def _returns(policy: ScriptedPolicy, kind: str) -> float:
    return float(episode_returns(policy, kind, n_episodes=N_EPISODES, seed=SEED, **SETTINGS).mean())


@pytest.fixture(scope="module")
def scores() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    library = library_actions()
    for kind in KINDS:
        row = {"oracle": _returns(OraclePolicy(), kind), "noop": _returns(NoOpPolicy(), kind)}
        for name, policy in {**PROMPT_BLIND, **DEGENERATE}.items():
            row[name] = _returns(policy, kind)
        sampler = TaskSampler(kind, size=SETTINGS["size"], prompt_split="heldout")
        tasks = [sampler.sample(np.random.default_rng(SEED + j)) for j in range(N_EPISODES)]
        constant = score_sequences(
            [[a] * SETTINGS["horizon"] for a in library],
            tasks,
            size=SETTINGS["size"],
            horizon=SETTINGS["horizon"],
        )
        row["best constant action"] = float(constant.mean(axis=1).max())
        blind = blind_search(kind, depth=2, beam=2, n_episodes=N_EPISODES, seed=SEED, **SETTINGS)
        row["blind search"] = blind.score
        out[kind] = row
    return out


def _best_blind(row: dict[str, float]) -> tuple[str, float]:
    names = [*PROMPT_BLIND, "best constant action", "blind search"]
    return max(((n, row[n]) for n in names), key=lambda item: item[1])


@pytest.mark.parametrize("kind", KINDS)
def test_oracle_beats_every_prompt_blind_policy_by_a_wide_margin(scores, kind: str) -> None:
    row = scores[kind]
    name, best = _best_blind(row)
    assert row["oracle"] - best >= MIN_ORACLE_MARGIN, (kind, name, row)


@pytest.mark.parametrize("kind", KINDS)
def test_prompt_blind_policies_get_little_of_the_way_to_the_oracle(scores, kind: str) -> None:
    row = scores[kind]
    name, best = _best_blind(row)
    span = row["oracle"] - row["noop"]
    assert span > 0, row
    assert (best - row["noop"]) / span <= MAX_BLIND_SHARE, (kind, name, row)


@pytest.mark.parametrize("kind", KINDS)
def test_degenerate_prompt_readers_score_low(scores, kind: str) -> None:
    row = scores[kind]
    span = row["oracle"] - row["noop"]
    for name in DEGENERATE:
        assert (row[name] - row["noop"]) / span <= MAX_BLIND_SHARE, (kind, name, row)


@pytest.mark.parametrize("kind", KINDS)
def test_doing_nothing_scores_nothing(scores, kind: str) -> None:
    # No term pays for the untouched start canvas: every component is progress toward the
    # target, times guards that only take away.
    assert scores[kind]["noop"] == pytest.approx(0.0, abs=1e-6)
    assert scores[kind]["dawdle"] == pytest.approx(0.0, abs=1e-6)
    assert scores[kind]["oracle"] >= 0.95


def test_blind_search_scores_equal_the_env_returns() -> None:
    """The batched sequence scorer is the env's reward, not an approximation of it."""
    from unigen_sb3.envs.policies import SequencePolicy

    library = library_actions()
    seqs = [[library[1]], [library[5], library[300]], [library[12], library[40], library[2]]]
    sampler = TaskSampler("unified", size=36, prompt_split="heldout")
    tasks = [sampler.sample(np.random.default_rng(SEED + j)) for j in range(4)]
    scored = score_sequences(seqs, tasks, size=36, horizon=8)
    for k, seq in enumerate(seqs):
        policy = SequencePolicy([{"op": op, "params": p} for op, p in seq])
        env_returns = episode_returns(policy, "unified", n_episodes=4, seed=SEED, **SETTINGS)
        np.testing.assert_allclose(scored[k], env_returns, atol=1e-6)


def test_blind_search_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="depth"):
        blind_search("edit", depth=0)
    with pytest.raises(ValueError, match="horizon"):
        blind_search("edit", depth=3, horizon=2)
