"""python -m models.synth {generate,sheet}: write a synthetic stereo hand set, draw a contact sheet of one.

    python -m models.synth generate --out data/synth --n 200 --seed 0 --rig zed-mini --mode 640x360 \
        --summary out/synth_summary.json --sheet out/synth_sheet.png [--backgrounds DIR] [--workers 2]
    python -m models.synth sheet --root data/synth --out sheet.png

Format and summary fields: docs/SYNTHETIC.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def write_sheet(root: str | Path, out: str | Path, n: int, cols: int = 2) -> Path:
    """Contact sheet PNG of the first n samples of the set under root."""
    import cv2

    from models.synth.dataset import SyntheticStereoDataset
    from models.synth.sheet import contact_sheet

    data = SyntheticStereoDataset(root)
    sheet = contact_sheet([data[i] for i in range(min(n, len(data)))], cols=cols)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet[..., ::-1]):
        raise ValueError(f"cannot write the sheet {out}; use a .png path in a writable folder")
    return out


def cmd_generate(args) -> int:
    import torch

    torch.set_num_threads(1)
    from models.synth.generate import GenerateConfig, generate

    cfg = GenerateConfig(n=args.n, seed=args.seed, rig=args.rig, mode=args.mode, backgrounds=args.backgrounds,
                         workers=args.workers, image_format=args.image_format, jpeg_quality=args.jpeg_quality,
                         mediapipe=not args.no_mediapipe, overwrite=args.overwrite, progress=not args.quiet)
    summary, _ = generate(args.out, cfg, args.summary)
    print(json.dumps(summary, indent=1))
    if args.sheet:
        print(f"wrote {write_sheet(args.out, args.sheet, args.sheet_n)}")
    return 0


def cmd_sheet(args) -> int:
    print(f"wrote {write_sheet(args.root, args.out, args.n)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models.synth", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="render a synthetic stereo hand set (docs/SYNTHETIC.md)")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--n", type=int, required=True, help="number of stereo samples")
    g.add_argument("--seed", type=int, default=0, help="set seed: sample i draws from a generator seeded (seed, i)")
    g.add_argument("--rig", default="zed-mini", help="preset (zed, zed-mini, zed2) or a rectified calibration file")
    g.add_argument("--mode", default="HD720", help="preset image size: HD720, VGA, 640x360 or WIDTHxHEIGHT")
    g.add_argument("--backgrounds", default=None, help="folder of background photos (random crops); "
                   "without it, procedural clutter")
    g.add_argument("--workers", type=int, default=1, help="processes (the set is identical for any count)")
    g.add_argument("--image-format", default="png", choices=("png", "jpg"), help="png lossless, jpg quality 95")
    g.add_argument("--jpeg-quality", type=int, default=95)
    g.add_argument("--summary", default=None, help="summary JSON path (default OUT/summary.json)")
    g.add_argument("--sheet", default=None, help="also write a contact sheet PNG of the first samples here")
    g.add_argument("--sheet-n", type=int, default=8, help="samples on the contact sheet")
    g.add_argument("--no-mediapipe", action="store_true", help="skip the MediaPipe detection figures")
    g.add_argument("--overwrite", action="store_true", help="replace a set already in --out")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(fn=cmd_generate)
    s = sub.add_parser("sheet", help="contact sheet PNG of a set's first samples")
    s.add_argument("--root", required=True, help="a folder written by generate")
    s.add_argument("--out", required=True, help="PNG path")
    s.add_argument("--n", type=int, default=8)
    s.set_defaults(fn=cmd_sheet)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ValueError as exc:  # GenerateError, CalibrationError, SyntheticFormatError
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
