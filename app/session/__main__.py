"""``python -m app.session export DIR``: (re)write hand.glb and sequence.glb of a recorded session, e.g. after a
crash (every completed frame is in hands.bin)."""

import argparse
import sys

from app.session.export import export_session


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.session", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write hand.glb and sequence.glb of a session directory")
    exp.add_argument("session_dir", help="a directory recorded by run_live.py --record DIR")
    args = p.parse_args(argv)
    try:
        paths = export_session(args.session_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    if not paths:
        print(f"{args.session_dir}: no frame with a hand was recorded; nothing to export")
    return 0


if __name__ == "__main__":
    sys.exit(main())

