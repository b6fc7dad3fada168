"""Tests for models/hand_model/mano_io.py: safe loading of MANO-layout pickles without chumpy."""

from __future__ import annotations

import contextlib
import os
import pickle
import pickletools
import struct
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import MANO_DIR_ENV
from models.hand_model.mano_io import (
    MANO_URL,
    ManoFileError,
    find_mano_file,
    load_mano_dict,
    open_model_path,
    validate_mano_dict,
)

torch.set_num_threads(1)

MANO_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]


def mano_like(n_verts: int = 30, seed: int = 0) -> dict:
    """A small, valid MANO-layout dict with plain numpy values (MANO's dtypes: uint32 faces, int64 tree)."""
    rng = np.random.default_rng(seed)
    weights = rng.random((n_verts, 16)) ** 4
    jreg = rng.random((16, n_verts)) * (rng.random((16, n_verts)) < 0.3)
    jreg[:, 0] += 1e-3
    kintree = np.array([[2**32 - 1] + MANO_PARENTS[1:], list(range(16))], dtype=np.int64)
    return {
        "v_template": rng.normal(size=(n_verts, 3)) * 0.03,
        "f": rng.integers(0, n_verts, size=(2 * n_verts, 3)).astype(np.uint32),
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "J_regressor": jreg / jreg.sum(axis=1, keepdims=True),
        "kintree_table": kintree,
        "shapedirs": rng.normal(size=(n_verts, 3, 10)) * 1e-3,
        "posedirs": rng.normal(size=(n_verts, 3, 135)) * 1e-3,
        "hands_components": rng.normal(size=(45, 45)),
        "hands_mean": rng.normal(size=45) * 0.1,
        "bs_style": "lbs",
    }


def assert_helpful(exc: ManoFileError, *fragments: str) -> None:
    msg = str(exc)
    assert MANO_URL in msg and "--mano-dir" in msg and MANO_DIR_ENV in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg


def write(tmp_path, data: bytes, name: str = "MANO_RIGHT.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------------------
# (a) chumpy-style and scipy-sparse pickles load without chumpy
# ---------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def fake_chumpy():
    """Register stand-ins for chumpy.ch.Ch / chumpy.reordering.Select, removed again on exit."""

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x)
            self._dirty_vars = {"x"}
            self._parents, self._cache = {}, {}

        def __getstate__(self):  # like chumpy: the object's dict without its weak-reference caches
            return {k: v for k, v in self.__dict__.items() if k not in ("_parents", "_cache")}

    class Select(Ch):
        def __init__(self, a, idxs, preferred_shape):
            self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape
            self._dirty_vars = set()
            self._parents, self._cache = {}, {}

    modules = {name: types.ModuleType(name) for name in ("chumpy", "chumpy.ch", "chumpy.reordering")}
    for cls, module in ((Ch, "chumpy.ch"), (Select, "chumpy.reordering")):
        cls.__module__, cls.__qualname__ = module, cls.__name__
        setattr(modules[module], cls.__name__, cls)
    sys.modules.update(modules)
    try:
        yield Ch, Select
    finally:
        for name in modules:
            sys.modules.pop(name, None)


@pytest.mark.parametrize("protocol", [0, 1, 2, 4, 5])
def test_chumpy_and_sparse_pickle_loads_without_chumpy(tmp_path, protocol):
    ref = mano_like()
    with fake_chumpy() as (Ch, Select):
        raw = dict(ref)
        raw["shapedirs"] = Ch(ref["shapedirs"])
        raw["posedirs"] = Select(Ch(ref["posedirs"].ravel()), np.arange(ref["posedirs"].size), ref["posedirs"].shape)
        raw["J_regressor"] = scipy.sparse.csc_matrix(ref["J_regressor"])
        raw["J_regressor_prior"] = scipy.sparse.csr_matrix(ref["J_regressor"])
        raw["J"] = Ch(np.ones((16, 3)))
        data = pickle.dumps(raw, protocol=protocol)
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules
    d = load_mano_dict(write(tmp_path, data))
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "hands_components"):
        np.testing.assert_array_equal(d[key], ref[key])
        assert d[key].dtype == np.float64
    np.testing.assert_array_equal(d["J_regressor_prior"], ref["J_regressor"])
    np.testing.assert_array_equal(d["J"], np.ones((16, 3)))
    np.testing.assert_array_equal(d["f"], ref["f"].astype(np.int64))
    assert d["f"].dtype == np.int64 and d["kintree_table"][0].tolist() == MANO_PARENTS
    assert d["bs_style"] == "lbs"


def _py2_str(b: bytes) -> bytes:
    """A Python-2 str in a protocol-2 pickle (SHORT_BINSTRING / BINSTRING)."""
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b


def _py2_tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _py2_int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _py2_array(a: np.ndarray) -> bytes:
    """An ndarray as Python 2 numpy pickled it: _reconstruct + (version, shape, dtype, fortran, raw str)."""
    a = np.ascontiguousarray(a)
    order = b"|" if a.dtype.itemsize == 1 else b"<"
    dtype_state = _py2_tuple([b"K\x03", _py2_str(order), b"NNN", _py2_int(-1), _py2_int(-1), b"K\x00"])
    dtype = b"cnumpy\ndtype\n" + _py2_str(a.dtype.str[1:].encode()) + b"K\x00K\x01\x87R" + dtype_state + b"b"
    shape = _py2_tuple([_py2_int(n) for n in a.shape])
    state = _py2_tuple([b"K\x01", shape, dtype, b"\x89", _py2_str(a.astype(a.dtype.newbyteorder("<")).tobytes())])
    head = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
    return head + _py2_str(b"b") + b"\x87R" + state + b"b"


def _py2_object(module_class: bytes, items: list[tuple[bytes, bytes]]) -> bytes:
    """A new-style Python 2 object (NEWOBJ with no args) whose state dict holds ``items``."""
    body = b"".join(_py2_str(k) + v for k, v in items)
    return b"c" + module_class + b"\n)\x81}(" + body + b"ub"


def test_python2_style_pickle_with_chumpy_and_scipy_loads(tmp_path):
    # real MANO files are Python-2 pickles: str raw data, __builtin__.set, scipy.sparse.csc, chumpy.ch.Ch
    ref = mano_like()
    csc = scipy.sparse.csc_matrix(ref["J_regressor"])
    sparse = _py2_object(b"scipy.sparse.csc\ncsc_matrix", [
        (b"_shape", b"K\x10K\x1e\x86"), (b"data", _py2_array(csc.data)),
        (b"indices", _py2_array(csc.indices.astype(np.int32))), (b"indptr", _py2_array(csc.indptr.astype(np.int32))),
        (b"maxprint", b"K2"), (b"format", _py2_str(b"csc")),
    ])
    ch = _py2_object(b"chumpy.ch\nCh", [(b"x", _py2_array(ref["shapedirs"])),
                                        (b"_dirty_vars", b"c__builtin__\nset\n]\x85R")])
    values = {k: _py2_array(v) for k, v in ref.items() if isinstance(v, np.ndarray)}
    values.update({"J_regressor": sparse, "shapedirs": ch, "bs_style": _py2_str(b"lbs")})
    body = b"".join(_py2_str(k.encode()) + v for k, v in values.items())
    d = load_mano_dict(write(tmp_path, b"\x80\x02}(" + body + b"u."))
    for key in ("v_template", "shapedirs", "J_regressor", "posedirs", "hands_mean"):
        np.testing.assert_array_equal(d[key], ref[key])
    np.testing.assert_array_equal(d["f"], ref["f"])
    assert d["bs_style"] == "lbs"


# ---------------------------------------------------------------------------------------------------------
# (b) anything outside numpy / scipy.sparse / chumpy is refused and never runs
# ---------------------------------------------------------------------------------------------------------


class _Evil:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_os_system_payload_is_refused_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    d = mano_like()
    d["payload"] = _Evil(os.system, f"touch {marker}")
    path = write(tmp_path, pickle.dumps(d, protocol=protocol))
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert not marker.exists()
    assert_helpful(info.value, str(path), "system", "refused")


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'echo hi'\ntR.",
    b"cbuiltins\neval\n(S'1+1'\ntR.",
    b"c__builtin__\ngetattr\n(cnumpy\ndtype\nS'type'\ntR.",
    b"csubprocess\nPopen\n(S'true'\ntR.",
    b"cnumpy\nload\n(S'x.npy'\ntR.",
    b"cnumpy.testing._private.utils\nrunstring\n(S'1'\n}tR.",
])
def test_other_globals_are_refused(tmp_path, payload):
    module, name = payload[1:].split(b"\n")[:2]
    path = write(tmp_path, payload)
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert_helpful(info.value, str(path), f"{module.decode()}.{name.decode()}")


def test_class_from_other_module_is_refused_even_when_importable(tmp_path):
    ran = []

    class Sneaky(OrderedDict):
        def __setstate__(self, state):
            ran.append(state)

    module = types.ModuleType("sneaky_mod")
    Sneaky.__module__, Sneaky.__qualname__ = "sneaky_mod", "Sneaky"
    module.Sneaky = Sneaky
    sys.modules["sneaky_mod"] = module
    try:
        obj = Sneaky()
        obj.__dict__["x"] = 1
        d = mano_like()
        d["extra"] = obj
        path = write(tmp_path, pickle.dumps(d, protocol=2))
        with pytest.raises(ManoFileError, match="sneaky_mod.Sneaky"):
            load_mano_dict(path)
    finally:
        sys.modules.pop("sneaky_mod")
    assert ran == []


def test_reconstructor_with_a_builtin_class_is_refused(tmp_path):
    # copyreg._reconstructor is allowed only to build chumpy / sparse stand-ins
    path = write(tmp_path, b"ccopy_reg\n_reconstructor\n(c__builtin__\nset\nc__builtin__\nobject\nNtR.")
    with pytest.raises(ManoFileError):
        load_mano_dict(path)


# ---------------------------------------------------------------------------------------------------------
# (c) helpful errors for damaged or wrong files and folders
# ---------------------------------------------------------------------------------------------------------


def test_truncated_file(tmp_path):
    data = pickle.dumps(mano_like(), protocol=2)
    path = write(tmp_path, data[: len(data) // 2])
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert_helpful(info.value, str(path), "damaged or truncated")


def test_random_bytes(tmp_path):
    path = write(tmp_path, np.random.default_rng(1).bytes(4096))
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert_helpful(info.value, str(path))


@pytest.mark.parametrize("content", [b"", pickle.dumps([1, 2, 3]), pickle.dumps({1: np.zeros(3)})])
def test_empty_or_not_a_dict(tmp_path, content):
    path = write(tmp_path, content)
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert_helpful(info.value, str(path))


def test_missing_key(tmp_path):
    d = mano_like()
    del d["posedirs"]
    path = write(tmp_path, pickle.dumps(d))
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert_helpful(info.value, str(path), "posedirs", "missing")


@pytest.mark.parametrize("key, value, fragment", [
    ("weights", np.ones((30, 15)) / 15, "'weights' has shape (30, 15)"),
    ("J_regressor", np.ones((16, 29)), "'J_regressor' has shape"),
    ("shapedirs", np.zeros((30, 3, 5)), "shape components"),
    ("posedirs", np.zeros((30, 3, 134)), "'posedirs'"),
    ("hands_mean", np.zeros(44), "'hands_mean'"),
    ("f", np.zeros((10, 3)), "'f' has dtype float64"),
    ("f", np.full((10, 3), 30, dtype=np.int64), "outside"),
    ("v_template", np.full((30, 3), np.nan), "NaN"),
    ("kintree_table", np.array([[-1] + [5] * 15, list(range(16))]), "parent"),
    ("weights", np.ones((30, 16)), "sum to 1"),
    ("tip_vertex_ids", np.array([0, 1, 2, 3, 30]), "tip_vertex_ids"),
])
def test_wrong_value(tmp_path, key, value, fragment):
    d = mano_like()
    d[key] = value
    path = write(tmp_path, pickle.dumps(d))
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert_helpful(info.value, str(path), fragment)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(tmp_path / "nope.pkl")
    assert_helpful(info.value, "nope.pkl", "does not exist")
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(tmp_path)
    assert_helpful(info.value, "is a folder")
    with pytest.raises(ManoFileError) as info:
        find_mano_file(tmp_path / "missing_dir", "right")
    assert_helpful(info.value, "missing_dir", "does not exist")


def test_find_mano_file(tmp_path):
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"x")
    (tmp_path / "mano_left.pkl").write_bytes(b"x")
    assert find_mano_file(tmp_path, "right") == tmp_path / "MANO_RIGHT.pkl"
    assert find_mano_file(str(tmp_path), "left") == tmp_path / "mano_left.pkl"
    with pytest.raises(ManoFileError) as info:
        find_mano_file(tmp_path / "MANO_RIGHT.pkl", "right")
    assert_helpful(info.value, "is a file")
    (tmp_path / "mano_left.pkl").unlink()
    with pytest.raises(ManoFileError) as info:
        find_mano_file(tmp_path, "left")
    assert_helpful(info.value, "MANO_LEFT.pkl", "MANO_RIGHT.pkl")
    with pytest.raises(ValueError, match="side"):
        find_mano_file(tmp_path, "both")


def test_open_model_path_points_into_assets():
    path = open_model_path("left")
    assert path.name == "OPENHAND_LEFT.pkl" and path.parent.parts[-2:] == ("assets", "hand_model")
    assert (path.parents[2] / "models" / "hand_model" / "mano_io.py").is_file()


def test_validate_does_not_modify_input_and_sets_root_parent():
    d = mano_like()
    out = validate_mano_dict(d)
    assert d["kintree_table"][0, 0] == 2**32 - 1 and out["kintree_table"][0, 0] == -1


@pytest.mark.skipif(not open_model_path("right").is_file(), reason="open model asset not generated yet "
                    "(python -m models.hand_model generate)")
@pytest.mark.parametrize("side", ["right", "left"])
def test_open_model_asset_is_valid(side):
    d = load_mano_dict(open_model_path(side))
    assert d["v_template"].shape[1] == 3 and d["tip_vertex_ids"].shape == (5,)


# ---------------------------------------------------------------------------------------------------------
# (d) fuzz: damaged pickles only ever raise ManoFileError
# ---------------------------------------------------------------------------------------------------------


def _fuzz_seed() -> bytes:
    ref = mano_like(n_verts=4)
    with fake_chumpy() as (Ch, Select):
        ref["shapedirs"] = Ch(ref["shapedirs"])
        ref["posedirs"] = Select(Ch(ref["posedirs"].ravel()), np.arange(ref["posedirs"].size), (4, 3, 135))
        ref["J_regressor"] = scipy.sparse.csc_matrix(ref["J_regressor"])
        ref["vt"], ref["ft"] = np.zeros((4, 2)), np.zeros((8, 3), dtype=np.int64)
        return pickle.dumps(ref, protocol=2)


_SEED = _fuzz_seed()
# positions of the opcodes, so mutations hit structure and not only array payload bytes
_OPCODE_POS = [pos for _, _, pos in pickletools.genops(_SEED)]


def test_fuzz_seed_is_valid(tmp_path):
    assert load_mano_dict(write(tmp_path, _SEED))["posedirs"].shape == (4, 3, 135)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.one_of(st.sampled_from(_OPCODE_POS), st.integers(0, len(_SEED) - 1)),
                                st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, len(_SEED))))
def test_fuzzed_pickles_raise_only_mano_file_error(tmp_path, edits, cut):
    data = bytearray(_SEED)
    for pos, value in edits:
        data[pos] = value
    path = write(tmp_path, bytes(data[:cut]) if cut is not None else bytes(data), "fuzz.pkl")
    try:
        load_mano_dict(path)
    except ManoFileError as exc:
        assert str(path) in str(exc)


@pytest.mark.parametrize("payload", [
    b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b"abc.",  # huge BYTEARRAY8 (crashed CPython 3.11's unpickler)
    b"\x80\x05\x95" + struct.pack("<Q", 2**40) + b"}.",    # FRAME longer than the file
    b"\x80\x02}r" + struct.pack("<I", 2**31) + b".",       # LONG_BINPUT with an absurd memo index
    b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"x.",    # huge BINBYTES8
])
def test_absurd_length_fields_are_refused_before_unpickling(tmp_path, payload):
    path = write(tmp_path, payload)
    with pytest.raises(ManoFileError) as info:
        load_mano_dict(path)
    assert_helpful(info.value, str(path), "damaged or truncated")
