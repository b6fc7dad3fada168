"""Evaluate a keypoint method on a dataset (thin CLI).

    python -m models.evaluate --dataset realworld \
        --root ../shared/realdata/hand-graph-cnn_real_world_testset \
        --method mediapipe --json out/realworld_mediapipe.json

    python -m models.evaluate --dataset synthetic --root DIR --method fit+refine --iterations 3 \
        --json out/synthetic_fit_refine.json

    python -m models.evaluate --dataset synthetic --root DIR --method handnet+refine \
        --checkpoint runs/cpu-learn/handnet.pt --json out/synthetic_handnet_refine.json

Writes the JSON ({"n", "detection_rate", "median_2d_error_px", "mean_2d_error_px"}, for 3D methods
{"mpjpe_mm", "pa_mpjpe_mm", ...}, for mesh methods (fit, fit+refine, handnet, handnet+refine) also
{"pa_mpve_mm", "f5", "f15", "auc", "iou_before", "iou_after", "baseline_mediapipe_pa_mpjpe_mm", "mono": {...}};
definitions in models/eval/metrics.py, null where a figure cannot be computed), a per-sample CSV and a PCK plot
PNG beside it.
Datasets and methods come from the registries in models/eval/datasets.py and models/eval/methods.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.eval.datasets import DATASETS, DatasetError, read_dataset
from models.eval.methods import METHODS, SIDES, MethodOptions
from models.eval.metrics import evaluate_sample, summarise
from models.eval.report import side_paths, write_csv, write_json, write_pck_plot


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="dataset reader")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--method", required=True, choices=sorted(METHODS), help="keypoint or mesh method")
    p.add_argument("--json", required=True, help="output JSON path (CSV and PNG are written beside it)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1), help="MediaPipe model")
    p.add_argument("--pad", default="0.5,1.0",
                   help="margins (x crop side) tried in turn on tight crops, comma-separated; 0 = raw crop")
    p.add_argument("--iterations", type=int, default=3,
                   help="refinement steps of --method fit+refine / handnet+refine")
    p.add_argument("--checkpoint", default="",
                   help="HandNet weights (.pt of python -m models.train) for --method handnet / handnet+refine")
    p.add_argument("--side", default="detector", choices=SIDES,
                   help="hand model of fit / fit+refine: the detection's handedness, or the better of both fits")
    return p


def parse_pads(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise ValueError(f"--pad {text!r}: expected comma-separated numbers such as 0.5,1.0") from exc


def run(args: argparse.Namespace) -> dict:
    """Evaluate and write the outputs; returns the summary."""
    spec = METHODS[args.method]
    opts = MethodOptions(model_complexity=args.model_complexity, pad_fractions=parse_pads(args.pad),
                         iterations=args.iterations, side=args.side, checkpoint=args.checkpoint)
    method, results, n_views = spec.factory(opts), [], 1  # first: a bad checkpoint fails before any data is read
    try:
        for sample in read_dataset(args.dataset, args.root, args.limit):
            if spec.needs_stereo and not sample.is_stereo:
                raise DatasetError(f"method {args.method!r} needs a stereo dataset; {args.dataset!r} is mono "
                                   "(use --method mediapipe, or a stereo dataset such as synthetic)")
            n_views = len(sample.images)
            results.append(evaluate_sample(sample, method(sample), spec.outputs_3d))
    finally:
        method.close()
    if not results:
        raise DatasetError(f"no samples found in {args.root} for dataset {args.dataset!r}")
    summary = summarise(results, spec.outputs_3d, n_views, with_mesh=spec.outputs_mesh)
    out = Path(args.json)
    write_json(out, summary)
    csv_path, png_path = side_paths(out)
    write_csv(csv_path, results)
    write_pck_plot(png_path, results, n_views, spec.outputs_3d, f"{args.method} on {args.dataset}")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except (DatasetError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever the cause wrote
        return 2
    print(format_summary(summary))
    return 0


def format_summary(summary: dict, prefix: str = "") -> str:
    """One line ``key=value ...``; a nested dict's keys get its key as prefix (mono.pa_mpve_mm=...)."""
    parts = []
    for k, v in summary.items():
        if isinstance(v, dict):
            parts.append(format_summary(v, f"{prefix}{k}."))
        else:
            parts.append(f"{prefix}{k}={v:.4g}" if isinstance(v, float) else f"{prefix}{k}={v}")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
