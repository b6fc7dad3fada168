"""Keyframed hand motion (app/capture/synthetic_motion.py): easing, slerp and spline properties, continuity of the
whole loop at keyframe boundaries and at the wrap, determinism, mirroring and pose vectors."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from app.capture.synthetic_motion import (
    GESTURES,
    R_CAM_PALM,
    SHAPES,
    Key,
    Orient,
    WristBox,
    WristPath,
    build_motion,
    catmull_rom,
    check_rotation_steps,
    joint_axis_angles,
    keyframes_from_keys,
    mirror_sample,
    pose_vectors,
    sample_motion,
    slerp,
    smootherstep,
)
from models.hand_model.anatomy import FINGER_FIRST_JOINT
from models.hand_model.pose_space import angles_to_axis_angle, joint_frames, joint_limits_rad

DT = 1e-3  # dense sampling step, seconds


def _rotation_angle(qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
    """(N,) radians between unit quaternions qa, qb (N, 4)."""
    return 2 * np.arccos(np.clip(np.abs(np.sum(qa * qb, axis=1)), 0, 1))


@pytest.fixture(scope="module")
def motion():
    return build_motion(np.random.default_rng(7))


@pytest.fixture(scope="module")
def dense(motion):
    """The loop sampled every millisecond from 0.5 s before the wrap to 0.5 s past one full loop."""
    t = np.arange(-0.5, motion.period_s + 0.5, DT)
    return t, sample_motion(motion, t)


def test_smootherstep_ends_and_flat_derivatives():
    assert smootherstep(np.array([0.0, 0.5, 1.0])) == pytest.approx([0.0, 0.5, 1.0])
    h = 1e-4
    d0 = (smootherstep(np.array([h])) - smootherstep(np.array([0.0]))) / h
    d1 = (smootherstep(np.array([1.0])) - smootherstep(np.array([1.0 - h]))) / h
    assert abs(d0[0]) < 1e-6 and abs(d1[0]) < 1e-6
    u = np.linspace(0, 1, 101)
    assert np.all(np.diff(smootherstep(u)) >= 0)


def test_slerp_ends_constant_speed_and_shorter_arc():
    q0 = Rotation.from_euler("x", 0.0).as_quat()[None]
    q1 = Rotation.from_euler("x", 1.2).as_quat()[None]
    s = np.linspace(0, 1, 7)
    q = slerp(np.repeat(q0, 7, 0), np.repeat(q1, 7, 0), s)
    np.testing.assert_allclose(_rotation_angle(q, np.repeat(q0, 7, 0)), 1.2 * s, atol=1e-9)
    # The same rotation with the opposite sign still takes the 1.2 rad arc, not the 2 pi - 1.2 one.
    q_neg = slerp(q0, -q1, np.array([0.5]))
    assert _rotation_angle(q_neg, q0)[0] == pytest.approx(0.6)


def test_catmull_rom_interpolates_is_periodic_and_c1():
    rng = np.random.default_rng(0)
    path = WristPath(np.array([0.0, 0.7, 1.9, 2.6, 3.1]), 4.0, rng.uniform(-1, 1, (5, 3)))
    np.testing.assert_allclose(catmull_rom(path, path.times_s), path.points_m, atol=1e-12)
    t = rng.uniform(0, 4, 20)
    np.testing.assert_allclose(catmull_rom(path, t), catmull_rom(path, t + 4.0), atol=1e-12)
    h = 1e-6
    for tk in np.r_[path.times_s, 4.0]:  # every waypoint, and the wrap (4.0 = 0.0)
        before = (catmull_rom(path, np.array([tk])) - catmull_rom(path, np.array([tk - h]))) / h
        after = (catmull_rom(path, np.array([tk + h])) - catmull_rom(path, np.array([tk]))) / h
        np.testing.assert_allclose(before, after, atol=1e-3)


def test_keys_are_reached_at_their_times(motion):
    kf = motion.keys
    s = sample_motion(motion, kf.times_s)
    np.testing.assert_allclose(s.angles_rad, kf.angles_rad, atol=1e-12)
    np.testing.assert_allclose(_rotation_angle(s.quat_xyzw, kf.quat_xyzw), 0, atol=1e-6)
    assert s.labels == kf.labels


def test_loop_is_continuous_and_smooth_at_keys_and_wrap(motion, dense):
    t, s = dense
    ang_step = np.abs(np.diff(s.angles_rad, axis=0)).max(axis=(1, 2))
    rot_step = _rotation_angle(s.quat_xyzw[1:], s.quat_xyzw[:-1])
    pos_step = np.linalg.norm(np.diff(s.wrist_m, axis=0), axis=1)
    # Speed limits (per ms): joints < 12 rad/s, hand rotation < 8 rad/s, wrist < 0.5 m/s.
    assert ang_step.max() < 12 * DT and rot_step.max() < 8 * DT and pos_step.max() < 0.5 * DT
    # No kinks: velocity changes by little between consecutive steps everywhere (acceleration < 400 rad/s^2,
    # 150 rad/s^2, 15 m/s^2), which includes every keyframe boundary and the loop's wrap at t = period.
    assert np.abs(np.diff(s.angles_rad, n=2, axis=0)).max() < 400 * DT**2
    assert np.abs(np.diff(rot_step)).max() < 150 * DT**2
    assert np.abs(np.diff(s.wrist_m, n=2, axis=0)).max() < 15 * DT**2
    wrap = np.searchsorted(t, motion.period_s)
    assert 10 < wrap < len(t) - 10  # the window really crosses the wrap
    keys = np.searchsorted(t, motion.keys.times_s[1:])
    assert np.all(ang_step[keys - 1] < 12 * DT)  # the steps into every key, checked by name


def test_loop_repeats_exactly(motion):
    t = np.linspace(0, motion.period_s, 50, endpoint=False)
    a, b = sample_motion(motion, t), sample_motion(motion, t + 3 * motion.period_s)
    np.testing.assert_allclose(a.angles_rad, b.angles_rad, atol=1e-9)
    np.testing.assert_allclose(a.wrist_m, b.wrist_m, atol=1e-9)
    np.testing.assert_allclose(_rotation_angle(a.quat_xyzw, b.quat_xyzw), 0, atol=1e-6)


def test_angles_stay_within_joint_limits(dense):
    lim = joint_limits_rad()
    a = dense[1].angles_rad
    assert np.all(a >= lim[None, :, :, 0] - 1e-12) and np.all(a <= lim[None, :, :, 1] + 1e-12)


def test_every_gesture_plays_and_the_order_depends_on_the_seed():
    a, b = build_motion(np.random.default_rng(1)), build_motion(np.random.default_rng(1))
    np.testing.assert_array_equal(a.keys.times_s, b.keys.times_s)
    np.testing.assert_array_equal(a.path.points_m, b.path.points_m)
    assert len(GESTURES) == 7  # open_close plays as "open" then "fist"
    assert set(a.keys.labels) == {"open", "fist", "point", "wave", "turn", "pinch", "victory", "thumbs_up"}
    orders = {tuple(dict.fromkeys(build_motion(np.random.default_rng(s)).keys.labels)) for s in range(6)}
    assert len(orders) > 1


@pytest.mark.parametrize("seed", range(8))
def test_wrist_stays_in_front_of_the_rig(seed):
    box = WristBox()
    m = build_motion(np.random.default_rng(seed), box)
    w = sample_motion(m, np.arange(0, m.period_s, 0.01)).wrist_m
    assert w[:, 2].min() >= 0.3 and w[:, 2].max() <= 0.6  # 0.3-0.6 m in front (spline overshoot included)
    assert w[:, 0].min() > box.x_m[0] - 0.05 and w[:, 0].max() < box.x_m[1] + 0.05


def test_big_orientation_steps_are_refused():
    open_ = SHAPES["open"]
    keys = [Key(0.5, 0.0, open_, Orient(), "a"), Key(0.5, 0.0, open_, Orient(pronation=np.pi), "b")]
    with pytest.raises(ValueError, match="insert an intermediate key"):
        keyframes_from_keys(keys)
    keys.insert(1, Key(0.5, 0.0, open_, Orient(pronation=np.pi / 2), "a"))
    with pytest.raises(ValueError, match="keys 2 -> next differ by 180 deg"):  # the loop's closing step
        keyframes_from_keys(keys)
    keys.append(Key(0.5, 0.0, open_, Orient(pronation=np.pi / 2), "c"))
    check_rotation_steps(keyframes_from_keys(keys).quat_xyzw)  # quarter turns all round are fine


def test_holds_repeat_a_key_and_the_loop_closes_over_the_first_move():
    open_, fist = SHAPES["open"], SHAPES["fist"]
    kf = keyframes_from_keys([Key(0.4, 0.3, open_, Orient(), "a"), Key(0.6, 0.0, fist, Orient(), "b")])
    np.testing.assert_allclose(kf.times_s, [0.0, 0.3, 0.9])
    assert kf.period_s == pytest.approx(1.3)
    assert kf.labels == ("a", "a", "b")


def test_orientation_convention():
    # Palm view: fingers (model x) up in the image, back of the hand (model y) away from the camera.
    np.testing.assert_allclose(Orient().matrix(), R_CAM_PALM)
    np.testing.assert_allclose(Orient(pronation=np.pi).matrix()[:, 1], [0, 0, -1], atol=1e-12)  # back view
    np.testing.assert_allclose(Orient(pitch=0.3).matrix()[:, 0], [0, -np.cos(0.3), -np.sin(0.3)], atol=1e-12)
    assert np.linalg.det(R_CAM_PALM) == pytest.approx(1.0)


def test_shapes_articulate_as_named():
    flex = {name: a[:, 0] for name, a in SHAPES.items()}
    index = FINGER_FIRST_JOINT["index"] - 1
    middle = FINGER_FIRST_JOINT["middle"] - 1
    assert flex["fist"].sum() > 4 * flex["relaxed"].sum() > 0 and np.abs(flex["open"]).sum() == 0
    assert np.all(flex["point"][index:index + 3] == 0) and np.all(flex["point"][middle:middle + 3] > 0.5)
    lim = joint_limits_rad()
    for a in SHAPES.values():
        assert np.all(a >= lim[:, :, 0]) and np.all(a <= lim[:, :, 1])


def test_mirror_sample_reflects_rotation_and_wrist(motion):
    s = sample_motion(motion, np.array([0.3, 5.2]))
    m = mirror_sample(s, plane_x_m=0.03)
    M = np.diag([-1.0, 1.0, 1.0])
    for q, qm in zip(s.quat_xyzw, m.quat_xyzw, strict=True):
        R = Rotation.from_quat(q).as_matrix()
        np.testing.assert_allclose(Rotation.from_quat(qm).as_matrix(), M @ R @ M, atol=1e-12)
    np.testing.assert_allclose(m.wrist_m[:, 0], 0.06 - s.wrist_m[:, 0])
    np.testing.assert_array_equal(m.wrist_m[:, 1:], s.wrist_m[:, 1:])


def test_pose_vectors_layout(motion):
    s = sample_motion(motion, np.array([1.0, 2.0]))
    frames = joint_frames()
    pose = pose_vectors(s, frames)
    assert pose.shape == (2, 48)
    np.testing.assert_allclose(pose[:, :3], Rotation.from_quat(s.quat_xyzw).as_rotvec())
    np.testing.assert_allclose(pose[:, 3:], angles_to_axis_angle(s.angles_rad, frames))


@pytest.mark.parametrize("n", [1, 40])
def test_batched_joint_rotations_equal_the_per_joint_composition(motion, n):
    angles = sample_motion(motion, np.linspace(0.0, motion.period_s, n)).angles_rad
    frames = joint_frames()
    np.testing.assert_array_equal(joint_axis_angles(angles, frames), angles_to_axis_angle(angles, frames))
