"""Session recording: round trip, kill -9 mid-stream, truncated/corrupt tails, fuzzing, disk errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.capture import CaptureError, open_source
from app.capture.info import main as capture_main
from app.capture.recording import HEADER_SIZE, RecordingReader, RecordingWriter
from app.types import StereoFrame
from calibration.rig import make_stereo

REPO = Path(__file__).resolve().parents[3]
CAL = make_stereo(
    np.array([[40.0, 0, 16], [0, 40, 12], [0, 0, 1]]),
    np.zeros(5),
    np.array([[41.0, 0, 15], [0, 41, 12], [0, 0, 1]]),
    np.zeros(5),
    np.eye(3),
    [-0.06, 0, 0],
    (32, 24),
)

# The same deterministic images in this process and in the killed writer process.
IMAGES_SRC = """
def images(i):
    rng = np.random.default_rng(i)
    return tuple(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(2))
"""
exec(IMAGES_SRC)


def frame(i: int) -> StereoFrame:
    left, right = images(i)  # noqa: F821 (defined by exec above)
    return StereoFrame(i, 1_000_000 + i * 33_000_000, left, right, CAL)


def record(path, n, codec="png", **kw) -> dict:
    with RecordingWriter(path, CAL, codec=codec, nominal_fps=30, **kw) as w:
        for i in range(n):
            assert w.write(frame(i))
            time.sleep(0.001)
    return w.close()


@pytest.mark.parametrize("codec", ["png", "raw"])
def test_round_trip_bit_exact(tmp_path, codec):
    assert record(tmp_path / "rec", 5, codec) == {"frames_written": 5, "frames_dropped": 0, "error": None}
    with open_source(f"recording:{tmp_path / 'rec'}") as src:
        assert (src.frames_total, src.nominal_fps, src.is_live, src.warnings) == (5, 30.0, False, [])
        got = [src.read() for _ in range(5)]
        assert src.read() is None
    for i, f in enumerate(got):
        want = frame(i)
        assert f.frame_id == i and f.t_capture_ns == want.t_capture_ns
        assert np.array_equal(f.left, want.left) and np.array_equal(f.right, want.right)
    assert np.array_equal(got[0].calibration.right.T_cam_left, CAL.right.T_cam_left)


def test_jpeg_is_close_and_quality_checked(tmp_path):
    yy, xx = np.mgrid[0:24, 0:32]
    smooth = np.stack([xx * 7, yy * 9, xx + yy * 3], -1).astype(np.uint8)
    with RecordingWriter(tmp_path / "rec", CAL, codec="jpeg:98") as w:
        w.write(StereoFrame(0, 0, smooth, smooth[:, ::-1].copy(), CAL))
    f = RecordingReader(tmp_path / "rec").frame(0)
    assert np.abs(f.left.astype(int) - smooth).mean() < 3
    with pytest.raises(CaptureError, match="jpeg:95"):
        RecordingWriter(tmp_path / "x", CAL, codec="png:3")
    with pytest.raises(CaptureError, match="unknown codec"):
        RecordingWriter(tmp_path / "x", CAL, codec="h264")


def test_paced_playback_follows_recorded_timestamps(tmp_path):
    record(tmp_path / "rec", 3)
    with open_source(f"recording:{tmp_path / 'rec'}?pace=recorded") as src:
        t0 = time.monotonic()
        while src.read() is not None:
            pass
        assert time.monotonic() - t0 >= 0.066  # 2 intervals of 33 ms


KILL_SCRIPT = (
    """
import sys, time, numpy as np
from app.capture.recording import RecordingWriter
from app.types import StereoFrame
from calibration.rig import make_stereo
"""
    + IMAGES_SRC
    + """
cal = make_stereo(np.array([[40.0, 0, 16], [0, 40, 12], [0, 0, 1]]), np.zeros(5),
                  np.array([[41.0, 0, 15], [0, 41, 12], [0, 0, 1]]), np.zeros(5), np.eye(3), [-0.06, 0, 0],
                  (32, 24))
w = RecordingWriter(sys.argv[1], cal, codec=sys.argv[2], on_written=lambda i: print(i, flush=True))
i = 0
while True:
    left, right = images(i)
    w.write(StereoFrame(i, 1_000_000 + i * 33_000_000, left, right, cal))
    i += 1
    time.sleep(0.002)
"""
)


@pytest.mark.parametrize("codec", ["png", "raw"])
def test_kill_9_mid_stream_keeps_every_completed_frame(tmp_path, codec):
    out = tmp_path / "rec"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(out), codec],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done = []
    try:
        for line in proc.stdout:
            done.append(int(line))
            if len(done) >= 25:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    done += [int(v) for v in rest.split()]
    assert len(done) >= 25, err
    reader = RecordingReader(out)
    ids = [e.frame_id for e in reader.entries]
    assert set(done) <= set(ids) and ids == sorted(ids)
    for k in range(len(reader)):
        f = reader.frame(k)
        want = frame(f.frame_id)
        assert np.array_equal(f.left, want.left) and np.array_equal(f.right, want.right)
    with open_source(f"recording:{out}") as src:
        assert any("did not close cleanly" in w for w in src.warnings)


def test_truncated_and_corrupt_tails_are_reported_not_fatal(tmp_path):
    record(tmp_path / "rec", 4)
    data = (tmp_path / "rec" / "frames.bin").read_bytes()
    for cut in (1, 200, len(data) // 4 - HEADER_SIZE // 2):
        (tmp_path / "rec" / "frames.bin").write_bytes(data[:-cut])
        reader = RecordingReader(tmp_path / "rec")
        assert (
            len(reader) == 3
            and "truncated" in reader.tail_problem
            and "3 complete frames" in reader.tail_problem
        )
    (tmp_path / "rec" / "frames.bin").write_bytes(data + b"\0" * 100)
    assert "corrupt record header" in RecordingReader(tmp_path / "rec").tail_problem
    (tmp_path / "rec" / "frames.bin").write_bytes(data[:-10] + b"\0" * 10)
    reader = RecordingReader(tmp_path / "rec")
    assert len(reader) == 3 and "CRC" in reader.tail_problem
    out = tmp_path / "info.json"
    assert capture_main(["info", f"recording:{tmp_path / 'rec'}", "--json", str(out)]) == 0
    info = json.loads(out.read_text())
    assert info["frames"] == 3 and any("CRC" in w for w in info["warnings"])


def test_bounded_queue_drops_and_counts_instead_of_blocking(tmp_path):
    gate = threading.Event()
    w = RecordingWriter(tmp_path / "rec", CAL, queue_size=2)
    encode = w._encode
    w._encode = lambda rgb: (gate.wait(5), encode(rgb))[1]
    accepted = [w.write(frame(i)) for i in range(10)]  # a blocking write could never return False
    gate.set()
    summary = w.close()
    assert accepted.count(False) == summary["frames_dropped"] >= 7
    assert summary["frames_written"] == accepted.count(True)
    assert (
        json.loads((tmp_path / "rec" / "summary.json").read_text())["frames_dropped"]
        == summary["frames_dropped"]
    )


class FullDisk:
    """A file stand-in that accepts 100 bytes and then fails like a full disk."""

    def __init__(self, real):
        self.real, self.closed, self.n = real, False, 0

    def write(self, data):
        if self.n >= 100:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.n += 100
        return self.real.write(data[:100])

    def fileno(self):
        return self.real.fileno()

    def close(self):
        self.closed = True
        self.real.close()


def test_disk_full_and_unwritable_paths_give_clear_errors(tmp_path):
    w = RecordingWriter(tmp_path / "rec", CAL)
    w._file = FullDisk(w._file)
    w.write(frame(0))
    with pytest.raises(CaptureError, match="disk full after 0 frames; free space"):
        w.close()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CaptureError, match="afile/rec.*(Not a directory|write failed|not writable)"):
        RecordingWriter(tmp_path / "afile" / "rec", CAL)
    record(tmp_path / "done", 1)
    with pytest.raises(CaptureError, match="already holds a recording"):
        RecordingWriter(tmp_path / "done", CAL)


def test_bad_recording_dirs(tmp_path):
    with pytest.raises(CaptureError, match="meta.json not found"):
        open_source(f"recording:{tmp_path}")
    record(tmp_path / "rec", 1)
    meta = json.loads((tmp_path / "rec" / "meta.json").read_text())
    meta["calibration"]["views"]["left"]["K"] = "bad"
    (tmp_path / "rec" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CaptureError, match=r"meta.json: field 'calibration'.*views.left.K"):
        open_source(f"recording:{tmp_path / 'rec'}")


@pytest.fixture(scope="module")
def clean_recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("clean") / "rec"
    record(path, 3)
    return {name: (path / name).read_bytes() for name in ("meta.json", "frames.bin")}


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzzed_recordings_give_clear_errors(tmp_path_factory, clean_recording, data):
    """Flipped bytes, cuts, junk in frames.bin or meta.json: CaptureError or readable frames, nothing else."""
    rec = tmp_path_factory.mktemp("fuzz")
    name = data.draw(st.sampled_from(["meta.json", "frames.bin"]))
    files = dict(clean_recording)
    blob = bytearray(files[name])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "junk"]))
        if op == "flip":
            blob[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del blob[pos:]
            if not blob:
                break
        else:
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=40))
    files[name] = bytes(blob)
    for n, content in files.items():
        (rec / n).write_bytes(content)
    try:
        with open_source(f"recording:{rec}") as src:
            while src.read() is not None:
                pass
    except CaptureError as exc:
        assert str(rec) in str(exc)


def test_record_cli_then_replay_matches_the_source(zed_files, tmp_path):
    conf, video = zed_files
    uri = f"sbs:{video}?conf={conf}"
    assert capture_main(["record", uri, str(tmp_path / "rec"), "--codec", "png"]) == 0
    with open_source(uri) as live, open_source(f"recording:{tmp_path / 'rec'}") as replay:
        assert replay.frames_total == 3 and replay.calibration.rectified
        for _ in range(3):
            a, b = live.read(), replay.read()
            assert np.array_equal(a.left, b.left) and np.array_equal(a.right, b.right)
            assert a.t_capture_ns == b.t_capture_ns
    assert capture_main(["record", uri, str(tmp_path / "rec")]) == 2
