"""The texture stage as the pipeline uses it: TextureMap output, confidence counts, fill, reset, resume, and
clear errors for meshes, sides and calibrations that do not fit."""

import dataclasses

import numpy as np
import pytest
import torch

from app.texture.accumulator import TextureAccumulator, TextureMismatchError, build_texture_accumulator
from app.texture.config import TextureConfig
from app.texture.layout import from_image, to_image
from app.types import HandState, StereoFrame, TextureMap
from calibration.presets import preset_rig
from calibration.rig import make_stereo

torch.set_num_threads(1)


@pytest.fixture(params=["numba", "torch"])
def acc(hand_model, request):
    """Both implementations (TextureConfig.kernels) go through every test here."""
    return build_texture_accumulator(TextureConfig(size=128, kernels=request.param), hand_model)


def test_update_gives_a_filled_texture_map_with_counts(acc, open_scene):
    tex = acc.update(open_scene.mesh, open_scene.frame)
    assert isinstance(tex, TextureMap) and tex.n_updates == 1
    assert tex.rgb.shape == (128, 128, 3) and tex.rgb.dtype == np.float32
    assert tex.weight.shape == (128, 128) and set(np.unique(tex.weight)) == {0.0, 1.0}
    covered = acc.layout.covered
    assert not np.any(tex.weight[~covered])
    assert 0.2 < (tex.weight[covered] > 0).mean() < 0.9
    # Every texel, seen or not, carries skin (the fill): nothing black for the renderer to show as a hole.
    assert tex.rgb.min() >= 0.0 and tex.rgb.max() <= 1.0
    assert tex.rgb.sum(axis=2).min() > 0.3
    # Outside the charts every texel copies its nearest covered texel (bilinear lookups at seams see skin).
    np.testing.assert_array_equal(tex.rgb, to_image(acc.layout, from_image(acc.layout, tex.rgb)))
    tex2 = acc.update(open_scene.mesh, open_scene.frame)
    assert tex2.n_updates == 2 and tex2.weight.max() == 2.0
    seen = tex2.weight > 0
    np.testing.assert_allclose(tex2.rgb[seen], tex.rgb[seen], atol=1e-5)  # the same view again: no change
    assert tex.weight.max() == 1.0  # the first TextureMap was not changed by the second update
    band = np.zeros(128 * 128, bool)
    band[acc.layout.band] = True
    near = band.reshape(128, 128) | acc.layout.covered
    np.testing.assert_array_equal(tex2.rgb[near], to_image(acc.layout, from_image(acc.layout, tex2.rgb))[near])


def test_published_texture_follows_the_state(acc, open_scene, fist_scene):
    """The image is rewritten only where an update can change it; it must still equal the state in full."""
    acc.update(open_scene.mesh, open_scene.frame)
    acc.update(fist_scene.mesh, fist_scene.frame)
    tex = acc.update(open_scene.mesh, open_scene.frame)
    st = acc.state
    shown = acc.kernels.slots(st.rgb, acc._fill, st.count).T.numpy()
    band = np.zeros(128 * 128, bool)
    band[acc.layout.band] = True
    near = band.reshape(128, 128) | acc.layout.covered
    np.testing.assert_array_equal(tex.rgb[near], to_image(acc.layout, shown)[near])
    np.testing.assert_array_equal(tex.weight, to_image(acc.layout, st.count.numpy(), fill=0.0))


def test_reset_forgets(acc, open_scene):
    acc.update(open_scene.mesh, open_scene.frame)
    acc.reset()
    tex = acc.texture()
    assert tex.n_updates == 0 and not tex.weight.any() and not tex.rgb.any()
    assert acc.state.count.sum() == 0


def test_load_resumes_from_a_saved_texture(acc, hand_model, open_scene):
    saved = acc.update(open_scene.mesh, open_scene.frame)
    other = build_texture_accumulator(TextureConfig(size=128, compile=False), hand_model)
    other.load(saved)
    again = other.texture()
    np.testing.assert_allclose(again.rgb, saved.rgb, atol=1e-6)
    np.testing.assert_array_equal(again.weight, saved.weight)
    assert again.n_updates == 1
    with pytest.raises(TextureMismatchError, match="TextureConfig.size"):
        build_texture_accumulator(TextureConfig(size=64, compile=False), hand_model).load(saved)


def test_mismatched_meshes_are_refused(acc, open_scene):
    m = open_scene.mesh
    wrong_faces = dataclasses.replace(m, faces=m.faces[:, ::-1].copy())
    with pytest.raises(TextureMismatchError, match="hand model"):
        acc.update(wrong_faces, open_scene.frame)
    fewer = dataclasses.replace(m, verts_m=m.verts_m[:-1].copy())
    with pytest.raises(TextureMismatchError, match="vertices"):
        acc.update(fewer, open_scene.frame)
    left_state = HandState(m.state.pose, m.state.shape, m.state.transl_m, True)
    with pytest.raises(TextureMismatchError, match="one accumulator per side"):
        acc.update(dataclasses.replace(m, state=left_state), open_scene.frame)
    assert acc.n_updates == 0


def test_distorted_images_are_refused(acc, open_scene):
    rig = preset_rig("zed-mini", "640x360")
    K, w_h = rig.left.K, rig.left.size_wh
    dist = np.array([-0.1, 0.01, 0.0, 0.0, 0.0])
    calib = make_stereo(K, dist, K, dist, np.eye(3), np.array([-0.063, 0.0, 0.0]), w_h, rectified=False)
    frame = StereoFrame(0, 0, open_scene.frame.left, open_scene.frame.right, calib)
    with pytest.raises(TextureMismatchError, match="rectify"):
        acc.update(open_scene.mesh, frame)


def test_hand_behind_the_camera_writes_nothing(acc, open_scene):
    m = open_scene.mesh
    behind = dataclasses.replace(m, verts_m=(m.verts_m - np.array([0, 0, 0.5], np.float32)).astype(np.float32))
    tex = acc.update(behind, open_scene.frame)
    assert tex.n_updates == 1 and not tex.weight.any()
    # Half in front, half behind the left camera's near plane: the left view is skipped, the right one too (the
    # rig shares z), so again nothing is written and nothing raises.
    straddle = dataclasses.replace(m, verts_m=(m.verts_m - np.array([0, 0, m.verts_m[:, 2].mean()],
                                                                    np.float32)).astype(np.float32))
    assert not acc.update(straddle, open_scene.frame).weight.any()


def test_a_mesh_with_nan_writes_nothing(acc, open_scene):
    verts = open_scene.mesh.verts_m.copy()
    verts[5] = np.nan
    tex = acc.update(dataclasses.replace(open_scene.mesh, verts_m=verts), open_scene.frame)
    assert tex.n_updates == 1 and not tex.weight.any()


def test_hand_partly_outside_the_image(acc, open_scene):
    m = open_scene.mesh
    shifted = dataclasses.replace(m, verts_m=(m.verts_m + np.array([0.17, 0, 0], np.float32)).astype(np.float32))
    tex = acc.update(shifted, open_scene.frame)  # the hand crosses the right image border
    assert tex.weight.any() and np.isfinite(tex.rgb).all()


def test_config_is_checked():
    with pytest.raises(ValueError, match="visibility"):
        TextureConfig(visibility="magic")
    with pytest.raises(ValueError, match="size"):
        TextureConfig(size=4)


def test_accumulator_needs_a_uv_layout(hand_model):
    class NoUV:
        uv = None
        name = "mano"

    with pytest.raises(ValueError, match="no UV layout"):
        TextureAccumulator(TextureConfig(size=64, compile=False), NoUV())


def test_warm_up_leaves_an_empty_texture(acc):
    acc.warm_up(preset_rig("zed-mini", "640x360"))
    tex = acc.texture()
    assert tex.n_updates == 0 and not tex.weight.any()
