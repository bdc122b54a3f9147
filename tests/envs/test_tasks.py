"""TaskSampler: its argument checks (the env checks its own arguments before it builds one)
and the tasks it renders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unigen_sb3.data.shapes import load_shapes_spec
from unigen_sb3.envs.canvas import apply_ops
from unigen_sb3.envs.core import render_pending_targets
from unigen_sb3.envs.tasks import Task, TaskSampler


@pytest.mark.parametrize("size", [40.7, "64", True, 12, 7])
def test_sampler_refuses_a_size_that_is_not_an_int_at_least_the_shapes_minimum(size) -> None:
    # 40.7 was truncated to 40 and "64" accepted; 12 failed only in sample(), and 7 with the
    # shapes package's minimum of another check (8).
    minimum = load_shapes_spec()["min_size"]
    with pytest.raises(ValueError, match=f"size={size!r} must be an int >= {minimum}"):
        TaskSampler("unified", size=size)


@pytest.mark.parametrize("fraction", ["0.5", None, 1.5, -0.1, True])
def test_sampler_refuses_an_edit_fraction_outside_zero_one(fraction) -> None:
    with pytest.raises(ValueError, match=f"edit_fraction={fraction!r} must be a number in"):
        TaskSampler("unified", edit_fraction=fraction)


def test_sampler_takes_numpy_numbers() -> None:
    minimum = load_shapes_spec()["min_size"]
    sampler = TaskSampler("edit", size=np.int64(minimum), edit_fraction=np.float32(0.25))
    task = sampler.sample(np.random.default_rng(0))
    assert sampler.size == minimum and task.target.shape == (3, minimum, minimum)


def test_a_deferred_render_gives_the_tasks_an_immediate_render_gives() -> None:
    # sample(render=False) leaves generation and edit targets for one batched canvas call
    # (render_pending_targets); the tasks must be bit for bit those of render=True.
    sampler = TaskSampler("unified", size=40)
    rng_now, rng_later = np.random.default_rng(5), np.random.default_rng(5)
    now = [sampler.sample(rng_now, render=True) for _ in range(48)]
    later = [sampler.sample(rng_later, render=False) for _ in range(48)]
    assert {t.kind for t in later} == {"generate", "edit"}
    assert any(t.pending_render is not None for t in later if t.kind == "generate")
    for lo in range(0, len(later), 7):
        render_pending_targets(later[lo : lo + 7])
    for a, b in zip(now, later, strict=True):
        assert a.pending_render is None and b.pending_render is None
        for name in ("target", "start", "mask", "focus", "segments"):
            assert torch.equal(getattr(a, name), getattr(b, name)), (a.kind, name)


def test_a_generation_task_is_its_solution_rendered_and_its_focus_is_the_object() -> None:
    sampler = TaskSampler("generate", size=40)
    rng = np.random.default_rng(6)
    for render in (True, False):
        task = sampler.sample(rng, render=render)
        render_pending_targets([task])
        image, whole = task.start[None], task.mask[None]
        steps = []
        for op, params in task.solution:
            image = apply_ops(image, torch.tensor([op]), torch.from_numpy(params)[None], mask=whole)
            steps.append(image[0])
        assert len(steps) == 2 and torch.equal(task.target, steps[1])
        object_pixels = (steps[1] != steps[0]).any(dim=0)
        assert object_pixels.any() and not object_pixels.all()
        assert torch.equal(task.focus, object_pixels.float()[None])


def test_sample_many_renders_a_round_of_targets_in_one_canvas_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The batched env draws its new tasks with render=True: generation targets and every
    # edit candidate of the first round go to one canvas call, redrawn candidates to one
    # call per later round (no second call for the unchecked targets at reset).
    import unigen_sb3.envs.tasks as tasks_module

    calls: list[int] = []
    render = tasks_module.render_targets

    def counted(tasks: list[Task]) -> list[int]:
        rendered = render(tasks)
        calls.append(len(rendered))
        return rendered

    monkeypatch.setattr(tasks_module, "render_targets", counted)
    sampler = TaskSampler("unified", size=36)
    rngs = [np.random.default_rng(40 + i) for i in range(16)]
    got = sampler.sample_many(rngs)
    assert {t.kind for t in got} == {"generate", "edit"}
    assert all(t.pending_render is None for t in got)
    assert calls and calls[0] == 16
    alone = [sampler.sample(np.random.default_rng(40 + i)) for i in range(16)]
    for a, b in zip(alone, got, strict=True):
        for name in ("target", "start", "mask", "focus", "segments"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("size", [40, 33])  # 33: pixel count off the vector width
def test_sample_many_gives_the_tasks_of_one_sample_per_generator(size: int) -> None:
    sampler = TaskSampler("edit", size=size)  # every task an edit: most are checked
    one = [np.random.default_rng(20 + i) for i in range(12)]
    many = [np.random.default_rng(20 + i) for i in range(12)]
    checked = 0
    for _ in range(3):
        expected = [sampler.sample(r, render=False) for r in one]
        got = sampler.sample_many(many, render=False)
        checked += sum(t.pending_render is None for t in got)
        for a, b in zip(expected, got, strict=True):
            assert a.prompt == b.prompt and a.source == b.source
            assert (a.pending_render is None) == (b.pending_render is None)
            for name in ("target", "start", "mask", "focus", "segments"):
                assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert checked > 0, "no candidate was rendered and checked: the test compared no check"
    # Each generator was advanced exactly as by sample().
    assert [r.random() for r in one] == [r.random() for r in many]
