"""Keypoint-only forward kinematics of a MANO-layout hand model, with its analytic Jacobian (numpy, float64).

The model fit needs the 21 keypoints (16 joints + 5 fingertip vertices) hundreds of times per second, not the
778-vertex mesh, so this module evaluates exactly those, with the same linear blend skinning as
``models.hand_model.layer.HandModel`` (smplx's ``lbs``):

1. rest joints J(beta) = J_regressor (v_template + shapedirs beta), linear in the shape beta (10,);
2. local rotations R_j = exp([theta_j]_x) from the 16 axis-angle vectors (global + 15 joints);
3. chain: G_j = G_parent R_j, o_j = o_parent + G_parent (J_j - J_parent), root o_0 = J_0 (+ translation);
4. fingertips: their rest vertices plus pose correctives (posedirs . (R_1..15 - I)), skinned by their
   16 blend weights: v = sum_j w_j (G_j v_rest + o_j - G_j J_j).

The Jacobian treats each fingertip as rigidly attached to its dominant joint and ignores the tips' pose
correctives (the open model's tips have weight >= 0.99 on one joint; a model whose tip weights are more spread
only gets a less exact Jacobian). Residuals always use the exact forward, so a Gauss-Newton solver still
converges to the exact optimum.

Frames: the model frame (the hand model's own metres); ``transl_m`` moves the result into the caller's frame
(the left camera). Keypoint order: MediaPipe's 21 (``MANO_TO_MEDIAPIPE``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.hand_model.layer import MANO_TO_MEDIAPIPE, HandModel

N_JOINTS = 16
N_TIPS = 5
N_KP = 21
_TINY_ANGLE = 1e-12  # radians; floor of the angle in the Rodrigues coefficients (see _coefficients)
_EYE = np.eye(3)


@dataclass(frozen=True)
class KeypointKinematics:
    """Model arrays needed for the 21 keypoints, float64, metres, model frame.

    parents: (16,) int64 (-1 for the root); levels: joint indices grouped by depth in the tree (root first).
    J0_m: (16, 3) rest joints of the template; Jdirs_m: (16, 3, 10) their change per unit shape coefficient.
    tip_v0_m: (5, 3) rest fingertip vertices; tip_dirs_m: (5, 3, 10); tip_posedirs_m: (135, 5, 3) pose
    correctives per pose feature; tip_weights: (5, 16) skinning weights; tip_joint: (5,) dominant joint.
    rot_mask: (21, 16) 1 where joint j's rotation moves keypoint i; bone_mask: (21, 21) 1 where rest bone b
    (16 joint bones then 5 tip bones) lies on keypoint i's chain. Rows in MediaPipe order.
    rot_pairs: (keypoint indices, joint indices) of rot_mask's nonzero entries.
    """

    parents: np.ndarray
    levels: tuple[np.ndarray, ...]
    J0_m: np.ndarray
    Jdirs_m: np.ndarray
    tip_v0_m: np.ndarray
    tip_dirs_m: np.ndarray
    tip_posedirs_m: np.ndarray
    tip_weights: np.ndarray
    tip_joint: np.ndarray
    rot_mask: np.ndarray
    bone_mask: np.ndarray
    rot_pairs: tuple[np.ndarray, np.ndarray]
    is_left: bool


@dataclass(frozen=True)
class KinematicState:
    """One evaluation. R, G: (16, 3, 3) local / world joint rotations; o_m: (16, 3) joint positions;
    keypoints_m: (21, 3) MediaPipe order; rest_joints_m: (16, 3) J(beta). Metres, caller's frame."""

    R: np.ndarray
    G: np.ndarray
    o_m: np.ndarray
    keypoints_m: np.ndarray
    rest_joints_m: np.ndarray


def _ancestors(parents: np.ndarray, j: int) -> list[int]:
    """Joint j and every joint above it, j first."""
    chain = [j]
    while parents[chain[-1]] >= 0:
        chain.append(int(parents[chain[-1]]))
    return chain


def _masks(parents: np.ndarray, tip_joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rot_mask (21, 16), bone_mask (21, 21)) in MANO order (16 joints, 5 tips); see KeypointKinematics."""
    rot, bone = np.zeros((N_KP, N_JOINTS)), np.zeros((N_KP, N_KP))
    for j in range(N_JOINTS):
        chain = _ancestors(parents, j)
        rot[j, chain[1:]] = 1.0  # a joint's own rotation does not move the joint
        bone[j, chain] = 1.0
    for k, j in enumerate(tip_joint):
        chain = _ancestors(parents, int(j))
        rot[N_JOINTS + k, chain] = 1.0
        bone[N_JOINTS + k, chain + [N_JOINTS + k]] = 1.0
    return rot, bone


def _levels(parents: np.ndarray) -> tuple[np.ndarray, ...]:
    depth = np.array([len(_ancestors(parents, j)) - 1 for j in range(N_JOINTS)])
    return tuple(np.flatnonzero(depth == d) for d in range(depth.max() + 1))


def build_kinematics(model: HandModel) -> KeypointKinematics:
    """Extract the keypoint arrays from a HandModel (its smplx buffers), as float64 numpy."""
    mano = model.mano

    def arr(t):
        return t.detach().cpu().double().numpy()

    v_t, dirs, jreg = arr(mano.v_template), arr(mano.shapedirs), arr(mano.J_regressor)
    tips = model.tip_vertex_ids.cpu().numpy()
    weights = arr(mano.lbs_weights)[tips]
    parents = model.parents.cpu().numpy().astype(np.int64)
    tip_joint = weights.argmax(1)
    rot, bone = _masks(parents, tip_joint)
    order = MANO_TO_MEDIAPIPE
    n_pose_feat = mano.posedirs.shape[0]
    return KeypointKinematics(
        parents=parents, levels=_levels(parents), J0_m=jreg @ v_t, Jdirs_m=np.einsum("jv,vcb->jcb", jreg, dirs),
        tip_v0_m=v_t[tips], tip_dirs_m=dirs[tips],
        tip_posedirs_m=arr(mano.posedirs).reshape(n_pose_feat, -1, 3)[:, tips, :],
        tip_weights=weights, tip_joint=tip_joint, rot_mask=rot[order], bone_mask=bone[order],
        rot_pairs=np.nonzero(rot[order]), is_left=bool(model.is_left))


# ---------------------------------------------------------------------------------------------------------
# Rotations (batched numpy)
# ---------------------------------------------------------------------------------------------------------


def skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices [v]_x."""
    out = np.zeros(v.shape + (3,))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def _coefficients(theta_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a = sin t / t, b = (1 - cos t) / t^2, c = (t - sin t) / t^3 for t^2 = theta_sq.

    No Taylor branch is needed: with t floored at 1e-12, a and b are accurate (b via 2 sin^2(t/2), no
    cancellation) and c only multiplies [theta]_x^2 = O(t^2), so its cancellation error stays ~1e-16.
    """
    t = np.maximum(np.sqrt(theta_sq), _TINY_ANGLE)
    s = np.sin(t)
    return s / t, 2 * np.sin(t / 2) ** 2 / (t * t), (t - s) / (t * t * t)


def rodrigues(aa: np.ndarray, with_jacobian: bool = False):
    """aa: (N, 3) axis-angle radians -> R (N, 3, 3), and with ``with_jacobian`` also J_left (N, 3, 3).

    R = I + a K + b K^2 and the left Jacobian of SO(3), J_l = I + b K + c K^2 (K = [aa]_x), which maps a
    change of aa to the world-frame rotation it causes: R(aa + d) ~ exp([J_l d]_x) R(aa).
    """
    a, b, c = _coefficients((aa * aa).sum(-1))
    K = skew(aa)
    K2 = K @ K
    R = _EYE + a[:, None, None] * K + b[:, None, None] * K2
    if not with_jacobian:
        return R
    return R, _EYE + b[:, None, None] * K + c[:, None, None] * K2


# ---------------------------------------------------------------------------------------------------------
# Forward and Jacobian
# ---------------------------------------------------------------------------------------------------------


def forward(kin: KeypointKinematics, pose: np.ndarray, shape: np.ndarray, transl_m: np.ndarray,
            R: np.ndarray | None = None) -> KinematicState:
    """pose: (48,) axis-angle radians; shape: (10,); transl_m: (3,) metres -> KinematicState (steps 1-4 of
    the module docstring). ``R`` (16, 3, 3) may be passed when the caller already has the local rotations."""
    J = kin.J0_m + kin.Jdirs_m @ shape
    if R is None:
        R = rodrigues(pose.reshape(N_JOINTS, 3))
    G, o = np.empty_like(R), np.empty_like(J)
    G[0], o[0] = R[0], J[0] + transl_m
    for idx in kin.levels[1:]:
        par = kin.parents[idx]
        G[idx] = G[par] @ R[idx]
        o[idx] = o[par] + np.einsum("nab,nb->na", G[par], J[idx] - J[par])
    pose_feature = (R[1:] - _EYE).reshape(-1)
    v_rest = kin.tip_v0_m + kin.tip_dirs_m @ shape + (pose_feature @ kin.tip_posedirs_m.reshape(
        len(pose_feature), -1)).reshape(N_TIPS, 3)
    # Blend the 16 rigid transforms (G_j, o_j - G_j J_j) per tip, then apply them to the rest vertex.
    offsets = o - np.einsum("jab,jb->ja", G, J)
    blend_G = (kin.tip_weights @ G.reshape(N_JOINTS, 9)).reshape(N_TIPS, 3, 3)
    tips = np.einsum("kab,kb->ka", blend_G, v_rest) + kin.tip_weights @ offsets
    keypoints = np.concatenate([o, tips])[MANO_TO_MEDIAPIPE]
    return KinematicState(R=R, G=G, o_m=o, keypoints_m=keypoints, rest_joints_m=J)


def jacobian(kin: KeypointKinematics, pose: np.ndarray, st: KinematicState) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives of the 21 keypoints (MediaPipe order) at ``st``.

    Returns (d_pose (21, 3, 48): per axis-angle component, global first; d_shape (21, 3, 10)); the derivative
    by the translation is the identity. Rotation of joint j moves keypoint p by -[p - o_j]_x G_parent J_l(theta_j)
    per unit change of theta_j (a rotation about o_j by the world-frame vector G_parent J_l d theta). Only the
    (keypoint, joint) pairs of ``rot_mask`` are computed.
    """
    _, Jl = rodrigues(pose.reshape(N_JOINTS, 3), with_jacobian=True)
    G_par = np.concatenate([_EYE[None], st.G[kin.parents[1:]]])
    W = G_par @ Jl  # (16, 3, 3)
    kp_idx, joint_idx = kin.rot_pairs
    block = -skew(st.keypoints_m[kp_idx] - st.o_m[joint_idx]) @ W[joint_idx]  # (pairs, 3, 3)
    d_pose = np.zeros((N_KP, N_JOINTS, 3, 3))
    d_pose[kp_idx, joint_idx] = block
    return d_pose.transpose(0, 2, 1, 3).reshape(N_KP, 3, 3 * N_JOINTS), _shape_jacobian(kin, st, G_par)


def _shape_jacobian(kin: KeypointKinematics, st: KinematicState, G_par: np.ndarray) -> np.ndarray:
    """(21, 3, 10): each rest bone's change, rotated into the world by its parent, summed along the chain."""
    dJ = kin.Jdirs_m
    bone = dJ.copy()
    bone[1:] -= dJ[kin.parents[1:]]
    bones = np.concatenate([G_par @ bone, st.G[kin.tip_joint] @ (kin.tip_dirs_m - dJ[kin.tip_joint])])
    # bone_mask columns: 16 joint bones, then 5 tips
    return (kin.bone_mask @ bones.reshape(N_KP, -1)).reshape(N_KP, 3, -1)


# ---------------------------------------------------------------------------------------------------------
# Whole mesh (the fit's output), same skinning as HandModel
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeshArrays:
    """All-vertex arrays of a HandModel, float32 (the mesh is an output, float32 is its precision).
    v_template_m: (V, 3); shapedirs_m: (10, V * 3); posedirs_m: (135, V * 3); weights: (V, 16)."""

    v_template_m: np.ndarray
    shapedirs_m: np.ndarray
    posedirs_m: np.ndarray
    weights: np.ndarray


def build_mesh_arrays(model: HandModel) -> MeshArrays:
    mano = model.mano

    def arr(t):
        return t.detach().cpu().float().numpy()

    n_shape = mano.shapedirs.shape[-1]
    return MeshArrays(v_template_m=arr(mano.v_template), shapedirs_m=np.ascontiguousarray(
        arr(mano.shapedirs).reshape(-1, n_shape).T), posedirs_m=arr(mano.posedirs), weights=arr(mano.lbs_weights))


def mesh_vertices(mesh: MeshArrays, st: KinematicState, shape: np.ndarray) -> np.ndarray:
    """(V, 3) float32 vertices, metres, caller's frame, of the state ``st`` (from ``forward``) with ``shape``.

    1. shaped template plus pose correctives; 2. per vertex the weight-blended joint transform
    (G_j, o_j - G_j J_j); 3. apply it. Numpy float32: ~4x faster than the torch layer for one hand on the CPU.
    """
    n = mesh.v_template_m.shape[0]
    feature = (st.R[1:] - _EYE).reshape(-1).astype(np.float32)
    # einsum, not `@`: a vector-matrix product goes to OpenBLAS gemv, whose two threads stall for milliseconds
    # on a busy machine
    offsets_v = np.einsum("s,sv->v", shape.astype(np.float32), mesh.shapedirs_m) + np.einsum(
        "p,pv->v", feature, mesh.posedirs_m)
    v = mesh.v_template_m + offsets_v.reshape(n, 3)
    offsets = st.o_m - np.einsum("jab,jb->ja", st.G, st.rest_joints_m)
    A = np.concatenate([st.G.reshape(N_JOINTS, 9), offsets], axis=1).astype(np.float32)  # (16, 12)
    T = mesh.weights @ A
    return np.einsum("vab,vb->va", T[:, :9].reshape(n, 3, 3), v) + T[:, 9:]
