import numpy as np
import pytest
import trimesh

from app.session.export import export_final_glb, export_sequence_glb, split_mesh, to_gltf_axes
from app.session.gltf import accessor_array, read_glb
from app.session.hand_log import HandRecord


def texture(rgb=(30, 60, 220)) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (32, 32, 1))


def test_final_glb_is_textured_and_in_gltf_axes(tmp_path, kit, uv_layouts):
    right, left = kit.hand(3), kit.hand(3, is_left=True)
    path = export_final_glb(tmp_path / "hand.glb", (right, left), uv_layouts, {False: texture(), True: texture()})
    scene = trimesh.load(path)
    assert set(scene.geometry) == {"right_hand", "left_hand"}
    geom = scene.geometry["right_hand"]
    split = split_mesh(right.faces, uv_layouts[False])
    np.testing.assert_allclose(geom.vertices, to_gltf_axes(right.verts_m[split.vertex_index]), atol=1e-6)
    assert len(geom.faces) == len(right.faces)
    assert geom.vertices[:, 2].max() < 0  # in front of the camera = along glTF's -z
    image = np.asarray(geom.visual.material.baseColorTexture)[..., :3]
    assert (image == texture()).all()
    np.testing.assert_allclose(geom.visual.uv, split.uv, atol=1e-6)


def test_final_glb_without_texture_is_skin_coloured(tmp_path, kit, uv_layouts):
    scene = trimesh.load(export_final_glb(tmp_path / "hand.glb", (kit.hand(0),), uv_layouts, {}))
    geom = scene.geometry["right_hand"]
    assert len(geom.vertices) == 778


def records(kit):
    """Five frames: right hand bending in all, left hand only in frames 1-2."""
    out = []
    for i in range(5):
        hands = (kit.hand(i, bend=0.1 * i),) + ((kit.hand(i, is_left=True),) if i in (1, 2) else ())
        out.append(HandRecord(i, 1000 + 33_000_000 * i, 0, hands))
    return out


def test_sequence_glb_morph_animation_reproduces_every_frame(tmp_path, kit, uv_layouts):
    recs = records(kit)
    path = export_sequence_glb(tmp_path / "seq.glb", recs, uv_layouts, {False: texture()})
    doc, blob = read_glb(path.read_bytes())
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert set(nodes) == {"right_hand", "left_hand"}
    prim = doc["meshes"][nodes["right_hand"]["mesh"]]["primitives"][0]
    assert len(prim["targets"]) == 5 and "TEXCOORD_0" in prim["attributes"]
    left_prim = doc["meshes"][nodes["left_hand"]["mesh"]]["primitives"][0]
    assert "TEXCOORD_0" not in left_prim["attributes"]  # no texture for that side: skin colour
    base = accessor_array(doc, blob, prim["attributes"]["POSITION"])
    split = split_mesh(recs[0].hands[0].faces, uv_layouts[False])
    for i, target in enumerate(prim["targets"]):
        shown = base + accessor_array(doc, blob, target["POSITION"])
        np.testing.assert_allclose(shown, to_gltf_axes(recs[i].hands[0].verts_m[split.vertex_index]), atol=1e-5)
    anim = doc["animations"][0]
    times = accessor_array(doc, blob, anim["samplers"][0]["input"])[:, 0]
    np.testing.assert_allclose(times, np.arange(5) * 0.033, atol=1e-6)
    assert all(s["interpolation"] == "STEP" for s in anim["samplers"])
    by_path = {(c["target"]["node"], c["target"]["path"]): anim["samplers"][c["sampler"]] for c in anim["channels"]}
    left = doc["nodes"].index(nodes["left_hand"])
    scale = accessor_array(doc, blob, by_path[(left, "scale")]["output"])
    assert scale[:, 0].tolist() == [0, 1, 1, 0, 0]  # hidden while the left hand was not seen
    right = doc["nodes"].index(nodes["right_hand"])
    weights = accessor_array(doc, blob, by_path[(right, "weights")]["output"]).reshape(5, 5)
    np.testing.assert_array_equal(weights, np.eye(5))


def test_sequence_glb_loads_in_trimesh_and_respects_the_target_limit(tmp_path, kit, uv_layouts):
    recs = records(kit)
    path = export_sequence_glb(tmp_path / "seq.glb", recs, uv_layouts, {}, max_targets=3)
    doc, blob = read_glb(path.read_bytes())
    right = [n for n in doc["nodes"] if n["name"] == "right_hand"][0]
    assert len(doc["meshes"][right["mesh"]]["primitives"][0]["targets"]) == 3
    scene = trimesh.load(path)
    assert sum(len(g.vertices) for g in scene.geometry.values()) == 2 * 778


def test_sequence_without_hands_is_not_written(tmp_path):
    assert export_sequence_glb(tmp_path / "seq.glb", [HandRecord(0, 0, 0, ())], {}, {}) is None


def test_read_glb_rejects_other_files():
    with pytest.raises(ValueError, match="not a glTF 2.0 binary"):
        read_glb(b"PK\x03\x04" + bytes(20))
