"""Numba kernels of the refinement loop (refine.py, mesh_losses.py): the hand model's linear blend skinning and
the four mesh regularisers, each as a forward and a hand-written backward pass (no autograd graph).

Skinning (smplx.lbs with pose2rot, MANO layout, the model of models/hand_model/layer.py), for a full pose
theta (J*3,) axis-angle radians and a shape offset ds (S,) around a fixed shaped template:
    v_shaped = v_shaped0 + SD ds,  J = J0 + JD ds,  R_j = rodrigues(theta_j),
    v_posed = v_shaped + P^T vec(R_1.. - I),  G_j = G_parent(j) [R_j | J_j - J_parent(j)],  G_0 = [R_0 | J_0],
    verts_i = sum_j W_ij (GR_j v_posed_i + Gt_j - GR_j J_j)
with rodrigues(r) = I + sin(a) K + (1 - cos(a)) K^2, a = |r + 1e-8| (smplx's guard), K = skew(r / a).
Backward: the chain rule through each step in reverse (the kinematic tree from the leaves up); the Rodrigues
derivative is written out in _rodrigues_grad.

Regularisers (mesh_losses.py has the torch definitions; the same means and the same cosine guard):
    L_edge = mean_e |v_i - v_j|^2,  L_lap = mean_{v: deg > 0} |v - mean_{u in N(v)} u|^2,
    L_n = mean_{(l, r)} 1 - n_l / max(|n_l|, eps) . n_r / max(|n_r|, eps),  n = (v1 - v0) x (v2 - v0).

All arrays float64 (int64 indices), C-contiguous; vertices in metres.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

_jit = functools.partial(njit, cache=True, nogil=True, error_model="numpy")
_jit_fast = functools.partial(njit, cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")
# smplx.lbs.batch_rodrigues adds this to every component before taking the angle (keeps a = 0 away).
_RODRIGUES_GUARD = 1e-8


# -- skinning -------------------------------------------------------------------------------------------------


@_jit
def _rodrigues(r):
    """(3,) axis-angle -> (R (3, 3), K (3, 3) skew of the unit axis, angle a)."""
    a = math.sqrt((r[0] + _RODRIGUES_GUARD) ** 2 + (r[1] + _RODRIGUES_GUARD) ** 2
                  + (r[2] + _RODRIGUES_GUARD) ** 2)
    kx, ky, kz = r[0] / a, r[1] / a, r[2] / a
    K = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    R = np.eye(3) + math.sin(a) * K + (1.0 - math.cos(a)) * (K @ K)
    return R, K, a


@_jit
def _rodrigues_grad(r, G):
    """dL/dr (3,) of L through R = rodrigues(r), given G = dL/dR (3, 3)."""
    R, K, a = _rodrigues(r)
    s, c = math.sin(a), math.cos(a)
    q = r + _RODRIGUES_GUARD
    # d/da of sin(a) K + (1 - cos(a)) K^2 at fixed K, contracted with G
    da = c * np.sum(G * K) + s * np.sum(G * (K @ K))
    # contraction with dK: H = s G + (1 - cos a)(G K^T + K^T G); <H, skew(e_i)> = h_i
    H = s * G + (1.0 - c) * (G @ K.T + K.T @ G)
    h = np.array([H[2, 1] - H[1, 2], H[0, 2] - H[2, 0], H[1, 0] - H[0, 1]])
    # k = r / a: dk_i/dr_m = delta_im / a - r_i q_m / a^3;  da/dr_m = q_m / a
    return q * (da / a) + h / a - q * (np.dot(h, r) / a**3)


@_jit_fast
def _axpy(a, x, y):
    """y += a x (1-D)."""
    for i in range(y.shape[0]):
        y[i] += a * x[i]


@_jit
def lbs_forward(pose, dshape, v_shaped0, J0, SD, JD, posedirs, w_ptr, w_idx, w_val, parents):
    """pose (J*3,) full axis-angle pose; dshape (S,); v_shaped0 (V, 3), J0 (J, 3): the template shaped by the
    fixed shape; SD (V*3, S), JD (J*3, S) shape directions of vertices and joints; posedirs (9 (J-1), V*3);
    skinning weights as CSR rows (w_ptr (V+1,), w_idx, w_val); parents (J,) with parents[j] < j, -1 at the root.
    Returns verts (V, 3) and, for lbs_backward, R (J, 3, 3), GR (J, 3, 3), J (J, 3), v_posed (V, 3),
    T (V, 3, 4) (the blended transform of each vertex)."""
    n_j, n_v = J0.shape[0], v_shaped0.shape[0]
    v_posed = (v_shaped0.ravel() + SD @ dshape).reshape(n_v, 3)
    J = (J0.ravel() + JD @ dshape).reshape(n_j, 3)
    R = np.empty((n_j, 3, 3))
    for j in range(n_j):
        R[j] = _rodrigues(pose[3 * j: 3 * j + 3])[0]
    feat = (R[1:] - np.eye(3)).ravel()
    flat = v_posed.ravel()
    for p in range(feat.shape[0]):
        _axpy(feat[p], posedirs[p], flat)
    GR, A = np.empty((n_j, 3, 3)), np.empty((n_j, 3, 4))
    GR[0], gt = R[0], np.empty((n_j, 3))
    gt[0] = J[0]
    for j in range(1, n_j):
        p = parents[j]
        GR[j] = GR[p] @ R[j]
        gt[j] = GR[p] @ (J[j] - J[p]) + gt[p]
    for j in range(n_j):
        A[j, :, :3] = GR[j]
        A[j, :, 3] = gt[j] - GR[j] @ J[j]
    T = np.zeros((n_v, 3, 4))
    verts = np.empty((n_v, 3))
    for i in range(n_v):
        for k in range(w_ptr[i], w_ptr[i + 1]):
            w, j = w_val[k], w_idx[k]
            for a in range(3):
                for b in range(4):
                    T[i, a, b] += w * A[j, a, b]
        for a in range(3):
            verts[i, a] = (T[i, a, 0] * v_posed[i, 0] + T[i, a, 1] * v_posed[i, 1] + T[i, a, 2] * v_posed[i, 2]
                           + T[i, a, 3])
    return verts, R, GR, J, v_posed, T


@_jit
def lbs_backward(grad_verts, pose, R, GR, J, v_posed, T, SD, JD, posedirs, w_ptr, w_idx, w_val, parents):
    """dL/dverts (V, 3) -> (dL/dpose (J*3,), dL/ddshape (S,)); the other inputs as lbs_forward gave them."""
    n_j, n_v = J.shape[0], v_posed.shape[0]
    g_vposed = np.empty((n_v, 3))
    gA = np.zeros((n_j, 3, 4))
    for i in range(n_v):
        g0, g1, g2 = grad_verts[i, 0], grad_verts[i, 1], grad_verts[i, 2]
        for b in range(3):
            g_vposed[i, b] = T[i, 0, b] * g0 + T[i, 1, b] * g1 + T[i, 2, b] * g2
        for k in range(w_ptr[i], w_ptr[i + 1]):
            w, j = w_val[k], w_idx[k]
            for a in range(3):
                wg = w * grad_verts[i, a]
                for b in range(3):
                    gA[j, a, b] += wg * v_posed[i, b]
                gA[j, a, 3] += wg
    # A_j = [GR_j | gt_j - GR_j J_j]
    gGR = gA[:, :, :3].copy()
    ggt = gA[:, :, 3].copy()
    gJ = np.zeros((n_j, 3))
    for j in range(n_j):
        gGR[j] -= np.outer(ggt[j], J[j])
        gJ[j] -= GR[j].T @ ggt[j]
    gR = np.zeros((n_j, 3, 3))
    for j in range(n_j - 1, 0, -1):  # G_j = G_p [R_j | J_j - J_p], leaves first
        p = parents[j]
        rel = J[j] - J[p]
        gR[j] += GR[p].T @ gGR[j]
        gGR[p] += gGR[j] @ R[j].T + np.outer(ggt[j], rel)
        g_rel = GR[p].T @ ggt[j]
        gJ[j] += g_rel
        gJ[p] -= g_rel
        ggt[p] += ggt[j]
    gR[0] += gGR[0]
    gJ[0] += ggt[0]
    g_flat = g_vposed.ravel()
    g_feat = posedirs @ g_flat
    gR[1:] += g_feat.reshape(n_j - 1, 3, 3)
    g_pose = np.empty(3 * n_j)
    for j in range(n_j):
        g_pose[3 * j: 3 * j + 3] = _rodrigues_grad(pose[3 * j: 3 * j + 3], gR[j])
    g_shape = SD.T @ g_flat + JD.T @ gJ.ravel()
    return g_pose, g_shape


# -- regularisers ---------------------------------------------------------------------------------------------


@_jit_fast
def _edge_and_laplacian(verts, edges, degree, w_edge, w_lap, grad):
    """w_edge L_edge + w_lap L_lap of verts (V, 3) over edges (E, 2), degree (V,); adds the gradient into grad."""
    n_e = edges.shape[0]
    nbr = np.zeros_like(verts)
    loss_e = 0.0
    for e in range(n_e):
        i, j = edges[e, 0], edges[e, 1]
        for c in range(3):
            d = verts[i, c] - verts[j, c]
            loss_e += d * d
            grad[i, c] += 2.0 * w_edge * d / n_e
            grad[j, c] -= 2.0 * w_edge * d / n_e
            nbr[i, c] += verts[j, c]
            nbr[j, c] += verts[i, c]
    n_lap = 0
    for v in range(verts.shape[0]):
        n_lap += degree[v] > 0
    delta = np.zeros_like(verts)
    loss_l = 0.0
    for v in range(verts.shape[0]):
        if degree[v] > 0:
            for c in range(3):
                delta[v, c] = verts[v, c] - nbr[v, c] / degree[v]
                loss_l += delta[v, c] ** 2
    scale = 2.0 * w_lap / max(n_lap, 1)
    for v in range(verts.shape[0]):
        if degree[v] > 0:
            for c in range(3):
                grad[v, c] += scale * delta[v, c]
    for e in range(n_e):  # -delta_v / deg_v onto every neighbour u of v
        i, j = edges[e, 0], edges[e, 1]
        for c in range(3):
            grad[j, c] -= scale * delta[i, c] / degree[i]
            grad[i, c] -= scale * delta[j, c] / degree[j]
    return w_edge * loss_e / max(n_e, 1) + w_lap * loss_l / max(n_lap, 1)


@_jit_fast
def _normal_consistency(verts, faces, face_pairs, w_normal, eps, grad):
    """w_normal L_n of verts (V, 3) for faces (F, 3) and neighbouring face_pairs (A, 2); adds the gradient."""
    n_f, n_a = faces.shape[0], face_pairs.shape[0]
    if n_a == 0:
        return 0.0
    unit = np.empty((n_f, 3))
    inv = np.empty(n_f)  # 1 / max(|n|, eps)
    for f in range(n_f):
        e1, e2 = _edges(verts, faces, f)
        n = _cross(e1, e2)
        inv[f] = 1.0 / max(math.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), eps)
        for c in range(3):
            unit[f, c] = n[c] * inv[f]
    g_unit = np.zeros((n_f, 3))
    loss = 0.0
    for a in range(n_a):
        fl, fr = face_pairs[a, 0], face_pairs[a, 1]
        for c in range(3):
            loss -= unit[fl, c] * unit[fr, c]
            g_unit[fl, c] -= unit[fr, c]
            g_unit[fr, c] -= unit[fl, c]
    scale = w_normal / n_a
    for f in range(n_f):
        g = (g_unit[f, 0] * scale, g_unit[f, 1] * scale, g_unit[f, 2] * scale)
        # u = n / |n| (|n| > eps): du^T g = (g - (u.g) u) / |n|; else u = n / eps: g / eps
        ug = unit[f, 0] * g[0] + unit[f, 1] * g[1] + unit[f, 2] * g[2] if inv[f] < 1.0 / eps else 0.0
        g = ((g[0] - ug * unit[f, 0]) * inv[f], (g[1] - ug * unit[f, 1]) * inv[f], (g[2] - ug * unit[f, 2]) * inv[f])
        e1, e2 = _edges(verts, faces, f)
        g1, g2 = _cross(e2, g), _cross(g, e1)  # n = e1 x e2
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        for c in range(3):
            grad[i1, c] += g1[c]
            grad[i2, c] += g2[c]
            grad[i0, c] -= g1[c] + g2[c]
    return w_normal * (n_a + loss) / n_a


@_jit
def _edges(verts, faces, f):
    """(v1 - v0, v2 - v0) of face f as 3-tuples."""
    i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
    e1 = (verts[i1, 0] - verts[i0, 0], verts[i1, 1] - verts[i0, 1], verts[i1, 2] - verts[i0, 2])
    e2 = (verts[i2, 0] - verts[i0, 0], verts[i2, 1] - verts[i0, 1], verts[i2, 2] - verts[i0, 2])
    return e1, e2


@_jit
def _cross(a, b):
    """a x b of 3-tuples."""
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


@_jit
def regularisers(verts, faces, edges, face_pairs, degree, w_normal, w_lap, w_edge, eps):
    """w_normal L_n + w_lap L_lap + w_edge L_edge of verts (V, 3) -> (loss, dloss/dverts (V, 3))."""
    grad = np.zeros_like(verts)
    loss = _edge_and_laplacian(verts, edges, degree, w_edge, w_lap, grad)
    if w_normal != 0.0:
        loss += _normal_consistency(verts, faces, face_pairs, w_normal, eps, grad)
    return loss, grad
