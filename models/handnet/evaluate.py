"""Held-out evaluation of HandNet on synthetic stereo pairs: trained checkpoint vs the untrained network.

Per held-out pair, with the training's crops (augmentation disabled: the crop box is the ground-truth keypoint box
scaled by ``eval_scale`` = 2, no roll, blur or heatmap dropout) and heatmaps rendered from the GROUND-TRUTH 2D
keypoints (a learning check, not an end-to-end one: no detector error enters):
- mono: each view alone (``mono_left`` is the headline mono figure, ``mono_right`` for completeness): its
  (pose, shape) through the hand model against that view's ground-truth vertices / keypoints (crop camera frame);
- stereo: the fused (pose, shape) of ``HandNet.fuse_views`` against the right view's ground truth;
- PA-MPVE / PA-MPJPE in mm, Procrustes-aligned per sample as FreiHAND's eval.py (app/geometry/procrustes.py);
- segmentation: per view, hand IoU of (predicted probability > 0.5) against (ground-truth crop mask > 0.5), the
  mean over samples (a sample where both are empty counts 1); ``mean_class_iou`` also averages in the background
  class (the thesis' "mean IoU").
The untrained network is the training run's own initialisation: ``torch.manual_seed(seed); build_handnet(cfg)``
exactly as ``models.training.loop.setup`` does, with the checkpoint's config and seed.

Held-out data: a models.synth set (dataset.json) is read at ``split``; a stand-in set (meta.json, rendered by
models/data/synthetic_adapter.py) has no internal split, so it counts as held out only when its pair seeds
[seed, seed + count) are disjoint from those of the checkpoint's training set, which ``check_held_out`` enforces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from app.geometry.procrustes import pa_mpjpe
from models.handnet.checkpoint import Checkpoint, load_handnet
from models.handnet.config import HandNetConfig
from models.handnet.net import HandNet, build_handnet

HELD_OUT_SEED = 1_000_000  # default first pair seed of a rendered held-out stand-in set (training uses 0 ..)
VIEWS = ("mono_left", "mono_right", "stereo")


class HeldOutError(ValueError):
    """The evaluation set is not held out from the checkpoint's training data (or cannot be read as such)."""


# ---------------------------------------------------------------------------------------------------- metrics


def hand_iou(prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(B, ...) predicted probabilities and ground-truth masks -> (B,) IoU of the thresholded hand pixels.

    Both masks empty counts 1 (nothing to find, nothing found)."""
    pred = prob.reshape(len(prob), -1) > threshold
    true = gt.reshape(len(gt), -1) > threshold
    inter = (pred & true).sum(1)
    union = (pred | true).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def mean_class_iou(prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(B,) mean of the hand IoU and the background IoU (the thesis' segmentation "mean IoU")."""
    background = hand_iou(1.0 - prob, 1.0 - gt, 1.0 - threshold)
    return (hand_iou(prob, gt, threshold) + background) / 2


def pa_error_mm(pred_m: torch.Tensor, target_m: torch.Tensor) -> np.ndarray:
    """(B, N, 3) metres -> (B,) Procrustes-aligned mean point error in mm (float64 alignment)."""
    return pa_mpjpe(pred_m.double(), target_m.double()).numpy() * 1000.0


# ---------------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class EvalData:
    """source: a StereoSource; info: what the report says about it (kind, directory, split, seeds)."""

    source: object
    info: dict


def render_held_out(directory: str | Path, count: int, seed: int = HELD_OUT_SEED) -> Path:
    """Render a stand-in set of ``count`` pairs with pair seeds seed .. seed + count - 1 (kept if complete)."""
    from models.data.synthetic_adapter import SynthAdapterConfig, open_stereo_source

    open_stereo_source(directory, SynthAdapterConfig(count=count, seed=seed), progress=False)
    return Path(directory)


def open_eval_data(directory: str | Path, split: str = "val") -> EvalData:
    from models.data.synth_set import SynthSetSource, is_synth_set
    from models.data.synthetic_adapter import SyntheticStereoReader

    d = Path(directory)
    if is_synth_set(d):
        return EvalData(SynthSetSource(d, split), {"kind": "models.synth", "dir": str(d), "split": split})
    if split != "val":
        raise HeldOutError(f"--data {d} is a stand-in set (no internal split): only --split val applies, and its "
                           "pair seeds must not overlap the training set's")
    reader = SyntheticStereoReader(d)
    cfg = reader.meta["config"]
    return EvalData(reader, {"kind": "stand-in", "dir": str(d), "split": split, "seed": int(cfg["seed"]),
                             "count": int(reader.meta["count"]), "config": cfg})


def open_train_source(directory: str | Path):
    """The training data of a run (a models.synth set's train split, or a whole stand-in set)."""
    from models.data.synth_set import SynthSetSource, is_synth_set
    from models.data.synthetic_adapter import SyntheticStereoReader

    return SynthSetSource(directory, "train") if is_synth_set(directory) else SyntheticStereoReader(directory)


def _seed_range(synthetic: dict) -> range:
    return range(int(synthetic["seed"]), int(synthetic["seed"]) + int(synthetic["count"]))


def check_held_out(data: EvalData, ckpt: Checkpoint | None) -> str:
    """Raise HeldOutError when ``data`` may overlap the checkpoint's training set; returns how it was checked."""
    if data.info["kind"] == "models.synth":
        if data.info["split"] == "val":
            return "models.synth val split (the training reads the train split)"
        raise HeldOutError(f"split {data.info['split']!r} is trained on; evaluate --split val")
    train_cfg = ((ckpt.train or {}).get("config") or {}) if ckpt is not None else {}
    if not train_cfg:
        return "no training record (untrained network only)"
    trained = _seed_range(train_cfg["data"]["synthetic"])
    evaluated = _seed_range(data.info)
    if set(trained) & set(evaluated):
        raise HeldOutError(f"held-out set {data.info['dir']} renders pair seeds {evaluated.start}..{evaluated.stop - 1}"
                           f", the checkpoint trained on {trained.start}..{trained.stop - 1}: they overlap; render "
                           f"a disjoint set (--render N --render-seed {trained.stop} or larger)")
    trained_gen = json.loads(json.dumps(train_cfg["data"]["synthetic"]))  # tuples -> lists, as in meta.json
    differ = sorted(k for k, v in trained_gen.items()
                    if k not in ("seed", "count") and k in data.info["config"] and data.info["config"][k] != v)
    same = f"generator settings differ in {differ}" if differ else "same generator settings"
    return (f"pair seeds {evaluated.start}..{evaluated.stop - 1} disjoint from the trained "
            f"{trained.start}..{trained.stop - 1}; {same}")


def eval_loader(source, crop_size: int, batch_size: int = 8, limit: int = 0, heatmaps: dict | None = None
                ) -> DataLoader:
    """Un-augmented stereo crops with ground-truth heatmaps (the training's StereoTrainSet, augmentation off);
    heatmaps: {'heatmap_sigma', 'heatmap_kernel'} the network was trained with (None: the defaults)."""
    from torch.utils.data import Subset

    from models.training.augmentation import AugmentConfig
    from models.training.datasets import StereoTrainSet
    from models.training.samples import collate_stereo

    dataset = StereoTrainSet(source, AugmentConfig(enabled=False, crop_size=crop_size, **(heatmaps or {})))
    if limit:
        dataset = Subset(dataset, range(min(limit, len(dataset))))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_stereo)


# ---------------------------------------------------------------------------------------------------- networks


def untrained_handnet(cfg: HandNetConfig, seed: int) -> HandNet:
    """The network a training run with this config and seed starts from (loop.setup's order)."""
    torch.manual_seed(seed)
    return build_handnet(cfg).eval()


def hand_model_for(ckpt: Checkpoint | None) -> torch.nn.Module:
    """The right-hand model the checkpoint was trained with (the open model without a checkpoint)."""
    from app.config import HandModelConfig
    from models.hand_model import build_hand_model

    info = ckpt.hand_model if ckpt is not None else {}
    mano_dir = info.get("mano_dir", "") if info.get("name") == "mano" else ""
    return build_hand_model(HandModelConfig(mano_dir=mano_dir), "right").cpu().eval()


def _view_errors(hand_model, pose, shape, verts_m, kps_m) -> dict:
    hand = hand_model(pose.float(), shape.float())
    return {"pa_mpve_mm": pa_error_mm(hand.verts_m, verts_m), "pa_mpjpe_mm": pa_error_mm(hand.keypoints_m, kps_m)}


@torch.no_grad()
def batch_metrics(net: HandNet, hand_model, batch) -> dict:
    """Per-sample metrics of one TrainStereo batch: {view: {metric: (B,)}, 'seg_left'/'seg_right': {...}}."""
    images = torch.stack([batch.left.image, batch.right.image], 1)
    heat = torch.stack([batch.left.heatmap, batch.right.heatmap], 1)
    out = net.forward_stereo(images, heat, segment=True, R_right_left=batch.R_right_left)
    b_l, b_r = batch.left, batch.right
    result = {"mono_left": _view_errors(hand_model, out.left.pose, out.left.shape, b_l.verts_m, b_l.keypoints_m),
              "mono_right": _view_errors(hand_model, out.right.pose, out.right.shape, b_r.verts_m, b_r.keypoints_m),
              "stereo": _view_errors(hand_model, out.pose, out.shape, b_r.verts_m, b_r.keypoints_m)}
    for name, view, gt in (("seg_left", out.left, b_l), ("seg_right", out.right, b_r)):
        prob, mask = view.seg.numpy(), gt.mask.numpy()
        result[name] = {"iou": hand_iou(prob, mask), "mean_class_iou": mean_class_iou(prob, mask)}
    return result


def _concat(parts: list[dict]) -> dict:
    """[{k: array | dict}] -> {k: concatenated array | dict}, recursively."""
    out = {}
    for k, first in parts[0].items():
        items = [p[k] for p in parts]
        out[k] = _concat(items) if isinstance(first, dict) else np.concatenate(items)
    return out


def per_sample_metrics(net: HandNet, hand_model, loader) -> dict:
    return _concat([batch_metrics(net, hand_model, batch) for batch in loader])


def summarise(per_sample: dict) -> dict:
    """Means (and medians of the mm errors) of per_sample_metrics' arrays, plus seg IoU over both views."""
    out = {}
    for view in VIEWS:
        out[view] = {}
        for k, v in per_sample[view].items():
            out[view][k] = float(v.mean())
            out[view][k.replace("_mm", "_median_mm")] = float(np.median(v))
    seg = {side: {k: float(v.mean()) for k, v in per_sample[f"seg_{side}"].items()} for side in ("left", "right")}
    seg["both"] = {k: (seg["left"][k] + seg["right"][k]) / 2 for k in seg["left"]}
    out["segmentation"] = seg
    out["stereo_minus_mono_left"] = paired_difference(per_sample["stereo"]["pa_mpve_mm"],
                                                      per_sample["mono_left"]["pa_mpve_mm"])
    return out


def paired_difference(a_mm: np.ndarray, b_mm: np.ndarray) -> dict:
    """Per-sample a - b (PA-MPVE, mm): mean, its standard error, and the fraction of samples where a < b."""
    d = a_mm - b_mm
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"pa_mpve_mean_diff_mm": float(d.mean()), "pa_mpve_diff_se_mm": se,
            "a_better_fraction": float(np.mean(d < 0))}


def comparison(untrained: dict, trained: dict) -> dict:
    """Relative PA-MPVE reductions (trained vs untrained) per view and stereo vs mono, trained; the targets of
    issue 9 (>= 30 % reduction in every view, seg IoU >= 0.8, stereo below mono; also: by more than 2 standard
    errors of the paired per-sample difference)."""
    red = {v: 1.0 - trained[v]["pa_mpve_mm"] / untrained[v]["pa_mpve_mm"] for v in VIEWS}
    stereo, mono = trained["stereo"]["pa_mpve_mm"], trained["mono_left"]["pa_mpve_mm"]
    stereo_gain = 1.0 - stereo / mono
    paired = trained["stereo_minus_mono_left"]
    significant = paired["pa_mpve_mean_diff_mm"] + 2 * paired["pa_mpve_diff_se_mm"] < 0
    return {"pa_mpve_reduction": red, "stereo_vs_mono_left_reduction": stereo_gain,
            "targets": {"pa_mpve_reduction_ge_0.30": bool(min(red.values()) >= 0.30),
                        "seg_iou_ge_0.8": bool(trained["segmentation"]["both"]["iou"] >= 0.8),
                        "stereo_beats_mono": bool(stereo < mono),
                        "stereo_beats_mono_by_2_se": bool(significant)}}


def mean_hand(source) -> tuple[torch.Tensor, torch.Tensor]:
    """The training labels' mean hand: (48,) pose (zero global rotation, mean joint axis-angles) and (10,) shape."""
    pairs = [source.pair(i).right for i in range(len(source))]
    pose = np.mean([v.pose for v in pairs], 0)
    pose[:3] = 0.0  # the global rotation is removed by the alignment anyway
    return torch.from_numpy(pose).float(), torch.from_numpy(np.mean([v.shape for v in pairs], 0)).float()


@torch.no_grad()
def mean_hand_metrics(pose: torch.Tensor, shape: torch.Tensor, hand_model, loader) -> dict:
    """PA errors of predicting the same mean hand for every held-out right view (a 'learned nothing but the
    average' baseline: what a network that ignores its input can reach at best with these labels)."""
    parts = []
    for batch in loader:
        b = len(batch.right.pose)
        parts.append(_view_errors(hand_model, pose.expand(b, -1), shape.expand(b, -1), batch.right.verts_m,
                                  batch.right.keypoints_m))
    return {k: float(v.mean()) for k, v in _concat(parts).items()}


# ---------------------------------------------------------------------------------------------------- driver


def evaluate(data: EvalData, checkpoint: str | None = None, untrained: bool = True, config: HandNetConfig | None = None,
             seed: int = 0, batch_size: int = 8, limit: int = 0, mean_source=None) -> dict:
    """Report dict (module doc): networks.{untrained,trained} summaries, comparison when both were evaluated,
    baselines.mean_hand when ``mean_source`` (the training set) is given."""
    ckpt = None
    nets = {}
    if checkpoint:
        net, ckpt = load_handnet(checkpoint, "cpu")
        train_cfg = (ckpt.train or {}).get("config") or {}
        config, seed = ckpt.config, int(train_cfg.get("seed", seed))
        nets["trained"] = net
    if config is None:
        raise ValueError("evaluate: give a checkpoint or a HandNet config for the untrained network")
    how = check_held_out(data, ckpt)
    if untrained:
        nets = {"untrained": untrained_handnet(config, seed), **nets}
    heat = {} if ckpt is None else {k: v for k, v in ckpt.network_inputs().items() if k != "crop_size"}
    loader = eval_loader(data.source, config.crop_size, batch_size, limit, heat)
    hand_model = hand_model_for(ckpt)
    summaries = {name: summarise(per_sample_metrics(net, hand_model, loader)) for name, net in nets.items()}
    report = {"data": {**data.info, "held_out": how}, "samples": len(loader.dataset), "checkpoint": checkpoint or "",
              "seed": seed, "crops": "ground-truth keypoint box x 2.0, no augmentation",
              "heatmaps": f"rendered from ground-truth 2D keypoints {heat or 'sigma 5 / kernel 49'}",
              "networks": summaries}
    if mean_source is not None:
        report["baselines"] = {"mean_hand": mean_hand_metrics(*mean_hand(mean_source), hand_model, loader)}
    if "trained" in summaries and "untrained" in summaries:
        report["comparison"] = comparison(summaries["untrained"], summaries["trained"])
    return report


def write_report(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    return path


def format_report(report: dict) -> str:
    lines = [f"{report['samples']} held-out pairs ({report['data']['held_out']})",
             f"{'network':<10} {'view':<11} {'PA-MPVE mm':>11} {'PA-MPJPE mm':>12}"]
    for name, s in report["networks"].items():
        for view in VIEWS:
            lines.append(f"{name:<10} {view:<11} {s[view]['pa_mpve_mm']:>11.2f} {s[view]['pa_mpjpe_mm']:>12.2f}")
        seg = s["segmentation"]
        d = s["stereo_minus_mono_left"]
        lines.append(f"{name:<10} stereo - mono_left PA-MPVE {d['pa_mpve_mean_diff_mm']:+.3f} +- "
                     f"{d['pa_mpve_diff_se_mm']:.3f} mm (stereo better on {d['a_better_fraction']:.0%})")
        lines.append(f"{name:<10} seg IoU left {seg['left']['iou']:.3f} right {seg['right']['iou']:.3f} "
                     f"(mean class IoU {seg['both']['mean_class_iou']:.3f})")
    if "baselines" in report:
        m = report["baselines"]["mean_hand"]
        lines.append(f"mean hand of the training labels: PA-MPVE {m['pa_mpve_mm']:.2f} mm, "
                     f"PA-MPJPE {m['pa_mpjpe_mm']:.2f} mm")
    if "comparison" in report:
        c = report["comparison"]
        red = ", ".join(f"{v} {r:.1%}" for v, r in c["pa_mpve_reduction"].items())
        lines.append(f"PA-MPVE reduction trained vs untrained: {red}; stereo vs mono (left): "
                     f"{c['stereo_vs_mono_left_reduction']:.1%}; targets {c['targets']}")
    return "\n".join(lines)
