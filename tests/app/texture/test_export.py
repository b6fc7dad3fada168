"""Export: the .glb reloads in trimesh with the same UVs and texture, holds glTF's top-left UV origin in its
bytes, the OBJ + MTL + PNG round-trips, and the command line exports from a texture file or a session."""

import json
import struct

import numpy as np
import pytest
import trimesh
from PIL import Image

from app.texture.__main__ import main, parse_shape
from app.texture.export import export_glb, export_obj, rest_hand
from app.texture.io import TextureFile, layout_id, save_texture_file
from app.types import TextureMap
from models.hand_model.uv import unweld


@pytest.fixture(scope="module")
def hand(hand_model):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return rest_hand(hand_model, np.linspace(-1, 1, 10).astype(np.float32), image)


def glb_chunks(data: bytes) -> tuple[dict, bytes]:
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_len, json_type = struct.unpack("<I4s", data[12:20])
    assert json_type == b"JSON"
    doc = json.loads(data[20:20 + json_len])
    bin_len, bin_type = struct.unpack("<I4s", data[20 + json_len:28 + json_len])
    assert bin_type == b"BIN\x00"
    return doc, data[28 + json_len:28 + json_len + bin_len]


def accessor_array(doc: dict, blob: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    assert acc["componentType"] == 5126  # float32
    width = {"VEC2": 2, "VEC3": 3}[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(blob, np.float32, acc["count"] * width, start).reshape(-1, width)


def test_glb_reloads_with_the_same_uvs_and_texture(tmp_path, hand):
    path = export_glb(tmp_path / "hand.glb", hand)
    scene = trimesh.load(path, process=False)
    (mesh,) = scene.geometry.values()
    u = unweld(hand.faces, hand.ft)
    np.testing.assert_allclose(mesh.vertices, hand.verts_m[u.vertex_index], atol=1e-6)
    np.testing.assert_array_equal(mesh.faces, u.faces)
    np.testing.assert_allclose(mesh.visual.uv, hand.vt[u.uv_index], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(mesh.visual.material.baseColorTexture.convert("RGB")), hand.image)


def test_glb_stores_gltf_top_left_uv_origin(tmp_path, hand):
    """The one boundary where the UV convention changes: TEXCOORD_0 = (u, 1 - v), and the embedded PNG is the
    texture array as it is (row 0 = top)."""
    doc, blob = glb_chunks(export_glb(tmp_path / "hand.glb", hand).read_bytes())
    prim = doc["meshes"][0]["primitives"][0]
    texcoord = accessor_array(doc, blob, prim["attributes"]["TEXCOORD_0"])
    u = unweld(hand.faces, hand.ft)
    ours = hand.vt[u.uv_index]
    np.testing.assert_allclose(texcoord[:, 0], ours[:, 0], atol=1e-6)
    np.testing.assert_allclose(texcoord[:, 1], 1.0 - ours[:, 1], atol=1e-6)
    image_view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    start = image_view.get("byteOffset", 0)
    png = blob[start:start + image_view["byteLength"]]
    import io

    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), hand.image)


def test_obj_round_trip(tmp_path, hand):
    written = export_obj(tmp_path / "hand.obj", hand)
    assert sorted(p.name for p in written) == ["hand.mtl", "hand.obj", "hand.png"]
    assert "map_Kd hand.png" in (tmp_path / "hand.mtl").read_text()
    loaded = trimesh.load(tmp_path / "hand.obj", process=False)
    assert len(loaded.faces) == len(hand.faces)
    np.testing.assert_allclose(loaded.vertices[loaded.faces], hand.verts_m[hand.faces], atol=1e-6)
    np.testing.assert_allclose(loaded.visual.uv[loaded.faces], hand.vt[hand.ft], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(loaded.visual.material.image.convert("RGB")), hand.image)
    assert not list(tmp_path.glob("*.tmp"))


def test_rest_hand_uses_the_shape(hand_model, hand):
    mean = rest_hand(hand_model, np.zeros(10, np.float32), hand.image)
    assert np.abs(mean.verts_m - hand.verts_m).max() > 1e-3


def saved_texture(tmp_path, hand_model, name="texture_right.npz", is_left=False):
    vt, ft = (t.numpy() for t in hand_model.uv)
    rgb = np.full((32, 32, 3), 0.5, np.float32)
    tf = TextureFile(TextureMap(rgb, np.ones((32, 32), np.float32), 3), np.full(10, 0.5, np.float32), is_left,
                     "open", layout_id(vt, ft))
    return save_texture_file(tmp_path / name, tf)


def test_cli_exports_from_a_texture_file_and_a_session(tmp_path, hand_model, capsys):
    session = tmp_path / "session"
    session.mkdir()
    tex = saved_texture(session, hand_model)
    assert main(["export", "--texture", str(tex), "--out", str(tmp_path / "a.glb")]) == 0
    assert (tmp_path / "a.glb").is_file()
    assert main(["export", "--session", str(session), "--out", str(tmp_path / "b.obj")]) == 0
    assert {p.name for p in tmp_path.glob("b.*")} == {"b.obj", "b.mtl", "b.png"}
    shape = ",".join(["0.3"] * 10)
    assert main(["export", "--session", str(session), "--shape", shape, "--out", str(tmp_path / "c.glb")]) == 0
    out = capsys.readouterr().out
    assert "a.glb" in out and "b.obj" in out


def test_cli_reads_a_session_of_png_and_weights(tmp_path, capsys):
    session = tmp_path / "s"
    session.mkdir()
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(session / "texture_right.png")
    np.save(session / "texture_right_weight.npy", np.ones((32, 32), np.float32))
    assert main(["export", "--session", str(session), "--out", str(tmp_path / "h.glb")]) == 0


def test_cli_errors_name_the_problem(tmp_path, hand_model, capsys):
    assert main(["export", "--session", str(tmp_path / "missing"), "--out", str(tmp_path / "x.glb")]) == 2
    assert "no such directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "--session", str(empty), "--out", str(tmp_path / "x.glb")]) == 2
    assert "no texture found" in capsys.readouterr().err
    tex = saved_texture(tmp_path, hand_model)
    assert main(["export", "--texture", str(tex), "--out", str(tmp_path / "x.fbx")]) == 2
    assert "FILE.glb or FILE.obj" in capsys.readouterr().err
    left = saved_texture(tmp_path, hand_model, "l.npz", is_left=True)
    assert main(["export", "--texture", str(left), "--out", str(tmp_path / "l.glb")]) == 2  # left model's layout
    assert "UV layout" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"\x00" * 100)
    assert main(["export", "--texture", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "x.glb")]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_parse_shape(tmp_path):
    np.testing.assert_allclose(parse_shape(",".join(str(i) for i in range(10))), np.arange(10))
    np.save(tmp_path / "s.npy", np.ones(10))
    np.testing.assert_allclose(parse_shape(str(tmp_path / "s.npy")), np.ones(10))
    with pytest.raises(ValueError, match="10 finite betas"):
        parse_shape("1,2,3")
    with pytest.raises(ValueError, match="comma-separated"):
        parse_shape("a,b")
