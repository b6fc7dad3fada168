"""End-of-run summary and the ``--benchmark`` report: JSON (frames, fps, per-stage p50/p95 ms, capture-to-render
latency, drops, device, settings, MediaPipe-only baseline fps on the same frames) and a PNG bar chart."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import threading
import time
from pathlib import Path

from app.pipeline.runner import PipelineReport


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 2)


def _cpu_ms(s) -> str:
    return f"{s.cpu.p50_ms:.1f}" if s.cpu is not None and s.cpu.n else "-"


def cpu_dict(report: PipelineReport) -> dict:
    """The process's CPU use over the whole run (warm-up included): cores busy on average and CPU ms per frame
    read. Why: on a shared machine wall-clock stage times mostly measure waiting; CPU time says what a frame
    costs."""
    ok = report.wall_s > 0 and report.frames_read > 0
    return {"process_cpu_s": _r(report.process_cpu_s), "wall_s": _r(report.wall_s),
            "cores_busy": _r(report.process_cpu_s / report.wall_s) if ok else None,
            "cpu_ms_per_frame": _r(1e3 * report.process_cpu_s / report.frames_read) if ok else None,
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}


def summary_lines(report: PipelineReport) -> list[str]:
    """A few human-readable lines about the run."""
    lat = report.latency
    lines = [f"{report.frames} frames through the pipeline ({report.frames_read} read) at {report.fps:.1f} fps; "
             f"capture-to-render latency p50 {lat.p50_ms:.0f} ms, p95 {lat.p95_ms:.0f} ms; "
             f"stopped: {report.end_reason}"]
    lines += [f"  {s.name:<15} p50 {s.latency.p50_ms:7.1f} ms  p95 {s.latency.p95_ms:7.1f} ms  "
              f"cpu p50 {_cpu_ms(s):>7} ms  processed {s.processed:5d}  dropped {s.dropped}" for s in report.stages]
    cpu = cpu_dict(report)
    if cpu["cpu_ms_per_frame"] is not None:
        lines.append(f"  process CPU {cpu['cpu_ms_per_frame']:.1f} ms per frame read, {cpu['cores_busy']:.2f} "
                     "cores busy on average")
    return lines


class FrameKeeper:
    """Keeps the last ``limit`` frames read (live sources), for the MediaPipe baseline on the same frames."""

    def __init__(self, limit: int):
        self.frames: collections.deque = collections.deque(maxlen=max(1, limit))
        self._lock = threading.Lock()

    def __call__(self, frame) -> None:
        with self._lock:
            self.frames.append(frame)


def replay_frames(uri: str, count: int):
    """The first ``count`` frames of a file source, read again (same frames the pipeline processed)."""
    from app.capture import open_source

    with open_source(uri) as src:
        for _ in range(count):
            frame = src.read()
            if frame is None:
                return
            yield frame


def mediapipe_baseline(detection_cfg, frames, warmup: int = 0) -> tuple[float, int]:
    """(fps, frames): MediaPipe alone on both views of each frame, as the detection stage runs it (its
    config, one graph per view, the two views in parallel when ``parallel_views``); fresh tracking state.
    The first ``warmup`` frames (graph start-up) are run but not timed when more frames follow."""
    from app.detection import build_detector

    total_s, n = 0.0, 0
    with build_detector(detection_cfg) as det:
        for i, frame in enumerate(frames):
            t0 = time.perf_counter()
            det.detect_views(frame.left, frame.right)
            if i >= warmup:
                total_s += time.perf_counter() - t0
                n += 1
    return (n / total_s if total_s > 0 else 0.0), n


def benchmark_dict(report: PipelineReport, device: str, settings: dict, baseline: tuple[float, int]) -> dict:
    stages = {s.name: {"p50_ms": _r(s.latency.p50_ms), "p95_ms": _r(s.latency.p95_ms), "n": s.latency.n,
                       "cpu_p50_ms": _r(s.cpu.p50_ms) if s.cpu and s.cpu.n else None}
              for s in report.stages}
    return {"frames": report.frames, "frames_read": report.frames_read, "fps": round(report.fps, 2),
            "stages": stages,
            "latency_ms": {"p50": _r(report.latency.p50_ms), "p95": _r(report.latency.p95_ms)},
            "dropped": {s.name: s.dropped for s in report.stages}, "device": device, "settings": settings,
            "cpu": cpu_dict(report),
            "baseline_mediapipe_fps": round(baseline[0], 2), "baseline_frames": baseline[1],
            "warmup_frames": report.warmup, "end_reason": report.end_reason, "error": report.error}


def settings_dict(cfg) -> dict:
    """The settings that shape the figures (source, hands, iterations, detection model, pacing)."""
    return {"source": cfg.source, "hands": cfg.pipeline.hands, "iterations": cfg.reconstruction.iterations,
            "realtime": cfg.pipeline.realtime, "queue_size": cfg.pipeline.queue_size,
            "max_in_flight": cfg.pipeline.max_in_flight,
            "max_frames": cfg.pipeline.max_frames, "headless": cfg.viewer.headless,
            "panel_width_px": cfg.viewer.panel_width_px, "detection": dataclasses.asdict(cfg.detection),
            "hand_model": cfg.hand_model.resolved_mano_dir() or "open"}


def write_benchmark(path: str | Path, data: dict) -> tuple[Path, Path]:
    """The JSON at ``path`` and a bar chart beside it (same name, .png); both written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
    return path, plot_benchmark(data, path.with_suffix(".png"))


def plot_benchmark(data: dict, png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*data["stages"], "capture-to-render"]
    p50 = [data["stages"][n]["p50_ms"] or 0 for n in data["stages"]] + [data["latency_ms"]["p50"] or 0]
    p95 = [data["stages"][n]["p95_ms"] or 0 for n in data["stages"]] + [data["latency_ms"]["p95"] or 0]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    x = range(len(names))
    ax1.bar([i - 0.2 for i in x], p50, 0.4, label="p50")
    ax1.bar([i + 0.2 for i in x], p95, 0.4, label="p95")
    ax1.set_xticks(list(x), names, rotation=20)
    ax1.set_ylabel("ms")
    ax1.set_title(f"latency per stage ({data['frames']} frames, {data['device']})")
    ax1.legend()
    ax2.bar(["pipeline", "MediaPipe only"], [data["fps"], data["baseline_mediapipe_fps"]], color=["C2", "C7"])
    ax2.set_ylabel("frames per second")
    ax2.set_title("throughput")
    fig.tight_layout()
    tmp = png.with_name(png.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)
    return png
