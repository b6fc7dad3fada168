"""Command line of the texture stage (docs/TEXTURE.md).

    python -m app.texture export --session DIR --out hand.glb        # a recorded session's texture + shape
    python -m app.texture export --texture texture_right.npz --out hand.obj [--shape 0.1,0,...]
    python -m app.texture bench --json out/texture.json [--gt-pose] [--frames 30] [--size 512] [--kernels torch]
    python -m app.texture warm-up        # compile the numba kernels into their on-disk cache (once per machine)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.types import N_SHAPE


def parse_shape(text: str) -> np.ndarray:
    """--shape: N_SHAPE comma-separated betas, or a .npy / .json file holding them."""
    path = Path(text)
    if path.suffix in (".npy", ".json"):
        if not path.is_file():
            raise ValueError(f"--shape {text}: no such file")
        values = np.load(path) if path.suffix == ".npy" else np.asarray(json.loads(path.read_text()))
    else:
        try:
            values = np.array([float(v) for v in text.split(",")])
        except ValueError:
            raise ValueError(f"--shape {text!r}: give {N_SHAPE} comma-separated numbers or a .npy/.json file") from None
    values = np.asarray(values, np.float32).ravel()
    if values.shape != (N_SHAPE,) or not np.isfinite(values).all():
        raise ValueError(f"--shape: expected {N_SHAPE} finite betas, got {values.shape[0]} values")
    return values


def _export(args) -> int:
    from app.config import HandModelConfig
    from app.texture.export import export_textured, rest_hand, texture_rgb8
    from app.texture.io import check_fits, layout_id
    from app.texture.sessions import session_texture, texture_from_file
    from models.hand_model.layer import build_hand_model

    if (args.session is None) == (args.texture is None):
        raise ValueError("export: give either --session DIR or --texture FILE")
    if args.session is not None:
        tex, where = session_texture(args.session, args.side)
    else:
        tex, where = texture_from_file(args.texture, args.side == "left"), args.texture
    shape = tex.shape if args.shape is None else parse_shape(args.shape)
    model = build_hand_model(HandModelConfig(mano_dir=args.mano_dir or ""), "left" if tex.is_left else "right")
    vt, ft = (t.numpy() for t in model.uv) if model.uv is not None else (np.zeros((0, 2)), np.zeros((0, 3)))
    if tex.layout:
        check_fits(tex, where, layout_id(vt, ft), tex.is_left)
    written = export_textured(args.out, rest_hand(model, shape, texture_rgb8(tex.texture.rgb)))
    print("\n".join(str(p) for p in written))
    return 0


def _bench(args) -> int:
    from app.texture.bench import BenchConfig, run_bench, write_outputs

    cfg = BenchConfig(frames=args.frames, size=args.size, gt_pose=args.gt_pose, seed=args.seed, mode=args.mode,
                      lighting=args.lighting, compile=args.compile, visibility=args.visibility,
                      kernels=args.kernels)
    result, image = run_bench(cfg)
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_outputs(result, image, json_path, Path(args.png) if args.png else json_path.with_suffix(".png"))
    keys = ("psnr_db", "psnr_gain_db", "coverage", "ms_per_update", "ms_per_update_p95", "frames_textured")
    print(json.dumps({k: result[k] for k in keys}))
    return 0


def _warm_up(args) -> int:
    """Compile (or load from the cache) the numba kernels of both visibility backends; prints the seconds."""
    import time

    from app.capture.synthetic import open_hand_model
    from app.texture.accumulator import TextureAccumulator
    from app.texture.config import TextureConfig
    from calibration.presets import preset_rig

    t0 = time.perf_counter()
    for visibility in ("splat", "raster"):
        acc = TextureAccumulator(TextureConfig(size=args.size, visibility=visibility), open_hand_model("right"))
        if acc.kernels_used != "numba":
            raise ValueError("warm-up: numba is not available (pip install -r requirements.txt)")
        acc.warm_up(preset_rig("zed-mini", "640x360"))
    print(json.dumps({"warm_up_s": round(time.perf_counter() - t0, 2)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.texture", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export a textured hand as .glb or .obj (+ .mtl + .png)")
    e.add_argument("--session", help="a recorded session directory (texture_right.npz / texture_left.npz)")
    e.add_argument("--texture", help="a texture file (.npz, docs/TEXTURE.md) or a bare texture PNG")
    e.add_argument("--side", choices=("right", "left"),
                   help="which hand: with --session the default is the one recorded; with a PNG --texture, right")
    e.add_argument("--shape", help=f"{N_SHAPE} comma-separated betas or a .npy/.json file (default: the file's)")
    e.add_argument("--mano-dir", help="real MANO folder, when the texture was captured with it")
    e.add_argument("--out", required=True, help="output FILE.glb or FILE.obj")
    b = sub.add_parser("bench", help="texture a synthetic sequence with a known skin; PSNR, coverage, timing")
    b.add_argument("--json", required=True, help="where to write the results (JSON)")
    b.add_argument("--png", help="recovered | true texture image (default: the JSON path with .png)")
    b.add_argument("--gt-pose", action="store_true", help="use the source's true mesh instead of detection + fit")
    b.add_argument("--frames", type=int, default=30)
    b.add_argument("--size", type=int, default=512, help="texture side in texels")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--mode", default="640x360", help="per-eye image size (HD720, VGA, 640x360 or WxH)")
    b.add_argument("--lighting", choices=("ambient", "source"), default="ambient")
    b.add_argument("--visibility", choices=("splat", "raster"), default="splat")
    b.add_argument("--kernels", choices=("numba", "torch"), default="numba",
                   help="TextureConfig.kernels: the compiled loops or the torch reference")
    b.add_argument("--compile", action="store_true", help="with --kernels torch: run them through torch.compile")
    w = sub.add_parser("warm-up", help="compile the numba kernels into their on-disk cache (once per machine)")
    w.add_argument("--size", type=int, default=512, help="texture side in texels")
    return p


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    args = build_parser().parse_args(argv)
    try:
        return {"export": _export, "bench": _bench, "warm-up": _warm_up}[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
