"""The three reward components on hand-made transitions with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import deltaE_cie76, rgb2lab
from skimage.metrics import structural_similarity

from unigen_sb3.envs.env import shared_reward_computer
from unigen_sb3.rewards import components
from unigen_sb3.rewards.components import (
    COMPONENT_RANGES,
    GUARD_METRICS,
    SUB_METRICS,
    RewardComputer,
    TaskBatch,
    component_vector,
    lab_style_stats,
    masked_lab_style_stats,
    style_distance,
)
from unigen_sb3.rewards.metrics import rgb_to_lab
from unigen_sb3.rewards.perceptual import PerceptualDistance

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
            # The component is the mean of its progress terms times its guards.
            progress = [v for k, v in result.sub.items() if k not in GUARD_METRICS]
            expected = torch.stack(progress).mean(0)
            for k, v in result.sub.items():
                if k in GUARD_METRICS:
                    expected = expected * v
            torch.testing.assert_close(result.value, expected)
    assert component_vector(results).shape == (2, 3)


def test_reaching_the_target_scores_full_edit_and_perceptual(computer: RewardComputer) -> None:
    task, start = _edit_task()
    done = computer(start, task.target, task)
    torch.testing.assert_close(done["edit"].sub["accuracy"], torch.ones(2))
    torch.testing.assert_close(done["edit"].sub["preservation"], torch.ones(2))
    torch.testing.assert_close(done["edit"].sub["localization"], torch.ones(2))
    torch.testing.assert_close(done["quality"].sub["perceptual"], torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(done["consistency"].sub["style"], torch.ones(2))
    for name in COMPONENT_RANGES:
        torch.testing.assert_close(done[name].value, torch.ones(2), atol=1e-5, rtol=0)
    untouched = computer(start, start, task)
    assert torch.all(untouched["edit"].sub["accuracy"] == 0)  # 0.3-0.5 grey is far from 0.9
    assert torch.all(untouched["edit"].sub["localization"] == 0)  # nothing changed
    # Doing nothing earns nothing, however well it preserves: the guards only multiply.
    assert torch.all(untouched["edit"].sub["preservation"] == 1)
    for name in COMPONENT_RANGES:
        torch.testing.assert_close(untouched[name].value, torch.zeros(2), atol=1e-6, rtol=0)


def test_changes_that_miss_the_target_earn_no_localization(computer: RewardComputer) -> None:
    # A grey fill inside the mask changes exactly the mask, but the task asked for 0.9.
    task, start = _edit_task()
    grey = torch.where(task.mask.bool(), torch.full_like(start, 0.6), start)
    r = computer(start, grey, task)
    assert torch.all(r["edit"].sub["localization"] == 0)
    assert torch.all(r["edit"].sub["accuracy"] == 0)
    # Reaching the target but also painting outside the mask costs localization.
    spill = task.target.clone()
    spill[:, :, 0:6, :] = 0.9
    r = computer(start, spill, task)
    assert torch.all(r["edit"].sub["accuracy"] == 1)
    assert torch.all(r["edit"].sub["localization"] < 0.8)


def test_generation_scores_the_object_apart_from_the_background(
    computer: RewardComputer,
) -> None:
    # A blank start, a grey background and a small red object: getting the background
    # right and the object wrong is half the accuracy, however small the object.
    start = torch.ones(1, 3, SIZE, SIZE)
    focus = torch.zeros(1, 1, SIZE, SIZE)
    focus[:, :, 4:10, 4:10] = 1.0
    red = torch.tensor([0.85, 0.15, 0.15]).view(1, 3, 1, 1)
    target = torch.where(focus.bool(), red, torch.full_like(start, 0.5))
    task = TaskBatch(target, torch.ones(1, 1, SIZE, SIZE), start, focus=focus)
    background_only = torch.full_like(start, 0.5)
    r = computer(start, background_only, task)
    torch.testing.assert_close(r["edit"].sub["accuracy"], torch.tensor([0.5]))
    object_everywhere = red.expand_as(start).clone()
    r = computer(start, object_everywhere, task)
    torch.testing.assert_close(r["edit"].sub["accuracy"], torch.tensor([0.5]))
    assert r["edit"].sub["localization"].item() < 0.05  # 36 of 1296 pixels


def test_realism_scores_blank_and_one_blob_canvases_low(computer: RewardComputer) -> None:
    """The realism model puts a blank canvas near 0 and one brush blob far below the
    generation targets; as a guard it leaves such canvases only the progress they made."""
    from unigen_sb3.envs.canvas import OP_STROKE, apply_ops
    from unigen_sb3.envs.tasks import TaskSampler

    assert computer.realism is not None
    sampler = TaskSampler("generate", size=SIZE)
    tasks = [sampler.sample(np.random.default_rng(j)) for j in range(8)]
    targets = torch.stack([t.target for t in tasks])
    blank = torch.stack([t.start for t in tasks])
    params = torch.zeros(8, 8)
    params[:, 2] = params[:, 6] = 1.0  # the largest brush, full opacity
    params[:, 3:6] = torch.tensor(np.array([t.prompt.attributes.rgb for t in tasks])) * 2 - 1
    blob = apply_ops(blank, torch.full((8,), OP_STROKE), params)

    def score(x: torch.Tensor) -> float:
        assert computer.realism is not None
        return float(computer.realism.score(computer.perceptual.embed(x)).mean())

    assert score(blank) < 0.01
    assert score(blob) < 0.5 * score(targets)
    task = TaskBatch(
        targets, torch.ones(8, 1, SIZE, SIZE), blank, focus=torch.stack([t.focus for t in tasks])
    )
    r = computer(blob, blob, task)
    assert float(r["quality"].sub["realism"].mean()) < 0.5
    assert float(r["quality"].value.mean()) < 0.15


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


def test_consistency_reads_a_given_temporal(computer: RewardComputer) -> None:
    task, _ = _edit_task()
    spoiled = task.target.clone()
    spoiled[:, :, 25:, 25:] = 1.0 - spoiled[:, :, 25:, 25:]
    computed = computer(task.target, spoiled, task)["consistency"]
    given = computed.sub["temporal"].clone()
    same = computer(task.target, spoiled, task, temporal=given)["consistency"]
    assert torch.equal(same.value, computed.value) and same.sub["temporal"] is given
    halved = computer(task.target, spoiled, task, temporal=0.5 * given)["consistency"]
    torch.testing.assert_close(halved.value, 0.5 * computed.value)


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
    assert prepared.target_style is not None and prepared.target_style.shape == (2, 2, 6)
    # Focus = mask by default: the first part is the mask, the second empty.
    torch.testing.assert_close(
        prepared.target_style[:, 0], masked_lab_style_stats(rgb_to_lab(task.target), task.mask)
    )
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


def _mid_edit_transition() -> tuple[TaskBatch, torch.Tensor, torch.Tensor]:
    """A transition ``prev -> canvas`` half-way through an edit, with known-answer checks.

    The canvas is neither the target nor the start: inside the mask a left-to-right ramp
    from the start's grey to past the target's 0.9 (so some mask pixels are within
    ``color_tol`` of the target, some within 3x it, some farther), plus noise outside the
    mask. ``prev`` differs from the start outside the mask (a bright patch and other
    noise), so SSIM against ``prev`` and against ``start`` are different numbers.
    """
    task, start = _edit_task()
    g = torch.Generator().manual_seed(11)
    outside_noise = 0.04 * torch.randn(2, 3, SIZE, SIZE, generator=g)
    prev = (start + 0.04 * torch.randn(2, 3, SIZE, SIZE, generator=g)).clamp(0, 1)
    prev[:, :, 26:34, 2:12] = 0.95
    ramp = torch.linspace(0.45, 1.0, 12).expand(2, 3, 12, 12)
    canvas = (start + outside_noise).clamp(0, 1)
    canvas[:, :, 10:22, 10:22] = (ramp + 0.02 * torch.randn(2, 3, 12, 12, generator=g)).clamp(0, 1)
    return task, prev, canvas


def _skimage_region_ssim(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor) -> np.ndarray:
    """Mean of scikit-image's channel-averaged full SSIM map over ``region``, inside the
    3-pixel border that skimage crops for its own mean (7x7 window, data_range 1)."""
    out = []
    for a, b, r in zip(x.double().numpy(), y.double().numpy(), region.numpy(), strict=True):
        _, full = structural_similarity(a, b, channel_axis=0, data_range=1.0, win_size=7, full=True)
        keep = r[0, 3:-3, 3:-3] > 0.5
        out.append(full.mean(axis=0)[3:-3, 3:-3][keep].mean())
    return np.array(out)


def test_sub_metrics_equal_independent_computations(computer: RewardComputer) -> None:
    """Each sub-metric on a non-trivial transition against an independent computation.

    - perceptual = clip(1 - d(canvas, target) / d(start, target), 0, 1) with d
      ``PerceptualDistance.distance`` (the network's two-image path); 1e-5.
    - style = clip(1 - g(canvas) / g(start), 0, 1), g the Euclidean distance between the
      CIELAB per-channel mean and population std inside the mask and the target's, with
      skimage's rgb2lab in float64; 1e-4.
    - accuracy = fraction of the mask pixels the task must change (skimage deltaE_cie76 of
      start vs target > color_tol: all of them here) within color_tol of the target; one
      mask pixel (1/144) of slack for a float32/float64 disagreement at the threshold.
    - preservation / temporal = skimage's full SSIM map, channel-averaged, over the pixels
      whose 7x7 window misses the mask, against start / prev; 1e-5 (float32 vs float64).
    - localization = |changed & reached & needed| / |changed | needed|, changed = max channel
      change from start above change_threshold; one pixel of slack at the threshold.
    """
    task, prev, canvas = _mid_edit_transition()
    r = computer(prev, canvas, task)
    mask = task.mask.numpy()[:, 0] > 0.5

    assert isinstance(computer.perceptual, PerceptualDistance)
    dist = computer.perceptual.distance(canvas, task.target)
    start_dist = computer.perceptual.distance(task.start, task.target)
    assert torch.all((dist > 0.01) & (dist < start_dist))  # real, partial progress
    torch.testing.assert_close(
        r["quality"].sub["perceptual"], (1 - dist / start_dist).clamp(0, 1), atol=1e-5, rtol=0
    )

    def lab(x: torch.Tensor) -> np.ndarray:
        return rgb2lab(x.double().numpy(), channel_axis=1)

    canvas_lab, target_lab, start_lab = lab(canvas), lab(task.target), lab(task.start)

    def stats(x: np.ndarray) -> np.ndarray:
        out = []
        for i in range(2):
            region = x[i][:, mask[i]]
            out.append(np.concatenate([region.mean(axis=1), region.std(axis=1)]))
        return np.stack(out)

    g_canvas = np.linalg.norm(stats(canvas_lab) - stats(target_lab), axis=1)
    g_start = np.linalg.norm(stats(start_lab) - stats(target_lab), axis=1)
    assert np.all(g_canvas > 2) and np.all(g_canvas < g_start)
    np.testing.assert_allclose(
        r["consistency"].sub["style"].numpy(), np.clip(1 - g_canvas / g_start, 0, 1), atol=1e-4
    )

    need = deltaE_cie76(start_lab, target_lab, channel_axis=1) > computer.color_tol
    assert np.array_equal(need, mask)  # every mask pixel must change, nothing else
    delta_e = deltaE_cie76(canvas_lab, target_lab, channel_axis=1)
    reached = delta_e <= computer.color_tol
    accuracy = [reached[i][mask[i]].mean() for i in range(2)]
    assert all(0.1 < a < 0.9 for a in accuracy)
    # Pixels between tol and 3 tol: a wrong tolerance moves the fraction.
    assert all(
        (delta_e[i][mask[i]] < 3 * computer.color_tol).mean() > a + 0.1
        for i, a in enumerate(accuracy)
    )
    np.testing.assert_allclose(
        r["edit"].sub["accuracy"].numpy(), accuracy, atol=1.01 / mask[0].sum(), rtol=0
    )

    outside = 1 - torch.nn.functional.max_pool2d(task.mask, 7, stride=1, padding=3)
    temporal = _skimage_region_ssim(canvas, prev, outside)
    preservation = _skimage_region_ssim(canvas, task.start, outside)
    assert np.all(np.abs(temporal - preservation) > 0.05) and np.all(temporal > 0)
    assert np.all((preservation > 0) & (preservation < 0.99))
    np.testing.assert_allclose(r["consistency"].sub["temporal"].numpy(), temporal, atol=1e-5)
    np.testing.assert_allclose(r["edit"].sub["preservation"].numpy(), preservation, atol=1e-5)

    changed = (canvas - task.start).abs().amax(dim=1).numpy() > computer.change_threshold
    hit = (changed & reached & need).sum(axis=(1, 2))
    union = (changed | need).sum(axis=(1, 2))
    assert np.all((hit > 20) & (hit / union < 0.9))  # outside noise also counts as change
    np.testing.assert_allclose(
        r["edit"].sub["localization"].numpy(), hit / union, atol=1.01 / union.min(), rtol=0
    )


@pytest.mark.parametrize("size", [36, 64])
def test_start_lab_of_single_colour_canvases_equals_their_full_conversion(size: int) -> None:
    # prepare() converts a single-colour start (generation's blank canvas) from one pixel;
    # the values must be those of converting the whole canvas, bit for bit.
    g = torch.Generator().manual_seed(4)
    starts = torch.rand(6, 3, size, size, generator=g)
    starts[1] = 1.0  # the blank start
    starts[3] = torch.tensor([0.2, 0.6, 0.9]).view(3, 1, 1)
    starts[4] = 0.03  # below the sRGB companding threshold
    full = rgb_to_lab(starts)
    assert torch.equal(components._start_lab(starts), full)
    for rows in ([1, 3], [0, 2], [4]):  # all single-colour, none, one
        assert torch.equal(components._start_lab(starts[rows]), full[rows])
