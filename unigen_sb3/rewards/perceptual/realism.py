"""A per-image realism score: how typical an image's features are of a reference set.

:class:`RealismScorer` fits a shrunk Gaussian to reference feature vectors (e.g.
:meth:`~unigen_sb3.rewards.perceptual.PerceptualDistance.embed` of the data package's
reference images) and maps the squared Mahalanobis distance to ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch

from unigen_sb3.rewards.perceptual.distance import fixed_rows, head_rows
from unigen_sb3.rewards.perceptual.distributions import _as_matrix
from unigen_sb3.utils import resolve_device

__all__ = ["RealismScorer"]


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
        t = t.to(self.device, torch.float64)
        # In calls of a fixed number of rows, so that a row's value does not depend on the
        # batch it comes in (see fixed_rows).
        n, rows = t.shape[0], head_rows(self.device)
        out = torch.empty(n, dtype=torch.float64, device=self.device)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            out[lo:hi] = self._m2(fixed_rows(t, lo, hi, rows), self.mean, self._chol)[: hi - lo]
        return out

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
