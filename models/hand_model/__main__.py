"""python -m models.hand_model {show,check,generate}: look at, check and rebuild the hand model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(args):
    import torch

    torch.set_num_threads(1)
    from app.config import HandModelConfig
    from models.hand_model import build_hand_model, load_mano_dict
    from models.hand_model.mano_io import open_model_path

    if args.mano_dir:
        sys.exit("show/check render the open model's procedural skin and part labels; run them without "
                 "--mano-dir (the real MANO is used by the app through --mano-dir)")
    return build_hand_model(HandModelConfig()), load_mano_dict(open_model_path("right"))


def cmd_show(args) -> int:
    import imageio

    from models.hand_model.check import contact_sheet

    model, data = _load(args)
    sheet = contact_sheet(model, data, n=args.n, seed=args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(args.out, sheet)
    print(f"wrote {args.out} ({args.n} renders of the open hand model)")
    return 0


def cmd_check(args) -> int:
    from models.hand_model.check import run_check

    model, data = _load(args)
    summary, _ = run_check(model, data, n=args.n, seed=args.seed)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


def cmd_generate(args) -> int:
    from models.hand_model.generate import ASSET_DIR, generate

    paths = generate(Path(args.out) if args.out else ASSET_DIR)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models.hand_model", description=__doc__)
    p.add_argument("--mano-dir", default=None, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("show", help="render a contact sheet PNG of the open model in several poses and shapes")
    s.add_argument("--out", default="hand_model_sheet.png")
    s.add_argument("--n", type=int, default=12)
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(fn=cmd_show)
    c = sub.add_parser("check", help="render >= 100 random poses/views and run MediaPipe Hands on them")
    c.add_argument("--json", default=None, help="write the summary JSON here")
    c.add_argument("--n", type=int, default=120)
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(fn=cmd_check)
    g = sub.add_parser("generate", help="rebuild assets/hand_model/OPENHAND_{RIGHT,LEFT}.pkl deterministically")
    g.add_argument("--out", default=None, help="output folder (default: assets/hand_model)")
    g.set_defaults(fn=cmd_generate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
