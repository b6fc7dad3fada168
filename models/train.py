"""python -m models.train --config FILE|PRESET --out DIR [--data DIR] [--resume CKPT] [--set KEY=VALUE ...]

Trains HandNet through its seven stages (docs/HANDNET.md). Presets: thesis, smoke, cpu-learn. Multi-process:
``torchrun --nproc_per_node N -m models.train ...`` (DDP; rank 0 logs and writes checkpoints).
"""

from __future__ import annotations

import argparse
import sys


def parse_sets(items: list[str]) -> dict:
    """['optim.lr=1e-4'] -> {'optim.lr': '1e-4'}; a malformed item is a ConfigError naming it."""
    from app.config import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.batch_size=16")
        out[key.strip()] = value.strip()
    return out


def build_config(args):
    from models.training.datasets import data_kind
    from models.training.presets import load_train_config

    overrides = parse_sets(args.set)
    if args.data:
        key = "data.freihand_dir" if data_kind(args.data) == "freihand" else "data.synthetic_dir"
        overrides[key] = args.data
    if args.no_progress:
        overrides["progress"] = "false"
    return load_train_config(args.config, overrides)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="preset name (thesis, smoke, cpu-learn) or YAML file")
    parser.add_argument("--out", required=True, help="output folder: checkpoints, logs, plot (created)")
    parser.add_argument("--data", default="", help="a FreiHAND root or a synthetic stereo set folder")
    parser.add_argument("--resume", default="", help="checkpoint to continue from (e.g. OUT/last.pt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from app.config import ConfigError
    from models.data.freihand import FreiHANDError
    from models.data.synthetic_adapter import SyntheticSetError
    from models.handnet.checkpoint import CheckpointError
    from models.handnet.config import HandNetConfigError
    from models.training.loop import train

    try:
        cfg = build_config(args)
        final = train(cfg, args.out, args.resume or None)
    except (ConfigError, CheckpointError, FreiHANDError, SyntheticSetError, HandNetConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"final checkpoint: {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
