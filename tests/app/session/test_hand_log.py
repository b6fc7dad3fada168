import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from app.capture import open_source
from app.session.hand_log import HEADER_SIZE, HandLogReader, HandLogWriter, scan_log

ROOT = Path(__file__).resolve().parents[3]


def test_round_trip_keeps_states_meshes_ids_and_times(tmp_path, kit):
    w = HandLogWriter(tmp_path)
    frames = [(0, (kit.hand(0),)), (1, ()), (2, (kit.hand(2, bend=0.3), kit.hand(2, is_left=True)))]
    for fid, meshes in frames:
        w.append(fid, 1000 + 33_000_000 * fid, meshes, t_done_ns=5 + fid)
    w.close()
    r = HandLogReader(tmp_path)
    assert len(r) == 3 and r.tail_problem is None
    assert [(x.frame_id, x.t_capture_ns, x.t_done_ns, len(x.hands)) for x in r] == [
        (0, 1000, 5, 1), (1, 33_001_000, 6, 0), (2, 66_001_000, 7, 2)]
    for got, want in zip(r[2].hands, frames[2][1], strict=True):
        for name in ("verts_m", "faces", "joints_m"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        for name in ("pose", "shape", "transl_m", "is_left"):
            np.testing.assert_array_equal(getattr(got.state, name), getattr(want.state, name))
        assert got.fit_residual == want.fit_residual and got.frame_id == 2


def test_truncated_and_corrupt_tails_keep_the_complete_records(tmp_path, kit):
    w = HandLogWriter(tmp_path)
    for fid in range(3):
        w.append(fid, fid, (kit.hand(fid),))
    w.close()
    data = (tmp_path / "hands.bin").read_bytes()
    payloads, problem = scan_log(data[:-10])
    assert len(payloads) == 2 and "truncated" in problem
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    payloads, problem = scan_log(bytes(flipped))
    assert len(payloads) == 2 and "CRC" in problem
    payloads, problem = scan_log(data + b"RHH1" + bytes(HEADER_SIZE))
    assert len(payloads) == 3 and "corrupt record header" in problem


CHILD = """
import sys, time
import numpy as np
from app.config import SessionConfig
from app.session.recorder import SessionRecorder
sys.path.insert(0, sys.argv[2])
from conftest import CALIB, frame, hand
from models.hand_model import build_hand_model
from app.config import HandModelConfig
models = {False: build_hand_model(HandModelConfig(), "right")}
rec = SessionRecorder(sys.argv[1], CALIB, SessionConfig(codec="raw"), nominal_fps=30, source="test",
                      uv_layouts={}, is_live=False)
for i in range(100000):
    rec.on_frame(frame(i))
    rec.on_hands(i, frame(i).t_capture_ns, (hand(models, i, bend=0.01 * (i % 30)),))
    while rec.raw.frames_written < i + 1:
        time.sleep(0.001)
    print(i, flush=True)
"""


def test_sigkill_mid_recording_leaves_every_completed_frame_readable(tmp_path):
    """A recording process killed with SIGKILL: every frame it reported complete (raw frame and hand state)
    reads back, and the recording plays as recording:DIR."""
    out = tmp_path / "session"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(Path(__file__).parent)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    done = -1
    try:
        while done < 12:
            line = proc.stdout.readline()
            assert line, "the recording child died"
            done = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    hands = HandLogReader(out)
    assert len(hands) >= done + 1
    assert [r.frame_id for r in hands] == list(range(len(hands)))
    assert all(len(r.hands) == 1 and r.hands[0].verts_m.shape == (778, 3) for r in hands)
    assert not (out / "summary.json").exists()  # it really died before closing
    with open_source(f"recording:{out}") as src:
        assert src.frames_total >= done + 1
        frames = [src.read() for _ in range(done + 1)]
    assert [int(f.left[0, 0, 0]) for f in frames] == list(range(done + 1))
