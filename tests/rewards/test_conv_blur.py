"""The fused first layer of the shift-tolerant AlexNet against the package's two modules."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from unigen_sb3.rewards import conv_blur, perceptual
from unigen_sb3.rewards.conv_blur import ConvBlurDownsample
from unigen_sb3.rewards.perceptual.networks import WindowMaxPool2d

with perceptual._quiet():
    from stlpips_pytorch.models_lpf.downsample import Downsample


def _pair(seed: int = 0, out_channels: int = 16) -> tuple[nn.Conv2d, nn.Module]:
    torch.manual_seed(seed)
    conv = nn.Conv2d(3, out_channels, kernel_size=11, stride=1, padding=2)
    blur = Downsample(filt_size=3, stride=2, channels=out_channels, pad_more=True)
    return conv.eval(), blur.eval()


# Input sizes whose conv maps (size - 6) are even and odd along each axis, and the
# smallest one the blur's reflection padding accepts (9 -> map of 3).
SIZES = [(64, 64), (63, 63), (64, 63), (63, 64), (9, 9), (9, 10), (40, 97)]


@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_equals_conv_then_blur(height, width, channels_last):
    conv, blur = _pair()
    fused = ConvBlurDownsample(conv, blur)
    x = torch.randn(3, 3, height, width)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=fmt)
    with torch.no_grad():
        expected = blur(conv(x))
        got = fused(x)
    assert got.shape == expected.shape
    assert got.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert expected.abs().max() > 0.1  # not a comparison of near-zero maps


def test_fewer_multiply_adds_than_the_two_modules():
    conv, blur = _pair(out_channels=64)
    fused = ConvBlurDownsample(conv, blur)
    unfused = 58 * 58 * 64 * 3 * 11 * 11  # conv at stride 1 on 64x64 (the blur not counted)
    assert fused.multiply_adds(64, 64) == (28 * 28 * 13 * 13 + 2 * 28 * 12 * 13 + 12 * 12) * 192
    assert fused.multiply_adds(64, 64) < 0.4 * unfused
    with pytest.raises(ValueError, match="too small"):
        fused.multiply_adds(8, 64)


def test_too_small_input_raises_the_packages_error():
    conv, blur = _pair()
    fused = ConvBlurDownsample(conv, blur)
    x = torch.randn(1, 3, 8, 64)  # conv map of height 2: reflection padding of 2 fails
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        blur(conv(x))
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        fused(x)


def test_kernels_follow_dtype_and_autocast():
    conv, blur = _pair()
    fused = ConvBlurDownsample(conv, blur)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = fused(x)
        fused64 = copy.deepcopy(fused).double()  # kernels are buffers: they follow .double()
        assert fused64.k_inner.dtype == torch.float64
        torch.testing.assert_close(fused64(x.double()).float(), reference, atol=1e-5, rtol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fused(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, atol=0.05, rtol=0.02)


def test_other_configurations_are_refused():
    conv, blur = _pair()
    strided = nn.Conv2d(3, 16, kernel_size=11, stride=2, padding=2)
    with pytest.raises(ValueError, match=r"stride 1.*got stride=\(2, 2\)"):
        ConvBlurDownsample(strided, blur)
    with pytest.raises(ValueError, match=r"must be an nn\.Conv2d, got Linear"):
        ConvBlurDownsample(nn.Linear(3, 3), blur)  # type: ignore[arg-type]
    wide = Downsample(filt_size=5, stride=2, channels=16, pad_more=True)
    with pytest.raises(ValueError, match="filt_size=5"):
        ConvBlurDownsample(conv, wide)
    plain_pad = Downsample(filt_size=3, stride=2, channels=16)
    with pytest.raises(ValueError, match=r"pad_sizes=\[1, 1, 1, 1\]"):
        ConvBlurDownsample(conv, plain_pad)
    with pytest.raises(ValueError, match="16 channels"):
        ConvBlurDownsample(conv, Downsample(filt_size=3, stride=2, channels=8, pad_more=True))


def test_stlpips_network_runs_the_fused_layer_with_loaded_weights():
    pd = perceptual.PerceptualDistance("stlpips", device="cpu")
    first = pd.trunk.slice1[0]
    assert isinstance(first, ConvBlurDownsample)
    assert isinstance(pd.trunk.slice1[1], nn.Identity)
    # The conv's parameters are still registered (and were verified against the file),
    # and the fused kernels are derived from them, not from the random initial weights.
    assert any(name.endswith("slice1.0.conv.weight") for name, _ in pd.named_parameters())
    binomial = torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64)
    expected = conv_blur._compose(first.conv.weight.detach().double(), binomial, binomial)
    torch.testing.assert_close(first.k_inner, expected.float())


def test_stlpips_trunk_pools_are_window_max_with_the_same_features():
    pd = perceptual.PerceptualDistance("stlpips", device="cpu")
    pools = [m for m in pd.trunk.modules() if isinstance(m, WindowMaxPool2d)]
    assert len(pools) == 2
    assert not any(isinstance(m, nn.MaxPool2d) for m in pd.trunk.modules())
    x = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    swapped = pd.features(x)
    for sl in (pd.trunk.slice2, pd.trunk.slice3):  # put the package's pools back
        sl[0] = nn.MaxPool2d(kernel_size=3, stride=1)
    for a, b in zip(swapped, pd.features(x), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(3, stride=2),
        nn.MaxPool2d(3, stride=1, dilation=2),
        nn.MaxPool2d(3, stride=1, ceil_mode=True),
        nn.MaxPool2d(3, stride=1, return_indices=True),
        nn.MaxPool2d((3, 5), stride=1),
        nn.MaxPool2d(3, stride=1, padding=(1, 0)),
        nn.AvgPool2d(3, stride=1),
    ],
)
def test_window_max_replaces_only_square_stride_one_max_pools(pool):
    assert WindowMaxPool2d.replacing(pool) is None


def test_window_max_pool_module_matches_the_pool_it_replaces():
    pool = nn.MaxPool2d(5, stride=(1, 1), padding=2)
    swap = WindowMaxPool2d.replacing(pool)
    assert swap is not None and "kernel_size=5, stride=1, padding=2" in repr(swap)
    x = torch.randn(2, 4, 9, 12, generator=torch.Generator().manual_seed(4))
    assert torch.equal(swap(x), pool(x))
