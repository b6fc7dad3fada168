"""torch Datasets that augment raw views / pairs into TrainView / TrainStereo, and the sources of a run.

Augmentation randomness is a pure function of (seed, stage, epoch, index): every process and DataLoader worker
draws the same augmentation for the same sample, so a run is reproducible and a torchrun run sees exactly the
samples of a single-process run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from models.data.types import MonoSource, StereoSource, StereoViews
from models.training.augmentation import AugmentConfig, augment_pair, augment_view, sample_params
from models.training.samples import TrainStereo, TrainView


class _Seeded(Dataset):
    def __init__(self, cfg: AugmentConfig, seed: int, stage: int):
        self.cfg = cfg
        self.seed = seed
        self.stage = stage
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.stage, self.epoch, index])


class MonoTrainSet(_Seeded):
    """Views of one or more MonoSources, concatenated, augmented -> TrainView."""

    def __init__(self, sources: list[MonoSource], cfg: AugmentConfig, seed: int = 0, stage: int = 0):
        super().__init__(cfg, seed, stage)
        self.sources = list(sources)
        self.offsets = np.cumsum([0] + [len(s) for s in self.sources])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> TrainView:
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        raw = self.sources[k].view(index - int(self.offsets[k]))
        return augment_view(raw, sample_params(self.rng(index), self.cfg), self.cfg)


class StereoTrainSet(_Seeded):
    """Pairs of a StereoSource, augmented -> TrainStereo."""

    def __init__(self, source: StereoSource, cfg: AugmentConfig, seed: int = 0, stage: int = 0):
        super().__init__(cfg, seed, stage)
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> TrainStereo:
        return augment_pair(self.source.pair(index), self.rng(index), self.cfg)


@dataclass(frozen=True)
class Sources:
    """The raw data of a run: freihand (MonoSource or None), synthetic (StereoSource or None)."""

    freihand: MonoSource | None
    synthetic: StereoSource | None

    def mono(self, wanted: tuple[str, ...]) -> list[MonoSource]:
        """MonoSources for a stage's data names; 'freihand' falls back to the synthetic views when absent."""
        names = [n if n != "freihand" or self.freihand is not None else "synthetic" for n in wanted]
        out = []
        for name in dict.fromkeys(names):
            src = self.freihand if name == "freihand" else self.synthetic
            if src is None:
                raise ValueError(f"a stage needs {name} data but none is configured; set data.synthetic_dir or "
                                 "data.freihand_dir (or pass --data DIR)")
            out.append(src if name == "freihand" else StereoViews(src))
        return out


def data_kind(directory: str | Path) -> str:
    """'freihand' or 'synthetic' from a folder's contents (for --data); raises naming what was expected."""
    d = Path(directory)
    if (d / "training_K.json").is_file():
        return "freihand"
    if (d / "meta.json").is_file() or (d / "dataset.json").is_file():
        return "synthetic"
    raise ValueError(f"--data {d}: neither a FreiHAND root (training_K.json) nor a synthetic stereo set "
                     "(dataset.json of models.synth generate, or meta.json of the stand-in); pass one of those")
