"""Tests for potential-based shaping, including policy invariance on a small MDP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from unigen_sb3.rewards.shaping import PotentialShaping, check_shaping_gamma

# ---------------------------------------------------------------- the shaping term


def test_shaping_term_formula() -> None:
    shaping = PotentialShaping(gamma=0.9, scale=2.0)
    assert shaping.shaping_term(0.3, 0.5, terminated=False) == pytest.approx(2.0 * (0.45 - 0.3))
    # Terminal: Phi(s') = 0 whatever the next state's potential.
    assert shaping.shaping_term(0.3, 0.5, terminated=True) == pytest.approx(-0.6)


def test_named_potential_reads_normalized_component() -> None:
    comps = np.array([0.1, 0.7, 0.4])
    assert PotentialShaping(0.9, "quality").potential_of(comps, {}) == pytest.approx(0.1)
    assert PotentialShaping(0.9, "edit").potential_of(comps, {}) == pytest.approx(0.7)
    assert PotentialShaping(0.9, "consistency").potential_of(comps, {}) == pytest.approx(0.4)


def test_named_potential_without_components_explains() -> None:
    with pytest.raises(ValueError, match=r"state_components.*callable"):
        PotentialShaping(0.9, "quality").potential_of(None, {})


def test_callable_potential_gets_components_and_info() -> None:
    seen: list[Any] = []

    def phi(comps: np.ndarray | None, info: dict) -> float:
        seen.append((comps, info))
        return 2.0 * info["x"]

    shaping = PotentialShaping(0.5, phi)
    assert shaping.potential_of(None, {"x": 1.5}) == 3.0
    assert seen[0][0] is None and seen[0][1] == {"x": 1.5}
    bad = PotentialShaping(0.5, lambda c, i: float("nan"))
    with pytest.raises(ValueError, match="returned nan"):
        bad.potential_of(None, {})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"gamma": 1.5}, ValueError, r"gamma must lie in \[0, 1\], got 1.5"),
        ({"gamma": 0.9, "potential": "realism"}, ValueError, "'realism' is not a component"),
        ({"gamma": 0.9, "potential": 3}, TypeError, "component name or a callable"),
        ({"gamma": 0.9, "scale": float("inf")}, ValueError, "scale must be finite"),
    ],
)
def test_constructor_validation(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        PotentialShaping(**kwargs)


# ---------------------------------------------------------------- gamma check


def test_check_shaping_gamma_with_floats() -> None:
    check_shaping_gamma(0.99, PotentialShaping(0.99))
    check_shaping_gamma(0.99, None)  # no shaping: nothing to check
    with pytest.raises(ValueError, match=r"shaping gamma=0.9 .* algorithm's gamma=0.99"):
        check_shaping_gamma(0.99, PotentialShaping(0.9))
    with pytest.raises(TypeError, match="SB3 model"):
        check_shaping_gamma("fast", PotentialShaping(0.9))


def test_check_shaping_gamma_reads_sb3_model() -> None:
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", "CartPole-v1", gamma=0.95, n_steps=16, batch_size=16, device="cpu")
    check_shaping_gamma(model, PotentialShaping(0.95))
    with pytest.raises(ValueError, match=r"gamma=0.99 differs .* gamma=0.95"):
        check_shaping_gamma(model, PotentialShaping(0.99))


# ---------------------------------------------------------------- policy invariance on a chain MDP

# Five states in a row; action 0 = left (stays at 0), 1 = right. Entering state 4 (terminal)
# pays 1, every other transition pays 0. With discount 0.9 the optimal policy is "right"
# everywhere, strictly (Q(s, right) = 0.9**(3 - s) > Q(s, left)).
N_STATES, GOAL, DISCOUNT = 5, 4, 0.9


def _next_state(s: int, a: int) -> int:
    return max(s - 1, 0) if a == 0 else s + 1


def _q_values(discount: float, shaping: PotentialShaping | None, phi: np.ndarray) -> np.ndarray:
    """Value iteration on the chain; the shaping term comes from the library under test."""
    q = np.zeros((GOAL, 2))
    for _ in range(10_000):
        v = q.max(axis=1)
        new_q = np.zeros_like(q)
        for s in range(GOAL):
            for a in (0, 1):
                s2 = _next_state(s, a)
                terminal = s2 == GOAL
                r = 1.0 if terminal else 0.0
                if shaping is not None:
                    r += shaping.shaping_term(
                        shaping.potential_of(None, {"state": s}),
                        shaping.potential_of(None, {"state": s2}),
                        terminated=terminal,
                    )
                new_q[s, a] = r + (0.0 if terminal else discount * v[s2])
        if np.max(np.abs(new_q - q)) < 1e-13:
            return new_q
        q = new_q
    raise AssertionError("value iteration did not converge")


def _table_potential(phi: np.ndarray) -> Any:
    return lambda comps, info: float(phi[info["state"]])


def test_chain_reference_solution() -> None:
    q = _q_values(DISCOUNT, None, np.zeros(N_STATES))
    np.testing.assert_array_equal(q.argmax(axis=1), [1, 1, 1, 1])
    np.testing.assert_allclose(q[:, 1], DISCOUNT ** (3 - np.arange(4)), atol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_matching_gamma_keeps_optimal_policy(seed: int) -> None:
    phi = np.random.default_rng(seed).normal(scale=5.0, size=N_STATES)
    shaping = PotentialShaping(DISCOUNT, _table_potential(phi))
    q = _q_values(DISCOUNT, None, phi)
    q_shaped = _q_values(DISCOUNT, shaping, phi)
    np.testing.assert_array_equal(q_shaped.argmax(axis=1), q.argmax(axis=1))
    # Ng et al. (1999): Q_shaped(s, a) = Q(s, a) - Phi(s), exactly.
    np.testing.assert_allclose(q_shaped, q - phi[:GOAL, None], atol=1e-9)


def test_mismatched_gamma_can_change_optimal_policy() -> None:
    # A high potential at the start state, shaped with gamma 1.0 but learned with discount 0.9:
    # the leftover (1.0 - 0.9) * Phi(s') = 1 per step spent in state 0 beats reaching the goal,
    # so the agent learns to stay at the start. This is the mistake check_shaping_gamma stops.
    phi = np.array([10.0, 0.0, 0.0, 0.0, 0.0])
    bad = PotentialShaping(1.0, _table_potential(phi))
    q_bad = _q_values(DISCOUNT, bad, phi)
    assert q_bad.argmax(axis=1)[0] == 0  # "left" (stay) at the start instead of "right"
    assert q_bad.argmax(axis=1)[1] == 0
    assert not np.array_equal(q_bad.argmax(axis=1), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="differs"):
        check_shaping_gamma(DISCOUNT, bad)
    # The same potential with the matching gamma is harmless.
    good = PotentialShaping(DISCOUNT, _table_potential(phi))
    np.testing.assert_array_equal(_q_values(DISCOUNT, good, phi).argmax(axis=1), [1, 1, 1, 1])
