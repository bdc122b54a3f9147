"""Distribution metrics on per-image feature sets: Fréchet distance and KID.

:func:`frechet_distance` (the FID formula) and :func:`kernel_inception_distance` compare
two sets of feature vectors ``(N, D)``, e.g. from
:meth:`~unigen_sb3.rewards.perceptual.PerceptualDistance.embed`, in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from unigen_sb3.utils import is_int

__all__ = ["frechet_distance", "kernel_inception_distance"]


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
