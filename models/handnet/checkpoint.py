"""HandNet checkpoints (.pt): weights plus everything needed to rebuild and to resume.

Content (a plain dict, loadable with ``torch.load(weights_only=True)``):
  format: "realhands-handnet"; format_version: int (CHECKPOINT_VERSION);
  handnet_config: HandNetConfig.to_dict(); model: the HandNet state_dict;
  hand_model: {"name": "open" | "mano", "mano_dir": str} - the hand model the pose labels belong to;
  train: None, or {"config": the TrainConfig as a dict, "stage_index", "stage", "epoch" (epochs finished in
    that stage), "global_step", "optimizer": state_dict or None, "history": [per-epoch records]}.
Files are written to a temporary name and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from models.handnet.config import HandNetConfig, HandNetConfigError
from models.handnet.net import HandNet, build_handnet

CHECKPOINT_FORMAT = "realhands-handnet"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, of another format/version or does not fit the network."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: config, state (the weights), hand_model info dict, train state dict or None."""

    path: str
    config: HandNetConfig
    state: dict
    hand_model: dict
    train: dict | None

    def network_inputs(self) -> dict:
        """The detection settings whose crops and heatmaps this net reads: {'crop_size': px, and when the training
        record names them 'heatmap_sigma': px, 'heatmap_kernel': px} (DetectionConfig field names). A checkpoint
        without a training record keeps the detection's heatmap defaults."""
        augment = ((self.train or {}).get("config") or {}).get("augment") or {}
        heat = {k: augment[k] for k in ("heatmap_sigma", "heatmap_kernel") if k in augment}
        return {"crop_size": self.config.crop_size, **heat}


def save_checkpoint(path: str | Path, net: HandNet, hand_model: dict, train: dict | None = None) -> Path:
    """Write net's weights and config (and an optional training state) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
               "handnet_config": net.cfg.to_dict(), "model": net.state_dict(), "hand_model": dict(hand_model),
               "train": train}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; pass the .pt written by `python -m models.train`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails in many ways on a damaged file (EOFError, IndexError, ...)
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file ({type(exc).__name__}: "
                              f"{str(exc)[:200]}); re-copy it or retrain") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a HandNet checkpoint (no format '{CHECKPOINT_FORMAT}'); pass a .pt "
                              "written by `python -m models.train`")
    return data


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file (format, version, config); weights are checked by ``load_handnet``."""
    path = Path(path)
    data = _read(path)
    version = data.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: format version {version!r}, this code reads <= {CHECKPOINT_VERSION}; "
                              "update the code or re-export the checkpoint")
    try:
        cfg = HandNetConfig.from_dict(data["handnet_config"])
    except (KeyError, TypeError, HandNetConfigError) as exc:
        raise CheckpointError(f"{path}: unusable handnet_config ({exc}); the file is damaged or foreign") from None
    if not isinstance(data.get("model"), dict):
        raise CheckpointError(f"{path}: no model weights inside; the file is damaged")
    return Checkpoint(str(path), cfg, data["model"], data.get("hand_model") or {}, data.get("train"))


def load_weights(net: HandNet, ckpt: Checkpoint) -> HandNet:
    """Load ckpt.state into net, with an error naming the mismatching keys instead of a wall of text."""
    own = net.state_dict()
    missing = sorted(set(own) - set(ckpt.state))
    unexpected = sorted(set(ckpt.state) - set(own))
    wrong = sorted(k for k in set(own) & set(ckpt.state) if tuple(own[k].shape) != tuple(ckpt.state[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(f"{n} {len(v)} (e.g. {v[:3]})" for n, v in
                           (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if v)
        raise CheckpointError(f"{ckpt.path}: weights do not fit a HandNet of its stored config ({detail}); the "
                              "file was edited or written by incompatible code - retrain or use the matching code")
    net.load_state_dict(ckpt.state)
    return net


def load_handnet(path: str | Path, device: str | torch.device = "cpu") -> tuple[HandNet, Checkpoint]:
    """Build the checkpoint's HandNet, load its weights, move it to ``device``; returns (net in eval mode, ckpt)."""
    ckpt = load_checkpoint(path)
    net = load_weights(build_handnet(ckpt.config), ckpt)
    return net.to(device).eval(), ckpt
