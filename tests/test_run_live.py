"""run_live.py end to end: flags, clear one-line errors, headless output, recording, benchmark, Ctrl-C.

Frames come from a small recording of the open hand model rendered palm-to-camera (MediaPipe finds it)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from app.capture import open_source
from app.capture.recording import RecordingWriter
from app.cli import main
from app.config import HandModelConfig
from app.types import StereoFrame
from calibration.presets import preset_rig

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ("--source", "--mano-dir", "--checkpoint", "--iterations", "--hands", "--device", "--headless",
         "--max-frames", "--record", "--benchmark", "--config", "--realtime")


def write_hand_recording(path: Path, n: int, frame_period_ns: int = 33_333_333) -> Path:
    """``n`` stereo frames (640x360, ZED-mini rig) of the open hand model, palm to the camera, drifting."""
    from app.offscreen.renderer import OffscreenRenderer, SceneMesh
    from models.hand_model import build_hand_model

    calib = preset_rig("zed-mini", "640x360")
    model = build_hand_model(HandModelConfig(), "right")
    pose = torch.zeros(1, 48)
    R = np.stack([[0, -1, 0], [0, 0, 1], [-1, 0, 0]], 1).astype(float)
    pose[0, :3] = torch.tensor(Rotation.from_matrix(R).as_rotvec())
    with torch.no_grad():
        verts = model(pose, torch.zeros(1, 10)).verts_m[0].numpy()
    verts = verts - verts.mean(0)
    faces, skin = model.faces.numpy(), np.tile([[0.85, 0.64, 0.53]], (len(verts), 1)).astype(np.float32)
    renderer = OffscreenRenderer(*calib.left.size_wh)
    writer = RecordingWriter(path, calib, "png", 1e9 / frame_period_ns, "test hand")
    for i in range(n):
        v = verts + np.array([0.02 * np.sin(i / 4), 0.0, 0.35])
        views = [renderer.render([SceneMesh((v @ cam.T_cam_left[:3, :3].T + cam.T_cam_left[:3, 3]).astype(
            np.float32), faces, skin)], cam.K, np.full((360, 640, 3), (70, 90, 110), np.uint8)).rgb
            for cam in (calib.left, calib.right)]
        writer.write(StereoFrame(i, i * frame_period_ns, views[0], views[1], calib), block=True)
    writer.close()
    return path


@pytest.fixture(scope="module")
def hand_rec(tmp_path_factory):
    return write_hand_recording(tmp_path_factory.mktemp("rec") / "hand", 10)


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in FLAGS)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_source_is_one_clear_line(capsys, tmp_path):
    assert main(["--source", "bogus:x", "--headless", "--video", str(tmp_path / "v.mp4")]) == 2
    line = error_line(capsys)
    assert "unknown scheme 'bogus'" in line and "known schemes:" in line and "recording" in line


def test_unwritable_record_dir_is_one_clear_line(capsys, tmp_path, hand_rec):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code = main(["--source", f"recording:{hand_rec}", "--headless", "--record", str(blocker / "take"),
                 "--video", str(tmp_path / "v.mp4")])
    assert code == 2
    line = error_line(capsys)
    assert "--record" in line and "file.txt/take" in line and "choose a directory you can write to" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_gpu_is_one_clear_line(capsys):
    assert main(["--device", "cuda", "--source", "bogus:x"]) == 2
    assert "--device cuda" in error_line(capsys)


def test_bad_config_file_is_one_clear_line(capsys, tmp_path):
    (tmp_path / "c.yaml").write_text("pipeline:\n  hands: 3\n")
    assert main(["--config", str(tmp_path / "c.yaml")]) == 2
    assert "pipeline.hands" in error_line(capsys)


@pytest.mark.slow
def test_missing_display_falls_back_to_headless_mp4_and_png(capsys, tmp_path, hand_rec, no_display):
    code = main(["--source", f"recording:{hand_rec}", "--max-frames", "4", "--iterations", "0",
                 "--video", str(tmp_path / "view.mp4")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no display found (DISPLAY and WAYLAND_DISPLAY are not set): running headless" in out
    assert imageio.get_reader(tmp_path / "view.mp4").count_frames() == 4
    png = imageio.imread(tmp_path / "view_last.png")
    assert png.shape == (368, 1280, 3)


@pytest.mark.slow
def test_recording_and_benchmark_of_a_file_source(capsys, tmp_path, hand_rec, no_display):
    from models.handnet.checkpoint import save_checkpoint
    from models.handnet.config import HandNetConfig
    from models.handnet.net import build_handnet

    # An untrained, tiny HandNet: the point is the plumbing, not the mesh it gives. Its 64 px input differs from
    # the detection's default 224: the app must cut its crops at the checkpoint's size.
    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / "weights.pt", build_handnet(HandNetConfig(
        width=0.125, blocks=(1, 1, 1, 1), crop_size=64, regressor_hidden=(64, 32))), {"name": "open", "mano_dir": ""})
    session, bench = tmp_path / "take", tmp_path / "bench" / "run.json"
    code = main(["--source", f"recording:{hand_rec}", "--headless", "--record", str(session), "--benchmark",
                 str(bench), "--iterations", "1", "--hands", "1", "--checkpoint", str(weights),
                 "--video", str(tmp_path / "view.mp4")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "HandNet initialises the hands" in out
    data = json.loads(bench.read_text())
    assert data["frames"] == data["frames_read"] == 10  # a file source runs to its end, every frame
    assert data["warmup_frames"] == 5 and data["stages"]["detection"]["n"] == 5  # first 5 frames: warm-up
    assert data["fps"] > 0 and data["baseline_mediapipe_fps"] > 0 and data["baseline_frames"] == 5
    assert {"capture", "detection", "render"} <= set(data["stages"])
    assert all(k in data["stages"]["detection"] for k in ("p50_ms", "p95_ms"))
    assert data["latency_ms"]["p95"] >= data["latency_ms"]["p50"] > 0
    assert set(data["dropped"]) == set(data["stages"]) and data["device"] == "cpu"
    assert data["settings"]["hands"] == 1 and data["settings"]["iterations"] == 1
    assert bench.with_suffix(".png").is_file()
    with open_source(f"recording:{session}") as src:
        assert src.frames_total == 10 and src.warnings == []
    if "reconstruction" in data["stages"]:
        from app.session.hand_log import HandLogReader

        log = HandLogReader(session)
        assert [r.frame_id for r in log] == list(range(10))
        assert sum(len(r.hands) for r in log) >= 8  # MediaPipe finds the rendered hand in most frames
        assert (session / "hand.glb").is_file() and (session / "sequence.glb").is_file()


def run_script(args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env |= {"PYTHONPATH": str(ROOT), **(env_extra or {})}
    # SIGINT back to its default in the child: a test run started as a background job (nohup, `&` in a script)
    # ignores SIGINT, the child would inherit that, and Python then installs no KeyboardInterrupt handler.
    return subprocess.Popen([sys.executable, str(ROOT / "run_live.py"), *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def read_until(proc, needle: str, timeout_s: float = 120.0) -> list[str]:
    lines, end = [], time.monotonic() + timeout_s
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            break
    return lines


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "reason"), [(signal.SIGINT, "interrupted (Ctrl-C)"),
                                                (signal.SIGTERM, "terminated (SIGTERM)")])
def test_ctrl_c_or_sigterm_stops_cleanly_and_closes_the_recording(tmp_path, signum, reason):
    slow = write_hand_recording(tmp_path / "slow", 6, frame_period_ns=2_000_000_000)  # 10 s at its pace
    proc = run_script(["--source", f"recording:{slow}?pace=recorded", "--headless", "--iterations", "0",
                       "--record", "take"], cwd=tmp_path)
    try:
        head = read_until(proc, "Ctrl-C stops")
        assert any("recording to take" in ln for ln in head), head
        video = tmp_path / "out" / "live_view.mp4"
        end = time.monotonic() + 90
        while not (video.is_file() and video.stat().st_size > 0) and time.monotonic() < end:
            time.sleep(0.2)  # until a first frame went through the whole pipeline
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"stopped: {reason}" in out and "Traceback" not in err
    assert (tmp_path / "take" / "summary.json").is_file()  # the recording was closed, not abandoned
    assert json.loads((tmp_path / "take" / "session.json").read_text())["closed"]
    assert imageio.get_reader(video).count_frames() >= 1 and (tmp_path / "out" / "live_view_last.png").is_file()


@pytest.mark.slow
def test_no_arguments_prints_the_hand_model_then_runs_or_explains(tmp_path):
    proc = run_script([], cwd=tmp_path)
    try:
        first = proc.stdout.readline()
        lines = read_until(proc, "Ctrl-C stops", timeout_s=120)
        if any("Ctrl-C stops" in ln for ln in lines):
            time.sleep(2.0)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "hand model" in first and "Traceback" not in err
    if proc.returncode == 2:  # no camera and no synthetic source in this version: one clear line
        assert "error: --source auto: no ZED camera answered" in err and "pass --source URI" in err
    else:
        assert proc.returncode == 0 and "running headless" in "".join(lines) + out


def test_flags_override_the_yaml_which_overrides_the_defaults(tmp_path):
    from app.cli import build_parser, load_config

    (tmp_path / "c.yaml").write_text("pipeline:\n  hands: 1\n  queue_size: 2\ndetection:\n  model_complexity: 0\n"
                                     "viewer:\n  headless: true\n")
    args = build_parser().parse_args(["--config", str(tmp_path / "c.yaml"), "--hands", "2", "--iterations", "5",
                                      "--set", "texture.size=256", "--record", "take", "--realtime"])
    cfg = load_config(args)
    assert (cfg.pipeline.hands, cfg.pipeline.queue_size, cfg.detection.model_complexity) == (2, 2, 0)
    assert cfg.viewer.headless and cfg.pipeline.realtime and cfg.reconstruction.iterations == 5
    assert cfg.session.record_dir == "take" and cfg.source == "auto"
    if cfg.texture is not None:
        assert cfg.texture.size == 256


@pytest.mark.slow
def test_source_failure_mid_run_still_closes_the_recording(capsys, tmp_path, hand_rec, no_display):
    """A read error in the middle of the source (like a camera lost) ends the run with one error line; the
    frames recorded before it are flushed, closed and playable."""
    import shutil

    from app.capture.recording import RecordingReader

    broken = tmp_path / "broken"
    shutil.copytree(hand_rec, broken)
    reader = RecordingReader(broken)
    offset = reader.entries[3].payload_offset + 100
    reader.close()
    with open(broken / "frames.bin", "r+b") as f:  # damage frame 3's image bytes: its CRC no longer matches
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    code = main(["--source", f"recording:{broken}", "--headless", "--iterations", "0", "--record",
                 str(tmp_path / "take"), "--video", str(tmp_path / "v.mp4")])
    assert code == 1
    line = error_line(capsys)
    assert line.startswith("error: capture: recording") and "frame 3" in line and "corrupt" in line
    with open_source(f"recording:{tmp_path / 'take'}") as src:
        assert src.frames_total == 3 and src.warnings == []  # closed cleanly (summary.json), nothing lost
