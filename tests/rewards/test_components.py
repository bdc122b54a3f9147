"""The three reward components on hand-made transitions with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unigen_sb3.envs.env import shared_reward_computer
from unigen_sb3.rewards.components import (
    COMPONENT_RANGES,
    SUB_METRICS,
    RewardComputer,
    TaskBatch,
    component_vector,
    lab_style_stats,
    style_distance,
)
from unigen_sb3.rewards.metrics import rgb_to_lab

SIZE = 36


@pytest.fixture(scope="module")
def computer() -> RewardComputer:
    return shared_reward_computer("auto", "cpu", SIZE)


def _edit_task(target_colour: float = 0.9) -> tuple[TaskBatch, torch.Tensor]:
    """A grey start image with a square region the task asks to turn light."""
    torch.manual_seed(0)
    start = 0.3 + 0.2 * torch.rand(2, 3, SIZE, SIZE)
    mask = torch.zeros(2, 1, SIZE, SIZE)
    mask[:, :, 10:22, 10:22] = 1.0
    target = torch.where(mask.bool(), torch.full_like(start, target_colour), start)
    return TaskBatch(target=target, mask=mask, start=start), start


def test_components_are_in_their_declared_ranges_and_named(computer: RewardComputer) -> None:
    task, start = _edit_task()
    noise = (start + 0.5 * torch.randn_like(start)).clamp(0, 1)
    for canvas in (start, task.target, noise):
        results = computer(start, canvas, task)
        assert list(results) == list(COMPONENT_RANGES)
        for name, result in results.items():
            assert (result.low, result.high) == COMPONENT_RANGES[name]
            assert tuple(result.sub) == SUB_METRICS[name]
            assert torch.all((result.value >= 0) & (result.value <= 1))
            # The component is the mean of its sub-metrics.
            torch.testing.assert_close(result.value, torch.stack(list(result.sub.values())).mean(0))
    assert component_vector(results).shape == (2, 3)


def test_reaching_the_target_scores_full_edit_and_perceptual(computer: RewardComputer) -> None:
    task, start = _edit_task()
    done = computer(start, task.target, task)
    torch.testing.assert_close(done["edit"].sub["accuracy"], torch.ones(2))
    torch.testing.assert_close(done["edit"].sub["preservation"], torch.ones(2))
    torch.testing.assert_close(done["edit"].sub["localization"], torch.ones(2))
    torch.testing.assert_close(done["quality"].sub["perceptual"], torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(done["consistency"].sub["style"], torch.ones(2))
    untouched = computer(start, start, task)
    assert torch.all(untouched["edit"].sub["accuracy"] == 0)  # 0.3-0.5 grey is far from 0.9
    assert torch.all(untouched["edit"].sub["localization"] == 0)  # nothing changed
    assert torch.all(untouched["edit"].value < done["edit"].value)
    assert torch.all(untouched["quality"].value < done["quality"].value)


def test_changes_outside_the_mask_cost_preservation_and_temporal(
    computer: RewardComputer,
) -> None:
    task, _ = _edit_task()
    spoiled = task.target.clone()
    spoiled[:, :, 25:, 25:] = 1.0 - spoiled[:, :, 25:, 25:]  # outside the mask
    r = computer(task.target, spoiled, task)
    assert torch.all(r["edit"].sub["preservation"] < 0.9)
    assert torch.all(r["consistency"].sub["temporal"] < 0.9)
    assert torch.all(r["edit"].sub["localization"] < 1.0)  # changed pixels spill outside
    torch.testing.assert_close(r["edit"].sub["accuracy"], torch.ones(2))  # inside still right


def test_outside_windows_leave_out_the_mask_ring() -> None:
    from unigen_sb3.rewards.components import outside_windows

    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[:, :, 10:22, 10:22] = 1.0
    out = outside_windows(mask)
    assert out[0, 0, 7:25, 7:25].sum() == 0  # the mask and a 3-pixel ring around it
    assert out[0, 0, 6, 6] == 1 and out[0, 0, 25, 25] == 1
    assert outside_windows(torch.ones(1, 1, SIZE, SIZE)).sum() == 0


def test_generation_mask_makes_preservation_and_temporal_vacuous(
    computer: RewardComputer,
) -> None:
    start = torch.ones(1, 3, SIZE, SIZE)
    target = torch.rand(1, 3, SIZE, SIZE)
    task = TaskBatch(target=target, mask=torch.ones(1, 1, SIZE, SIZE), start=start)
    r = computer(start, torch.rand(1, 3, SIZE, SIZE), task)
    assert r["edit"].sub["preservation"].item() == 1.0
    assert r["consistency"].sub["temporal"].item() == 1.0


def test_cached_target_features_give_the_same_quality(computer: RewardComputer) -> None:
    task, start = _edit_task()
    cached = TaskBatch(task.target, task.mask, task.start, computer.target_features(task.target))
    canvas = (start + 0.1).clamp(0, 1)
    torch.testing.assert_close(
        computer.quality(canvas, task).value, computer.quality(canvas, cached).value
    )


def test_prepared_task_caches_give_the_same_components(computer: RewardComputer) -> None:
    task, start = _edit_task()
    prepared = computer.prepare(task)
    assert prepared.target_features is not None
    assert prepared.target_lab is not None and prepared.outside is not None
    assert prepared.target_style is not None and prepared.target_style.shape == (2, 6)
    torch.testing.assert_close(prepared.target_style, lab_style_stats(rgb_to_lab(task.target)))
    canvas = (start + 0.1 * torch.randn_like(start)).clamp(0, 1)
    plain, cached = computer(start, canvas, task), computer(start, canvas, prepared)
    features = computer.perceptual.features(canvas)
    given = computer(start, canvas, prepared, canvas_features=features)
    for name in COMPONENT_RANGES:
        for other in (cached, given):
            torch.testing.assert_close(other[name].value, plain[name].value, atol=1e-6, rtol=0)
            for key, value in plain[name].sub.items():
                torch.testing.assert_close(other[name].sub[key], value, atol=1e-6, rtol=0)


def test_lab_style_stats_are_the_per_channel_mean_and_population_std() -> None:
    lab = rgb_to_lab(torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4)))
    flat = lab.double().flatten(2).numpy()
    expected = np.concatenate([flat.mean(axis=2), flat.std(axis=2)], axis=1)
    np.testing.assert_allclose(lab_style_stats(lab).numpy(), expected, atol=1e-4, rtol=0)


def test_style_distance_is_zero_for_equal_statistics_and_grows() -> None:
    x = torch.rand(1, 3, SIZE, SIZE)
    assert style_distance(x, x.flip(-1)).item() == pytest.approx(0.0, abs=1e-4)
    near = style_distance(x, (x + 0.05).clamp(0, 1)).item()
    far = style_distance(x, (x + 0.3).clamp(0, 1)).item()
    assert 0 < near < far


def test_bad_settings_are_refused(computer: RewardComputer) -> None:
    with pytest.raises(ValueError, match="color_tol"):
        RewardComputer(computer.perceptual, None, color_tol=0.0)
