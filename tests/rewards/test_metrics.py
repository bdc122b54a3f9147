"""Pixel metrics against scikit-image (the reference implementation) and hand-made cases."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from unigen_sb3.rewards import metrics
from unigen_sb3.rewards.metrics import (
    changed_mask,
    color_accuracy,
    lab_accuracy,
    mask_iou,
    psnr,
    rgb_to_lab,
    ssim,
    ssim_map,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _astronaut(size: int = 48) -> torch.Tensor:
    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].double() / 255
    return F.interpolate(img, size=(size, size), mode="bilinear", antialias=True)


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A natural image and random images, each with a noisy, shifted counterpart."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([_astronaut(), torch.rand(2, 3, 48, 48, generator=g, dtype=torch.float64)])
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    y[0] = torch.roll(x[0], shifts=2, dims=-1)  # structural change, not just noise
    return x, y


def _sk_ssim(a: torch.Tensor, b: torch.Tensor, win_size: int = 7, **kw: Any) -> Any:
    return structural_similarity(
        a.double().cpu().numpy(),
        b.double().cpu().numpy(),
        channel_axis=0,
        data_range=1.0,
        win_size=win_size,
        **kw,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("win_size", [7, 5])
def test_ssim_matches_skimage(pair, device, dtype, win_size):
    x, y = (t.to(device, dtype) for t in pair)
    ours = ssim(x, y, win_size=win_size)
    assert ours.shape == (x.shape[0],)
    assert ours.device.type == device
    expected = [_sk_ssim(a, b, win_size) for a, b in zip(pair[0], pair[1], strict=True)]
    np.testing.assert_allclose(ours.double().cpu().numpy(), expected, atol=1e-4, rtol=0)
    # The cases must be non-trivial for the comparison to mean something.
    assert max(expected) < 0.99


def test_ssim_map_matches_skimage_full_map(pair):
    x, y = pair
    ours = ssim_map(x, y)
    assert ours.shape == (x.shape[0], 1, *x.shape[2:])
    for i in range(x.shape[0]):
        _, full = _sk_ssim(x[i], y[i], full=True)
        np.testing.assert_allclose(ours[i, 0].numpy(), full.mean(axis=0), atol=1e-10)


def test_region_ssim_is_skimage_map_mean_over_mask_in_valid_area(pair):
    x, y = pair
    b, _, h, w = x.shape
    mask = torch.zeros(b, 1, h, w)
    mask[0, :, 0:20, 0:30] = 1  # overlaps the cropped border: those pixels must not count
    mask[1, :, 10:40, 5:25] = 1
    mask[2] = (torch.rand(1, h, w, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    ours = ssim(x, y, mask=mask)
    pad = 3
    valid = np.zeros((h, w), dtype=bool)
    valid[pad : h - pad, pad : w - pad] = True
    for i in range(b):
        _, full = _sk_ssim(x[i], y[i], full=True)
        sel = mask[i, 0].numpy().astype(bool) & valid
        assert abs(float(ours[i]) - full.mean(axis=0)[sel].mean()) < 1e-6
    # A full mask is the plain SSIM; bool masks work like float ones.
    full_mask = torch.ones(b, 1, h, w, dtype=torch.bool)
    torch.testing.assert_close(ssim(x, y, mask=full_mask), ssim(x, y), atol=1e-12, rtol=0)
    torch.testing.assert_close(ssim(x, y, mask=mask > 0.5), ours)


def test_region_ssim_empty_mask_gives_empty_value(pair):
    x, y = pair
    b, _, h, w = x.shape
    mask = torch.zeros(b, 1, h, w)
    mask[0, :, 0:3, :] = 1  # only border rows, all cropped away -> empty as well
    mask[1, :, 10:20, 10:20] = 1
    out = ssim(x, y, mask=mask)
    assert out[0] == 1.0 and out[2] == 1.0
    assert out[1] < 0.99
    out0 = ssim(x, y, mask=mask, empty=0.0)
    assert out0[0] == 0.0 and out0[2] == 0.0 and out0[1] == out[1]


def test_region_ssim_computes_only_images_whose_region_is_not_empty(monkeypatch):
    # Generation tasks have nothing outside their mask: their SSIM is `empty` without work.
    g = torch.Generator().manual_seed(3)
    x = torch.rand(12, 3, 24, 24, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    mask = torch.zeros(12, 1, 24, 24)
    mask[::3, :, 5:15, 4:20] = 1  # images 0, 3, 6, 9
    mask[1, :, 0:2, :] = 1  # only cropped border pixels: empty as well
    seen: list[int] = []
    chunk = metrics._ssim_chunk

    def counting(a: torch.Tensor, *args: object) -> torch.Tensor:
        seen.append(a.shape[0])
        return chunk(a, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(metrics, "_ssim_chunk", counting)
    out = ssim(x, y, mask=mask, empty=0.25)
    assert sum(seen) == 4
    for i in range(12):
        if i % 3:
            assert out[i].item() == 0.25
        else:
            one = ssim(x[i : i + 1], y[i : i + 1], mask=mask[i : i + 1], empty=0.25)
            assert out[i].item() == one.item() and one.item() < 0.99


def test_ssim_batch_equals_one_by_one(pair):
    x, y = pair
    batched = ssim(x, y)
    single = torch.cat([ssim(x[i : i + 1], y[i : i + 1]) for i in range(x.shape[0])])
    assert torch.equal(batched, single)  # bit for bit: an image's score ignores its batch


def test_ssim_on_a_cpu_batch_larger_than_a_chunk_matches_skimage():
    # Batches above the CPU chunk size are computed chunk by chunk; every image must still
    # match scikit-image and its own one-by-one value, masks included.
    assert metrics._CPU_SSIM_CHUNK < 11
    g = torch.Generator().manual_seed(5)
    x = torch.rand(11, 3, 24, 24, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    mask = (torch.rand(11, 1, 24, 24, generator=g) > 0.3).float()
    plain, masked = ssim(x, y), ssim(x, y, mask=mask)
    for i in range(11):
        assert plain[i].item() == pytest.approx(_sk_ssim(x[i], y[i]), abs=1e-5)
        one = ssim(x[i : i + 1], y[i : i + 1], mask=mask[i : i + 1])
        assert torch.equal(masked[i : i + 1], one)


def test_box_filter_slice_sums_equal_avg_pool():
    x = torch.rand(2, 15, 20, 23, generator=torch.Generator().manual_seed(6))
    by_slices = metrics._box_mean(x, 7, slices=True)
    by_pool = metrics._box_mean(x, 7, slices=False)
    assert by_slices.shape == (2, 15, 14, 17)
    torch.testing.assert_close(by_slices, by_pool, atol=1e-6, rtol=0)
    torch.testing.assert_close(by_pool, F.avg_pool2d(x, 7, stride=1), atol=1e-6, rtol=0)


def test_ssim_identical_is_one():
    x = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(ssim(x, x), torch.ones(3), atol=1e-6, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_psnr_matches_skimage(pair, device):
    x, y = (t.to(device) for t in pair)
    ours = psnr(x, y)
    expected = [
        peak_signal_noise_ratio(a.numpy(), b.numpy(), data_range=1.0)
        for a, b in zip(pair[0], pair[1], strict=True)
    ]
    np.testing.assert_allclose(ours.cpu().numpy(), expected, rtol=1e-9)
    half = psnr(x.float(), y.float(), data_range=2.0)
    np.testing.assert_allclose(
        half.cpu().numpy(), np.array(expected) + 20 * math.log10(2), rtol=1e-5
    )


def test_psnr_identical_is_inf_like_skimage():
    x = torch.rand(2, 3, 8, 8)
    out = psnr(x, x)
    assert torch.isinf(out).all() and (out > 0).all()
    with np.errstate(divide="ignore"):
        assert np.isinf(peak_signal_noise_ratio(x[0].numpy(), x[0].numpy(), data_range=1.0))


def test_mask_iou_hand_cases():
    pred = torch.zeros(4, 1, 4, 4)
    target = torch.zeros(4, 1, 4, 4)
    pred[0, :, :2, :] = 1  # 8 px
    target[0, :, 1:3, :] = 1  # 8 px, 4 shared -> 4 / 12
    pred[1, :, :2, :2] = 0.7  # thresholded at 0.5 -> 4 px, target empty -> 0
    target[3, :, 0, 0] = 0.4  # below threshold -> both empty -> 1
    out = mask_iou(pred, target)
    torch.testing.assert_close(out, torch.tensor([4 / 12, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(mask_iou(pred > 0.5, target > 0.5), out)
    torch.testing.assert_close(mask_iou(target, target), torch.ones(4))


@pytest.mark.parametrize("device", DEVICES)
def test_rgb_to_lab_matches_skimage(device):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 10, 10, generator=g)
    # Corner cases: black, white, primaries and values near the sRGB / Lab thresholds.
    specials = torch.tensor(
        [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.04, 0.0404, 0.0405], [0.01] * 3]
    )
    x[0, :, 0, : len(specials)] = specials.T
    ours = rgb_to_lab(x.to(device)).cpu()
    assert ours.shape == x.shape
    for i in range(2):
        ref = color.rgb2lab(x[i].permute(1, 2, 0).double().numpy())
        np.testing.assert_allclose(ours[i].permute(1, 2, 0).numpy(), ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("size", [64, 6])
def test_rgb_to_lab_on_a_cpu_batch_larger_than_a_chunk_equals_one_pass(size):
    # A CPU batch above the chunk size is converted chunk by chunk; every image plane is laid
    # out in whole vector blocks, so the bits equal one pass over the batch at any size.
    n = metrics._CPU_LAB_CHUNK + 3
    g = torch.Generator().manual_seed(7)
    x = torch.rand(n, 3, size, size, generator=g)
    for dtype in (torch.float32, torch.float64):
        out = rgb_to_lab(x.to(dtype))
        one_pass = metrics._lab_pass(x, dtype)
        assert out.dtype == dtype and out.shape == x.shape
        assert torch.equal(out, one_pass)
    ref = color.rgb2lab(x[-1].permute(1, 2, 0).double().numpy())
    np.testing.assert_allclose(out[-1].permute(1, 2, 0).numpy(), ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("size", [36, 33, 64])  # 36x36, 33x33: pixel counts off 32 floats
def test_rgb_to_lab_of_an_image_does_not_depend_on_its_batch(size):
    # Without the padded planes, 36x36 images converted in a batch of 7 differed from the same
    # images converted one at a time by up to 3e-5 on an AVX-512 CPU (pow's scalar tail).
    g = torch.Generator().manual_seed(3)
    x = torch.rand(7, 3, size, size, generator=g)
    x[:, :, -1, -1] = 0.5  # a last pixel above both companding thresholds: pow runs on it
    for dtype in (torch.float32, torch.float64):
        batch = rgb_to_lab(x.to(dtype))
        for i in range(len(x)):
            assert torch.equal(batch[i : i + 1], rgb_to_lab(x[i : i + 1].to(dtype))), (dtype, i)
        assert torch.equal(batch[2:5], rgb_to_lab(x[2:5].to(dtype)))
    ref = color.rgb2lab(x[0].permute(1, 2, 0).double().numpy())
    np.testing.assert_allclose(batch[0].permute(1, 2, 0).numpy(), ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("threads", [5, 8])
def test_rgb_to_lab_of_an_image_does_not_depend_on_its_batch_with_more_threads(threads):
    # With more than 4 threads ATen split one pass of 11-13 64x64 images (and a single
    # 224x224 image) at points inside a vector block, and those images' CIELAB depended on the
    # batch (found at 5, 8 and 16 threads); each pass is now laid out in whole blocks.
    before = torch.get_num_threads()
    g = torch.Generator().manual_seed(5)
    try:
        torch.set_num_threads(threads)
        for size, n in ((64, 14), (36, 14), (128, 14), (224, 3)):
            x = torch.rand(n, 3, size, size, generator=g)
            alone = [rgb_to_lab(x[i : i + 1]) for i in range(n)]
            for lo, hi in ((0, n), (0, n - 3), (2, n)):
                batch = rgb_to_lab(x[lo:hi])
                for i in range(len(batch)):
                    assert torch.equal(batch[i : i + 1], alone[lo + i]), (size, lo, hi, i)
    finally:
        torch.set_num_threads(before)


def test_lab_rows_hold_whole_vector_blocks_per_thread():
    assert metrics._lab_row(64 * 64, 16, 2) == 4096  # the env's size: no padding at 2 threads
    assert metrics._lab_row(48 * 48, 16, 4) == 2304
    assert metrics._lab_row(36 * 36, 1, 1) == 1344  # 1,296 pixels: padded to 64s
    assert metrics._lab_row(64 * 64, 13, 8) == 4160  # 5 ranges of 13 images: padded
    for threads in (1, 2, 5, 7, 16):
        for pixels in (6 * 6, 36 * 36, 64 * 64, 224 * 224):
            for images in range(1, 17):
                row = metrics._lab_row(pixels, images, threads)
                values = images * 3 * row
                tasks = max(1, min(threads, -(-values // metrics._ATEN_GRAIN)))
                chunk = -(-values // tasks)
                assert row >= pixels and row % metrics._CPU_LAB_ALIGN == 0
                assert chunk % metrics._CPU_LAB_BLOCK == 0 and values % chunk == 0


def test_color_accuracy_counts_pixels_within_tolerance():
    g = torch.Generator().manual_seed(3)
    target = torch.rand(2, 3, 8, 8, generator=g)
    image = target.clone()
    image[0, :, :2, :] = 1 - image[0, :, :2, :]  # 16 pixels recoloured
    mask = torch.ones(2, 1, 8, 8)
    mask[1] = 0  # empty -> 1.0
    # Reference count with skimage's CIE76 Delta-E.
    de = color.deltaE_cie76(
        color.rgb2lab(image[0].permute(1, 2, 0).double().numpy()),
        color.rgb2lab(target[0].permute(1, 2, 0).double().numpy()),
    )
    expected = float((de < 10.0).mean())
    assert expected < 1.0
    out = color_accuracy(image, target, mask)
    torch.testing.assert_close(out, torch.tensor([expected, 1.0]))
    # Only the mask matters: judging just the untouched rows gives 1.
    rows = torch.zeros(2, 1, 8, 8)
    rows[:, :, 4:, :] = 1
    torch.testing.assert_close(color_accuracy(image, target, rows), torch.ones(2))
    # A huge tolerance accepts everything, a tiny one only exact matches.
    torch.testing.assert_close(color_accuracy(image, target, mask, tol=1e3), torch.ones(2))
    assert color_accuracy(image, target, mask, tol=1e-6)[0] == pytest.approx(48 / 64)


def test_lab_accuracy_equals_color_accuracy_on_converted_images():
    g = torch.Generator().manual_seed(4)
    image, target = torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 3, 8, 8, generator=g)
    target[0] = image[0]
    mask = (torch.rand(3, 1, 8, 8, generator=g) > 0.5).float()
    mask[2] = 0
    expected = color_accuracy(image, target, mask, tol=25.0)
    got = lab_accuracy(rgb_to_lab(image), rgb_to_lab(target), mask, tol=25.0)
    torch.testing.assert_close(got, expected)
    assert got[0] == 1.0 and got[2] == 1.0 and 0 < got[1] < 1


def test_changed_mask_threshold_is_strict():
    before = torch.zeros(1, 3, 2, 2)
    after = before.clone()
    after[0, 1, 0, 0] = 0.2  # one channel changes a lot -> changed
    after[0, :, 0, 1] = 0.05  # exactly at threshold -> unchanged
    after[0, 2, 1, 1] = -0.06  # negative change counts too
    out = changed_mask(before, after, threshold=0.05)
    assert out.shape == (1, 1, 2, 2) and out.dtype == torch.float32
    torch.testing.assert_close(out[0, 0], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.rand(3, 16, 16), torch.rand(3, 16, 16), r"\(3, 16, 16\)"),
        (torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16), r"\(1, 4, 16, 16\)"),
        (torch.rand(1, 3, 16, 16), torch.rand(2, 3, 16, 16), r"same shape.*\(2, 3, 16, 16\)"),
    ],
)
def test_bad_shapes_raise_with_shape(x, y, match):
    for fn in (ssim, psnr, changed_mask):
        with pytest.raises(ValueError, match=match):
            fn(x, y)


def test_bad_arguments_raise():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"mask must have shape \(1, 1, 16, 16\)"):
        ssim(x, x, mask=torch.ones(1, 3, 16, 16))
    with pytest.raises(ValueError, match="win_size"):
        ssim(x, x, win_size=4)
    with pytest.raises(ValueError, match="smaller than win_size"):
        ssim(x[..., :5, :5], x[..., :5, :5])
    with pytest.raises(TypeError, match="floating-point"):
        psnr((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="pred must have shape"):
        mask_iou(torch.ones(1, 2, 4, 4), torch.ones(1, 2, 4, 4))
    with pytest.raises(ValueError, match="tol"):
        color_accuracy(x, x, torch.ones(1, 1, 16, 16), tol=0.0)
    # A float window and an infinite range used to fail deep inside (TypeError) or give NaN.
    with pytest.raises(ValueError, match=r"win_size must be an odd integer >= 3; got 7\.0"):
        ssim(x, x, win_size=7.0)
    with pytest.raises(ValueError, match="win_size must be an odd integer >= 3; got True"):
        ssim_map(x, x, win_size=True)
    for fn in (ssim, ssim_map, psnr):
        with pytest.raises(ValueError, match="data_range must be a finite number > 0; got inf"):
            fn(x, x, data_range=float("inf"))
    assert ssim(x, x, win_size=np.int64(5)).item() == pytest.approx(1.0)


# Window sizes and paddings max_pool2d accepts (padding <= win_size // 2), on maps whose
# sides are odd, even and exactly one window wide.
WINDOW_CASES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (5, 2), (7, 3), (7, 0)]


@pytest.mark.parametrize(("win_size", "padding"), WINDOW_CASES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_window_max_equals_max_pool2d_exactly(win_size, padding, channels_last):
    g = torch.Generator().manual_seed(win_size * 10 + padding)
    x = torch.randn(3, 5, 13, 8, generator=g)
    x[0, 1, 4, 2] = float("nan")  # NaN propagates through both
    x[1, 2] = 0.0  # ties
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = F.max_pool2d(x, win_size, stride=1, padding=padding)
    for slices in (True, False):
        got = metrics.window_max(x, win_size, padding=padding, slices=slices)
        assert got.shape == expected.shape
        assert torch.equal(got.isnan(), expected.isnan())
        assert torch.equal(got.nan_to_num(), expected.nan_to_num())
    assert metrics.window_max(x, win_size, padding=padding).data_ptr() != x.data_ptr()


def test_window_max_matches_scipy_maximum_filter():
    from scipy import ndimage

    x = np.random.default_rng(7).random((2, 3, 17, 11)).astype(np.float32)
    # scipy centres a 5x5 window on each pixel; -inf outside is max_pool2d's padding.
    full = ndimage.maximum_filter(x, size=(1, 1, 5, 5), mode="constant", cval=-np.inf)
    got = metrics.window_max(torch.from_numpy(x), 5, padding=2).numpy()
    np.testing.assert_array_equal(got, full)
    one = metrics.window_max(torch.from_numpy(x[1]), 5, padding=2)  # (C, H, W) as well
    np.testing.assert_array_equal(one.numpy(), full[1])
    valid = metrics.window_max(torch.from_numpy(x), 5).numpy()  # no padding: interior
    np.testing.assert_array_equal(valid, full[..., 2:-2, 2:-2])


@pytest.mark.parametrize(
    ("win_size", "padding", "shape", "match"),
    [
        (0, 0, (1, 1, 8, 8), "win_size must be an integer >= 1"),
        (2.5, 0, (1, 1, 8, 8), "win_size must be an integer >= 1"),
        (3, 2, (1, 1, 8, 8), r"padding must be an integer in \[0, win_size // 2 = 1\]"),
        (3, -1, (1, 1, 8, 8), "padding must be"),
        (5, 0, (1, 1, 4, 8), r"shape \(1, 1, 4, 8\) with padding 0 is smaller than the 5x5"),
        (3, 0, (8, 8), r"x must be \(C, H, W\) or \(B, C, H, W\).*got shape \(8, 8\)"),
        (3, 0, (1, 1, 1, 8, 8), r"got shape \(1, 1, 1, 8, 8\)"),
    ],
)
def test_window_max_refuses_bad_arguments(win_size, padding, shape, match):
    with pytest.raises(ValueError, match=match):
        metrics.window_max(torch.zeros(shape), win_size, padding=padding)
