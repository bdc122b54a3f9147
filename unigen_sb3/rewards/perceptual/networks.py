"""Loading the LPIPS networks: the backends, their weights files and their verification.

Two backends build an AlexNet LPIPS network (:data:`PERCEPTUAL_BACKENDS`; ``"auto"`` picks
one, see :class:`~unigen_sb3.rewards.perceptual.distance.PerceptualDistance`):

- ``"stlpips"``: the shift-tolerant AlexNet LPIPS of ``stlpips-pytorch``, whose
  weights file (trunk and linear layers) ships inside the pip package. Its first
  convolution and blur-downsample run as one strided convolution
  (:class:`~unigen_sb3.rewards.conv_blur.ConvBlurDownsample`): the same values up to
  float rounding, with a third of that layer's arithmetic. Its stride-1 max pools run as
  :class:`WindowMaxPool2d` (the same values exactly, without ``max_pool2d``'s index
  output);
- ``"lpips"``: the original ``lpips`` package. Its linear layers ship with the package,
  but its trunk is torchvision's ImageNet AlexNet, which ``lpips`` would download. Here
  it is loaded only from a local file (:func:`default_lpips_backbone_path`), never
  downloaded.

Whichever backend is used, every network parameter is checked to have been loaded
from a weights file: a randomly initialised trunk is never used silently.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import torch
from torch import nn

from unigen_sb3.rewards.conv_blur import ConvBlurDownsample
from unigen_sb3.rewards.metrics import window_max

__all__ = [
    "LPIPS_ALEXNET_FILENAME",
    "PERCEPTUAL_BACKENDS",
    "WindowMaxPool2d",
    "default_lpips_backbone_path",
]

#: File name of torchvision's ImageNet AlexNet weights, the trunk of the ``lpips`` backend.
LPIPS_ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"
_ALEXNET_URL = f"https://download.pytorch.org/models/{LPIPS_ALEXNET_FILENAME}"
PERCEPTUAL_BACKENDS = ("auto", "lpips", "stlpips")
"""Accepted ``backend`` values of :class:`~unigen_sb3.rewards.perceptual.PerceptualDistance`
(and of ``make_unigen_env(perceptual_backend=...)``)."""


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
    _window_max_pools(net)
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


def _pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return (v, v) if isinstance(v, int) else tuple(v)


class WindowMaxPool2d(nn.Module):
    """A stride-1 ``nn.MaxPool2d`` computed by :func:`~unigen_sb3.rewards.metrics.window_max`.

    The same values as the pool it replaces, exactly (a maximum does not round); on a CPU
    it skips the int64 index ``max_pool2d`` writes per output, which made the
    shift-tolerant trunk's two pools about 2.5x slower (8 maps of 64x30x30: 0.62 against
    0.25 ms).

    :param kernel_size: the window's side.
    :param padding: ``-inf`` padding on each side, as ``nn.MaxPool2d`` takes it.
    """

    def __init__(self, kernel_size: int, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.padding = padding

    @classmethod
    def replacing(cls, pool: nn.Module) -> WindowMaxPool2d | None:
        """The equivalent of ``pool``, or ``None`` if it is not a square stride-1 max pool
        without dilation, ceil mode or index output."""
        if not isinstance(pool, nn.MaxPool2d) or pool.ceil_mode or pool.return_indices:
            return None
        (kh, kw), stride, (ph, pw), dilation = (
            _pair(v) for v in (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
        )
        if kh != kw or ph != pw or stride != (1, 1) or dilation != (1, 1):
            return None
        return cls(kh, ph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return window_max(x, self.kernel_size, padding=self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride=1, padding={self.padding}"


def _window_max_pools(net: nn.Module) -> None:
    """Swap the trunk's stride-1 ``nn.MaxPool2d`` layers for :class:`WindowMaxPool2d`."""
    trunk = cast(nn.Module, net.net)
    for parent in trunk.modules():
        for name, child in list(parent.named_children()):
            swap = WindowMaxPool2d.replacing(child)
            if swap is not None:
                setattr(parent, name, swap)


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
