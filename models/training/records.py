"""Training records written by rank 0: steps.csv (every logged step), history.json (per-epoch means and the run's
settings) and loss.png (loss per step, one colour per stage, log scale).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

TERMS = ("pose", "shape", "joints2d", "shape_reg", "cam_reg", "bce", "vertex", "joints3d")
COLUMNS = ("stage", "epoch", "step", "global_step", "lr", "loss") + TERMS


class TrainLog:
    """Append-only CSV of steps plus per-epoch summaries; a disabled log (ranks > 0) does nothing."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, history: list | None = None):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.history: list[dict] = list(history or [])
        self._epoch: dict[str, list[float]] = {}
        self.csv_path = self.out_dir / "steps.csv"
        if enabled:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if not self.csv_path.is_file():
                with open(self.csv_path, "w", newline="") as f:
                    csv.writer(f).writerow(COLUMNS)

    def step(self, stage: str, epoch: int, step: int, global_step: int, lr: float, loss: float, terms: dict,
             write: bool = True) -> None:
        """Accumulate one step into the epoch means; write a CSV row when ``write``."""
        if not self.enabled:
            return
        for k, v in {"loss": loss, **terms}.items():
            self._epoch.setdefault(k, []).append(float(v))
        if write:
            row = [stage, epoch, step, global_step, f"{lr:.6g}", f"{loss:.6g}"]
            row += [f"{float(terms[t]):.6g}" if t in terms else "" for t in TERMS]
            with open(self.csv_path, "a", newline="") as f:
                csv.writer(f).writerow(row)

    def end_epoch(self, stage: str, epoch: int, seconds: float) -> dict:
        """Close an epoch: its mean terms go into history (returned)."""
        means = {k: sum(v) / len(v) for k, v in self._epoch.items() if v}
        record = {"stage": stage, "epoch": epoch, "seconds": round(seconds, 2),
                  "steps": len(self._epoch.get("loss", [])), **means}
        self._epoch = {}
        if self.enabled:
            self.history.append(record)
        return record

    def write_summary(self, settings: dict) -> Path | None:
        if not self.enabled:
            return None
        path = self.out_dir / "history.json"
        path.write_text(json.dumps({"settings": settings, "epochs": self.history}, indent=1, default=str))
        return path

    def plot(self) -> Path | None:
        """loss.png from steps.csv (needs matplotlib; the Agg backend, no display)."""
        if not self.enabled or not self.csv_path.is_file():
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = list(csv.DictReader(open(self.csv_path)))
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for stage in dict.fromkeys(r["stage"] for r in rows):
            pts = [(int(r["global_step"]), float(r["loss"])) for r in rows if r["stage"] == stage]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=stage, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (per stage: MANO, BCE or stereo)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = self.out_dir / "loss.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path
