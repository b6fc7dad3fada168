"""Network-ready training samples (after augmentation) and their batching.

Single samples have the shapes below; a batch (``collate_views`` / ``collate_stereo``) is the same dataclass with
a leading batch dimension B on every field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TrainView:
    """One augmented view (S = crop size); every 3D label is in the crop camera frame (the source camera rotated
    so its optical axis passes through the crop centre, then rolled by the rotation augmentation).

    image: (3, S, S) float32 RGB in [-1, 1]. heatmap: (21, S, S) float32 in [-1, 1], all zeros when dropped.
    mask: (1, S, S) float32 in [0, 1] (1 = hand); has_mask: () bool (False: mask is zeros and unused).
    keypoints_norm: (21, 2) float32 crop-normalised (-1 .. 1 across the crop). keypoints_m: (21, 3) float32 metres.
    verts_m: (V, 3) float32 metres ((0, 3) when the source has none). pose: (48,) float32 axis-angle radians,
    relative to the flat hand. shape: (10,) float32. R_crop_cam: (3, 3) float32 source camera -> crop camera.
    K_crop: (3, 3) float32 pixels, the crop camera's intrinsics.
    """

    image: torch.Tensor
    heatmap: torch.Tensor
    mask: torch.Tensor
    has_mask: torch.Tensor
    keypoints_norm: torch.Tensor
    keypoints_m: torch.Tensor
    verts_m: torch.Tensor
    pose: torch.Tensor
    shape: torch.Tensor
    R_crop_cam: torch.Tensor
    K_crop: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> TrainView:
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                                            for f in dataclasses.fields(self)})

    def pin_memory(self) -> TrainView:
        """Page-locked copy (DataLoader(pin_memory=True) calls this for faster host-to-GPU copies)."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).pin_memory()
                                            for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class TrainStereo:
    """Both views of one pair. R_right_left: (3, 3) float32, left crop camera frame -> right crop camera frame."""

    left: TrainView
    right: TrainView
    R_right_left: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> TrainStereo:
        return TrainStereo(self.left.to(device, non_blocking), self.right.to(device, non_blocking),
                           self.R_right_left.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> TrainStereo:
        return TrainStereo(self.left.pin_memory(), self.right.pin_memory(), self.R_right_left.pin_memory())


def collate_views(views: list[TrainView]) -> TrainView:
    """Stack a list of TrainView into one batched TrainView (fails naming the field whose shapes differ)."""
    out = {}
    for f in dataclasses.fields(TrainView):
        items = [getattr(v, f.name) for v in views]
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) != 1:
            raise ValueError(f"cannot batch TrainView.{f.name}: shapes differ {sorted(shapes)} (mixing data sets "
                             "with and without vertices? load vertices for every source of a stage)")
        out[f.name] = torch.stack(items)
    return TrainView(**out)


def collate_stereo(pairs: list[TrainStereo]) -> TrainStereo:
    return TrainStereo(collate_views([p.left for p in pairs]), collate_views([p.right for p in pairs]),
                       torch.stack([p.R_right_left for p in pairs]))
