"""MSE/PSNR/SSIM against scikit-image, identical images without inf, memorisation check."""

import math
import warnings

import numpy as np
import pytest
from skimage.metrics import mean_squared_error, structural_similarity

from evaluation import metrics


def noisy_pairs(n, h, w, c=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    noise = rng.integers(-50, 51, a.shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("shape", [(3, 64, 48), (2, 7, 9), (2, 80, 33)])
@pytest.mark.parametrize(
    ("gaussian", "sample_cov"), [(False, True), (False, False), (True, True), (True, False)]
)
def test_ssim_batch_matches_skimage(shape, gaussian, sample_cov):
    if gaussian and min(shape[1:]) < 11:
        pytest.skip("the gaussian window is 11 px")
    a, b = noisy_pairs(*shape)
    ours = metrics.ssim_batch(a, b, gaussian_weights=gaussian, use_sample_covariance=sample_cov)
    ref = [
        structural_similarity(
            a[i],
            b[i],
            channel_axis=-1,
            data_range=255,
            gaussian_weights=gaussian,
            use_sample_covariance=sample_cov,
        )
        for i in range(len(a))
    ]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_ssim_grey_single_channel_and_one_pair():
    a, b = noisy_pairs(1, 40, 40, c=1, seed=3)
    ref = structural_similarity(a[0, ..., 0], b[0, ..., 0], data_range=255)
    assert metrics.ssim_batch(a[0], b[0])[0] == pytest.approx(ref, abs=1e-6)


def test_mse_and_psnr_by_hand():
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 3
    # one value differs by 3 among 8*8*3 = 192: MSE = 9 / 192 = 0.046875
    # PSNR = 10 log10(255^2 / 0.046875) = 10 log10(1387200) = 61.4214 dB
    (m,) = metrics.pair_metrics(a, b)
    assert m.mse == pytest.approx(9 / 192)
    assert m.mse == pytest.approx(mean_squared_error(a, b))
    assert m.psnr == pytest.approx(10 * math.log10(65025 / (9 / 192)))
    assert m.psnr == pytest.approx(61.4214, abs=1e-4)
    assert not m.identical


def test_identical_images_no_inf_no_warning():
    a, _ = noisy_pairs(2, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skimage's PSNR would warn (divide by zero) and give inf
        results = metrics.pair_metrics(a, a.copy())
        summary = metrics.summarise([*results, *metrics.pair_metrics(*noisy_pairs(1, 16, 16))])
    assert all(r.identical and r.psnr is None and r.mse == 0 and r.ssim == 1.0 for r in results)
    # PSNR mean is over the one non-identical pair; the two identical pairs are counted apart.
    assert summary.n_pairs == 3 and summary.n_identical == 2
    assert summary.psnr_mean is not None and math.isfinite(summary.psnr_mean)
    assert summary.psnr_sd is None


def test_pair_metrics_equal_skimage_functions():
    from skimage.metrics import peak_signal_noise_ratio

    a, b = noisy_pairs(2, 32, 32, seed=5)
    for i, ours in enumerate(metrics.pair_metrics(a, b)):
        assert ours.mse == pytest.approx(mean_squared_error(a[i], b[i]))
        assert ours.psnr == pytest.approx(peak_signal_noise_ratio(a[i], b[i], data_range=255))
        ssim = structural_similarity(a[i], b[i], channel_axis=-1, data_range=255)
        assert ours.ssim == pytest.approx(ssim, abs=1e-6)


def test_too_small_for_the_ssim_window_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 7x7 pixels"):
        metrics.pair_metrics(np.zeros((6, 8, 3), np.uint8), np.ones((6, 8, 3), np.uint8))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.pair_metrics(np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8))


def texture(seed, size=96):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    return np.kron(small, np.ones((size // 12, size // 12, 1), dtype=np.uint8))


def test_memorisation_finds_the_near_copy():
    training = [texture(s) for s in range(5)]
    rng = np.random.default_rng(9)
    near = np.clip(training[2].astype(int) + rng.integers(-8, 9, training[2].shape), 0, 255)
    generated = [near.astype(np.uint8), texture(100)]
    g_thumbs = [metrics.grey_thumbnail(g) for g in generated]
    t_thumbs = [metrics.grey_thumbnail(t) for t in training]
    matches = metrics.nearest_training(
        g_thumbs,
        t_thumbs,
        generated_hashes=[metrics.dhash(g) for g in generated],
        training_hashes=[metrics.dhash(t) for t in training],
    )
    assert matches[0].index == 2 and matches[0].near_copy
    assert matches[0].ssim > 0.9 and matches[0].hash_distance <= 4
    assert not matches[1].near_copy and matches[1].ssim < 0.5
    # the similarity is SSIM of the grey thumbnails, as skimage computes it
    ref = structural_similarity(g_thumbs[0], t_thumbs[2], data_range=255)
    assert matches[0].ssim == pytest.approx(ref, abs=1e-6)
    assert metrics.nearest_training(g_thumbs, []) == [None, None]


def test_as_rgb_array_resizes_to_the_generated_frame():
    from PIL import Image

    photo = Image.new("RGBA", (300, 200), (10, 20, 30, 255))
    arr = metrics.as_rgb_array(photo, (64, 64))
    assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8
    assert tuple(arr[0, 0]) == (10, 20, 30)


def test_reference_rows_pair_every_other_image_with_every_original():
    rng = np.random.default_rng(1)
    originals = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2)]
    others = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    rows = metrics.reference_summaries(originals, others)

    assert rows["others"].n_pairs == 6 and rows["flat"].n_pairs == 2
    expected = np.mean([mean_squared_error(o, t) for o in originals for t in others])
    assert math.isclose(rows["others"].mse_mean, expected, rel_tol=1e-12)
    # The flat image is each original's own mean colour: its MSE is the pixel variance.
    flat = metrics.flat_like(originals[0])
    assert flat.shape == originals[0].shape and len(np.unique(flat.reshape(-1, 3), axis=0)) == 1
    assert np.abs(flat[0, 0] - originals[0].reshape(-1, 3).mean(axis=0)).max() <= 0.5
    with pytest.raises(ValueError, match="at least one original"):
        metrics.reference_summaries([], others)
