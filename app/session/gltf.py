"""A minimal glTF 2.0 binary (.glb) writer for what trimesh cannot export: meshes with morph targets and a
keyframe animation of their weights (Blender imports them as shape keys with keyframes, Unity as blend
shapes). Only the parts of the specification this project uses are written.

Conventions: positions and normals in glTF's frame (y up, x right, z towards the viewer, metres) -- callers
convert from the OpenCV camera frame first; TEXCOORD_0 with (0, 0) at the image's top-left (glTF's origin).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

FLOAT, UINT32 = 5126, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4"}


@dataclass
class GlbBuilder:
    """Collects buffer views, accessors and the JSON objects of one .glb."""

    json: dict = field(default_factory=lambda: {
        "asset": {"version": "2.0", "generator": "RealisticHands Live"}, "scene": 0, "scenes": [{"nodes": []}],
        "nodes": [], "meshes": [], "accessors": [], "bufferViews": [], "buffers": []})
    _blob: bytearray = field(default_factory=bytearray)

    def _view(self, data: bytes, target: int | None = None) -> int:
        while len(self._blob) % 4:
            self._blob.append(0)
        view = {"buffer": 0, "byteOffset": len(self._blob), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self._blob.extend(data)
        self.json["bufferViews"].append(view)
        return len(self.json["bufferViews"]) - 1

    def floats(self, array: np.ndarray, target: int | None = ARRAY_BUFFER) -> int:
        """Add a float array (N, C) (C = 1..4) or (N,) with its min/max; returns the accessor index."""
        arr = np.ascontiguousarray(array, np.float32)
        arr = arr.reshape(len(arr), -1)
        return self._accessor({"bufferView": self._view(arr.tobytes(), target), "componentType": FLOAT,
                               "count": int(arr.shape[0]), "type": TYPES[arr.shape[1]],
                               "min": arr.min(0).tolist(), "max": arr.max(0).tolist()})

    def indices(self, faces: np.ndarray) -> int:
        """Add triangle indices (F, 3) as uint32 scalars; returns the accessor index."""
        arr = np.ascontiguousarray(faces, np.uint32).reshape(-1)
        return self._accessor({"bufferView": self._view(arr.tobytes(), ELEMENT_ARRAY_BUFFER),
                               "componentType": UINT32, "count": int(arr.size), "type": "SCALAR"})

    def _accessor(self, acc: dict) -> int:
        self.json["accessors"].append(acc)
        return len(self.json["accessors"]) - 1

    def add(self, kind: str, obj: dict) -> int:
        self.json.setdefault(kind, []).append(obj)
        return len(self.json[kind]) - 1

    def png_material(self, png: bytes, name: str = "skin") -> int:
        """A matte material whose base colour is the PNG image."""
        image = self.add("images", {"bufferView": self._view(png), "mimeType": "image/png"})
        sampler = self.add("samplers", {"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071})
        texture = self.add("textures", {"source": image, "sampler": sampler})
        return self.add("materials", {"name": name, "pbrMetallicRoughness": {
            "baseColorTexture": {"index": texture}, "metallicFactor": 0.0, "roughnessFactor": 0.7}})

    def colour_material(self, rgba: tuple[float, ...], name: str = "skin") -> int:
        return self.add("materials", {"name": name, "pbrMetallicRoughness": {
            "baseColorFactor": list(rgba), "metallicFactor": 0.0, "roughnessFactor": 0.7}})

    def to_bytes(self) -> bytes:
        while len(self._blob) % 4:
            self._blob.append(0)
        self.json["buffers"] = [{"byteLength": len(self._blob)}]
        text = json.dumps(self.json, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 4)
        chunks = struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(self._blob), b"BIN\0")
        body = chunks + bytes(self._blob)
        return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """(JSON, binary chunk) of a .glb; ValueError when it is not one."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2 or length != len(data):
        raise ValueError("not a glTF 2.0 binary (bad magic, version or length)")
    jlen, jtype = struct.unpack_from("<I4s", data, 12)
    if jtype != b"JSON":
        raise ValueError("glb: first chunk is not JSON")
    doc = json.loads(data[20:20 + jlen])
    blen, btype = struct.unpack_from("<I4s", data, 20 + jlen)
    if btype != b"BIN\0":
        raise ValueError("glb: second chunk is not BIN")
    return doc, data[28 + jlen:28 + jlen + blen]


def accessor_array(doc: dict, blob: bytes, index: int) -> np.ndarray:
    """Read accessor ``index`` back as an (count, components) array (float32 or uint32)."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.float32 if acc["componentType"] == FLOAT else np.uint32
    width = {v: k for k, v in TYPES.items()}[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(blob, dtype, acc["count"] * width, start).reshape(acc["count"], width)
