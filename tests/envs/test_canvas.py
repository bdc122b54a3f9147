"""Tests for the canvas engine (unigen_sb3.envs.canvas)."""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import torch

from unigen_sb3.envs import canvas as cv
from unigen_sb3.envs.canvas import (
    NUM_PARAMS,
    OP_ATTRIBUTE,
    OP_FILL,
    OP_PARAMS,
    OP_REFINE,
    OP_STOP,
    OP_STROKE,
    OP_STYLE,
    OPS,
    PARAM_NAMES,
    adjust_hsv,
    apply_ops,
    brush_disk,
    gaussian_blur,
    hsv_to_rgb,
    param_table_markdown,
    param_to_pixel,
    param_to_radius,
    region_index,
    region_mask,
    region_param,
    rgb_to_hsv,
)

H = W = 32
DOCS = Path(__file__).resolve().parents[2] / "docs" / "canvas_ops.md"
# Region selector values that land in each bin (task mask, brush disk, superpixel).
REGION_P7 = (-1.0, -0.4, 0.0, 0.4, 1.0)  # the centres of the five region bins
REGION_IDS = ("task_mask", "brush_disk", "brush_square", "brush_triangle", "superpixel")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _canvas(b: int, seed: int = 0, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(b, 3, H, W, generator=_gen(seed))


def _params(b: int, **values: float) -> torch.Tensor:
    p = torch.zeros(b, NUM_PARAMS)
    for name, v in values.items():
        p[:, PARAM_NAMES.index(name)] = v
    return p


def _segments(b: int) -> torch.Tensor:
    # A 4x4 grid of 8x8 blocks as superpixels.
    ys = torch.arange(H).view(H, 1) // 8
    xs = torch.arange(W).view(1, W) // 8
    return (ys * 4 + xs).expand(b, H, W).contiguous()


def _half_mask(b: int) -> torch.Tensor:
    m = torch.zeros(b, 1, H, W)
    m[..., :, : W // 2] = 1.0
    return m


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


# ----------------------------------------------------------------------------- tables and docs


def test_op_constants_and_param_table() -> None:
    assert OPS == ("stop", "stroke", "refine", "attribute", "style", "fill")
    assert [OP_STOP, OP_STROKE, OP_REFINE, OP_ATTRIBUTE, OP_STYLE, OP_FILL] == list(range(6))
    assert NUM_PARAMS == len(PARAM_NAMES) == 8
    assert set(OP_PARAMS) == set(OPS)
    for op, names in OP_PARAMS.items():
        # Each op's list is a subsequence of PARAM_NAMES (documented order), no duplicates.
        idx = [PARAM_NAMES.index(n) for n in names]
        assert idx == sorted(set(idx)), op
    assert OP_PARAMS["stop"] == ()
    assert "region" not in OP_PARAMS["stroke"]
    assert "region" in OP_PARAMS["fill"] and "region" in OP_PARAMS["refine"]


def test_param_table_is_in_module_docstring_and_docs() -> None:
    table = param_table_markdown()
    assert cv.__doc__ is not None and table in cv.__doc__
    assert table in DOCS.read_text(encoding="utf-8")
    for i, op in enumerate(OPS):
        assert f"| {i} | {op} |" in table


def test_param_mappings_endpoints() -> None:
    p = torch.tensor([-1.0, 0.0, 1.0, 5.0, -7.0])
    assert torch.allclose(param_to_pixel(p, W), torch.tensor([0.0, 15.5, 31.0, 31.0, 0.0]))
    assert torch.allclose(param_to_radius(p, H, W), torch.tensor([1.0, 4.5, 8.0, 8.0, 1.0]))
    sel = torch.tensor([-1.0, -0.61, -0.59, -0.21, -0.19, 0.19, 0.21, 0.59, 0.61, 1.0, 3.0])
    assert region_index(sel).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    for region, _ in enumerate(REGION_IDS):
        assert region_index(torch.tensor(region_param(region))).item() == region
    with pytest.raises(ValueError, match="region"):
        region_param(5)


# ----------------------------------------------------------------------------- regions


def test_region_mask_selects_task_mask_shapes_and_superpixel() -> None:
    b = len(REGION_P7)
    task = _half_mask(b)
    seg = _segments(b)
    p = _params(b, x=0.0, y=0.0, radius=-0.5)  # centre (15.5, 15.5), radius 2.75 px
    p[:, 7] = torch.tensor(REGION_P7)
    m = region_mask(p, height=H, width=W, mask=task, segments=seg)
    assert m.shape == (b, 1, H, W)
    assert torch.equal(m[0], task[0])
    disk = brush_disk(torch.tensor([15.5]), torch.tensor([15.5]), torch.tensor([2.75]), H, W)
    assert torch.equal(m[1], disk[0])
    assert int(m[1].sum()) == 24  # lattice points within 2.75 of a pixel-corner centre
    # The square and triangle are the shapes package's objects at the same place and size.
    from unigen_sb3.data.shapes import _shape_mask

    for k, shape in ((2, "square"), (3, "triangle")):
        expected_shape = torch.from_numpy(_shape_mask(shape, 15.5, 15.5, 2.75, H)).float()
        assert torch.equal(m[k, 0], expected_shape), shape
    # (15.5, 15.5) rounds to pixel (16, 16), which is in block row 2, column 2.
    expected = (seg[4] == 10).float()
    assert torch.equal(m[4, 0], expected)


def test_region_mask_fallbacks() -> None:
    p = _params(2, region=1.0)  # superpixel
    task = _half_mask(2)
    m = region_mask(p, height=H, width=W, mask=task, segments=None)
    assert torch.equal(m, task)
    m = region_mask(_params(2, region=-1.0), height=H, width=W)
    assert torch.equal(m, torch.ones(2, 1, H, W))


# ----------------------------------------------------------------------------- per-op behaviour


def test_stop_is_identity() -> None:
    c = _canvas(4)
    p = torch.rand(4, NUM_PARAMS, generator=_gen(1)) * 2 - 1
    out = apply_ops(c, torch.zeros(4, dtype=torch.long), p)
    assert torch.equal(out, c)
    assert out.data_ptr() != c.data_ptr()


def test_stroke_changes_only_inside_radius() -> None:
    c = _canvas(1)
    p = _params(1, x=-0.2, y=0.3, radius=0.0, red_or_brightness=1.0, intensity=1.0)
    p[0, 4:6] = -1.0  # pure red, full opacity
    out = apply_ops(c, torch.tensor([OP_STROKE]), p)
    x = float(param_to_pixel(p[:, 0], W))
    y = float(param_to_pixel(p[:, 1], H))
    r = float(param_to_radius(p[:, 2], H, W))
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    d = ((xs - x) ** 2 + (ys - y) ** 2).sqrt()
    outside = d >= r
    assert torch.equal(out[0][:, outside], c[0][:, outside])
    inside = d < r - 1
    assert (out[0][:, inside] != c[0][:, inside]).any(dim=0).all()
    # Closer to the centre means closer to the brush colour (smooth falloff).
    err = (out[0] - torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)).abs().sum(0)
    near, far = d < r * 0.3, (d > r * 0.6) & (d < r * 0.9)
    assert err[near].mean() < err[far].mean()


def test_stroke_full_opacity_centre_is_colour_and_zero_opacity_is_identity() -> None:
    c = _canvas(2)
    p = _params(2, x=0.0, y=0.0, radius=1.0, red_or_brightness=0.2)
    p[:, 4], p[:, 5] = -0.4, 0.6
    p[:, 6] = torch.tensor([1.0, -1.0])
    out = apply_ops(c, torch.tensor([OP_STROKE, OP_STROKE]), p)
    # x = 0 maps to column 15.5, between pixels, so check the brush colour at the exact centre
    # with an odd-size canvas instead.
    assert torch.equal(out[1], c[1])
    odd = torch.rand(1, 3, 33, 33, generator=_gen(4))
    out_odd = apply_ops(odd, torch.tensor([OP_STROKE]), p[:1])
    assert torch.allclose(out_odd[0, :, 16, 16], torch.tensor([0.6, 0.3, 0.8]), atol=1e-6)


def test_stroke_ignores_region_selector() -> None:
    b = len(REGION_P7)
    c = _canvas(b)
    p = _params(b, x=0.1, y=-0.2, radius=0.3, red_or_brightness=0.9, intensity=0.5)
    p[:, 7] = torch.tensor(REGION_P7)
    # The change each element receives is the same brush regardless of p7 and the mask.
    c_same = c[:1].expand(b, -1, -1, -1)
    out_same = apply_ops(c_same, torch.full((b,), OP_STROKE), p, mask=torch.zeros(b, 1, H, W))
    assert all(torch.equal(out_same[k], out_same[0]) for k in range(1, b))
    assert not torch.equal(out_same[0], c[0])


REGION_OPS = (OP_REFINE, OP_ATTRIBUTE, OP_STYLE, OP_FILL)


@pytest.mark.parametrize("op_id", REGION_OPS, ids=[OPS[i] for i in REGION_OPS])
@pytest.mark.parametrize("p7", REGION_P7, ids=REGION_IDS)
def test_region_ops_change_only_inside_region(op_id: int, p7: float) -> None:
    b = 2
    c = _canvas(b, seed=3)
    p = _params(
        b,
        x=0.3,
        y=-0.4,
        radius=0.5,
        red_or_brightness=0.5,
        green_or_saturation=-0.7,
        blue_or_hue=0.4,
        intensity=0.9,
        region=p7,
    )
    kwargs = {"mask": _half_mask(b), "segments": _segments(b)}
    out = apply_ops(c, torch.full((b,), op_id), p, **kwargs)
    region = region_mask(p, height=H, width=W, mask=kwargs["mask"], segments=kwargs["segments"])
    outside = region[:, 0] == 0
    assert outside.any() and (~outside).any()
    for i in range(b):
        assert torch.equal(out[i][:, outside[i]], c[i][:, outside[i]])
        changed = (out[i] - c[i]).abs().amax(dim=0)[~outside[i]]
        assert float(changed.mean()) > 1e-3, "the op should change its region"


def test_fill_keeps_shading() -> None:
    # A shaded grey ramp in the region; fill to a mid-range colour (no clipping).
    ramp = torch.linspace(0.2, 0.6, W).view(1, 1, 1, W).expand(1, 3, H, W).clone()
    c = ramp + 0.05 * torch.rand(1, 3, H, W, generator=_gen(2))
    mask = _half_mask(1)
    p = _params(1, red_or_brightness=0.0, green_or_saturation=-0.5, blue_or_hue=-0.8)
    p[:, 6] = 1.0
    p[:, 7] = -1.0
    out = apply_ops(c, torch.tensor([OP_FILL]), p, mask=mask)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    inside = mask[0, 0] > 0
    lum_in = (c * luma).sum(1)[0][inside]
    lum_out = (out * luma).sum(1)[0][inside]
    assert _correlation(lum_in, lum_out) > 0.999
    # Chromaticity follows the requested colour (0.5, 0.25, 0.1).
    col = out[0][:, inside]
    ratio = col / col.sum(0, keepdim=True)
    target = torch.tensor([0.5, 0.25, 0.1])
    assert torch.allclose(ratio.mean(1), target / target.sum(), atol=1e-3)
    # The region's mean luminance becomes the colour's luma (shading is kept as a ratio).
    assert abs(float(lum_out.mean()) - float((target * luma.view(3)).sum())) < 0.01


def test_fill_strength_zero_is_identity() -> None:
    c = _canvas(1)
    p = _params(1, red_or_brightness=1.0, intensity=-0.5)
    out = apply_ops(c, torch.tensor([OP_FILL]), p)
    assert torch.equal(out, c)


def test_style_casts_the_region_toward_its_colour_keeping_contrast() -> None:
    c = _canvas(2, seed=5, lo=0.3, hi=0.7)
    mask = _half_mask(2)
    p = _params(2, red_or_brightness=-0.2, green_or_saturation=0.0, blue_or_hue=0.4)
    p[:, 6] = torch.tensor([1.0, 0.5])
    p[:, 7] = -1.0  # the task mask
    out = apply_ops(c, torch.full((2,), OP_STYLE), p, mask=mask)
    inside = mask[0, 0] > 0
    colour = torch.tensor([0.4, 0.5, 0.7])

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        region = x[:, inside]
        return region.mean(dim=1), region.std(dim=1, unbiased=False)

    _, sc = stats(c[0])
    mo, so = stats(out[0])
    assert torch.allclose(mo, colour, atol=1e-5)  # full strength: the mean is the colour
    assert torch.allclose(so, sc, atol=1e-5)  # deviations (contrast, texture) kept
    mh, _ = stats(out[1])
    assert torch.allclose(mh, (stats(c[1])[0] + colour) / 2, atol=1e-5)  # half strength
    assert torch.equal(out[:, :, ~inside], c[:, :, ~inside])


def test_no_op_reads_a_target_image() -> None:
    import inspect

    assert "style_target" not in inspect.signature(apply_ops).parameters


def test_refine_sharpens_and_smooths() -> None:
    c = _canvas(3, seed=7, lo=0.3, hi=0.7)
    p = _params(3, region=-1.0)
    p[:, 6] = torch.tensor([1.0, -1.0, 0.0])
    out = apply_ops(c, torch.full((3,), OP_REFINE), p)
    blur = torch.from_numpy(
        scipy.ndimage.gaussian_filter(c[1].numpy(), sigma=(0, 1, 1), mode="nearest", truncate=3)
    )
    assert torch.allclose(out[1], blur, atol=1e-6)  # full smoothing = the Gaussian blur
    expected = (c[0] + 2.0 * (c[0] - gaussian_blur(c[:1])[0])).clamp(0, 1)
    assert torch.allclose(out[0], expected, atol=1e-6)
    assert torch.equal(out[2], c[2])


def test_gaussian_blur_matches_scipy() -> None:
    x = torch.rand(2, 3, 17, 23, generator=_gen(8))
    for sigma in (0.5, 1.0, 2.0):
        ref = scipy.ndimage.gaussian_filter(
            x.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest", truncate=3.0
        )
        assert np.allclose(gaussian_blur(x, sigma).numpy(), ref, atol=1e-6), sigma
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(x, 0.0)


# ----------------------------------------------------------------------------- colour helpers


def test_rgb_hsv_match_colorsys() -> None:
    x = torch.rand(1, 3, 8, 8, generator=_gen(11))
    x[0, :, 0, 0] = 0.5  # grey: hue 0, saturation 0
    x[0, :, 0, 1] = 0.0  # black
    hsv = rgb_to_hsv(x)
    flat = x[0].reshape(3, -1).T.tolist()
    ref = torch.tensor([colorsys.rgb_to_hsv(*px) for px in flat]).T.reshape(3, 8, 8)
    assert torch.allclose(hsv[0], ref, atol=1e-6)
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-6)


def test_hue_full_turn_is_identity_and_third_turn_maps_red_to_green() -> None:
    x = torch.rand(2, 3, H, W, generator=_gen(12))
    zero = torch.zeros(2)
    out = adjust_hsv(x, zero, zero, torch.ones(2))
    assert torch.allclose(out, x, atol=1e-5)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    green = adjust_hsv(red, zero[:1], zero[:1], torch.tensor([1.0 / 3.0]))
    assert torch.allclose(green, red.roll(1, dims=1), atol=1e-6)
    # Through apply_ops: the most hue an attribute step gives is half a turn; two make a turn.
    p = _params(2, blue_or_hue=1.0, intensity=1.0, region=-1.0)
    op = torch.full((2,), OP_ATTRIBUTE)
    twice = apply_ops(apply_ops(x, op, p), op, p)
    assert torch.allclose(twice, x, atol=1e-5)
    assert not torch.allclose(apply_ops(x, op, p), x, atol=1e-2)


def test_attribute_saturation_and_brightness() -> None:
    x = torch.rand(1, 3, H, W, generator=_gen(13))
    p = _params(1, green_or_saturation=-1.0, intensity=1.0, region=-1.0)
    grey = apply_ops(x, torch.tensor([OP_ATTRIBUTE]), p)
    assert torch.allclose(grey[0, 0], grey[0, 1], atol=1e-6)
    assert torch.allclose(grey[0].amax(0), x[0].amax(0), atol=1e-6)  # value kept
    p = _params(1, red_or_brightness=0.4, intensity=0.5, region=-1.0)
    bright = apply_ops(x, torch.tensor([OP_ATTRIBUTE]), p)
    expected_v = (x[0].amax(0) + 0.5 * 0.4 * 0.5).clamp(0, 1)
    assert torch.allclose(bright[0].amax(0), expected_v, atol=1e-6)
    # Negative intensity: attribute reads only the non-negative part, so nothing changes.
    p[:, 6] = -1.0
    assert torch.allclose(apply_ops(x, torch.tensor([OP_ATTRIBUTE]), p), x, atol=1e-6)


# ----------------------------------------------------------------------------- batching


def _random_batch(b: int, seed: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    g = _gen(seed)
    params = torch.rand(b, NUM_PARAMS, generator=g) * 2 - 1
    params[:, 6] = params[:, 6].abs().clamp(min=0.2)  # every op does something visible
    return {
        "canvas": torch.rand(b, 3, H, W, generator=g).to(device),
        "op": (torch.arange(b) % len(OPS)).to(device),
        "params": params.to(device),
        "mask": (torch.rand(b, 1, H, W, generator=g) > 0.5).to(device),
        "segments": _segments(b).to(device),
    }


def _call(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return apply_ops(
        batch["canvas"],
        batch["op"],
        batch["params"],
        mask=batch["mask"],
        segments=batch["segments"],
    )


def test_mixed_batch_equals_elements_alone_and_is_deterministic() -> None:
    batch = _random_batch(12, seed=21)
    out = _call(batch)
    assert torch.equal(out, _call(batch))
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    for i in range(12):
        alone = _call({k: v[i : i + 1] for k, v in batch.items()})
        # Bit for bit: the batched env and single envs must render the same canvases.
        assert torch.equal(out[i : i + 1], alone), OPS[i % len(OPS)]
    assert all(not torch.equal(out[i], batch["canvas"][i]) for i in range(12) if i % 6)


def test_each_op_runs_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    for op_id, fn in list(cv._OP_FUNCS.items()):

        def counted(
            sb: cv._SubBatch,
            fn: Callable[[cv._SubBatch], torch.Tensor] = fn,
            op_id: int = op_id,
        ) -> torch.Tensor:
            calls.append((op_id, sb.canvas.shape[0]))
            return fn(sb)

        monkeypatch.setitem(cv._OP_FUNCS, op_id, counted)
    _call(_random_batch(12, seed=3))
    assert sorted(calls) == [(k, 2) for k in range(1, len(OPS))]


def test_params_outside_range_are_clipped() -> None:
    batch = _random_batch(6, seed=4)
    wide = dict(batch, params=batch["params"] * 3.0)
    clipped = dict(batch, params=(batch["params"] * 3.0).clamp(-1, 1))
    out = _call(wide)
    assert torch.equal(out, _call(clipped))
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_params_raise_naming_op_and_param(bad: float) -> None:
    p = _params(3)
    p[2, 6] = bad
    with pytest.raises(ValueError, match=r"params\[2, 6\].*intensity.*'refine'"):
        apply_ops(_canvas(3), torch.tensor([OP_STOP, OP_STROKE, OP_REFINE]), p)


def test_input_validation() -> None:
    c = _canvas(2)
    with pytest.raises(ValueError, match="op id"):
        apply_ops(c, torch.tensor([0, 6]), _params(2))
    with pytest.raises(TypeError, match="integer"):
        apply_ops(c, torch.tensor([0.0, 1.0]), _params(2))
    with pytest.raises(ValueError, match=r"\(2, 8\)"):
        apply_ops(c, torch.tensor([0, 1]), torch.zeros(2, 7))
    with pytest.raises(ValueError, match="canvas"):
        apply_ops(c[:, :2], torch.tensor([0, 1]), _params(2))
    with pytest.raises(ValueError, match="mask"):
        apply_ops(c, torch.tensor([0, 1]), _params(2), mask=torch.ones(2, 1, H, W + 1))
    with pytest.raises(TypeError, match="segments"):
        apply_ops(c, torch.tensor([0, 1]), _params(2), segments=torch.zeros(2, H, W))


def test_float64_canvas_is_supported() -> None:
    batch = _random_batch(6, seed=5)
    out32 = _call(batch)
    out64 = _call(dict(batch, canvas=batch["canvas"].double()))
    assert out64.dtype == torch.float64
    assert torch.allclose(out64.float(), out32, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_matches_cpu() -> None:
    cpu = _call(_random_batch(12, seed=6))
    gpu_batch = _random_batch(12, seed=6, device="cuda")
    gpu = _call(gpu_batch)
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu, _call(gpu_batch))  # deterministic on the GPU too
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-5)
