import imageio.v2 as imageio
import numpy as np
import pytest

from app.viewer.sinks import HeadlessDisplay, VideoWriter, save_png
from app.viewer.view import ViewerError


def frames(n: int):
    return [np.full((64, 96, 3), 20 * i, np.uint8) for i in range(n)]


def test_headless_display_writes_an_mp4_and_the_last_frame_as_png(tmp_path):
    d = HeadlessDisplay(tmp_path / "out" / "view.mp4", tmp_path / "out" / "view.png", fps=10)
    for f in frames(6):
        d.show(f)
    lines = d.close()
    reader = imageio.get_reader(tmp_path / "out" / "view.mp4")
    assert reader.count_frames() == 6 and reader.get_meta_data()["size"] == (96, 64)
    png = imageio.imread(tmp_path / "out" / "view.png")
    np.testing.assert_array_equal(png, frames(6)[-1])
    assert any("6 frames" in line for line in lines)


CHILD = """
import sys, numpy as np
from app.viewer.sinks import VideoWriter
w = VideoWriter(sys.argv[1], fps=10)
for i in range(1000):
    w.write(np.full((64, 96, 3), i % 250, np.uint8))
    if i == 100:
        print("written", flush=True)
        sys.stdin.readline()  # wait to be killed
"""


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_a_killed_run_leaves_a_playable_video(tmp_path):
    """The MP4 is fragmented: SIGKILL to ffmpeg itself (no chance to write the index at the end) and to the
    writer keeps the frames of every finished fragment readable."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "v.mp4")], cwd=root, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert proc.stdout.readline().strip() == "written"
        for pid in child_pids(proc.pid):  # ffmpeg runs in its own process group
            os.kill(pid, signal.SIGKILL)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert imageio.get_reader(tmp_path / "v.mp4").count_frames() > 0


def test_unwritable_paths_give_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    with pytest.raises(ViewerError, match=r"video .*file\.txt/view\.mp4: cannot create .*writable path"):
        VideoWriter(blocker / "view.mp4", fps=10)
    with pytest.raises(ViewerError, match="screenshot .*writable path"):
        save_png(blocker / "shot.png", frames(1)[0])


class _FakeWriter:
    """VideoWriter stand-in: keeps the frames it got; fails at frame ``fail_at``."""

    def __init__(self, fail_at=None):
        self.path, self.frames, self.got, self.closed, self.fail_at = "fake.mp4", 0, [], False, fail_at

    def write(self, image):
        if self.frames == self.fail_at:
            raise OSError("pipe broken")
        self.got.append(int(image[0, 0, 0]))
        self.frames += 1

    def close(self):
        self.closed = True


def test_background_video_writes_every_frame_in_order():
    import numpy as np

    from app.viewer.sinks import BackgroundVideo

    w = _FakeWriter()
    bg = BackgroundVideo(w, depth=2)
    for i in range(50):
        bg.write(np.full((4, 4, 3), i, np.uint8))
    bg.close()
    assert w.got == list(range(50)) and w.closed and bg.frames == 50


def test_background_video_reports_a_write_error():
    import numpy as np
    import pytest

    from app.viewer.sinks import BackgroundVideo
    from app.viewer.view import ViewerError

    bg = BackgroundVideo(_FakeWriter(fail_at=3), depth=1)
    with pytest.raises(ViewerError, match="fake.mp4: writing failed"):
        for _ in range(20):
            bg.write(np.zeros((2, 2, 3), np.uint8))
        bg.close()
