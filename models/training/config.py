"""Training configuration: one frozen dataclass tree, merged once (preset <- YAML <- --set overrides).

Defaults are the thesis' (Table 5.1 schedules, Adam 2e-4 / (0.9, 0.99), loss weights of 4.5.1, augmentation of
4.5.2); presets (models/training/presets.py) shrink them for CPU runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from app.config import HandModelConfig
from models.data.synthetic_adapter import SynthAdapterConfig
from models.handnet.config import HandNetConfig
from models.handnet.losses import ManoLossWeights, StereoLossWeights
from models.training.augmentation import AugmentConfig


@dataclass(frozen=True)
class StageSchedule:
    """epochs of a stage (0 skips it) and how many of its last epochs decay the learning rate linearly to 0;
    lr_scale multiplies optim.lr in this stage (1 = the thesis' single learning rate)."""

    epochs: int
    decay_epochs: int
    lr_scale: float = 1.0


@dataclass(frozen=True)
class Schedules:
    """Per-stage schedules; thesis Table 5.1 for the mono stages, 4.5 for the stereo ones (adaption: 2 epochs,
    decay unstated - 1 here; stereo: 8 epochs, decay 4)."""

    image: StageSchedule = StageSchedule(120, 20)
    keypoint: StageSchedule = StageSchedule(100, 20)
    fusion: StageSchedule = StageSchedule(100, 20)
    finalize: StageSchedule = StageSchedule(180, 100)
    segmentation: StageSchedule = StageSchedule(10, 6)
    synthetic_adaption: StageSchedule = StageSchedule(2, 1)
    stereo: StageSchedule = StageSchedule(8, 4)


@dataclass(frozen=True)
class OptimConfig:
    """Adam (thesis 5.3). batch_size is the GLOBAL batch: each of N torchrun processes takes batch_size / N."""

    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.99
    batch_size: int = 32
    max_steps_per_epoch: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Where samples come from.

    freihand_dir: FreiHAND root ('' = none: the mono stages then train on the synthetic set's views).
    synthetic_dir: a synthetic stereo set ('' = OUT/synthetic); rendered with ``synthetic`` when incomplete and
    ``generate_synthetic``. num_workers: DataLoader worker processes per rank.
    """

    freihand_dir: str = ""
    freihand_val_fraction: float = 0.3
    synthetic_dir: str = ""
    generate_synthetic: bool = True
    synthetic: SynthAdapterConfig = field(default_factory=SynthAdapterConfig)
    num_workers: int = 2


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. device: auto | cuda | cpu; amp: half precision (bf16 or fp16 autocast)
    on CUDA; channels_last: channels-last tensors on CUDA; num_threads: torch intra-op threads per process
    (0 = torch's default; 1 on a busy shared CPU, where more threads slowed small models 20x); log_every: steps
    between CSV rows."""

    handnet: HandNetConfig = field(default_factory=HandNetConfig)
    hand_model: HandModelConfig = field(default_factory=HandModelConfig)
    stages: Schedules = field(default_factory=Schedules)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mano_loss: ManoLossWeights = field(default_factory=ManoLossWeights)
    stereo_loss: StereoLossWeights = field(default_factory=StereoLossWeights)
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    num_threads: int = 0
    seed: int = 0
    log_every: int = 1
    progress: bool = True

    def __post_init__(self):
        if self.augment.crop_size != self.handnet.crop_size:
            raise ValueError(f"augment.crop_size {self.augment.crop_size} != handnet.crop_size "
                             f"{self.handnet.crop_size}; set both to the same value")
        if self.optim.batch_size < 1:
            raise ValueError(f"optim.batch_size must be >= 1, got {self.optim.batch_size}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
