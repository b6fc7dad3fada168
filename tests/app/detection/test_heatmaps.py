import cv2
import numpy as np
import pytest

from app.detection.config import HEATMAP_PRESETS, DetectionConfig
from app.detection.heatmaps import gaussian_kernel, raw_heatmaps, render_heatmaps


@pytest.mark.parametrize("ksize,sigma", sorted(HEATMAP_PRESETS.items()))
def test_kernel_sums_to_one_and_matches_opencv(ksize, sigma):
    k = gaussian_kernel(sigma, ksize)
    assert k.shape == (ksize, ksize)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.unravel_index(k.argmax(), k.shape) == (ksize // 2, ksize // 2)
    g = cv2.getGaussianKernel(ksize, sigma, cv2.CV_64F)
    np.testing.assert_allclose(k, g @ g.T, rtol=1e-10, atol=1e-15)


def test_thesis_presets_and_config_checks():
    assert HEATMAP_PRESETS == {49: 5.0, 127: 15.0}
    cfg = DetectionConfig()
    assert (cfg.heatmap_sigma, cfg.heatmap_kernel, cfg.crop_size, cfg.crop_scale) == (5.0, 49, 224, 2.0)
    with pytest.raises(ValueError, match="heatmap_kernel"):
        DetectionConfig(heatmap_kernel=48)
    with pytest.raises(ValueError, match="odd ksize"):
        gaussian_kernel(5.0, 50)


@pytest.mark.parametrize("ksize,sigma", sorted(HEATMAP_PRESETS.items()))
def test_raw_heatmap_equals_blurred_delta(ksize, sigma):
    """Reference: a unit impulse blurred by cv2.GaussianBlur with zero borders (joint 3 near an edge)."""
    kps = np.full((21, 2), np.nan)
    kps[0] = (111.6, 112.2)
    kps[3] = (5.0, 218.0)
    raw = raw_heatmaps(kps, 224, sigma, ksize)
    for j, (x, y) in ((0, (112, 112)), (3, (5, 218))):
        delta = np.zeros((224, 224))
        delta[y, x] = 1.0
        ref = cv2.GaussianBlur(delta, (ksize, ksize), sigma, borderType=cv2.BORDER_CONSTANT)
        np.testing.assert_allclose(raw[j], ref, atol=1e-12)
    assert raw[0].sum() == pytest.approx(1.0, abs=1e-9)  # fully inside: the whole kernel
    assert raw[3].sum() < 1.0  # clipped at the border
    assert not raw[1].any()


@pytest.mark.parametrize("ksize,sigma", sorted(HEATMAP_PRESETS.items()))
def test_rendered_heatmap_normalisation(ksize, sigma):
    rng = np.random.default_rng(0)
    kps = rng.uniform(20, 200, size=(21, 2))
    kps[7] = (-500.0, 10.0)  # far outside the crop
    kps[8] = np.nan  # missing joint
    hm = render_heatmaps(kps, 224, sigma, ksize)
    assert hm.shape == (21, 224, 224) and hm.dtype == np.float32
    assert hm.min() == -1.0 and hm.max() == 1.0
    for j in (0, 5, 20):
        r, c = int(np.floor(kps[j, 1] + 0.5)), int(np.floor(kps[j, 0] + 0.5))
        assert hm[j, r, c] == pytest.approx(1.0, abs=1e-6)
    assert np.all(hm[7] == -1.0) and np.all(hm[8] == -1.0)
    # The fixed map 2 h / peak - 1 of the unit-sum raw heatmaps.
    peak = gaussian_kernel(sigma, ksize).max()
    np.testing.assert_allclose(hm, 2 * raw_heatmaps(kps, 224, sigma, ksize) / peak - 1, atol=1e-5)


def test_missing_keypoints_give_all_zero_heatmaps():
    hm = render_heatmaps(None, 224, 15.0, 127)
    assert hm.shape == (21, 224, 224) and hm.dtype == np.float32 and not hm.any()
