"""The shift-tolerant AlexNet's first convolution and blur-downsample as one strided convolution.

The ``stlpips`` network starts with an 11x11 convolution at stride 1 followed, before any
non-linearity, by an anti-aliasing blur-downsample: reflection padding by 2, a 3x3 binomial
blur (``[1, 2, 1] / 4`` in each direction) and stride 2. Both are linear, so away from the
borders the pair equals one 13x13 convolution (the blur convolved with each kernel) at
stride 2, which does a third of the multiply-adds and never builds the full-resolution map.
The reflection padding only touches the outermost output row and column on each side:

- the first output row equals the second, because reflecting ``y[2], y[1], y[0]`` under a
  symmetric filter gives the same sum as ``y[0], y[1], y[2]``;
- the last output row is ``(y[L-2] + y[L-1]) / 2`` when the map height ``L`` is even (a
  12-tap kernel on one strip of input rows) and equals the row before it when ``L`` is odd;

and the same along columns. :class:`ConvBlurDownsample` computes each part that way, so its
output equals ``blur(conv(x))`` up to float rounding (about 1e-6 relative).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBlurDownsample"]

_BINOMIAL = (0.25, 0.5, 0.25)
# Reflection padding of the blur and its stride: the configuration the identities above use.
_BLUR_PAD = [2, 2, 2, 2]
_BLUR_STRIDE = 2


def _compose(weight: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Full 2-D convolution of every ``weight[o, i]`` with ``outer(rows, cols)``, in float64.

    :return: ``(O, I, kh + len(rows) - 1, kw + len(cols) - 1)``: the kernel that applies
        ``weight`` and then the filter (both as cross-correlations) in one pass.
    """
    o, i, kh, kw = weight.shape
    filt = torch.outer(rows, cols)[None, None]
    full = F.conv_transpose2d(weight.reshape(o * i, 1, kh, kw), filt)
    return full.reshape(o, i, *full.shape[-2:])


def _check_pair(conv: nn.Module, blur: nn.Module) -> None:
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
    if (
        conv.stride != (1, 1)
        or conv.dilation != (1, 1)
        or conv.groups != 1
        or conv.padding_mode != "zeros"
        or isinstance(conv.padding, str)
    ):
        raise ValueError(
            "conv must have stride 1, dilation 1, groups 1 and integer zero padding; got "
            f"stride={conv.stride}, dilation={conv.dilation}, groups={conv.groups}, "
            f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}"
        )
    filt = getattr(blur, "filt", None)
    binomial = torch.tensor(_BINOMIAL, dtype=torch.float64)
    ok = (
        getattr(blur, "filt_size", None) == 3
        and getattr(blur, "stride", None) == _BLUR_STRIDE
        and list(getattr(blur, "pad_sizes", [])) == _BLUR_PAD
        and isinstance(getattr(blur, "pad", None), nn.ReflectionPad2d)
        and isinstance(filt, torch.Tensor)
        and filt.shape == (conv.out_channels, 1, 3, 3)
        and torch.allclose(
            filt.double(), torch.outer(binomial, binomial).expand(conv.out_channels, 1, 3, 3)
        )
    )
    if not ok:
        raise ValueError(
            "blur must be stlpips' Downsample with filt_size=3, stride=2, reflection padding "
            f"{_BLUR_PAD} and the [1, 2, 1]/4 binomial filter on conv's {conv.out_channels} "
            f"channels; got {blur!r} (filt_size={getattr(blur, 'filt_size', None)}, "
            f"stride={getattr(blur, 'stride', None)}, "
            f"pad_sizes={getattr(blur, 'pad_sizes', None)})"
        )


def _layout(*tensors: torch.Tensor) -> torch.memory_format:
    """Channels-last if the first tensor whose layout is unambiguous has it, else default."""
    for t in tensors:
        cl, plain = t.is_contiguous(memory_format=torch.channels_last), t.is_contiguous()
        if cl != plain:
            return torch.channels_last if cl else torch.contiguous_format
    return torch.contiguous_format


class ConvBlurDownsample(nn.Module):
    """``blur(conv(x))`` for a stride-1 ``conv`` and stlpips' 3x3 blur-downsample, fused.

    See the module docstring for the identities used. The fused kernels are derived from
    ``conv``'s weights when this module is built: load the weights first. ``conv`` and
    ``blur`` stay submodules (their parameters still show in ``named_parameters``), and
    inputs too small for the blur's reflection padding are passed to them unchanged, so
    they raise the package's own error.

    :param conv: an ``nn.Conv2d`` with stride 1, dilation 1, groups 1, zero padding.
    :param blur: the ``stlpips_pytorch`` ``Downsample`` that follows it (filter size 3,
        stride 2, reflection padding 2).
    :raises ValueError: if either module is configured differently.
    """

    # The fused kernels (buffers, set in __init__): the interior, the last row and column
    # of an even-sized map, and their corner.
    k_inner: torch.Tensor
    k_last_row: torch.Tensor
    k_last_col: torch.Tensor
    k_corner: torch.Tensor

    def __init__(self, conv: nn.Conv2d, blur: nn.Module) -> None:
        super().__init__()
        _check_pair(conv, blur)
        self.conv = conv
        self.blur = blur
        padding = cast(tuple[int, int], conv.padding)  # not a string: checked above
        self._padding = (int(padding[0]), int(padding[1]))
        weight = conv.weight.detach().double()
        binomial = weight.new_tensor(_BINOMIAL)  # float64, on the weights' device
        # The last output row/column of an even-sized map: (y[L-2] + y[L-1]) / 2.
        last = weight.new_tensor((_BINOMIAL[0] + _BINOMIAL[2], _BINOMIAL[1]))
        dtype = conv.weight.dtype
        for name, rows, cols in (
            ("k_inner", binomial, binomial),
            ("k_last_row", last, binomial),
            ("k_last_col", binomial, last),
            ("k_corner", last, last),
        ):
            kernel = _compose(weight, rows, cols).to(dtype)
            self.register_buffer(name, kernel, persistent=False)

    def conv_map_size(self, height: int, width: int) -> tuple[int, int]:
        """Height and width of ``conv``'s output for an input of this size."""
        (kh, kw), (ph, pw) = self.conv.kernel_size, self._padding
        return height + 2 * ph - kh + 1, width + 2 * pw - kw + 1

    def multiply_adds(self, height: int, width: int) -> int:
        """Multiply-adds per image of the fused convolutions (bias and copies not counted)."""
        lh, lw = self.conv_map_size(height, width)
        if lh < 3 or lw < 3:
            raise ValueError(f"input {height}x{width} is too small for the blur's padding")
        zh, zw = (lh - 1) // 2, (lw - 1) // 2
        channel_pairs = self.conv.out_channels * self.conv.in_channels
        total = zh * zw * self.k_inner[0, 0].numel()
        if lh % 2 == 0:
            total += zw * self.k_last_row[0, 0].numel()
        if lw % 2 == 0:
            total += zh * self.k_last_col[0, 0].numel()
        if lh % 2 == 0 and lw % 2 == 0:
            total += self.k_corner[0, 0].numel()
        return total * channel_pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``blur(conv(x))`` for ``x`` of shape ``(N, C_in, H, W)``."""
        lh, lw = self.conv_map_size(x.shape[-2], x.shape[-1])
        if lh < 3 or lw < 3:
            return self.blur(self.conv(x))  # too small: let the package's modules raise
        ph, pw = self._padding
        bias = self.conv.bias
        xp = F.pad(x, (pw, pw, ph, ph))
        inner = F.conv2d(xp, self.k_inner, bias, stride=_BLUR_STRIDE)
        zh, zw = inner.shape[-2:]
        mh, mw = zh + 2, zw + 2
        fmt = _layout(inner, x)
        out = torch.empty(
            (x.shape[0], inner.shape[1], mh, mw),
            dtype=inner.dtype,
            device=inner.device,
            memory_format=fmt,
        )
        out[:, :, 1 : mh - 1, 1 : mw - 1] = inner
        # Last column (rows 1 .. mh-2).
        if lw % 2 == 0:
            strip = xp[..., lw - 2 :]
            out[:, :, 1 : mh - 1, mw - 1 :] = F.conv2d(
                strip, self.k_last_col, bias, stride=(_BLUR_STRIDE, 1)
            )
        else:
            out[:, :, 1 : mh - 1, mw - 1] = out[:, :, 1 : mh - 1, mw - 2]
        # Last row (columns 1 .. mw-1).
        if lh % 2 == 0:
            strip = xp[:, :, lh - 2 :, :]
            out[:, :, mh - 1 :, 1 : mw - 1] = F.conv2d(
                strip, self.k_last_row, bias, stride=(1, _BLUR_STRIDE)
            )
            if lw % 2 == 0:
                corner = xp[:, :, lh - 2 :, lw - 2 :]
                out[:, :, mh - 1 :, mw - 1 :] = F.conv2d(corner, self.k_corner, bias)
            else:
                out[:, :, mh - 1, mw - 1] = out[:, :, mh - 1, mw - 2]
        else:
            out[:, :, mh - 1, 1:] = out[:, :, mh - 2, 1:]
        # First column and first row repeat the second ones.
        out[:, :, 1:, 0] = out[:, :, 1:, 1]
        out[:, :, 0, :] = out[:, :, 1, :]
        return out
