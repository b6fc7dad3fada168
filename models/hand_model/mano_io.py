"""Read MANO-layout hand model pickles safely, without chumpy and without running code from the file.

Real MANO files (MANO_RIGHT.pkl / MANO_LEFT.pkl from https://mano.is.tue.mpg.de) are Python-2 pickles that
hold chumpy objects and scipy sparse matrices. ``pickle.load`` would import and call whatever the file names,
so this module unpickles with an allow-list: numpy arrays, dtypes and scalars, scipy csc/csr matrices (rebuilt
here from data/indices/indptr) and chumpy stand-ins that only keep the array in their state. Every other
class or function is refused. The project's own open hand model uses the same layout in plain numpy.

Layout (V vertices, F faces, 16 joints): v_template (V, 3) metres; f (F, 3) vertex indices; weights (V, 16);
J_regressor (16, V); kintree_table (2, 16), row 0 the parents; shapedirs (V, 3, >=10); posedirs (V, 3, 135);
hands_components (45, 45); hands_mean (45,). Optional: tip_vertex_ids (5,), vt (T, 2), ft (F, 3), model_name.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path

import numpy as np

from app.config import MANO_DIR_ENV

MANO_URL = "https://mano.is.tue.mpg.de"
N_JOINTS = 16
N_HAND_POSE = 45
N_POSEDIRS = 9 * (N_JOINTS - 1)
# Fingertip vertices of real MANO (thumb, index, middle, ring, pinky), the ones most hand work uses to extend
# MANO's 16 joints to 21 keypoints. smplx's VERTEX_IDS['mano'] picks neighbouring vertices (744, 320, ...).
MANO_TIP_VERTEX_IDS = (745, 317, 444, 556, 673)
MANO_HELP = (
    f"MANO is obtained from {MANO_URL} (free registration and licence agreement); put MANO_RIGHT.pkl and "
    f"MANO_LEFT.pkl in one folder and pass that folder as --mano-dir or set the {MANO_DIR_ENV} environment "
    "variable (leave both empty to use the embedded open hand model)"
)
_SIDES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
_MAX_SPARSE_CELLS = 4_000_000  # a dense J_regressor is 16 x 778; refuse absurd shapes from a damaged file
_MAX_CHUMPY_DEPTH = 32


class ManoFileError(ValueError):
    """A hand model file or folder is missing, damaged or unsafe; the message names the file and the fix."""


def _error(path, problem: str) -> ManoFileError:
    return ManoFileError(f"hand model file {path}: {problem}. {MANO_HELP}.")


# ---------------------------------------------------------------------------------------------------------
# Restricted unpickling
# ---------------------------------------------------------------------------------------------------------


class _StateStub:
    """An inert object that only keeps its pickled state as a dict; never runs the real class's code."""

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state):
        self.state = _state_dict(state)


class _ChumpyStub(_StateStub):
    """Stands in for any chumpy class (chumpy stores a leaf's array under 'x')."""

    chumpy_name = "chumpy"


class _SparseStub(_StateStub):
    """Stands in for a scipy csc/csr matrix; keeps data/indices/indptr/shape to rebuild a dense array."""

    fmt = "csc"


class _CscStub(_SparseStub):
    fmt = "csc"


class _CsrStub(_SparseStub):
    fmt = "csr"


def _state_dict(state) -> dict:
    """Pickled state is a dict, or (dict, slot dict) for classes with __slots__."""
    if isinstance(state, dict):
        return dict(state)
    if isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, dict | type(None)) for s in state):
        return {**(state[0] or {}), **(state[1] or {})}
    return {"_state": state}


_CHUMPY_CLASSES: dict[str, type] = {}


def _chumpy_class(module: str, name: str) -> type:
    """One stub subclass per chumpy class name, so evaluation can tell e.g. Select from Ch."""
    key = f"{module}.{name}"
    if key in _CHUMPY_CLASSES:
        return _CHUMPY_CLASSES[key]
    stub = type(f"ChumpyStub_{len(_CHUMPY_CLASSES)}", (_ChumpyStub,), {"chumpy_name": key})
    if len(_CHUMPY_CLASSES) < 256:  # chumpy has a few dozen classes; damaged files must not grow this forever
        _CHUMPY_CLASSES[key] = stub
    return stub


# The installed numpy's own reconstruction functions, found without naming its private module paths.
_NP_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_NP_SCALAR = np.float64(0.0).__reduce__()[0]
_NDARRAY_TOKEN = object()  # what the file gets for numpy.ndarray: usable only as _reconstruct's argument


def _safe_reconstruct(subtype, shape, dtype):
    # numpy pickles arrays as _reconstruct(ndarray, (0,), b'b') + __setstate__; the shape is ignored on
    # purpose so a damaged file cannot make us allocate a huge array before __setstate__ checks the data.
    if subtype is not _NDARRAY_TOKEN:
        raise pickle.UnpicklingError("numpy _reconstruct called with a class other than numpy.ndarray")
    return _NP_RECONSTRUCT(np.ndarray, (0,), b"b")


def _safe_frombuffer(buf, dtype, shape, order):
    # protocol-5 numpy arrays: the raw buffer in-band, then dtype and shape
    buffer_types = bytes | bytearray | memoryview | pickle.PickleBuffer
    if not isinstance(buf, buffer_types) or not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError("numpy _frombuffer called with unexpected arguments")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _safe_codecs_encode(text, encoding="utf-8"):
    # Python 3 writes bytes into protocol 0-2 pickles as _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode called with unexpected arguments")
    return text.encode("latin1")


def _safe_copyreg_reconstructor(cls, base, state):
    # protocol 0/1 pickles build plain class instances through copyreg._reconstructor(cls, object, None)
    if not (isinstance(cls, type) and issubclass(cls, _ChumpyStub | _SparseStub)) or base is not object:
        raise pickle.UnpicklingError("copyreg._reconstructor called for a class that is not allowed")
    if state is not None:
        raise pickle.UnpicklingError("copyreg._reconstructor with a base state is not supported")
    return cls.__new__(cls)


_NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric"}
_NUMPY_NAMES = {"ndarray": _NDARRAY_TOKEN, "dtype": np.dtype, "_reconstruct": _safe_reconstruct,
                "scalar": _NP_SCALAR, "_frombuffer": _safe_frombuffer}
_BUILTINS = {"set": set, "frozenset": frozenset, "complex": complex, "object": object}
_SPARSE_NAMES = {"csc_matrix": _CscStub, "csc_array": _CscStub, "csr_matrix": _CsrStub, "csr_array": _CsrStub}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only numpy data, scipy csc/csr stand-ins and chumpy stand-ins."""

    def __init__(self, file, source):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module, name):
        found = _allowed_global(module, name)
        if found is None:
            raise _error(self._source, f"refused to load '{module}.{name}': the file references a class or "
                                       "function outside numpy, scipy.sparse and chumpy, which a MANO model "
                                       "never needs (the file is damaged or not a MANO model)")
        return found

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _allowed_global(module: str, name: str):
    """The local stand-in for a global named in the pickle, or None when it is not allowed."""
    if module in _NUMPY_MODULES:
        return _NUMPY_NAMES.get(name)
    if module in ("builtins", "__builtin__"):
        return _BUILTINS.get(name)
    if module in ("copyreg", "copy_reg") and name == "_reconstructor":
        return _safe_copyreg_reconstructor
    if module == "_codecs" and name == "encode":
        return _safe_codecs_encode
    if module.startswith("scipy.sparse"):
        return _SPARSE_NAMES.get(name)
    if module == "chumpy" or module.startswith("chumpy."):
        return _chumpy_class(module, name)
    return None


def _check_opcodes(data: bytes) -> None:
    """Walk the opcodes once before unpickling: every length field must fit inside the file and memo indices
    must be plausible, so a damaged file cannot make the C unpickler allocate huge buffers (CPython 3.11 can
    even crash after a failed huge BYTEARRAY8 allocation). Raises ValueError."""
    for n_ops, (op, arg, pos) in enumerate(pickletools.genops(data)):
        if op.name == "FRAME" and arg > len(data) - pos:
            raise ValueError(f"frame of {arg} bytes at byte {pos} runs past the end of the file")
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > n_ops:
            raise ValueError(f"memo index {arg} at byte {pos} is out of range")


def _unpickle(data: bytes, source) -> object:
    try:
        _check_opcodes(data)
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except ManoFileError:
        raise
    except Exception as exc:  # any failure inside a damaged pickle means the same thing to the user
        raise _error(source, f"is not a readable pickle, it is damaged or truncated "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None


# ---------------------------------------------------------------------------------------------------------
# Stand-ins -> plain numpy
# ---------------------------------------------------------------------------------------------------------


def _chumpy_value(stub: _ChumpyStub, depth: int = 0) -> np.ndarray:
    """The array a chumpy object stands for: a leaf's 'x', a Select of its child, else the first array."""
    if depth > _MAX_CHUMPY_DEPTH:
        raise ValueError("chumpy objects nested too deeply")
    state = stub.state
    if "x" in state:
        return _plain_array(state["x"], depth + 1)
    if "a" in state and "idxs" in state:  # chumpy.reordering.Select: a.ravel()[idxs] reshaped
        picked = _plain_array(state["a"], depth + 1).ravel()[np.asarray(state["idxs"], dtype=np.int64)]
        shape = state.get("preferred_shape")
        return picked.reshape(shape) if shape is not None else picked
    for value in state.values():
        if isinstance(value, np.ndarray | _ChumpyStub | _SparseStub):
            return _plain_array(value, depth + 1)
    raise ValueError(f"chumpy object {stub.chumpy_name} holds no array")


def _sparse_to_dense(stub: _SparseStub) -> np.ndarray:
    """Dense float64 (rows, cols) array from a compressed sparse column/row matrix's raw arrays."""
    s = stub.state
    n_rows, n_cols = (int(n) for n in s.get("_shape", s.get("shape")))
    data = np.asarray(s["data"], dtype=np.float64).ravel()
    indices = np.asarray(s["indices"], dtype=np.int64).ravel()
    indptr = np.asarray(s["indptr"], dtype=np.int64).ravel()
    n_major, n_minor = (n_cols, n_rows) if stub.fmt == "csc" else (n_rows, n_cols)
    if min(n_rows, n_cols) < 0 or n_rows * n_cols > _MAX_SPARSE_CELLS:
        raise ValueError(f"sparse matrix shape {(n_rows, n_cols)} is not plausible")
    counts = np.diff(indptr)
    if (len(indptr) != n_major + 1 or indptr[0] != 0 or np.any(counts < 0) or indptr[-1] != len(data)
            or len(indices) != len(data) or np.any(indices < 0) or np.any(indices >= n_minor)):
        raise ValueError("sparse matrix index arrays are inconsistent")
    dense = np.zeros((n_major, n_minor))
    np.add.at(dense, (np.repeat(np.arange(n_major), counts), indices), data)
    return dense.T.copy() if stub.fmt == "csc" else dense


def _plain_array(value, depth: int = 0) -> np.ndarray:
    if isinstance(value, _ChumpyStub):
        return _chumpy_value(value, depth)
    if isinstance(value, _SparseStub):
        return _sparse_to_dense(value)
    return np.asarray(value)


def _plain_value(value):
    """Plain numpy (or str/number) for one top-level value; raises ValueError when it cannot."""
    if isinstance(value, str | bytes | int | float | bool | np.generic | np.ndarray) or value is None:
        return value
    return _plain_array(value)


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------

# key -> (shape with 'V' = vertex count, None = any size, kind: 'f' float or 'i' integer)
_REQUIRED = {
    "v_template": (("V", 3), "f"),
    "f": ((None, 3), "i"),
    "weights": (("V", N_JOINTS), "f"),
    "J_regressor": ((N_JOINTS, "V"), "f"),
    "kintree_table": ((2, N_JOINTS), "i"),
    "shapedirs": (("V", 3, None), "f"),
    "posedirs": (("V", 3, N_POSEDIRS), "f"),
    "hands_components": ((N_HAND_POSE, N_HAND_POSE), "f"),
    "hands_mean": ((N_HAND_POSE,), "f"),
}
_OPTIONAL = {"tip_vertex_ids": ((5,), "i"), "vt": ((None, 2), "f"), "ft": ((None, 3), "i")}


def _checked(source, key: str, value, shape: tuple, kind: str, n_verts: int) -> np.ndarray:
    """``value`` as float64 / int64 after checking its shape, number kind and finiteness."""
    arr = np.asarray(value)
    want = tuple(n_verts if s == "V" else s for s in shape)
    if arr.ndim != len(want) or any(w is not None and w != a for w, a in zip(want, arr.shape, strict=True)):
        shown = tuple("any" if w is None else w for w in want)
        raise _error(source, f"'{key}' has shape {arr.shape}, expected {shown}")
    if arr.dtype.kind not in ("biu" if kind == "i" else "biuf"):
        wanted = "integers" if kind == "i" else "numbers"
        raise _error(source, f"'{key}' has dtype {arr.dtype}, expected {wanted}")
    if kind == "f":
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise _error(source, f"'{key}' contains NaN or infinite values")
        return arr
    return arr.astype(np.int64)


def _check_topology(source, d: dict) -> None:
    """Index arrays must point inside their targets; parents must come before children (smplx's chain)."""
    n_verts = d["v_template"].shape[0]
    if d["f"].size and (d["f"].min() < 0 or d["f"].max() >= n_verts):
        raise _error(source, f"'f' has vertex indices outside 0..{n_verts - 1}")
    parents = d["kintree_table"][0]
    if any(not 0 <= parents[j] < j for j in range(1, N_JOINTS)):
        raise _error(source, f"'kintree_table' row 0 must list each joint's parent before the joint, "
                             f"got {parents.tolist()}")
    if not np.allclose(d["weights"].sum(axis=1), 1.0, atol=1e-2):
        raise _error(source, "'weights' rows must each sum to 1 (skinning weights of a vertex)")
    tips = d.get("tip_vertex_ids")
    if tips is not None and (tips.min() < 0 or tips.max() >= n_verts):
        raise _error(source, f"'tip_vertex_ids' {tips.tolist()} are outside 0..{n_verts - 1}")
    if "vt" in d and "ft" in d:
        if d["ft"].shape != d["f"].shape or d["ft"].min() < 0 or d["ft"].max() >= len(d["vt"]):
            raise _error(source, "'ft' must have one UV triangle per face with indices into 'vt'")


def validate_mano_dict(d: dict, source="<dict>") -> dict:
    """Checked copy of a MANO-layout dict: floats as float64, indices as int64, kintree root parent -1.

    Raises ManoFileError naming ``source`` and the key when something is missing or malformed.
    """
    if not isinstance(d, dict) or not all(isinstance(k, str) for k in d):
        raise _error(source, f"holds a {type(d).__name__}, expected a dict of named arrays (MANO layout)")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise _error(source, f"is missing the key(s) {missing}; a MANO-layout model needs {list(_REQUIRED)}")
    out = dict(d)
    out["v_template"] = _checked(source, "v_template", d["v_template"], (None, 3), "f", 0)
    n_verts = out["v_template"].shape[0]
    for key, (shape, kind) in _REQUIRED.items():
        out[key] = _checked(source, key, d[key], shape, kind, n_verts)
    for key, (shape, kind) in _OPTIONAL.items():
        if d.get(key) is not None:
            out[key] = _checked(source, key, d[key], shape, kind, n_verts)
    if out["shapedirs"].shape[2] < 10:
        raise _error(source, f"'shapedirs' has {out['shapedirs'].shape[2]} shape components, expected >= 10")
    out["kintree_table"][0, 0] = -1  # MANO stores the root's parent as 2**32 - 1
    _check_topology(source, out)
    return out


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise _error(path, "does not exist")
    if path.is_dir():
        raise _error(path, "is a folder, expected a .pkl file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise _error(path, "is empty")
    return data


def _plain_dict(raw: dict, source) -> dict:
    """Every value as plain numpy; stand-ins that cannot be evaluated are dropped unless required."""
    out = {}
    for key, value in raw.items():
        try:
            out[key] = _plain_value(value)
        except Exception as exc:  # damaged stand-in: only fatal when the key is needed
            if key in _REQUIRED or key in _OPTIONAL:
                problem = f"value of '{key}' cannot be read ({type(exc).__name__}: {exc})"
                raise _error(source, problem) from None
    return out


def load_mano_dict(path) -> dict:
    """Load a MANO-layout pickle (real MANO or the open model) as a validated dict of plain numpy values.

    Float arrays come back float64 (v_template in metres), index arrays int64, sparse J_regressor dense.
    Raises ManoFileError for a missing, damaged, unsafe or malformed file.
    """
    path = Path(path)
    raw = _unpickle(_read_bytes(path), path)
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise _error(path, f"holds a {type(raw).__name__}, expected a dict of named arrays (MANO layout)")
    return validate_mano_dict(_plain_dict(raw, path), path)


def _check_side(side: str) -> str:
    if side not in _SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    return side


def find_mano_file(mano_dir, side: str) -> Path:
    """Path of MANO_RIGHT.pkl / MANO_LEFT.pkl inside ``mano_dir``; ManoFileError when it is not there."""
    name = _SIDES[_check_side(side)]
    folder = Path(mano_dir).expanduser()
    if not folder.exists():
        raise ManoFileError(f"MANO folder {folder} does not exist. {MANO_HELP}.")
    if not folder.is_dir():
        raise ManoFileError(f"MANO folder {folder} is a file; pass the folder that holds {name}. "
                            f"{MANO_HELP}.")
    exact = folder / name
    if exact.is_file():
        return exact
    same = [p for p in folder.iterdir() if p.name.lower() == name.lower() and p.is_file()]
    if same:
        return same[0]
    found = sorted(p.name for p in folder.glob("*.pkl"))[:10]
    raise ManoFileError(f"MANO folder {folder} has no {name} (found .pkl files: {found or 'none'}). "
                        f"{MANO_HELP}.")


def open_model_path(side: str) -> Path:
    """Path of the embedded open model, assets/hand_model/OPENHAND_{RIGHT,LEFT}.pkl (may not exist yet)."""
    repo = Path(__file__).resolve().parents[2]
    return repo / "assets" / "hand_model" / f"OPENHAND_{_check_side(side).upper()}.pkl"
