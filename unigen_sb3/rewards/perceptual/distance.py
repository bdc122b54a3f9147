"""The LPIPS perceptual distance with reusable per-image features.

:class:`PerceptualDistance` wraps a trained LPIPS network (AlexNet trunk, built by
:mod:`~unigen_sb3.rewards.perceptual.networks`) and splits its computation into
:meth:`~PerceptualDistance.features` (one network forward per image) and
:meth:`~PerceptualDistance.distance_from_features`, so an environment can compute a fixed
target's features once and reuse them every step. :meth:`~PerceptualDistance.embed` gives
the per-image feature vectors that the distribution metrics and the realism score use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from unigen_sb3.rewards.metrics import _check_image
from unigen_sb3.rewards.perceptual.networks import (
    PERCEPTUAL_BACKENDS,
    _build_lpips,
    _build_stlpips,
    default_lpips_backbone_path,
)
from unigen_sb3.utils import is_int, resolve_device

__all__ = [
    "ACCELERATOR_HEAD_ROWS",
    "CPU_CHUNK_SIZE",
    "CPU_HEAD_ROWS",
    "LATE_CHUNK_SIZE",
    "PerceptualDistance",
    "fixed_rows",
    "head_rows",
]

# Same epsilon as the packages' normalize_tensor, so distances agree with their forward().
_NORM_EPS = 1e-10
#: Images per network forward on a CPU (see :class:`PerceptualDistance`'s ``chunk_size``).
CPU_CHUNK_SIZE = 8
#: Images per forward of the trunk's last three slices when a batch runs in chunks (at
#: least ``chunk_size``): their maps are small (8x8 at 64x64), and there 64 images per call
#: beat chunks of 8 (see :meth:`PerceptualDistance.features`).
LATE_CHUNK_SIZE = 64
# The trunk's first slices, whose activations are large; chunked by ``chunk_size``.
_EARLY_SLICES = 2
_N_SLICES = 5
#: Rows per call of the LPIPS heads on a CPU (:meth:`PerceptualDistance.distance_from_features`).
#: Measured on 2 cores, 64x64: 0.058 -> 0.040 ms per row at N=64 and 0.157 -> 0.045 at N=256
#: against one call for all rows; 8 and 32 rows ran within 12 % of 16. Every call gets
#: exactly this many rows (a smaller batch is padded, see :func:`fixed_rows`); 8 keeps the
#: padding of a single row cheap.
CPU_HEAD_ROWS = 8
#: Rows per call of the heads and the realism model on an accelerator (see fixed_rows).
ACCELERATOR_HEAD_ROWS = 512


def head_rows(device: torch.device) -> int:
    """Rows per call of the distance heads and the realism model on ``device``: every call
    gets exactly this many (see :func:`fixed_rows`)."""
    return CPU_HEAD_ROWS if device.type == "cpu" else ACCELERATOR_HEAD_ROWS


def fixed_rows(x: torch.Tensor, lo: int, hi: int, rows: int) -> torch.Tensor:
    """Rows ``lo:hi`` of ``x`` as a contiguous block of exactly ``rows`` rows (zeros after
    them). Read-only for the caller: a full block of a contiguous ``x`` is a view of it.

    Reductions and matrix products round differently with the number of rows they are
    given (the kernels and their blocking depend on the shape), so a batch-size-dependent
    call would make an image's score depend on the batch it is scored in. Calls of one
    fixed shape do not: a score computed for one episode at its end equals the one computed
    for it among many. A view and a copy of the same rows have the same shape and strides,
    so they give the same values; the view saves a copy and a fill (at 64x64, 8 rows of the
    first layer's features are 2 MB).
    """
    k = hi - lo
    if k == rows and x.is_contiguous():
        return x[lo:hi]
    block = x.new_empty((rows, *x.shape[1:]))
    block[:k] = x[lo:hi]
    block[k:].zero_()
    return block


def _unit_normalise(o: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Divide each feature vector (dim 1) of ``o`` by its norm, as LPIPS does, into ``out``."""
    norm = o.square().sum(dim=1, keepdim=True).sqrt_().add_(_NORM_EPS)
    return torch.div(o, norm, out=out)


class PerceptualDistance(nn.Module):
    """LPIPS perceptual distance (AlexNet) with reusable per-image features.

    Images are ``(B, 3, H, W)`` tensors in ``[0, 1]``; the ``[-1, 1]`` rescaling and
    the packages' input normalisation happen inside. All methods run without
    autograd and return tensors on the module's device.

    Example::

        >>> pd = PerceptualDistance("stlpips", device="cpu")
        >>> target = pd.features(torch.rand(1, 3, 64, 64))     # once
        >>> canvas = torch.rand(8, 3, 64, 64)
        >>> pd.distance_from_features(pd.features(canvas), target).shape
        torch.Size([8])

    :param backend: ``"stlpips"``, ``"lpips"`` or ``"auto"`` (``"lpips"`` when its
        AlexNet trunk file exists locally, else ``"stlpips"``).
    :param device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda[:N]"``.
    :param lpips_weights: path of torchvision's AlexNet weights
        (``alexnet-owt-7be5be79.pth``) for the ``"lpips"`` backend; default
        :func:`default_lpips_backbone_path`. Given explicitly with ``"auto"``, the
        file must exist.
    :param chunk_size: most images per forward of the trunk's first two slices; a larger
        batch is run in chunks of this size, and the last three slices (small maps) in
        groups of ``max(chunk_size, LATE_CHUNK_SIZE)`` (results are the same up to float
        rounding, ~1e-6, whatever the chunks). ``None`` (the
        default) means :data:`CPU_CHUNK_SIZE` on a CPU and no chunking elsewhere. On a CPU
        the network also runs in the channels-last memory format. Why: at 64x64 a batch
        of 64 images' first-layer activations (64 x 64 x 58 x 58 floats, 55 MB) falls out
        of the CPU caches, and the per-image cost of the pooling/blur layers grows
        several-fold. Measured on 2 cores: features of 64 images take 1.4 ms per image in
        channels-last chunks of 8 against 3.3 ms in one default-layout batch; the whole
        cached-target distance went from 283 to 499 images/s
        (``benchmarks/perceptual_throughput.py``). Chunks of 8 to 32 ran within about 15 %
        of each other at 1 and 2 threads; on a many-core CPU a larger ``chunk_size`` may
        be faster (untested here).
    :raises ValueError: for an unknown backend or a ``chunk_size`` that is not an integer >= 1.
    :raises FileNotFoundError: if the chosen backend's weights file is missing.
    :raises RuntimeError: if a package is missing or a weights file does not provide
        every parameter.
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        device: str | torch.device = "auto",
        lpips_weights: str | os.PathLike[str] | None = None,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if backend not in PERCEPTUAL_BACKENDS:
            raise ValueError(f"backend must be one of {PERCEPTUAL_BACKENDS}; got {backend!r}")
        if chunk_size is not None and (not is_int(chunk_size) or chunk_size < 1):
            raise ValueError(f"chunk_size must be None or an integer >= 1, got {chunk_size!r}")
        dev = resolve_device(device)
        backbone = (
            Path(lpips_weights).expanduser()
            if lpips_weights is not None
            else default_lpips_backbone_path()
        )
        if backend == "auto":
            backend = "lpips" if backbone.is_file() or lpips_weights is not None else "stlpips"
        net, info = _build_lpips(backbone) if backend == "lpips" else _build_stlpips()
        net.eval()
        net.requires_grad_(False)
        self.net = net.to(dev)
        #: The backend in use: ``"lpips"`` or ``"stlpips"``.
        self.backend: str = backend
        #: Which weights files were loaded.
        self.backend_info: str = info
        self._device = dev
        self._chunk_size = None if chunk_size is None else int(chunk_size)
        self._n_layers = len(self._lins)
        self._slices = self._trunk_slices()
        self._set_layout()
        self.eval()

    @property
    def chunk_size(self) -> int | None:
        """Most images per network forward on the current device (``None``: no limit)."""
        if self._chunk_size is not None:
            return self._chunk_size
        return CPU_CHUNK_SIZE if self._device.type == "cpu" else None

    def _set_layout(self) -> None:
        # Channels-last on a CPU (oneDNN's fast path for these convs and pools); the
        # default layout elsewhere, as the GPU measurements were made with it.
        fmt = torch.channels_last if self._device.type == "cpu" else torch.contiguous_format
        self.net.to(memory_format=fmt)
        self._memory_format = fmt

    @property
    def _lins(self) -> nn.ModuleList:
        # The packages' per-layer linear heads (1x1 convs after dropout).
        return cast(nn.ModuleList, self.net.lins)

    def _lin_weight(self, k: int) -> torch.Tensor:
        """Layer ``k``'s linear head as a vector of per-channel weights, shape ``(C_k,)``."""
        convs = [m for m in self._lins[k].modules() if isinstance(m, nn.Conv2d)]
        if len(convs) != 1 or convs[0].bias is not None or convs[0].kernel_size != (1, 1):
            raise RuntimeError(f"linear head {k} is not one bias-free 1x1 conv: {self._lins[k]}")
        return convs[0].weight.reshape(-1)

    @property
    def trunk(self) -> nn.Module:
        """The AlexNet trunk. :meth:`features` runs its slices ``slice1`` ... ``slice5`` one
        after another, not its ``forward``: hook or time the slices (or their layers)."""
        return cast(nn.Module, self.net.net)

    def _trunk_slices(self) -> list[nn.Module]:
        """The trunk's ``slice1`` ... ``slice5``, which its forward runs one after another.

        :raises RuntimeError: if the trunk lacks them (a package changed its network).
        """
        names = [f"slice{k}" for k in range(1, _N_SLICES + 1)]
        missing = [name for name in names if not hasattr(self.trunk, name)]
        if missing or self._n_layers != _N_SLICES:
            raise RuntimeError(
                f"the {self.backend} trunk lacks {missing} or has {self._n_layers} linear "
                f"heads (expected {names} and {_N_SLICES}): {type(self.trunk).__name__}"
            )
        return [cast(nn.Module, getattr(self.trunk, name)) for name in names]

    @property
    def device(self) -> torch.device:
        """The device the network lives on; inputs are moved here."""
        return self._device

    def train(self, mode: bool = True) -> PerceptualDistance:
        """Keep the network in eval mode: LPIPS has dropout in its linear layers."""
        super().train(False)
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> PerceptualDistance:
        # Keep ``device`` in step with .to()/.cuda()/.cpu().
        super()._apply(fn, recurse)
        device = next(self.net.parameters()).device
        moved = device != getattr(self, "_device", device)
        self._device = device
        if moved and hasattr(self, "_memory_format"):  # after __init__: re-pick the layout
            self._set_layout()
        return self

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised per-layer features (one network forward per image).

        :param x: images ``(B, 3, H, W)`` in ``[0, 1]``.
        :return: five tensors ``(B, C_k, H_k, W_k)`` (C = 64, 192, 384, 256, 256), each
            feature vector divided by its channel norm, as LPIPS compares them.
        :raises ValueError: if ``x`` is not ``(B, 3, H, W)``.
        """
        _check_image(x, "x")
        x = x.to(self._device, torch.float32)
        n, chunk = x.shape[0], self.chunk_size
        if chunk is None or n <= chunk:
            return self._features(x)
        # The images go in groups of ``late`` >= LATE_CHUNK_SIZE: in each group the first
        # slices run in chunks of ``chunk`` (their activations are large), the last ones on
        # the whole group at once: on 2 CPU cores, 64 images per call of the 8x8 layers took
        # about 10 % less per image than chunks of 8. Only one group's intermediate
        # activations are alive at a time. Each chunk's normalised features are written
        # straight into the full-batch outputs.
        late = max(chunk, LATE_CHUNK_SIZE)
        out: list[torch.Tensor] = []
        for group in range(0, n, late):
            end = min(group + late, n)
            middle: list[torch.Tensor] = []
            for lo in range(group, end, chunk):
                images = x[lo : min(lo + chunk, end)]
                raw = self._run_slices(self._scaled(images), 0, _EARLY_SLICES)
                self._store(raw, out, 0, lo, n)
                middle.append(raw[-1])
            h = middle[0] if len(middle) == 1 else torch.cat(middle)
            del middle, raw
            self._store(self._run_slices(h, _EARLY_SLICES, _N_SLICES), out, _EARLY_SLICES, group, n)
        return out

    @staticmethod
    def _store(
        raw: Sequence[torch.Tensor], out: list[torch.Tensor], first: int, lo: int, n: int
    ) -> None:
        """Normalise layers ``first, first + 1, ...`` of images ``lo, lo + 1, ...`` into the
        full-batch outputs ``out`` (appended on the first chunk of those layers)."""
        if len(out) == first:
            out.extend(torch.empty((n, *o.shape[1:]), dtype=o.dtype, device=o.device) for o in raw)
        for o, dest in zip(raw, out[first : first + len(raw)], strict=True):
            _unit_normalise(o, dest[lo : lo + o.shape[0]])

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Images in ``[0, 1]`` as the trunk's input (scaling layer, memory layout)."""
        scaling = cast(nn.Module, self.net.scaling_layer)
        return cast(torch.Tensor, scaling(2.0 * x - 1.0)).contiguous(
            memory_format=self._memory_format
        )

    def _run_slices(self, h: torch.Tensor, start: int, stop: int) -> list[torch.Tensor]:
        """Outputs of the trunk's slices ``start`` to ``stop - 1`` (0-based) from input ``h``.

        A batch of one image runs as two copies of it, and the first copy's outputs are
        kept: convolution libraries pick other kernels for a batch of one (oneDNN on this
        project's CPUs does, for the small late maps), whose results differ in the last
        bits (up to ~5e-7). Padding makes an image's features the same whatever batch it is
        computed in, so a reward computed for one episode at its end equals the one
        computed in a batch of many (``tests/rewards/test_perceptual.py`` checks
        batches of 1 to 17 and 65 images).
        """
        single = h.shape[0] == 1
        if single:
            h = torch.cat([h, h])
        outs = []
        for k in range(start, stop):
            h = self._slices[k](h)
            outs.append(h)
        return [o[:1] for o in outs] if single else outs

    def _trunk_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The trunk's five raw layer outputs for images ``x`` in ``[0, 1]``."""
        return self._run_slices(self._scaled(x), 0, _N_SLICES)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = self._trunk_outputs(x)
        return [
            _unit_normalise(o, torch.empty(o.shape, dtype=o.dtype, device=o.device)) for o in outs
        ]

    def _check_features(self, f: Sequence[torch.Tensor], name: str) -> None:
        if len(f) != self._n_layers:
            raise ValueError(
                f"{name} must be the list of {self._n_layers} layer features from "
                f"features(); got {len(f)} items"
            )

    @torch.no_grad()
    def distance_from_features(
        self, fa: Sequence[torch.Tensor], fb: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """LPIPS distance between two sets of :meth:`features`.

        :param fa: features of ``B`` images.
        :param fb: features of ``B`` images, or of one image to compare all of ``fa`` with.
        :return: ``(B,)`` distances, equal to the package's ``forward(x, y, normalize=True)``.
        :raises ValueError: if the feature lists do not fit together.
        """
        self._check_features(fa, "fa")
        self._check_features(fb, "fb")
        for k, (a, b) in enumerate(zip(fa, fb, strict=True)):
            if a.shape[1:] != b.shape[1:] or b.shape[0] not in (1, a.shape[0]):
                raise ValueError(
                    f"layer {k}: features of shape {tuple(a.shape)} and {tuple(b.shape)} do "
                    "not fit; fb needs the same image size and batch 1 or the batch of fa"
                )
        n = fa[0].shape[0]
        rows = head_rows(self._device)
        out = torch.empty(n, dtype=fa[0].dtype, device=fa[0].device)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            out[lo:hi] = self._heads(
                [fixed_rows(a, lo, hi, rows) for a in fa],
                [b if b.shape[0] == 1 else fixed_rows(b, lo, hi, rows) for b in fb],
            )[: hi - lo]
        return out

    def _heads(self, fa: Sequence[torch.Tensor], fb: Sequence[torch.Tensor]) -> torch.Tensor:
        """The LPIPS linear heads on checked feature lists: ``(B,)`` distances."""
        layers = []
        for k, (a, b) in enumerate(zip(fa, fb, strict=True)):
            # The head is a bias-free 1x1 conv (after dropout, off in eval) followed by a
            # spatial mean; both are linear, so the mean is taken first: sum_c w_c *
            # mean_hw (a - b)^2, the same value without a conv over the whole map.
            diff = a - b
            per_channel = diff.mul_(diff).mean(dim=(2, 3))  # squared in place: one buffer
            # A product and a row sum, not ``per_channel @ w``: BLAS matrix-vector kernels
            # round differently with the number of rows, so an image's distance would
            # depend on the batch it is scored in (by ~1e-7); row sums do not.
            layers.append((per_channel * self._lin_weight(k)).sum(dim=1))
        return torch.stack(layers).sum(dim=0)

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance of two image batches (``y`` may have batch 1).

        :param x: images ``(B, 3, H, W)`` in ``[0, 1]``.
        :param y: images ``(B, 3, H, W)`` or ``(1, 3, H, W)``.
        :return: ``(B,)`` distances (0 for identical images).
        """
        return self.distance_from_features(self.features(x), self.features(y))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`distance`."""
        return self.distance(x, y)

    @torch.no_grad()
    def embed_from_features(self, f: Sequence[torch.Tensor]) -> torch.Tensor:
        """One feature vector per image for distribution scores (FID/KID-like).

        The spatial mean of each layer's *unit-normalised* features, concatenated.
        Normalised features make every layer contribute on the same scale (each
        block has norm <= 1) whatever the image contrast.

        :param f: output of :meth:`features`.
        :return: ``(B, 1152)`` for AlexNet (64 + 192 + 384 + 256 + 256).
        """
        self._check_features(f, "f")
        return torch.cat([layer.mean(dim=(2, 3)) for layer in f], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`embed_from_features` of :meth:`features` of ``x``."""
        return self.embed_from_features(self.features(x))
