import json

import numpy as np
import pytest

from app.capture import open_source
from app.config import SessionConfig
from app.session import SessionError, SessionRecorder, SessionSwitch
from app.session.hand_log import HandLogReader
from app.session.recorder import load_uv_layouts
from app.session.switch import next_session_dir
from app.types import TextureMap


def recorder(path, kit, uv_layouts, **cfg):
    return SessionRecorder(path, kit.CALIB, SessionConfig(codec="raw", **cfg), nominal_fps=30.0, source="test",
                           uv_layouts=uv_layouts, is_live=False)


def test_a_session_records_frames_hands_texture_and_exports(tmp_path, kit, uv_layouts):
    rec = recorder(tmp_path / "s", kit, uv_layouts)
    for i in range(4):
        rec.on_frame(kit.frame(i))
        rec.on_hands(i, kit.frame(i).t_capture_ns, (kit.hand(i, bend=0.1 * i),) if i != 2 else ())
    tex = TextureMap(np.full((16, 16, 3), 0.25, np.float32), np.ones((16, 16), np.float32), 3)
    rec.on_texture(False, tex)
    lines = rec.close()
    d = tmp_path / "s"
    with open_source(f"recording:{d}") as src:
        assert src.frames_total == 4 and src.warnings == []
        assert int(src.read().left[0, 0, 0]) == 0
    log = HandLogReader(d)
    assert [len(r.hands) for r in log] == [1, 1, 0, 1]
    meta = json.loads((d / "session.json").read_text())
    assert meta["closed"] and meta["raw_frames"] == 4 and meta["hand_records"] == 4 and meta["error"] is None
    assert (d / "texture_right.png").is_file() and np.load(d / "texture_right_weight.npy").shape == (16, 16)
    assert not (d / "texture_left.png").exists()
    assert (d / "hand.glb").is_file() and (d / "sequence.glb").is_file()
    assert set(load_uv_layouts(d)) == {False, True}
    assert any("playable as recording:" in line for line in lines)
    assert rec.close() == []  # closing twice is harmless


def test_calls_after_close_are_ignored(tmp_path, kit, uv_layouts):
    rec = recorder(tmp_path / "s", kit, uv_layouts, export=False)
    rec.close()
    rec.on_frame(kit.frame(0))
    rec.on_hands(0, 0, (kit.hand(0),))
    assert rec.frames_written == 0 and len(HandLogReader(tmp_path / "s")) == 0


def test_unwritable_or_used_directories_are_refused_clearly(tmp_path, kit, uv_layouts):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(SessionError, match=r"--record .*file\.txt/s: cannot create the directory .*write to"):
        recorder(blocker / "s", kit, uv_layouts)
    recorder(tmp_path / "used", kit, uv_layouts, export=False).close()
    with pytest.raises(SessionError, match="already holds a recording; choose a new directory"):
        recorder(tmp_path / "used", kit, uv_layouts)


def test_switch_toggles_sessions_into_numbered_directories(tmp_path, kit, uv_layouts):
    said = []
    switch = SessionSwitch(lambda p: recorder(p, kit, uv_layouts, export=False), str(tmp_path / "take"),
                           report=said.append)
    switch.start()
    switch.on_frame(kit.frame(0))
    switch.toggle()  # off
    assert switch.active is None
    switch.on_frame(kit.frame(1))  # not recorded
    switch.toggle()  # on again: a new directory
    switch.on_frame(kit.frame(2))
    switch.close()
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["take", "take-2"]
    for name, first in (("take", 0), ("take-2", 2)):
        with open_source(f"recording:{tmp_path / name}") as src:
            assert src.frames_total == 1 and int(src.read().left[0, 0, 0]) == first
    assert any("recording to" in s for s in said) and any("recording stopped" in s for s in said)


def test_switch_reports_a_failed_start_instead_of_raising(tmp_path, kit, uv_layouts):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    said = []
    switch = SessionSwitch(lambda p: recorder(p, kit, uv_layouts), str(blocker / "s"), report=said.append)
    switch.toggle()
    assert switch.active is None and said[0].startswith("cannot start recording: --record")


def test_default_session_directories():
    assert str(next_session_dir("", 0)).startswith("recordings/session-")
    assert str(next_session_dir("a/b", 2)) == "a/b-3"
