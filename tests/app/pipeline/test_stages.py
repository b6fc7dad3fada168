import numpy as np
import pytest

from app.pipeline.packet import Packet
from app.pipeline.stages import ReconstructionStage, TextureStage, select_hands, viewer_input
from app.types import HandDetection, HandMesh, HandObservation, HandState, TextureMap
from app.viewer.view import HudStatus


def detection(score: float, side: str) -> HandDetection:
    return HandDetection(np.zeros((21, 2), np.float32), score, side, np.zeros(4, np.float32),
                         np.zeros((2, 3), np.float64))


def observation(is_left: bool, score: float, stereo: bool = True, frame_id: int = 3) -> HandObservation:
    side = "left" if is_left else "right"
    right = detection(score, side) if stereo else None
    kps = np.zeros((21, 3), np.float32) if stereo else None
    return HandObservation(frame_id, 7, detection(score, side), right, kps, None, is_left)


def mesh_for(obs: HandObservation, frame_id: int | None = None) -> HandMesh:
    state = HandState(np.zeros(48, np.float32), np.zeros(10, np.float32), np.zeros(3, np.float32), obs.is_left)
    return HandMesh(obs.frame_id if frame_id is None else frame_id, obs.t_capture_ns, np.zeros((3, 3), np.float32),
                    np.array([[0, 1, 2]]), np.zeros((21, 3), np.float32), state)


def packet(kit, frame_id: int = 3, observations=()) -> Packet:
    return Packet(kit.make_frame(frame_id), 0, observations=tuple(observations))


def test_select_hands_prefers_stereo_then_score_one_per_side():
    mono_right = observation(False, 0.99, stereo=False)
    right = observation(False, 0.6)
    left_weak, left = observation(True, 0.5), observation(True, 0.9)
    assert select_hands((mono_right, right, left_weak, left), 2) == [left, right]
    assert select_hands((mono_right, right, left), 1) == [left]
    assert select_hands((mono_right,), 2) == [mono_right]


def test_reconstruction_passes_each_sides_previous_state(kit):
    calls = []

    def reconstruct(obs, frame, prev):
        calls.append((obs.is_left, prev))
        return mesh_for(obs)

    stage = ReconstructionStage(reconstruct, 2)
    first = stage.process(packet(kit, observations=[observation(False, 0.9), observation(True, 0.8)]))
    assert [c[1] for c in calls] == [None, None] and len(first.meshes) == 2
    stage.process(packet(kit, observations=[observation(False, 0.9)]))
    assert calls[-1] == (False, first.meshes[0].state)
    stage.process(packet(kit, observations=[observation(True, 0.9)]))
    assert calls[-1] == (True, None)  # the left hand was missing in between: it starts cold


def test_reconstruction_refuses_a_mesh_of_another_frame(kit):
    stage = ReconstructionStage(lambda obs, frame, prev: mesh_for(obs, frame_id=99), 2)
    with pytest.raises(RuntimeError, match="frame 99 for frame 3"):
        stage.process(packet(kit, observations=[observation(False, 0.9)]))


class Accumulator:
    """Counts the updates of one side into a 4x4 texture; reset empties it."""

    def __init__(self, is_left: bool):
        self.n, self.is_left = 0, is_left

    def update(self, mesh, frame):
        assert mesh.state.is_left == self.is_left
        self.n += 1
        return TextureMap(np.full((4, 4, 3), 0.5, np.float32), np.ones((4, 4), np.float32), self.n)

    def reset(self):
        self.n = 0


def test_texture_stage_updates_each_side_and_resets(kit):
    stage = TextureStage({False: Accumulator(False), True: Accumulator(True)})
    right, left = mesh_for(observation(False, 0.9)), mesh_for(observation(True, 0.9))
    assert stage.process(packet(kit)).textures == ()
    assert [t.n_updates for t in stage.process(packet(kit).replace(meshes=(right,))).textures] == [1]
    both = stage.process(packet(kit).replace(meshes=(left, right))).textures
    assert [t.n_updates for t in both] == [1, 2]  # one texture per mesh, in mesh order
    stage.request_reset()
    assert [t.n_updates for t in stage.process(packet(kit).replace(meshes=(right,))).textures] == [1]


def test_texture_stage_skips_a_side_without_accumulator(kit):
    stage = TextureStage({False: Accumulator(False)})
    left = mesh_for(observation(True, 0.9))
    assert stage.process(packet(kit).replace(meshes=(left,))).textures == (None,)


def test_viewer_input_is_numpy_and_keeps_the_frame_identity(kit):
    obs = observation(False, 0.9)
    pk = packet(kit, 5, [obs]).replace(meshes=(mesh_for(obs, 5),)).timed("detection", 0, 2_000_000)
    tex = TextureMap(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32))
    pk = pk.replace(textures=(tex,))
    view = viewer_input(pk, HudStatus(hands_seen=1), {False: ("vt", "ft")})
    snap = view.snapshot
    assert (snap.frame_id, snap.t_capture_ns) == (5, pk.frame.t_capture_ns)
    assert snap.image is pk.frame.left and snap.timings_ms == {"detection": 2.0}
    assert view.K_px is pk.frame.calibration.left.K and len(view.keypoints_px) == 1
    assert view.uv_layouts == (("vt", "ft"),) and view.textures == (tex,) and snap.texture is tex
