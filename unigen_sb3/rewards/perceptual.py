"""Deep-feature image metrics: LPIPS distance, Fréchet distance, KID and a per-image realism score.

:class:`PerceptualDistance` wraps a trained LPIPS network (AlexNet trunk) and splits
its computation into :meth:`~PerceptualDistance.features` (one network forward per
image) and :meth:`~PerceptualDistance.distance_from_features`, so an environment can
compute a fixed target's features once and reuse them every step. Two backends:

- ``"stlpips"``: the shift-tolerant AlexNet LPIPS of ``stlpips-pytorch``, whose
  weights file (trunk and linear layers) ships inside the pip package. Its first
  convolution and blur-downsample run as one strided convolution
  (:class:`~unigen_sb3.rewards.conv_blur.ConvBlurDownsample`): the same values up to
  float rounding, with a third of that layer's arithmetic;
- ``"lpips"``: the original ``lpips`` package. Its linear layers ship with the package,
  but its trunk is torchvision's ImageNet AlexNet, which ``lpips`` would download. Here
  it is loaded only from a local file, never downloaded.

Whichever backend is used, every network parameter is checked to have been loaded
from a weights file: a randomly initialised trunk is never used silently.

:func:`frechet_distance`, :func:`kernel_inception_distance` and :class:`RealismScorer`
work on per-image feature vectors, e.g. from :meth:`PerceptualDistance.embed`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from unigen_sb3.rewards.conv_blur import ConvBlurDownsample
from unigen_sb3.rewards.metrics import _check_image
from unigen_sb3.utils import is_int, resolve_device

__all__ = [
    "LPIPS_ALEXNET_FILENAME",
    "PerceptualDistance",
    "RealismScorer",
    "default_lpips_backbone_path",
    "frechet_distance",
    "kernel_inception_distance",
]

#: File name of torchvision's ImageNet AlexNet weights, the trunk of the ``lpips`` backend.
LPIPS_ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"
_ALEXNET_URL = f"https://download.pytorch.org/models/{LPIPS_ALEXNET_FILENAME}"
_BACKENDS = ("auto", "lpips", "stlpips")
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
#: against one call for all rows; 8 and 32 rows ran within 12 % of 16.
CPU_HEAD_ROWS = 16


def default_lpips_backbone_path() -> Path:
    """Where the ``lpips`` backend looks for the AlexNet trunk when no path is given.

    :return: ``torch.hub.get_dir()/checkpoints/alexnet-owt-7be5be79.pth``, the file
        torchvision itself would download.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_ALEXNET_FILENAME


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the packages' prints and torchvision's deprecation warnings during setup."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _load_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: say which one
        raise RuntimeError(f"could not read the weights file {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise RuntimeError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    return state


def _lins_alias(name: str) -> str:
    """``lins.N.rest`` -> ``linN.rest``: both LPIPS packages register each linear layer twice."""
    match = re.fullmatch(r"lins\.(\d+)\.(.+)", name)
    return f"lin{match.group(1)}.{match.group(2)}" if match else name


def _load_verified(net: nn.Module, source: dict[str, torch.Tensor], origin: str) -> None:
    """Load ``source`` into ``net`` and check that every parameter now equals a file tensor.

    :raises RuntimeError: naming the parameters the files did not provide.
    """
    # strict=False because the files hold each linear layer under one of its two names.
    net.load_state_dict(source, strict=False)
    missing: list[str] = []
    for name, param in net.named_parameters(remove_duplicate=False):
        key = name if name in source else _lins_alias(name)
        if key not in source or not torch.equal(param.detach(), source[key].to(param.dtype)):
            missing.append(name)
    if missing:
        raise RuntimeError(
            f"{len(missing)} network parameters were not loaded from {origin}: "
            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}; "
            "refusing to run with random weights (is the weights file the right one?)"
        )


def _build_stlpips() -> tuple[nn.Module, str]:
    try:
        with _quiet():
            from stlpips_pytorch import stlpips
    except ImportError as exc:
        raise RuntimeError(
            "the 'stlpips' backend needs the package stlpips-pytorch (plus torchsummary and "
            f"ipython, which it imports): pip install stlpips-pytorch torchsummary ipython ({exc})"
        ) from exc
    path = (
        Path(stlpips.__file__).resolve().parent / "weights" / "vST0.0" / "alex_shift_tolerant.pth"
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"stlpips-pytorch is installed but its weights file {path} is missing; "
            "reinstall it: pip install --force-reinstall stlpips-pytorch"
        )
    with _quiet():
        # pretrained=False: build only; the weights are loaded and verified below.
        net = stlpips.LPIPS(pretrained=False, net="alex", variant="shift_tolerant", verbose=False)
    _load_verified(net, _load_file(path), str(path))
    _fuse_first_layer(net)
    return net, f"stlpips shift-tolerant AlexNet (trunk + linear layers) from {path}"


def _fuse_first_layer(net: nn.Module) -> None:
    """Run the shift-tolerant trunk's first conv and blur-downsample as one strided conv.

    Same values up to float rounding, a third of the first layer's multiply-adds (see
    :mod:`unigen_sb3.rewards.conv_blur`). The weights must already be loaded.
    """
    first = cast(nn.Sequential, cast(nn.Module, net.net).slice1)
    conv, blur = first[0], first[1]
    first[0] = ConvBlurDownsample(cast(nn.Conv2d, conv), blur)
    first[1] = nn.Identity()


def _build_lpips(backbone: Path) -> tuple[nn.Module, str]:
    if not backbone.is_file():
        raise FileNotFoundError(
            f"the 'lpips' backend needs torchvision's ImageNet AlexNet weights at {backbone}, "
            f"which does not exist. Download {_ALEXNET_URL} on a machine with network access "
            f"and copy it there (or pass lpips_weights=<path>), or use backend='stlpips', "
            "whose weights ship with the stlpips-pytorch package"
        )
    try:
        with _quiet():
            import lpips
    except ImportError as exc:
        raise RuntimeError(
            f"the 'lpips' backend needs the package lpips: pip install lpips ({exc})"
        ) from exc
    lin_path = Path(lpips.__file__).resolve().parent / "weights" / "v0.1" / "alex.pth"
    if not lin_path.is_file():
        raise FileNotFoundError(
            f"lpips is installed but its linear-layer weights {lin_path} are missing; "
            "reinstall it: pip install --force-reinstall lpips"
        )
    with _quiet():
        # pnet_rand=True stops torchvision from downloading the trunk; pretrained=False
        # defers the linear layers. Both are loaded (and verified) from files below.
        net = lpips.LPIPS(pretrained=False, net="alex", pnet_rand=True, verbose=False)
    trunk = _load_file(backbone)
    source = dict(_load_file(lin_path))
    # lpips slices keep torchvision's layer indices: net.sliceK.<i>.weight <- features.<i>.weight
    for name in net.net.state_dict():
        tv_key = "features." + name.split(".", 1)[1]
        if tv_key in trunk:
            source[f"net.{name}"] = trunk[tv_key]
    _load_verified(net, source, f"{backbone} and {lin_path}")
    return net, f"lpips AlexNet: trunk from {backbone}, linear layers from {lin_path}"


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
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}; got {backend!r}")
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
        """Outputs of the trunk's slices ``start`` to ``stop - 1`` (0-based) from input ``h``."""
        outs = []
        for k in range(start, stop):
            h = self._slices[k](h)
            outs.append(h)
        return outs

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
        if self._device.type != "cpu" or n <= CPU_HEAD_ROWS:
            return self._heads(fa, fb)
        # On a CPU, rows at a time: the squared differences of a large batch (59 MB for the
        # first layer at N=256, 64x64) fall out of the caches; see CPU_HEAD_ROWS.
        out = torch.empty(n, dtype=fa[0].dtype, device=fa[0].device)
        for lo in range(0, n, CPU_HEAD_ROWS):
            hi = lo + CPU_HEAD_ROWS
            out[lo:hi] = self._heads(
                [a[lo:hi] for a in fa], [b if b.shape[0] == 1 else b[lo:hi] for b in fb]
            )
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
            layers.append(per_channel @ self._lin_weight(k))
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


# --------------------------------------------------------------------------- distributions


def _as_matrix(a: object, name: str, device: torch.device | None = None) -> torch.Tensor:
    if isinstance(a, np.ndarray):
        t = torch.from_numpy(a)
    elif isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array (N, D); got {type(a)}")
    if t.dim() != 2:
        raise ValueError(f"{name} must be a feature matrix (N, D); got shape {tuple(t.shape)}")
    if t.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples (rows); got {t.shape[0]}")
    return t.to(device or t.device, torch.float64)


def _check_dims(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: a has D={a.shape[1]}, b has D={b.shape[1]}")


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(s)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 sqrtm(S_a S_b))`` with unbiased sample
    covariances. ``Tr sqrtm(S_a S_b)`` is computed as the sum of square roots of the
    eigenvalues of the symmetric PSD matrix ``S_a^(1/2) S_b S_a^(1/2)`` (similar to
    ``S_a S_b``), in float64. When either set has fewer samples than dimensions (singular
    covariances) it uses the equivalent singular values of the ``(N, M)`` product of the
    centred feature matrices instead, which is exact where eigenvalue square roots would
    amplify round-off.

    :param a: features ``(N, D)``, N >= 2.
    :param b: features ``(M, D)``, M >= 2.
    :return: the distance (>= 0).
    :raises ValueError: for fewer than 2 samples or different D.
    """
    ta = _as_matrix(a, "a")
    tb = _as_matrix(b, "b", ta.device)
    _check_dims(ta, tb)
    n, m, d = ta.shape[0], tb.shape[0], ta.shape[1]
    mu_a, mu_b = ta.mean(dim=0), tb.mean(dim=0)
    xa, xb = ta - mu_a, tb - mu_b
    tr_a = xa.square().sum() / (n - 1)
    tr_b = xb.square().sum() / (m - 1)
    if min(n, m) < d:
        # Singular covariances: with S_a = Xa'Xa/(n-1), S_b = Xb'Xb/(m-1), the square roots
        # of the eigenvalues of S_a S_b are the singular values of Xa Xb' / sqrt((n-1)(m-1)).
        # That small matrix avoids square roots of round-off-sized eigenvalues.
        tr_covmean = torch.linalg.svdvals(xa @ xb.T).sum() / math.sqrt((n - 1) * (m - 1))
    else:
        sa, sb = xa.T @ xa / (n - 1), xb.T @ xb / (m - 1)
        root_a = _psd_sqrt(sa)
        inner = root_a @ sb @ root_a
        tr_covmean = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0).sqrt().sum()
    value = (mu_a - mu_b).square().sum() + tr_a + tr_b - 2 * tr_covmean
    return max(float(value), 0.0)


# Above this many samples per set the full Gram matrices would cost too much memory;
# KID then computes each subset's kernels separately (same result, more arithmetic).
_KID_GRAM_LIMIT = 4096


def _poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor) -> torch.Tensor:
    m = kxx.shape[0]
    off = m * (m - 1)
    return (
        (kxx.sum() - kxx.diagonal().sum()) / off
        + (kyy.sum() - kyy.diagonal().sum()) / off
        - 2.0 * kxy.mean()
    )


def kernel_inception_distance(
    a: torch.Tensor | np.ndarray,
    b: torch.Tensor | np.ndarray,
    *,
    subset_size: int = 1000,
    n_subsets: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel (Inception) distance: the unbiased MMD^2 with a cubic polynomial kernel.

    ``k(x, y) = (x.y / D + 1)^3``. For each of ``n_subsets`` rounds, ``subset_size``
    rows are drawn without replacement from each set and the unbiased MMD^2 estimate
    is computed; the mean and the (population) standard deviation over rounds are
    returned. The draws come from a ``torch.Generator`` seeded with ``seed``, so the
    result is deterministic.

    :param a: features ``(N, D)``.
    :param b: features ``(M, D)``.
    :param subset_size: rows per subset; capped at ``min(N, M)``. Where the cap makes every
        subset the whole of both sets (``N == M <= subset_size``), every round gives the same
        value and the std is 0: pick a smaller ``subset_size`` for a spread (the evaluation
        reports use :func:`~unigen_sb3.evaluation.kid_subset_size`).
    :param n_subsets: number of subsets, >= 1.
    :param seed: seed of the subset draws.
    :return: ``(mean, std)`` of the MMD^2 estimates (the mean can be slightly negative
        for equal distributions: the estimator is unbiased).
    :raises ValueError: for fewer than 2 samples, different D or bad subset arguments.
    """
    ta = _as_matrix(a, "a")
    tb = _as_matrix(b, "b", ta.device)
    _check_dims(ta, tb)
    if not (is_int(subset_size) and is_int(n_subsets) and is_int(seed)):
        raise ValueError(
            "subset_size, n_subsets and seed must be integers; "
            f"got {subset_size!r}, {n_subsets!r} and {seed!r}"
        )
    if subset_size < 2 or n_subsets < 1:
        raise ValueError(
            f"need subset_size >= 2 and n_subsets >= 1; got {subset_size} and {n_subsets}"
        )
    n, m = ta.shape[0], tb.shape[0]
    size = min(subset_size, n, m)
    gen = torch.Generator().manual_seed(seed)
    use_gram = max(n, m) <= _KID_GRAM_LIMIT
    if use_gram:
        kaa, kbb, kab = _poly_kernel(ta, ta), _poly_kernel(tb, tb), _poly_kernel(ta, tb)
    values = []
    for _ in range(n_subsets):
        ia = torch.randperm(n, generator=gen)[:size].to(ta.device)
        ib = torch.randperm(m, generator=gen)[:size].to(ta.device)
        if use_gram:
            kxx, kyy, kxy = kaa[ia][:, ia], kbb[ib][:, ib], kab[ia][:, ib]
        else:
            x, y = ta[ia], tb[ib]
            kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        values.append(_unbiased_mmd2(kxx, kyy, kxy))
    stacked = torch.stack(values)
    return float(stacked.mean()), float(stacked.std(correction=0))


class RealismScorer:
    """Per-image realism proxy: how typical a feature vector is of a reference set.

    Fits a Gaussian to reference features (for example :meth:`PerceptualDistance.embed`
    of the data package's reference images). The covariance is shrunk toward its
    diagonal, ``S = (1 - shrinkage) C + shrinkage diag(C) + eps I``, so that it is
    invertible even with fewer samples than dimensions.

    The score maps the squared Mahalanobis distance ``m2`` to ``[0, 1]``::

        score = exp(-max(0, m2 / m2_ref - 1))

    ``m2_ref`` is the (lower, as ``torch.median``) median ``m2`` of *held-out* reference
    images (two-fold split: fit on one half, measure the other, both ways). Held-out rather
    than in-sample distances matter when N is close to or below D, where in-sample distances
    are far too small. So an image as typical as a typical unseen reference image scores 1,
    one twice as far scores ``exp(-1)``, and noise or blank images, orders of magnitude
    farther, score about 0. The map is monotone non-increasing in ``m2``.

    :param ref_feats: reference features ``(N, D)``, N >= 4 (torch or numpy).
    :param shrinkage: weight in ``[0, 1]`` of the diagonal target; must be > 0 when N <= D.
    :param device: where to keep the fit; default: the device of ``ref_feats``.
    :raises ValueError: for too few samples, a bad ``shrinkage`` or constant features.
    """

    def __init__(
        self,
        ref_feats: torch.Tensor | np.ndarray,
        *,
        shrinkage: float = 0.1,
        device: str | torch.device | None = None,
    ) -> None:
        dev = resolve_device(device) if device is not None else None
        feats = _as_matrix(ref_feats, "ref_feats", dev)
        n, d = feats.shape
        if n < 4:
            raise ValueError(f"ref_feats needs at least 4 samples to fit and calibrate; got {n}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1]; got {shrinkage!r}")
        if shrinkage == 0.0 and n <= d:
            raise ValueError(
                f"with N={n} <= D={d} the sample covariance is singular; use shrinkage > 0"
            )
        self.shrinkage = float(shrinkage)
        self.dim = d
        # Calibrate on held-out halves (fixed permutation: deterministic scores).
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(feats.device)
        first, second = feats[perm[: n // 2]], feats[perm[n // 2 :]]
        held_out = torch.cat(
            [self._m2(second, *self._fit(first)), self._m2(first, *self._fit(second))]
        )
        #: Median held-out squared Mahalanobis distance of reference images (for an even
        #: count the lower of the two middle values, as torch.median gives).
        self.reference_m2 = float(held_out.median())
        self.mean, self._chol = self._fit(feats)

    def _fit(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cov = torch.cov(feats.T).reshape(feats.shape[1], -1)
        var = cov.diagonal()
        if float(var.max()) <= 0:
            raise ValueError("reference features are constant; cannot fit a covariance")
        # A small ridge keeps dimensions that never vary (e.g. dead ReLUs) invertible.
        ridge = 1e-6 * float(var.mean())
        shrunk = (1 - self.shrinkage) * cov + torch.diag(self.shrinkage * var + ridge)
        chol, info = torch.linalg.cholesky_ex(shrunk)
        if int(info) != 0:
            raise ValueError(
                f"the shrunk covariance is not positive definite (shrinkage={self.shrinkage}); "
                "increase shrinkage"
            )
        return feats.mean(dim=0), chol

    @staticmethod
    def _m2(feats: torch.Tensor, mean: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
        z = torch.linalg.solve_triangular(chol, (feats - mean).T, upper=False)
        return z.square().sum(dim=0)

    @property
    def device(self) -> torch.device:
        """Where the fitted mean and covariance live."""
        return self.mean.device

    def mahalanobis2(self, feats: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Squared Mahalanobis distance of each row to the reference Gaussian.

        :param feats: features ``(B, D)``.
        :return: ``(B,)`` float64 distances on :attr:`device`.
        :raises ValueError: if the feature dimension is not D.
        """
        t = feats.detach() if isinstance(feats, torch.Tensor) else torch.from_numpy(feats)
        if t.dim() != 2 or t.shape[1] != self.dim:
            raise ValueError(f"feats must have shape (B, {self.dim}); got {tuple(t.shape)}")
        return self._m2(t.to(self.device, torch.float64), self.mean, self._chol)

    def score(self, feats: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Realism score in ``[0, 1]`` (1 = as typical as the reference images).

        :param feats: features ``(B, D)``.
        :return: ``(B,)`` float32 scores on :attr:`device`.
        """
        ratio = self.mahalanobis2(feats) / self.reference_m2
        return torch.exp(-(ratio - 1.0).clamp_min(0.0)).float()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dim={self.dim}, shrinkage={self.shrinkage}, "
            f"reference_m2={self.reference_m2:.4g}, device={self.device})"
        )
