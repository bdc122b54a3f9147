"""A non-learning baseline: cross-entropy-method search over hybrid actions, one step at a time.

:class:`CEMPlanner` acts like the scripted policies (``act_core(core, i)``): at every env step
it copies episode ``i``'s state into each row of a *population* core
(:meth:`~unigen_sb3.envs.core.UniGenCore.copy_episode_from`), steps all candidate actions as
one batched step, scores each by the reward the env would pay if the episode ended right after
it (the candidate, then ``stop``: the env's own final reward vector, read from
:class:`~unigen_sb3.envs.core.StepResult`, unified with bounded normalization and the given
weights), refits the sampling distribution to the best candidates (the elites), and after the
last iteration plays the best candidate seen. ``stop`` is always among the first candidates,
so it stops when no candidate improves on the canvas it has.

**It is privileged**: it queries the reward, hence the hidden target, for every candidate. It
is the optimization bar a learning agent should approach, not a policy an agent could be.

Budget: ``budget`` reward evaluations per env step (``iterations`` rounds of ``budget //
iterations`` candidates); each round is two batched steps of the population core (the
candidates, then ``stop`` for the rows they did not end).

Example:
    >>> from unigen_sb3.evaluation import episode_returns
    >>> planner = CEMPlanner(budget=16, seed=0)
    >>> episode_returns(planner, "edit", n_episodes=2, size=36, horizon=3)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_STOP, HybridAction
from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.envs.policies import ScriptedPolicy
from unigen_sb3.envs.tasks import Task
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, RewardUnifier
from unigen_sb3.utils import is_int

__all__ = ["CEMPlanner"]

_MIN_STD = 0.05  # a refitted parameter never collapses to one value


class CEMPlanner(ScriptedPolicy):
    """Privileged CEM (or, with ``iterations=1``, random-shooting) search, step by step.

    :param budget: reward evaluations (candidate actions scored) per env step; a multiple of
        ``iterations`` with at least 2 candidates per round.
    :param iterations: rounds of sampling and refitting per step (1: random shooting).
    :param elite_fraction: share of a round's candidates the distribution is refitted to.
    :param smoothing: weight of the elites' op frequencies against the previous op
        probabilities, in ``(0, 1]``.
    :param weights: the unified reward's weights the candidates are scored with (default:
        the package's defaults, the base weights of every evaluation).
    :param seed: seed of the planner's own sampling.

    First round: ops uniform over the episode's valid ops (the first candidate is ``stop``),
    parameters uniform in ``[-1, 1]``. Later rounds: op probabilities moved toward the
    elites' op frequencies; for an op with elites, parameters drawn from a Gaussian fitted to
    them (clipped to ``[-1, 1]``, std at least 0.05); for an op without, uniform still.
    """

    def __init__(
        self,
        budget: int = 64,
        *,
        iterations: int = 4,
        elite_fraction: float = 0.25,
        smoothing: float = 0.7,
        weights: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> None:
        if not is_int(iterations) or iterations < 1:
            raise ValueError(f"iterations={iterations!r} must be an int >= 1")
        if not is_int(budget) or budget < 2 * iterations or budget % iterations:
            raise ValueError(
                f"budget={budget!r} must be an int multiple of iterations={iterations} with at "
                f"least 2 candidates per round (>= {2 * iterations}), e.g. 16, 64 or 256"
            )
        if not 0.0 < elite_fraction <= 1.0:
            raise ValueError(f"elite_fraction={elite_fraction!r} must be in (0, 1]")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing={smoothing!r} must be in (0, 1]")
        self.budget = int(budget)
        self.iterations = int(iterations)
        self.population = self.budget // self.iterations
        self.n_elites = max(1, round(elite_fraction * self.population))
        self.smoothing = float(smoothing)
        w = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self.unifier = RewardUnifier(w["quality"], w["edit"], w["consistency"])
        self.rng = np.random.default_rng(seed)
        #: Reward evaluations made so far (``budget`` per planned step).
        self.evaluations = 0
        #: R_total the env would pay if the episode ended after the last action chosen.
        self.best_score = float("nan")
        self._pop: UniGenCore | None = None

    def _population_core(self, core: UniGenCore) -> UniGenCore:
        """A core of ``population`` rows like ``core`` (kept while the settings match)."""
        pop = self._pop
        if (
            pop is None
            or pop.rewards is not core.rewards
            or (pop.size, pop.horizon, pop.device, pop.observe_target)
            != (core.size, core.horizon, core.device, core.observe_target)
        ):
            pop = UniGenCore(
                self.population,
                size=core.size,
                horizon=core.horizon,
                device=core.device,
                rewards=core.rewards,
                observe_target=core.observe_target,
                # Lazy scoring: a candidate is scored where it is paid (when its episode
                # ends), so the network runs only on the candidates' final canvases.
                step_components=(),
            )
            self._pop = pop
        return pop

    def _scores(self, core: UniGenCore, i: int, ops: np.ndarray, params: np.ndarray) -> np.ndarray:
        """R_total the env would pay if episode ``i`` ended right after each candidate."""
        pop = self._population_core(core)
        m = self.population
        pop.copy_episode_from(core, i, range(m))
        first = pop.step(ops, params)
        ended = first.terminated | first.truncated
        reward = first.reward.copy()
        if not ended.all():
            after = pop.step(np.full(m, OP_STOP, dtype=np.int64), np.zeros_like(params))
            reward[~ended] = after.reward[~ended]
        self.evaluations += m
        return np.asarray(self.unifier(reward, update=False).total, dtype=np.float64)

    def act_core(self, core: UniGenCore, i: int) -> HybridAction:
        """Search the best action for episode ``i`` of ``core`` (its state is not changed)."""
        if core.tasks[i] is None:
            raise RuntimeError(f"episode {i} has not been reset")
        valid = core.op_masks()[i]
        probs = valid / valid.sum()
        mean = np.zeros((NUM_OPS, NUM_PARAMS))
        std = np.ones((NUM_OPS, NUM_PARAMS))
        fitted = np.zeros(NUM_OPS, dtype=bool)
        m = self.population
        best_score, best_op, best_params = -np.inf, OP_STOP, np.zeros(NUM_PARAMS, np.float32)
        for it in range(self.iterations):
            ops = self.rng.choice(NUM_OPS, size=m, p=probs)
            if it == 0:
                ops[0] = OP_STOP
            uniform = self.rng.uniform(-1.0, 1.0, (m, NUM_PARAMS))
            gauss = mean[ops] + std[ops] * self.rng.standard_normal((m, NUM_PARAMS))
            params = np.where(fitted[ops, None], np.clip(gauss, -1.0, 1.0), uniform)
            params = params.astype(np.float32)
            scores = self._scores(core, i, ops, params)
            top = int(np.argmax(scores))  # ties: the earliest candidate (stop first)
            if scores[top] > best_score:
                best_score, best_op, best_params = float(scores[top]), int(ops[top]), params[top]
            elites = np.argsort(-scores, kind="stable")[: self.n_elites]
            freq = np.bincount(ops[elites], minlength=NUM_OPS) / len(elites)
            probs = self.smoothing * freq + (1.0 - self.smoothing) * probs
            probs = np.where(valid, probs, 0.0)
            probs /= probs.sum()
            for op in np.unique(ops[elites]):
                rows = params[elites][ops[elites] == op]
                mean[op] = rows.mean(axis=0)
                std[op] = np.maximum(rows.std(axis=0), _MIN_STD)
                fitted[op] = True
        self.best_score = best_score
        return {"op": best_op, "params": best_params.copy()}

    def act_state(self, canvas: object, task: Task, step: int, horizon: int) -> HybridAction:
        """Not available: the planner needs the whole episode state (use :meth:`act_core`)."""
        raise TypeError("CEMPlanner plans on an episode's core state: call act_core(core, i)")
