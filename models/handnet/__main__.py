"""python -m models.handnet info | evaluate.

info [--json PATH] [--config full|reduced]: HandNet parameter counts and shapes.
evaluate (--checkpoint PT [--no-untrained] | --untrained [--config reduced --seed 0]) --data DIR [--split val]
  [--render N [--render-seed S]] [--mean-from TRAIN_DIR] [--json PATH] [--limit N]: held-out PA-MPVE /
  PA-MPJPE (mono, stereo) and segmentation IoU of a trained checkpoint against the untrained network, and
  optionally the training labels' mean hand (models/handnet/evaluate.py).
"""

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


def cmd_evaluate(args) -> int:
    import torch

    from models.data.synthetic_adapter import SyntheticSetError
    from models.handnet.checkpoint import CheckpointError
    from models.handnet.config import HandNetConfigError, handnet_preset
    from models.handnet.evaluate import (
        HeldOutError,
        evaluate,
        format_report,
        open_eval_data,
        open_train_source,
        render_held_out,
    )
    from models.handnet.evaluate import write_report as write

    torch.set_num_threads(args.threads)
    if not args.checkpoint and not args.untrained:
        print("error: give --checkpoint PT and/or --untrained", file=sys.stderr)
        return 2
    try:
        if args.render:
            render_held_out(args.data, args.render, args.render_seed)
        data = open_eval_data(args.data, args.split)
        config = None if args.checkpoint else handnet_preset(args.config)
        mean_source = open_train_source(args.mean_from) if args.mean_from else None
        report = evaluate(data, args.checkpoint or None, untrained=args.untrained or not args.no_untrained,
                          config=config, seed=args.seed, batch_size=args.batch_size, limit=args.limit,
                          mean_source=mean_source)
    except (CheckpointError, HeldOutError, HandNetConfigError, SyntheticSetError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        print(f"wrote {write(report, args.json)}")
    return 0


def _evaluate_parser(sub) -> None:
    ev = sub.add_parser("evaluate", help="held-out PA-MPVE / seg IoU, trained checkpoint vs untrained network")
    ev.add_argument("--checkpoint", default="", help="a .pt of python -m models.train (also evaluates its "
                    "untrained initialisation unless --no-untrained)")
    ev.add_argument("--untrained", action="store_true", help="evaluate the untrained network (alone: of --config)")
    ev.add_argument("--no-untrained", action="store_true", help="with --checkpoint: skip the untrained network")
    ev.add_argument("--config", default="reduced", help="HandNet preset of the untrained network without checkpoint")
    ev.add_argument("--seed", type=int, default=0, help="init seed without checkpoint (else the run's seed)")
    ev.add_argument("--data", required=True, help="held-out synthetic stereo set (models.synth set or stand-in)")
    ev.add_argument("--split", default="val", help="split of a models.synth set (stand-in sets: val only)")
    ev.add_argument("--render", type=int, default=0, help="render a stand-in set of N pairs into --data first")
    ev.add_argument("--render-seed", type=int, default=1_000_000, help="first pair seed of the rendered set")
    ev.add_argument("--mean-from", default="", help="training set: also score its mean hand as a baseline")
    ev.add_argument("--json", default="", help="write the report as JSON to this path")
    ev.add_argument("--limit", type=int, default=0, help="evaluate only the first N pairs (0 = all)")
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ev.set_defaults(fn=cmd_evaluate)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.handnet", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    info = sub.add_parser("info", help="per-block parameter counts and output shapes for one input crop")
    info.add_argument("--json", default="", help="also write the table as JSON to this path")
    info.add_argument("--config", default="full", help="HandNet preset: full (thesis) or reduced (CPU)")
    info.set_defaults(fn=cmd_info)
    _evaluate_parser(sub)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
