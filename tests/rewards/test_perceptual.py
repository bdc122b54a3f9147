"""LPIPS distance, weight loading, Fréchet distance, KID and the realism score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms.functional as TF
from skimage import data

from unigen_sb3.rewards import perceptual
from unigen_sb3.rewards.perceptual import (
    LPIPS_ALEXNET_FILENAME,
    PerceptualDistance,
    RealismScorer,
    frechet_distance,
    kernel_inception_distance,
)


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def pd() -> PerceptualDistance:
    return PerceptualDistance("stlpips", device="cpu")


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    img = _to_tensor(data.astronaut())
    return F.interpolate(img, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)


@pytest.fixture(scope="module")
def images(astronaut: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    noisy = (astronaut + 0.1 * torch.randn(astronaut.shape, generator=g)).clamp(0, 1)
    return torch.cat([astronaut, noisy, torch.rand(2, 3, 64, 64, generator=g)])


# --------------------------------------------------------------------------- the network


def test_network_is_frozen_and_in_eval(pd):
    assert pd.backend == "stlpips"
    assert "alex_shift_tolerant.pth" in pd.backend_info
    assert not pd.training and not any(m.training for m in pd.modules())
    assert not any(p.requires_grad for p in pd.parameters())
    pd.train()  # dropout in the linear heads must stay off
    assert not any(m.training for m in pd.modules())
    assert pd.device == torch.device("cpu")


def test_identical_images_have_zero_distance(pd, images):
    d = pd.distance(images, images)
    assert d.shape == (images.shape[0],)
    assert d.abs().max() <= 1e-6


def test_distance_grows_with_blur(pd, astronaut):
    blurred = torch.cat([TF.gaussian_blur(astronaut, [11, 11], [s, s]) for s in (0.5, 1, 2, 3)])
    d = pd.distance(blurred, astronaut)
    assert d[0] > 0.005
    assert (d.diff() > 0).all(), d


def test_distance_grows_with_noise(pd, astronaut):
    noise = torch.randn(astronaut.shape, generator=torch.Generator().manual_seed(1))
    noisy = torch.cat([(astronaut + s * noise).clamp(0, 1) for s in (0.02, 0.05, 0.1, 0.2)])
    d = pd.distance(noisy, astronaut)
    assert d[0] > 0
    assert (d.diff() > 0).all(), d


def test_batch_equals_one_by_one(pd, images, astronaut):
    batched = pd.distance(images, astronaut.expand_as(images))
    single = torch.cat([pd.distance(images[i : i + 1], astronaut) for i in range(len(images))])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_cpu_runs_channels_last_in_chunks_with_the_same_features(pd, images):
    assert pd.chunk_size == perceptual.CPU_CHUNK_SIZE
    conv = next(m for m in pd.trunk.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = torch.cat([images, images.flip(-1), images.flip(-2)])  # 12 images
    small = PerceptualDistance("stlpips", device="cpu", chunk_size=5)
    whole = PerceptualDistance("stlpips", device="cpu", chunk_size=len(batch))
    assert small.chunk_size == 5
    for a, b in zip(small.features(batch), whole.features(batch), strict=True):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    for bad in (0, 2.7, True):
        with pytest.raises(
            ValueError, match=f"chunk_size must be None or an integer >= 1, got {bad}"
        ):
            PerceptualDistance("stlpips", device="cpu", chunk_size=bad)


def test_late_slices_run_in_their_own_larger_chunks(monkeypatch, images):
    # 12 images in groups of 5 (5, 5, 2): in each group the first two slices run in chunks of
    # 3 (cut at the group's end), then the last three slices on the whole group.
    batch = torch.cat([images, images.flip(-1), images.flip(-2)])
    small = PerceptualDistance("stlpips", device="cpu", chunk_size=3)
    calls: list[tuple[str, int]] = []
    for name in ("slice1", "slice3"):
        getattr(small.trunk, name).register_forward_pre_hook(
            lambda m, args, name=name: calls.append((name, args[0].shape[0]))
        )
    monkeypatch.setattr("unigen_sb3.rewards.perceptual.distance.LATE_CHUNK_SIZE", 5)
    got = small.features(batch)
    group = [("slice1", 3), ("slice1", 2), ("slice3", 5)]
    assert calls == [*group, *group, ("slice1", 2), ("slice3", 2)]
    # The same as the package's own trunk forward on the whole batch, normalised.
    with torch.no_grad():
        raw = small.trunk(small._scaled(batch))
    for g, r in zip(got, raw, strict=True):
        assert g.is_contiguous()
        torch.testing.assert_close(g, r / (r.square().sum(1, keepdim=True).sqrt() + 1e-10))
    # max(chunk_size, LATE_CHUNK_SIZE): a chunk_size above it also bounds the late slices.
    calls.clear()
    monkeypatch.setattr("unigen_sb3.rewards.perceptual.distance.LATE_CHUNK_SIZE", 2)
    small.features(batch)
    assert calls == [("slice1", 3), ("slice3", 3)] * 4


def test_cpu_heads_in_row_chunks_equal_one_call(pd, images, astronaut):
    # 44 rows: more than CPU_HEAD_ROWS and not a multiple of it.
    g = torch.Generator().manual_seed(1)
    batch = torch.cat([images.repeat(5, 1, 1, 1), torch.rand(24, 3, 64, 64, generator=g)])
    assert len(batch) > 2 * perceptual.CPU_HEAD_ROWS and len(batch) % perceptual.CPU_HEAD_ROWS
    fa, fb = pd.features(batch), pd.features(batch.flip(0))
    target = pd.features(astronaut)
    for other in (fb, target):
        chunked = pd.distance_from_features(fa, other)
        whole = pd._heads(fa, other)  # all rows in one call
        torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
        assert chunked.shape == (44,) and chunked.min() >= 0 and chunked.max() > 0.1


def test_fixed_rows_views_full_blocks_and_zero_pads_the_rest():
    from unigen_sb3.rewards.perceptual.distance import fixed_rows

    x = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(10, 2, 3) + 1
    full = fixed_rows(x, 2, 6, 4)  # a whole block of a contiguous tensor: a view, no copy
    assert full.data_ptr() == x[2].data_ptr() and torch.equal(full, x[2:6])
    part = fixed_rows(x, 8, 10, 4)  # the last, partial block: its rows, then zeros
    assert part.shape == (4, 2, 3) and part.is_contiguous()
    assert torch.equal(part[:2], x[8:10]) and not part[2:].any()
    strided = x.transpose(1, 2)  # not contiguous: copied into a contiguous block
    block = fixed_rows(strided, 0, 4, 4)
    assert block.is_contiguous() and torch.equal(block, strided[:4])
    assert block.data_ptr() != strided.data_ptr()


def test_cached_target_features_equal_two_image_path(pd, images, astronaut):
    target = pd.features(astronaut)  # batch 1, broadcast against the batch
    cached = pd.distance_from_features(pd.features(images), target)
    paired = pd.distance(images, astronaut.expand_as(images).contiguous())
    torch.testing.assert_close(cached, paired, atol=1e-6, rtol=0)
    assert cached[2:].min() > 0.1  # random images are far from the photo


def test_equals_stlpips_package_forward(pd, images, astronaut):
    from stlpips_pytorch import stlpips

    with perceptual._quiet():
        ref = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False).eval()
    other = images.flip(0)
    with torch.no_grad():
        expected = ref(images, other, normalize=True).flatten()
    torch.testing.assert_close(pd.distance(images, other), expected, atol=1e-5, rtol=0)
    assert expected.max() > 0.1


def test_features_and_embedding_shapes(pd, images):
    feats = pd.features(images)
    assert [f.shape[1] for f in feats] == [64, 192, 384, 256, 256]
    assert not any(f.requires_grad for f in feats)
    # Unit-normalised along channels (where the activation is non-zero).
    norms = feats[2].square().sum(dim=1).sqrt()
    assert torch.allclose(norms[norms > 0.5], torch.tensor(1.0), atol=1e-5)
    emb = pd.embed(images)
    assert emb.shape == (images.shape[0], 1152)
    torch.testing.assert_close(emb, pd.embed_from_features(feats))


def test_bad_feature_lists_raise(pd, images):
    feats = pd.features(images)
    with pytest.raises(ValueError, match="5 layer features"):
        pd.distance_from_features(feats[:3], feats)
    with pytest.raises(ValueError, match="batch 1 or the batch of fa"):
        pd.distance_from_features(feats, [f[:2] for f in feats])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        pd.features(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="backend must be one of"):
        PerceptualDistance("vgg")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(pd, images):
    gpu = PerceptualDistance("stlpips", device="cuda")
    out = gpu.distance(images.cuda(), images.flip(0).cuda())
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), pd.distance(images, images.flip(0)), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- weight loading


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints" / LPIPS_ALEXNET_FILENAME


def test_missing_lpips_backbone_names_the_path(empty_hub):
    with pytest.raises(FileNotFoundError, match=r"alexnet-owt-7be5be79\.pth") as info:
        PerceptualDistance("lpips", device="cpu")
    assert str(empty_hub) in str(info.value)
    assert "stlpips" in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        PerceptualDistance("lpips", device="cpu", lpips_weights=empty_hub.parent / "nowhere.pth")


def test_auto_falls_back_to_stlpips_without_lpips_backbone(empty_hub):
    assert PerceptualDistance("auto", device="cpu").backend == "stlpips"


def _fake_alexnet_file(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision AlexNet state dict (random values: no network here) saved where lpips looks."""
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_lpips_backend_loads_trunk_from_local_file(empty_hub):
    import lpips

    state = _fake_alexnet_file(empty_hub)
    pd = PerceptualDistance("auto", device="cpu")
    assert pd.backend == "lpips"
    assert str(empty_hub) in pd.backend_info
    trunk_module: Any = pd.net.net  # the lpips package's alexnet (torchvision indices)
    torch.testing.assert_close(trunk_module.slice1[0].weight, state["features.0.weight"])
    torch.testing.assert_close(getattr(trunk_module.slice5, "10").bias, state["features.10.bias"])
    # Same numbers as the lpips package's own forward with the same trunk.
    with perceptual._quiet():
        ref = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    trunk = {k: v for k, v in state.items() if k.startswith("features.")}
    for name, p in ref.net.named_parameters():
        p.data.copy_(trunk["features." + name.split(".", 1)[1]])
    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(3, 3, 64, 64, generator=g), torch.rand(3, 3, 64, 64, generator=g)
    with torch.no_grad():
        expected = ref(x, y, normalize=True).flatten()
    torch.testing.assert_close(pd.distance(x, y), expected, atol=1e-5, rtol=0)


def test_incomplete_trunk_file_is_refused(tmp_path):
    path = tmp_path / "partial.pth"
    state = _fake_alexnet_file(path)
    del state["features.10.weight"]
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r"not loaded.*net\.slice5\.10\.weight"):
        PerceptualDistance("lpips", device="cpu", lpips_weights=path)


def test_incomplete_stlpips_file_is_refused(monkeypatch):
    real_load = perceptual.networks._load_file

    def drop_a_linear_layer(path):
        state = dict(real_load(path))
        del state["lin3.model.1.weight"]
        return state

    monkeypatch.setattr("unigen_sb3.rewards.perceptual.networks._load_file", drop_a_linear_layer)
    with pytest.raises(RuntimeError, match=r"lin3\.model\.1\.weight.*random weights"):
        PerceptualDistance("stlpips", device="cpu")


# --------------------------------------------------------------------------- distributions


def _scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(sa @ sb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * covmean))


def test_frechet_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6))
    a = rng.normal(size=(300, 6)) @ mix
    b = rng.normal(size=(250, 6)) @ (mix + 0.3 * rng.normal(size=(6, 6))) + 0.5
    expected = _scipy_frechet(a, b)
    assert expected > 1.0
    # float64 throughout; agreement to 1e-8 relative.
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(b).float()) == (
        pytest.approx(expected, rel=1e-4)
    )


def test_frechet_mean_shift_and_identity():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 100))  # N < D: singular covariances must still work
    shift = np.full(100, 0.1)
    # Exact identities (same covariance): FD = 0 and FD = |shift|^2, to round-off.
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    # Different covariances, N < D: scipy's sqrtm of the singular product still agrees.
    b = 1.3 * rng.normal(size=(60, 100)) + 0.2
    assert frechet_distance(a, b) == pytest.approx(_scipy_frechet(a, b), rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], a)
    with pytest.raises(ValueError, match=r"D=100.*D=99"):
        frechet_distance(a, a[:, :99])


def _numpy_unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]

    def k(u, v):
        return (float(u @ v) / d + 1.0) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_hand_written_estimator():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.7
    # subset_size >= N: every subset is the whole set (MMD^2 ignores order), so std = 0.
    mean, std = kernel_inception_distance(x, y, subset_size=10, n_subsets=3)
    assert mean == pytest.approx(_numpy_unbiased_mmd2(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_separates_distributions_and_is_deterministic(monkeypatch):
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(300, 16, generator=g), torch.randn(300, 16, generator=g)
    same = kernel_inception_distance(a, b, subset_size=100, n_subsets=20)
    shifted = kernel_inception_distance(a, b + 0.5, subset_size=100, n_subsets=20)
    assert abs(same[0]) < 2 * same[1]  # zero within the subset noise
    assert shifted[0] > 20 * abs(same[0]) and shifted[0] > 5 * shifted[1]
    assert kernel_inception_distance(a, b, subset_size=100, n_subsets=20) == same
    assert kernel_inception_distance(a, b, subset_size=100, n_subsets=20, seed=1) != same
    # The per-subset path (for large N) gives the same numbers as the Gram-matrix path.
    monkeypatch.setattr("unigen_sb3.rewards.perceptual.distributions._KID_GRAM_LIMIT", 0)
    lo = kernel_inception_distance(a, b, subset_size=100, n_subsets=20)
    assert lo == pytest.approx(same, rel=1e-9, abs=1e-12)


def test_kid_refuses_bad_subset_arguments():
    a = torch.randn(10, 4)
    with pytest.raises(ValueError, match=r"must be integers; got 5\.0, 100 and 0"):
        kernel_inception_distance(a, a, subset_size=5.0)
    with pytest.raises(ValueError, match=r"must be integers; got 1000, 100 and 0\.5"):
        kernel_inception_distance(a, a, seed=0.5)
    with pytest.raises(ValueError, match="need subset_size >= 2 and n_subsets >= 1; got 1 and 3"):
        kernel_inception_distance(a, a, subset_size=1, n_subsets=3)


@pytest.fixture(scope="module")
def photo_embeddings(pd: PerceptualDistance) -> torch.Tensor:
    """Embeddings of 64x64 patches of colour photos (no large dark areas)."""
    rng = np.random.default_rng(0)
    patches = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        img = F.interpolate(
            _to_tensor(getattr(data, name)()), scale_factor=0.5, mode="bilinear", antialias=True
        )[0]
        h, w = img.shape[1:]
        for _ in range(16):
            i, j = rng.integers(0, h - 64), rng.integers(0, w - 64)
            patches.append(img[:, i : i + 64, j : j + 64])
    emb = pd.embed(torch.stack(patches))
    perm = torch.randperm(len(patches), generator=torch.Generator().manual_seed(0))
    return emb[perm]


def test_realism_scorer_ranks_photos_above_noise_and_blank(pd, photo_embeddings):
    ref, held_out = photo_embeddings[:64], photo_embeddings[64:]
    scorer = RealismScorer(ref, shrinkage=0.1)  # N=64 < D=1152
    g = torch.Generator().manual_seed(5)
    noise = pd.embed(torch.rand(8, 3, 64, 64, generator=g))
    blank = pd.embed(torch.stack([torch.full((3, 64, 64), v) for v in (0.5, 1.0)]))
    real_s, noise_s, blank_s = scorer.score(held_out), scorer.score(noise), scorer.score(blank)
    for s in (real_s, noise_s, blank_s):
        assert ((s >= 0) & (s <= 1)).all()
    assert real_s.median() > 0.5
    assert noise_s.max() < 0.01 and blank_s.max() < 0.01
    assert real_s.median() > noise_s.max()
    # The map is monotone: a larger Mahalanobis distance never scores higher.
    m2 = scorer.mahalanobis2(torch.cat([held_out, noise]))
    scores = scorer.score(torch.cat([held_out, noise]))
    order = m2.argsort()
    assert (scores[order].diff() <= 1e-7).all()
    # Its FID-like counterpart agrees on the ranking.
    assert frechet_distance(ref, held_out) < frechet_distance(ref, noise)


def test_realism_scorer_validation(photo_embeddings):
    with pytest.raises(ValueError, match="at least 4 samples"):
        RealismScorer(photo_embeddings[:3])
    with pytest.raises(ValueError, match="shrinkage must be in"):
        RealismScorer(photo_embeddings, shrinkage=1.5)
    with pytest.raises(ValueError, match="singular"):
        RealismScorer(photo_embeddings, shrinkage=0.0)
    scorer = RealismScorer(photo_embeddings.numpy())
    with pytest.raises(ValueError, match=r"\(B, 1152\)"):
        scorer.score(photo_embeddings[:, :10])
    assert scorer.device == torch.device("cpu")


def _numpy_shrunk_fit(feats: np.ndarray, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse shrunk covariance as the RealismScorer docstring states them.

    ``S = (1 - s) C + diag(s var + ridge)``, ``C`` the unbiased sample covariance (as
    ``torch.cov``), ``var`` its diagonal and ``ridge = 1e-6 * mean(var)``.
    """
    cov = np.cov(feats, rowvar=False)
    var = np.diag(cov)
    shrunk = (1 - shrinkage) * cov + np.diag(shrinkage * var + 1e-6 * var.mean())
    return feats.mean(axis=0), np.linalg.inv(shrunk)


def _scipy_m2(rows: np.ndarray, mean: np.ndarray, inv_cov: np.ndarray) -> np.ndarray:
    return np.array([scipy.spatial.distance.mahalanobis(r, mean, inv_cov) ** 2 for r in rows])


@pytest.mark.parametrize("shrinkage", [0.1, 0.3])
def test_realism_scorer_matches_independent_mahalanobis_and_calibration(shrinkage):
    """Known answers for the realism score on small correlated features (N=40, D=6).

    Pins, against numpy/scipy written from the docstring: the shrunk, ridged covariance
    and its squared Mahalanobis distance (scipy.spatial.distance.mahalanobis ** 2), the
    held-out calibration ``reference_m2`` and the map ``exp(-max(0, m2 / m2_ref - 1))``.
    Everything is float64 except the float32 score, so the tolerances are 1e-9 relative
    (a different inverse route: Cholesky solve vs np.linalg.inv) and 1e-6 for the score.
    """
    rng = np.random.default_rng(7)
    mix = rng.normal(size=(6, 6))
    ref = rng.normal(size=(40, 6)) @ mix + 2.0  # correlated: the shrinkage weights matter
    # Query rows from typical (score 1) to several times the typical distance (score in (0, 1)).
    query = ref.mean(axis=0) + np.linspace(0.2, 3.0, 12)[:, None] * (rng.normal(size=(12, 6)) @ mix)
    scorer = RealismScorer(torch.from_numpy(ref), shrinkage=shrinkage)

    mean, inv_cov = _numpy_shrunk_fit(ref, shrinkage)
    expected_m2 = _scipy_m2(query, mean, inv_cov)
    np.testing.assert_allclose(scorer.mahalanobis2(query).numpy(), expected_m2, rtol=1e-9)

    # Calibration: fit on each half of the documented fixed permutation, measure the other.
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0)).numpy()
    first, second = ref[perm[:20]], ref[perm[20:]]
    held_out = np.concatenate(
        [
            _scipy_m2(second, *_numpy_shrunk_fit(first, shrinkage)),
            _scipy_m2(first, *_numpy_shrunk_fit(second, shrinkage)),
        ]
    )
    # torch.median of an even count is the lower of the two middle values.
    expected_ref = np.sort(held_out)[(len(held_out) - 1) // 2]
    assert scorer.reference_m2 == pytest.approx(expected_ref, rel=1e-9)

    expected_score = np.exp(-np.maximum(0.0, expected_m2 / expected_ref - 1.0))
    # The query spans both branches of the clamp and scores well inside (0, 1).
    assert (expected_score == 1.0).any()
    assert ((expected_score > 0.05) & (expected_score < 0.9)).any()
    np.testing.assert_allclose(scorer.score(query).numpy(), expected_score, rtol=1e-6, atol=1e-7)


def test_scores_do_not_depend_on_the_batch(pd: PerceptualDistance) -> None:
    """An image's features, distance and realism are the same whatever batch computes them:
    a batch of one (run as two copies), a partial last chunk of one (65 = 64 + 1 in the late
    slices), and subsets of every size up to 17 (partial rows of the fixed-size head calls).
    Lazy scoring relies on it to pay the dense schedule's rewards bit for bit."""
    from unigen_sb3.envs.env import shared_reward_computer

    g = torch.Generator().manual_seed(3)
    x = torch.rand(65, 3, 36, 36, generator=g)
    y = torch.rand(65, 3, 36, 36, generator=g)
    fx, fy = pd.features(x), pd.features(y)
    dist = pd.distance_from_features(fx, fy)
    realism = shared_reward_computer("stlpips", "cpu", 36).realism
    assert realism is not None
    m2 = realism.mahalanobis2(pd.embed_from_features(fx))
    for k in [*range(1, 18), 65]:
        idx = torch.randperm(65, generator=g)[:k]
        part = pd.features(x[idx])
        for whole, sub in zip(fx, part, strict=True):
            assert torch.equal(whole[idx], sub), f"features of a batch of {k}"
        sub_dist = pd.distance_from_features(part, [f[idx] for f in fy])
        assert torch.equal(dist[idx], sub_dist), f"distances of a batch of {k}"
        assert torch.equal(m2[idx], realism.mahalanobis2(pd.embed_from_features(part)))
