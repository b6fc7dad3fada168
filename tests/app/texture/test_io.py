"""Texture files: round trip, atomic writes, and a clear TextureFileError for every kind of bad file."""

import numpy as np
import pytest

from app.texture.io import (
    TextureFile,
    TextureFileError,
    check_fits,
    layout_id,
    load_texture_file,
    save_texture_file,
)
from app.types import TextureMap


def texture_file(size=16, seed=0, is_left=False) -> TextureFile:
    rng = np.random.default_rng(seed)
    tex = TextureMap(rng.random((size, size, 3), dtype=np.float32), rng.integers(0, 5, (size, size)).astype(
        np.float32), 7)
    return TextureFile(tex, rng.normal(0, 1, 10).astype(np.float32), is_left, "open", "T10-F4-abc")


def test_round_trip(tmp_path):
    tf = texture_file()
    path = save_texture_file(tmp_path / "texture_right.npz", tf)
    got = load_texture_file(path)
    np.testing.assert_array_equal(got.texture.rgb, tf.texture.rgb)
    np.testing.assert_array_equal(got.texture.weight, tf.texture.weight)
    np.testing.assert_array_equal(got.shape, tf.shape)
    assert (got.texture.n_updates, got.is_left, got.model, got.layout) == (7, False, "open", "T10-F4-abc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texture_right.npz"]  # no temporary left behind


def test_overwrite_keeps_the_old_file_until_the_new_one_is_complete(tmp_path, monkeypatch):
    path = save_texture_file(tmp_path / "t.npz", texture_file(seed=1))
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(OSError):
        save_texture_file(path, texture_file(seed=2))
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_files_raise_a_clear_error(tmp_path, damage):
    path = save_texture_file(tmp_path / "t.npz", texture_file())
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a texture" * 50, "empty": b""}[damage])
    with pytest.raises(TextureFileError, match="corrupt or truncated") as err:
        load_texture_file(path)
    assert str(path) in str(err.value)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(TextureFileError, match="no such texture file"):
        load_texture_file(tmp_path / "nope.npz")
    with pytest.raises(TextureFileError, match=r"\.npz"):
        save_texture_file(tmp_path / "t.png", texture_file())


def _save_raw(path, **arrays):
    base = texture_file()
    fields = dict(format=np.array("realhands-texture"), version=np.int64(1), rgb=base.texture.rgb,
                  weight=base.texture.weight, n_updates=np.int64(1), shape=base.shape, is_left=np.bool_(False),
                  model=np.array("open"), layout=np.array("x"))
    fields.update(arrays)
    np.savez(path, **{k: v for k, v in fields.items() if v is not None})
    return path


@pytest.mark.parametrize("change, message", [
    (dict(format=np.array("something-else")), "expected 'realhands-texture'"),
    (dict(version=np.int64(99)), "version 99"),
    (dict(layout=None), "missing layout"),
    (dict(rgb=np.zeros((16, 8, 3), np.float32)), "square"),
    (dict(weight=np.zeros((8, 8), np.float32)), "weight must be"),
    (dict(shape=np.zeros(3, np.float32)), "10 betas"),
    (dict(rgb=np.full((16, 16, 3), np.nan, np.float32)), "NaN"),
    (dict(rgb=np.full((16, 16, 3), 2.0, np.float32)), r"\[0, 1\]"),
])
def test_wrong_contents_are_named(tmp_path, change, message):
    path = _save_raw(tmp_path / "t.npz", **change)
    with pytest.raises(TextureFileError, match=message):
        load_texture_file(path)


def test_check_fits_names_side_and_layout(hand_model):
    vt, ft = (t.numpy() for t in hand_model.uv)
    lid = layout_id(vt, ft)
    assert lid == layout_id(vt.astype(np.float64), ft) != layout_id(vt[::-1], ft)
    tf = texture_file()
    with pytest.raises(TextureFileError, match="UV layout"):
        check_fits(tf, "t.npz", lid, is_left=False)
    with pytest.raises(TextureFileError, match="right hand texture was given for the left"):
        check_fits(tf, "t.npz", lid, is_left=True)
