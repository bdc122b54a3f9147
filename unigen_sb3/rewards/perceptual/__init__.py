"""Deep-feature image metrics: LPIPS distance, Fréchet distance, KID and a per-image realism score.

:class:`PerceptualDistance` wraps a trained LPIPS network (AlexNet trunk) and splits
its computation into :meth:`~PerceptualDistance.features` (one network forward per
image) and :meth:`~PerceptualDistance.distance_from_features`, so an environment can
compute a fixed target's features once and reuse them every step. Two backends,
``"stlpips"`` (weights shipped with ``stlpips-pytorch``) and ``"lpips"`` (its AlexNet trunk
read from a local file, never downloaded); every network parameter is checked to have been
loaded from a weights file.

:func:`frechet_distance`, :func:`kernel_inception_distance` and :class:`RealismScorer`
work on per-image feature vectors, e.g. from :meth:`PerceptualDistance.embed`.

The package is split into:

- :mod:`~unigen_sb3.rewards.perceptual.networks`: the backends
  (:data:`PERCEPTUAL_BACKENDS`), their weights files and the verified network builders;
- :mod:`~unigen_sb3.rewards.perceptual.distance`: :class:`PerceptualDistance` and its
  chunking constants;
- :mod:`~unigen_sb3.rewards.perceptual.distributions`: :func:`frechet_distance` and
  :func:`kernel_inception_distance`;
- :mod:`~unigen_sb3.rewards.perceptual.realism`: :class:`RealismScorer`.

Every public name is importable from ``unigen_sb3.rewards.perceptual`` itself. To patch a
module-level setting (``LATE_CHUNK_SIZE``, ``_load_file``, ...), patch the module that
defines it: the package only re-exports it.
"""

from unigen_sb3.rewards.perceptual.distance import (
    CPU_CHUNK_SIZE,
    CPU_HEAD_ROWS,
    LATE_CHUNK_SIZE,
    PerceptualDistance,
)
from unigen_sb3.rewards.perceptual.distributions import (
    frechet_distance,
    kernel_inception_distance,
)
from unigen_sb3.rewards.perceptual.networks import (
    LPIPS_ALEXNET_FILENAME,
    PERCEPTUAL_BACKENDS,
    default_lpips_backbone_path,
)
from unigen_sb3.rewards.perceptual.networks import _quiet as _quiet  # used by the tests
from unigen_sb3.rewards.perceptual.realism import RealismScorer

__all__ = [
    "CPU_CHUNK_SIZE",
    "CPU_HEAD_ROWS",
    "LATE_CHUNK_SIZE",
    "LPIPS_ALEXNET_FILENAME",
    "PERCEPTUAL_BACKENDS",
    "PerceptualDistance",
    "RealismScorer",
    "default_lpips_backbone_path",
    "frechet_distance",
    "kernel_inception_distance",
]
