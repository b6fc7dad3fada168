"""The glue from a detection to the refiner's ViewTargets, with the real segmentation and refine modules."""

import dataclasses

import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.detection.config import DetectionConfig
from app.detection.crop import crop_intrinsics
from app.geometry.camera import project
from app.pipeline.refinement import TargetBuilder, rescale_affine
from app.types import HandMesh, HandObservation, HandState, StereoFrame
from calibration.presets import preset_rig

seg_mod = pytest.importorskip("app.reconstruction.segmentation")
refine_mod = pytest.importorskip("app.reconstruction.refine")


def test_rescale_affine_keeps_pixel_centres():
    A = np.array([[2.0, 0.0, -10.0], [0.0, 2.0, -20.0]])
    half = rescale_affine(A, 0.5)
    p = np.array([7.0, 9.0])
    crop = A[:, :2] @ p + A[:, 2]
    np.testing.assert_allclose(half[:, :2] @ p + half[:, 2], (crop + 0.5) * 0.5 - 0.5)


def scene(side: str):
    """A hand of ``side`` 0.4 m in front of a 640x360 rig, its stereo frame (hand pixels bright on dark) and
    its observation with the detector's crops (a left hand's crop is mirrored)."""
    from app.detection.stereo import make_detection
    from models.hand_model import build_hand_model

    calib = preset_rig("zed-mini", "640x360")
    model = build_hand_model(HandModelConfig(), side)
    pose = np.zeros(48, np.float32)
    pose[:3] = (0.0, 0.0, np.pi / 2)  # fingers up
    transl = np.array([0.0, 0.0, 0.4], np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(pose[None]), torch.zeros(1, 10), torch.from_numpy(transl[None]))
    verts, kps = out.verts_m[0].numpy(), out.keypoints_m[0].numpy()
    state = HandState(pose, np.zeros(10, np.float32), transl, side == "left")
    mesh = HandMesh(0, 0, verts, model.faces.numpy(), kps, state)
    images, dets = [], []
    for cam in (calib.left, calib.right):
        cam_kps = kps @ cam.T_cam_left[:3, :3].T + cam.T_cam_left[:3, 3]
        cam_verts = verts @ cam.T_cam_left[:3, :3].T + cam.T_cam_left[:3, 3]
        mask = seg_mod.mesh_silhouette_mask(cam_verts, mesh.faces, cam.K, np.eye(4), 640)[:360]
        images.append(np.where(mask[..., None], 220, 30).astype(np.uint8).repeat(3, 2))
        dets.append(make_detection(project(cam_kps.astype(np.float64), cam.K), 0.9, side, DetectionConfig()))
    frame = StereoFrame(0, 0, images[0], images[1], calib)
    obs = HandObservation(0, 0, dets[0], dets[1], kps.astype(np.float32), None, side == "left")
    return mesh, obs, frame


@pytest.mark.parametrize("side", ["right", "left"])
def test_targets_cover_the_hand_in_both_views(side):
    mesh, obs, frame = scene(side)
    targets = TargetBuilder(seg_mod, refine_mod, 112, 224).targets(mesh, obs, frame, new_track=True)
    assert len(targets) == 2
    for t, cam in zip(targets, (frame.calibration.left, frame.calibration.right), strict=True):
        assert t.mask.shape == (112, 112) and (t.K[0, 0] < 0) == (side == "left")  # left crops are mirrored
        seed = seg_mod.mesh_silhouette_mask(mesh.verts_m, mesh.faces, t.K, cam.T_cam_left, 112)
        hand = t.mask > 0.5
        assert seed.sum() > 500  # the mesh shows in the (mirrored) crop camera
        assert (hand & seed).sum() / (hand | seed).sum() > 0.8  # the mask agrees with the bright hand pixels


def test_handnet_masks_replace_the_colour_segmentation():
    """Given HandNet's masks (here: the mesh's own silhouette over each 224 px detection crop), the targets are
    those masks at the refiner's size in the same crop camera; a mono observation uses its one mask."""
    mesh, obs, frame = scene("left")
    builder = TargetBuilder(seg_mod, refine_mod, 112, 224)
    colour = builder.targets(mesh, obs, frame, new_track=True)
    masks = []
    for det, cam in ((obs.left, frame.calibration.left), (obs.right, frame.calibration.right)):
        K = crop_intrinsics(cam.K, det.crop_from_image)
        masks.append(seg_mod.mesh_silhouette_mask(mesh.verts_m, mesh.faces, K, cam.T_cam_left, 224).astype(np.float32))
    given = builder.targets(mesh, obs, frame, new_track=False, masks=tuple(masks))
    for t, c in zip(given, colour, strict=True):
        np.testing.assert_allclose(t.K, c.K)
        assert t.mask.shape == (112, 112) and set(np.unique(t.mask)) <= set(np.linspace(0, 1, 5))
        hand = t.mask > 0.5
        assert (hand & (c.mask > 0.5)).sum() / (hand | (c.mask > 0.5)).sum() > 0.8
    mono = dataclasses.replace(obs, left=None)
    one = builder.targets(mesh, mono, frame, new_track=False, masks=(masks[1],))
    assert len(one) == 1 and np.array_equal(one[0].mask, given[1].mask)
