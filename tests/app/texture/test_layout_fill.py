"""The slot layout (texel <-> slot conversions, interpolation matrix) and the hole filling of unseen texels."""

import numpy as np
import torch

from app.texture.fill import dilate_vertex_colours, fill_unseen, vertex_adjacency
from app.texture.layout import from_image, layout_for_model, to_image
from models.hand_model.uv import interpolate_on_texels, nearest_covered_index, texel_geometry

torch.set_num_threads(1)


def test_slots_round_trip_and_outside_fill(hand_model):
    layout = layout_for_model(hand_model, 64)
    covered = layout.covered
    rng = np.random.default_rng(0)
    image = rng.random((64, 64, 3)).astype(np.float32)
    slots = from_image(layout, image)
    assert slots.shape == (covered.sum(), 3)
    back = to_image(layout, slots)
    np.testing.assert_array_equal(back[covered], image[covered])
    iy, ix = nearest_covered_index(covered)
    np.testing.assert_array_equal(back, image[iy, ix])  # outside the charts: the nearest covered texel
    zeroed = to_image(layout, slots, fill=0.0)
    assert float(np.abs(zeroed[~covered]).max()) == 0.0


def test_interp_matrix_reproduces_texel_geometry(hand_model):
    layout = layout_for_model(hand_model, 64)
    verts = hand_model.mano.v_template.detach()
    got = torch.sparse.mm(layout.interp, verts).numpy()
    geom = texel_geometry(layout.vt, layout.ft, 64)
    ref = interpolate_on_texels(geom, layout.faces, verts.numpy())
    np.testing.assert_allclose(got, from_image(layout, ref), atol=1e-6)
    assert 0.0002 < layout.texel_m < 0.01  # a texel is a fraction of a millimetre to millimetres on a hand


def test_dilation_reaches_every_connected_vertex():
    # A path 0 - 1 - 2 - 3 (two triangles sharing edges): colour only vertex 0.
    faces = np.array([[0, 1, 2], [1, 2, 3]])
    adj = vertex_adjacency(faces, 4)
    colour = torch.tensor([[1.0, 0.5, 0.0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    known = torch.tensor([True, False, False, False])
    out = dilate_vertex_colours(colour, known, adj, 10)
    np.testing.assert_allclose(out.numpy(), np.tile([1.0, 0.5, 0.0], (4, 1)))
    partial = dilate_vertex_colours(colour, known, adj, 1)
    assert partial[3].abs().sum() == 0  # two rings away: not reached in one round


def test_fill_unseen_takes_colours_from_the_seen_surface(hand_model):
    layout = layout_for_model(hand_model, 64)
    adj = vertex_adjacency(layout.faces, layout.n_verts)
    rest = hand_model.mano.v_template.detach()
    positions = torch.sparse.mm(layout.interp, rest)  # (N, 3) rest-pose point of every slot
    rgb = torch.zeros(3, layout.n_slots)
    seen = positions[:, 0] < positions[:, 0].median()  # half the hand (along the fingers) was seen
    rgb[:, seen] = torch.tensor([[0.8], [0.6], [0.5]])
    fill = fill_unseen(layout.interp, layout.interp_t, adj, rgb, seen, 64)
    unseen = ~seen
    np.testing.assert_allclose(fill[:, unseen].T.numpy(), np.tile([0.8, 0.6, 0.5], (int(unseen.sum()), 1)),
                               atol=1e-5)
    assert fill_unseen(layout.interp, layout.interp_t, adj, rgb, torch.zeros_like(seen), 64).abs().sum() == 0


def test_front_slots_leave_out_only_slots_facing_away(hand_model, open_scene):
    from app.texture.accumulator import stereo_views
    from app.texture.layout import front_slots
    from app.texture.projection import texel_pixels, vertex_columns

    layout = layout_for_model(hand_model, 64)
    T, K, _ = stereo_views(open_scene.frame.calibration)
    cols, _, _ = vertex_columns(torch.from_numpy(open_scene.mesh.verts_m), torch.from_numpy(layout.faces), T, K)
    cos = texel_pixels(torch.sparse.mm(layout.interp, cols), 2)[3]
    subset = front_slots(layout, cols[:, 3::4].T)
    kept = np.zeros(layout.n_slots, bool)
    kept[subset.slots.numpy()] = True
    assert 0.3 < kept.mean() < 0.8
    assert not (cos.numpy()[:, ~kept] > 0).any()  # everything left out faces away from both views
    sub_cols = torch.sparse.mm(subset.interp, cols)
    np.testing.assert_allclose(sub_cols.numpy(), torch.sparse.mm(layout.interp, cols).numpy()[kept], atol=1e-6)
    assert front_slots(layout, torch.ones(2, layout.n_verts)) is None  # all facing: no subset
