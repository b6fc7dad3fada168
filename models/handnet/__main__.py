"""python -m models.handnet info [--json PATH] [--config full|reduced]: HandNet parameter counts and shapes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_info(args) -> int:
    import torch

    from models.handnet.config import HandNetConfigError, handnet_preset
    from models.handnet.summary import describe_handnet, format_table

    torch.set_num_threads(1)
    try:
        info = describe_handnet(handnet_preset(args.config))
    except HandNetConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    info["preset"] = args.config
    print(format_table(info))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(info, indent=1))
        print(f"wrote {args.json}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.handnet", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    info = sub.add_parser("info", help="per-block parameter counts and output shapes for one input crop")
    info.add_argument("--json", default="", help="also write the table as JSON to this path")
    info.add_argument("--config", default="full", help="HandNet preset: full (thesis) or reduced (CPU)")
    info.set_defaults(fn=cmd_info)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
