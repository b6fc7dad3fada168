"""Argument parsing for run_live.py. The live pipeline lands in a later milestone; until then the entry
point explains what works today instead of failing."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_live.py",
        description="RealisticHands Live: a textured 3D hand mesh from a ZED stereo camera, in real time.",
    )
    p.add_argument("--source", default="auto",
                   help="frame source URI: synthetic, zed[:SERIAL], zed-uvc:INDEX?conf=SN.conf, "
                        "sbs:FILE.mp4?conf=SN.conf, video:L.mp4,R.mp4?calib=FILE, recording:DIR (default: auto)")
    p.add_argument("--mano-dir", default=None,
                   help="folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (default: the embedded open hand model; "
                        "the environment variable REALHANDS_MANO_DIR also works)")
    p.add_argument("--config", default=None, help="YAML file with configuration overrides")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from models.hand_model import describe_default_model

    print(describe_default_model(args.mano_dir))
    print("The live pipeline (capture -> detection -> reconstruction -> texture -> viewer) is not built yet.\n"
          "Try: python -m models.hand_model show --out sheet.png   (renders the hand model)")
    return 0
