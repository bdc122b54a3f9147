"""Batched pixel-level image metrics: SSIM, PSNR, mask IoU, CIELAB colour accuracy.

Every function takes torch tensors on any device and works on the whole batch at
once (no Python loop over batch elements). Images are ``(B, 3, H, W)`` float
tensors in ``[0, 1]``; masks are ``(B, 1, H, W)`` float in ``{0, 1}`` or bool.
Per-image results come back as ``(B,)`` float tensors on the input's device.

The reference implementations are scikit-image's: :func:`ssim` matches
``skimage.metrics.structural_similarity(a, b, channel_axis=0, data_range=1.0,
win_size=7)``, :func:`psnr` matches ``skimage.metrics.peak_signal_noise_ratio``
and :func:`rgb_to_lab` matches ``skimage.color.rgb2lab`` (the tests check this).

Example::

    >>> import torch
    >>> x = torch.rand(2, 3, 32, 32)
    >>> ssim(x, x)
    tensor([1., 1.])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from unigen_sb3.utils import is_int

__all__ = [
    "changed_mask",
    "color_accuracy",
    "lab_accuracy",
    "mask_iou",
    "psnr",
    "rgb_to_lab",
    "ssim",
    "ssim_map",
    "window_max",
]

# SSIM stabilising constants of Wang et al. (2004), as used by scikit-image.
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03

# sRGB (D65) -> XYZ matrix and the D65 / 2-degree reference white, the values
# scikit-image uses, so that rgb_to_lab agrees with skimage.color.rgb2lab.
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)


# --------------------------------------------------------------------------- validation


def _describe(t: object) -> str:
    if isinstance(t, torch.Tensor):
        return f"tensor of shape {tuple(t.shape)} and dtype {t.dtype}"
    return f"object of type {type(t).__name__}"


def _check_image(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, 3, H, W); got {_describe(x)}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W); got {_describe(x)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got {_describe(x)}")
    return x


def _check_pair(x: object, y: object, names: tuple[str, str] = ("x", "y")) -> None:
    a = _check_image(x, names[0])
    b = _check_image(y, names[1])
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape; "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _check_mask(mask: object, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """Validate a ``(B, 1, H, W)`` mask against image ``like`` and return it as a bool tensor."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (B, 1, H, W); got {_describe(mask)}"
        )
    expected = (like.shape[0], 1, like.shape[2], like.shape[3])
    if tuple(mask.shape) != expected:
        raise ValueError(f"{name} must have shape {expected} (B, 1, H, W); got {_describe(mask)}")
    if mask.dtype == torch.bool:
        return mask.to(like.device)
    # Masks are {0, 1}; 0.5 splits them robustly even after interpolation.
    return (mask > 0.5).to(like.device)


def _check_positive(value: float, name: str) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")


# --------------------------------------------------------------------------- SSIM


def _symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims by mirroring including the edge pixel (``d c b a | a b c d``).

    This is scipy.ndimage's ``mode="reflect"`` (numpy's ``"symmetric"``), which
    scikit-image's uniform filter uses; torch's ``"reflect"`` skips the edge pixel.
    """
    if pad == 0:
        return x
    x = torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], dim=-1)
    return torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)


_CPU_SSIM_CHUNK = 8
"""Images per SSIM pass on a CPU, so that a chunk's moment maps stay in the CPU caches
(measured on 2 cores, the box filter of 64 images' moments at 64x64: 30 ms as one
``avg_pool2d`` pass, 5 ms as slice sums over chunks of 8)."""


def _box_mean(x: torch.Tensor, win_size: int, *, slices: bool | None = None) -> torch.Tensor:
    """Mean over every ``win_size`` x ``win_size`` window of the last two dims ("valid" output).

    Separable: a row pass then a column pass (2k instead of k*k reads per pixel; the same
    mean up to float rounding). On a CPU each pass is a sum of shifted slices, several
    times faster there than ``avg_pool2d``; elsewhere ``avg_pool2d`` (two kernel launches
    instead of 2k). ``slices`` forces one way (default: by device).
    """
    if not (x.device.type == "cpu" if slices is None else slices):
        rows = F.avg_pool2d(x, kernel_size=(1, win_size), stride=1)
        return F.avg_pool2d(rows, kernel_size=(win_size, 1), stride=1)
    return _window_slices(x, win_size, torch.add) / float(win_size * win_size)


def _window_slices(
    x: torch.Tensor, win_size: int, combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``combine`` folded over every ``win_size`` x ``win_size`` window of the last two dims
    ("valid" output): first along each row, then along each column, each pass a running
    ``combine`` of shifted slices (``torch.add``: window sums; ``torch.maximum``: maxima)."""
    w = x.shape[-1] - win_size + 1
    rows = x[..., 0:w]
    for k in range(1, win_size):
        rows = combine(rows, x[..., k : k + w])
    h = x.shape[-2] - win_size + 1
    out = rows[..., 0:h, :]
    for k in range(1, win_size):
        out = combine(out, rows[..., k : k + h, :])
    return out


def window_max(
    x: torch.Tensor, win_size: int, *, padding: int = 0, slices: bool | None = None
) -> torch.Tensor:
    """Maximum over every ``win_size`` x ``win_size`` window of the last two dims, stride 1.

    The values of ``F.max_pool2d(x, win_size, stride=1, padding=padding)`` (padding counts
    as ``-inf``, NaN propagates), exactly: a maximum does not round, so taking it over the
    rows and then the columns changes nothing. On a CPU each pass is a running
    ``torch.maximum`` of shifted slices: ``max_pool2d`` there also writes an int64 index per
    output and took 3-10x longer (a 7x7 window over 12 masks of 64x64: 1.1 ms against
    0.12 ms; 3x3 over 8 maps of 64x30x30: 0.62 against 0.25 ms). Elsewhere it calls
    ``max_pool2d`` (two kernel launches instead of ``2 * win_size``). ``slices`` forces one
    way (default: by device).

    :param x: ``(C, H, W)`` or ``(B, C, H, W)``.
    :param win_size: the window's side, an int >= 1.
    :param padding: ``-inf`` rows and columns added on each side, an int in
        ``[0, win_size // 2]`` (as ``max_pool2d`` accepts).
    :raises ValueError: for a bad ``win_size``, ``padding`` or shape, or windows larger than
        the padded input.
    """
    if not is_int(win_size) or win_size < 1:
        raise ValueError(f"win_size must be an integer >= 1; got {win_size!r}")
    if not is_int(padding) or not 0 <= padding <= win_size // 2:
        raise ValueError(
            f"padding must be an integer in [0, win_size // 2 = {win_size // 2}]; got {padding!r}"
        )
    if x.dim() not in (3, 4):
        raise ValueError(
            f"x must be (C, H, W) or (B, C, H, W), as max_pool2d takes it; got shape "
            f"{tuple(x.shape)}"
        )
    if min(x.shape[-2:]) + 2 * padding < win_size:
        raise ValueError(
            f"x of shape {tuple(x.shape)} with padding {padding} is smaller than the "
            f"{win_size}x{win_size} window"
        )
    if not (x.device.type == "cpu" if slices is None else slices):
        return F.max_pool2d(x, win_size, stride=1, padding=padding)
    if win_size == 1:
        return x.clone()
    if padding:
        x = F.pad(x, (padding, padding, padding, padding), value=float("-inf"))
    return _window_slices(x, win_size, torch.maximum)


def _check_ssim_args(x: torch.Tensor, data_range: float, win_size: int) -> None:
    if not is_int(win_size) or win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3; got {win_size!r}")
    h, w = x.shape[-2:]
    if h < win_size or w < win_size:
        raise ValueError(
            f"images of size {h}x{w} are smaller than win_size={win_size}; "
            "use a smaller odd win_size or larger images"
        )
    _check_positive(data_range, "data_range")


def _ssim_slices(x: torch.Tensor) -> list[slice]:
    """The batch in chunks of :data:`_CPU_SSIM_CHUNK` on a CPU; whole elsewhere."""
    n = x.shape[0]
    if x.device.type != "cpu" or n <= _CPU_SSIM_CHUNK:
        return [slice(0, n)]
    return [slice(i, i + _CPU_SSIM_CHUNK) for i in range(0, n, _CPU_SSIM_CHUNK)]


def _ssim_channel_map(
    x: torch.Tensor, y: torch.Tensor, data_range: float, win_size: int
) -> torch.Tensor:
    """Per-channel SSIM map ``(B, C, H, W)`` exactly as scikit-image computes it."""
    _check_ssim_args(x, data_range, win_size)
    pad = (win_size - 1) // 2
    parts = [_ssim_chunk(x[sl], y[sl], data_range, win_size, pad) for sl in _ssim_slices(x)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _ssim_chunk(
    x: torch.Tensor, y: torch.Tensor, data_range: float, win_size: int, pad: int
) -> torch.Tensor:
    """Per-channel SSIM map of the images padded by ``pad`` (0: only the padding-free area,
    ``(H - win_size + 1, W - win_size + 1)``; ``(win_size - 1) // 2``: the full size)."""
    # Work in at least float32 (half precision loses the variance terms).
    dtype = torch.promote_types(x.dtype, torch.float32)
    x = x.to(dtype)
    y = y.to(dtype)
    c = x.shape[1]
    # Five moments stacked along the channel axis -> one filtering pass.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    means = _box_mean(_symmetric_pad(stack, pad), win_size)
    ux, uy, uxx, uyy, uxy = means.split(c, dim=1)
    # Sample (unbiased) covariance, as skimage's use_sample_covariance=True.
    n = win_size * win_size
    cov_norm = n / (n - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, win_size: int = 7
) -> torch.Tensor:
    """Channel-averaged local SSIM map.

    Equals the mean over channels of scikit-image's ``full=True`` map
    (uniform ``win_size`` window, symmetric border padding). Only the pixels at
    least ``(win_size - 1) // 2`` away from the border are free of padding
    effects; :func:`ssim` averages over exactly those.

    :param x: images ``(B, 3, H, W)``.
    :param y: images of the same shape.
    :param data_range: the value range of the images (``1.0`` for ``[0, 1]``).
    :param win_size: odd side length of the uniform window.
    :return: ``(B, 1, H, W)`` SSIM map in ``[-1, 1]``.
    :raises ValueError: on mismatched shapes, an even ``win_size`` or images smaller
        than the window.
    """
    _check_pair(x, y)
    return _ssim_channel_map(x, y, data_range, win_size).mean(dim=1, keepdim=True)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    data_range: float = 1.0,
    win_size: int = 7,
    empty: float = 1.0,
) -> torch.Tensor:
    """Mean structural similarity per image, optionally restricted to a region.

    Without ``mask`` this is scikit-image's
    ``structural_similarity(a, b, channel_axis=0, data_range=data_range,
    win_size=win_size)``: the SSIM map with a uniform window, K1=0.01, K2=0.03
    and sample covariance, averaged after cropping ``(win_size - 1) // 2`` pixels
    from every border, averaged over channels.

    With ``mask`` it is the region SSIM: the mean of the channel-averaged map
    (:func:`ssim_map`) over the mask pixels that lie inside that same cropped,
    padding-free area. An image whose region is empty there gets ``empty``.

    :param x: images ``(B, 3, H, W)``.
    :param y: images of the same shape.
    :param mask: optional region ``(B, 1, H, W)``, bool or float in ``{0, 1}``
        (values > 0.5 count as inside).
    :param data_range: the value range of the images (``1.0`` for ``[0, 1]``).
    :param win_size: odd side length of the uniform window.
    :param empty: value for an empty region; the default ``1.0`` reads "nothing to
        compare, so nothing was violated" (right for a preservation reward).
    :return: ``(B,)`` SSIM values.
    :raises ValueError: on bad shapes, an even ``win_size`` or images smaller than
        the window.
    """
    _check_pair(x, y)
    _check_ssim_args(x, data_range, win_size)
    pad = (win_size - 1) // 2
    h, w = x.shape[-2:]
    m = None if mask is None else _check_mask(mask, x)[:, 0, pad : h - pad, pad : w - pad]
    if m is not None and x.device.type == "cpu":
        # An image whose region is empty gets ``empty`` whatever its pixels: on a CPU its
        # map is not computed at all (generation tasks' preservation and temporal SSIM).
        # Elsewhere every row is computed: picking rows would cost a device sync.
        rows = torch.nonzero(m.flatten(1).any(dim=1)).flatten()
        if rows.numel() < x.shape[0]:
            out = torch.full((x.shape[0],), empty, dtype=x.dtype)
            if rows.numel():
                out[rows] = _region_ssim(x[rows], y[rows], m[rows], data_range, win_size, empty)
            return out
    return _region_ssim(x, y, m, data_range, win_size, empty)


def _region_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    m: torch.Tensor | None,
    data_range: float,
    win_size: int,
    empty: float,
) -> torch.Tensor:
    """:func:`ssim` of checked images, ``m`` the mask cropped to the padding-free area."""
    values = []
    for sl in _ssim_slices(x):
        # Only the padding-free area is averaged, so only it is computed (pad=0): the same
        # window sums as the full map's interior, without padding or cropping.
        valid = _ssim_chunk(x[sl], y[sl], data_range, win_size, 0).mean(dim=1)
        if m is None:
            values.append(valid.mean(dim=(1, 2)))
            continue
        region = m[sl].to(valid.dtype)
        count = region.sum(dim=(1, 2))
        total = (valid * region).sum(dim=(1, 2))
        values.append(
            torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, empty))
        )
    return (values[0] if len(values) == 1 else torch.cat(values)).to(x.dtype)


# --------------------------------------------------------------------------- PSNR, IoU


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image.

    Matches ``skimage.metrics.peak_signal_noise_ratio(a, b, data_range=data_range)``:
    ``10 * log10(data_range**2 / mse)`` with the MSE over all channels and pixels.
    Identical images give ``inf``, as in scikit-image.

    :param x: images ``(B, 3, H, W)``.
    :param y: images of the same shape.
    :param data_range: the value range of the images.
    :return: ``(B,)`` PSNR values (``inf`` where the images are equal).
    :raises ValueError: on mismatched shapes or ``data_range <= 0``.
    """
    _check_pair(x, y)
    _check_positive(data_range, "data_range")
    dtype = torch.promote_types(x.dtype, torch.float32)
    diff = x.to(dtype) - y.to(dtype)
    mse = diff.square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def mask_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of two masks per image.

    Both masks are thresholded at 0.5 (bool masks are used as they are). When
    both are empty the IoU is defined as ``1.0``: the prediction matches the
    (empty) target exactly.

    :param pred: predicted masks ``(B, 1, H, W)``.
    :param target: target masks of the same shape.
    :return: ``(B,)`` IoU in ``[0, 1]``.
    :raises ValueError: if the masks are not ``(B, 1, H, W)`` of the same shape.
    """
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (B, 1, H, W); got {_describe(t)}")
        if t.dim() != 4 or t.shape[1] != 1:
            raise ValueError(f"{name} must have shape (B, 1, H, W); got {_describe(t)}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape; "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    p = pred if pred.dtype == torch.bool else pred > 0.5
    t = target if target.dtype == torch.bool else target > 0.5
    t = t.to(p.device)
    inter = (p & t).flatten(1).sum(dim=1).float()
    union = (p | t).flatten(1).sum(dim=1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


# --------------------------------------------------------------------------- colour


_CPU_LAB_CHUNK = 16
"""Images per CIELAB conversion pass on a CPU, so that its temporaries stay in the CPU
caches (measured on 2 cores at 64x64: 256 images in 27.5 ms as one pass, 12.5 ms in chunks
of 16; 64 images in 3.7 and 3.2 ms). Every operation is per pixel, and every pass is laid out
so that each value takes the vectorised path (:func:`_lab_row`), so the chunks give the bits
of one pass."""

_CPU_LAB_ALIGN = 64
"""On a CPU each image plane is converted as a row of a multiple of this many values (the
pixels, then zeros; see :func:`_lab_row`)."""

_CPU_LAB_BLOCK = 32
"""Values per block of ATen's vectorised elementwise loop (two 16-float AVX-512 registers; a
multiple of the 16 of AVX2)."""

_ATEN_GRAIN = 32768
"""ATen's ``GRAIN_SIZE``: an elementwise op on more values than this is split among
``min(threads, ceil(values / GRAIN))`` threads in ranges of ``ceil(values / threads)``."""


def _lab_row(pixels: int, images: int, threads: int) -> int:
    """Values per image plane in a CPU conversion pass of ``images`` images of ``pixels``
    pixels with ``threads`` threads: the smallest multiple of :data:`_CPU_LAB_ALIGN` from
    ``pixels`` up with which every thread's range of the pass holds whole vector blocks.

    Why: ATen's elementwise loops run blocks of :data:`_CPU_LAB_BLOCK` values and end each
    thread's range with a scalar loop, and ``pow``'s scalar and vector forms differ in the
    last bit. Where a range ends inside a block, which pixels take the scalar loop depends on
    where an image sits in the batch: at 36x36 (1,296 pixels) an image's CIELAB differed from
    its conversion alone by up to 3e-5, and with 5 or more threads so did 11-13 64x64 images
    converted together. With every range made of whole blocks, every value takes the vector
    path, in any batch. Sizes whose pixel count is a multiple of 64 (32, 48, 64, ...) need no
    padding with up to 4 threads.
    """
    row = -(-pixels // _CPU_LAB_ALIGN) * _CPU_LAB_ALIGN
    while True:
        values = images * 3 * row
        tasks = max(1, min(threads, -(-values // _ATEN_GRAIN)))
        if (values // _CPU_LAB_BLOCK) % tasks == 0:
            return row
        row += _CPU_LAB_ALIGN


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """Convert sRGB images (D65) in ``[0, 1]`` to CIELAB.

    The same formulas and constants as ``skimage.color.rgb2lab`` (illuminant D65,
    2-degree observer): L in ``[0, 100]``, a and b roughly in ``[-128, 127]``.
    On a CPU a large batch is converted :data:`_CPU_LAB_CHUNK` images at a time, and an
    image's values do not depend on the batch it is converted in (see :func:`_lab_row`;
    the tests run 1, 2, 5 and 8 threads, images of up to 224x224).

    :param x: images ``(B, 3, H, W)`` in ``[0, 1]``.
    :return: ``(B, 3, H, W)`` with channels (L, a, b).
    :raises ValueError: if ``x`` is not ``(B, 3, H, W)``.
    """
    _check_image(x, "x")
    dtype = torch.promote_types(x.dtype, torch.float32)
    n = x.shape[0]
    if x.device.type != "cpu":
        return _lab_formulas(x.to(dtype))
    if n <= _CPU_LAB_CHUNK:
        return _lab_pass(x, dtype)
    out = torch.empty(x.shape, dtype=dtype)
    for lo in range(0, n, _CPU_LAB_CHUNK):
        out[lo : lo + _CPU_LAB_CHUNK] = _lab_pass(x[lo : lo + _CPU_LAB_CHUNK], dtype)
    return out


def _lab_pass(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """:func:`rgb_to_lab` of checked images on a CPU in one pass, computed in ``dtype``,
    each image plane laid out as a row of :func:`_lab_row` values."""
    rgb = x.to(dtype)
    b, c, h, w = rgb.shape
    row = _lab_row(h * w, b, torch.get_num_threads())
    if row == h * w:
        return _lab_formulas(rgb)
    planes = rgb.new_zeros((b, c, 1, row))
    planes[:, :, 0, : h * w] = rgb.reshape(b, c, h * w)
    return _lab_formulas(planes)[:, :, 0, : h * w].reshape(b, c, h, w)


def _lab_formulas(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` (float) -> CIELAB, elementwise but for the 3x3 colour matrix."""
    dtype = rgb.dtype
    # sRGB companding -> linear RGB.
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)
    m = torch.tensor(_XYZ_FROM_RGB, dtype=dtype, device=rgb.device)
    white = torch.tensor(_D65_WHITE, dtype=dtype, device=rgb.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, linear) / white.view(1, 3, 1, 1)
    # Cube root above the CIE threshold, the linear segment below it. The clamp
    # only keeps pow away from negative bases in the branch torch.where discards.
    f = torch.where(
        xyz > 0.008856, xyz.clamp_min(0.008856).pow(1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0
    )
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def color_accuracy(
    image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, tol: float = 10.0
) -> torch.Tensor:
    """Fraction of mask pixels whose colour matches the target (CIE76 Delta-E < ``tol``).

    This is the attribute accuracy of an edit: ``target`` is a rendering of the
    requested attributes, so agreeing colours inside the edited region mean the
    attribute was achieved. Delta-E is the Euclidean distance in CIELAB
    (:func:`rgb_to_lab`); about 2.3 is a just-noticeable difference, 10 a clearly
    similar colour.

    :param image: images ``(B, 3, H, W)`` in ``[0, 1]``.
    :param target: reference images of the same shape.
    :param mask: region to judge ``(B, 1, H, W)``; an empty mask gives ``1.0``
        (no pixel was asked for, so none failed).
    :param tol: Delta-E threshold (exclusive), > 0.
    :return: ``(B,)`` fraction in ``[0, 1]``.
    :raises ValueError: on bad shapes or ``tol <= 0``.
    """
    _check_pair(image, target, ("image", "target"))
    _check_positive(tol, "tol")
    return lab_accuracy(rgb_to_lab(image), rgb_to_lab(target), _check_mask(mask, image), tol=tol)


def lab_accuracy(
    image_lab: torch.Tensor, target_lab: torch.Tensor, mask: torch.Tensor, *, tol: float
) -> torch.Tensor:
    """:func:`color_accuracy` of images already converted with :func:`rgb_to_lab`.

    For callers that reuse the conversions (a fixed target's, once per episode); the
    inputs are not checked again.

    :param image_lab: ``(B, 3, H, W)`` CIELAB images.
    :param target_lab: their references, same shape.
    :param mask: ``(B, 1, H, W)`` bool region (or float, values > 0.5 inside).
    :param tol: Delta-E threshold (exclusive).
    :return: ``(B,)`` fraction in ``[0, 1]``; ``1.0`` for an empty mask.
    """
    m = (mask if mask.dtype == torch.bool else mask > 0.5)[:, 0]
    delta_e = (image_lab - target_lab).square().sum(dim=1).sqrt()  # (B, H, W)
    good = ((delta_e < tol) & m).flatten(1).sum(dim=1).float()
    count = m.flatten(1).sum(dim=1).float()
    return torch.where(count > 0, good / count.clamp_min(1), torch.ones_like(count))


def changed_mask(
    before: torch.Tensor, after: torch.Tensor, *, threshold: float = 0.05
) -> torch.Tensor:
    """Mask of the pixels an edit changed.

    A pixel counts as changed when the largest absolute difference over its
    channels exceeds ``threshold``.

    :param before: images ``(B, 3, H, W)`` before the edit.
    :param after: images of the same shape after the edit.
    :param threshold: change threshold in image units, >= 0.
    :return: ``(B, 1, H, W)`` float mask in ``{0, 1}`` (dtype of ``before``).
    :raises ValueError: on mismatched shapes or a negative threshold.
    """
    _check_pair(before, after, ("before", "after"))
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0; got {threshold!r}")
    diff = (after - before).abs().amax(dim=1, keepdim=True)
    return (diff > threshold).to(before.dtype)
