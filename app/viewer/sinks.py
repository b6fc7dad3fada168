"""Where composed frames go without a window: an MP4 (imageio-ffmpeg) and PNG screenshots.

The MP4 is written fragmented (``frag_keyframe+empty_moov``, a keyframe every 2 s): even when ffmpeg itself is
killed, the file stays playable up to the last finished fragment instead of missing its index. (Killing only
this process is harmless anyway: ffmpeg runs in its own process group and finishes the file on end of input.)
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from app.viewer.view import ViewerError

VIDEO_PRESET = "veryfast"


def _writable_parent(path: Path, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViewerError(f"{what} {path}: cannot create {path.parent} ({exc.strerror}); "
                          "choose a writable path") from exc
    if not os.access(path.parent, os.W_OK):
        raise ViewerError(f"{what} {path}: {path.parent} is not writable; choose a writable path")


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 RGB as a PNG atomically (temp file + rename); ViewerError with the fix."""
    import imageio.v2 as imageio

    path = Path(path)
    _writable_parent(path, "screenshot")
    tmp = path.with_name(path.name + ".tmp.png")
    try:
        imageio.imwrite(tmp, image)
        os.replace(tmp, path)
    except OSError as exc:
        raise ViewerError(f"screenshot {path}: cannot write ({exc}); choose a writable path") from exc
    return path


class VideoWriter:
    """Appends (H, W, 3) uint8 RGB frames of one size to an H.264 MP4 at ``fps``. ``preset``: libx264's speed
    preset; ``veryfast`` (the default here) costs ffmpeg about half the CPU of x264's own default ``medium`` on the
    live view at no larger a file, ``ultrafast`` a third, at about 2.5 x the size (docs/PERFORMANCE.md, Viewer).
    ffmpeg encodes in its own process, in parallel; ``write`` blocks only while ffmpeg takes the frame from the
    pipe."""

    def __init__(self, path: str | Path, fps: float, preset: str = VIDEO_PRESET):
        import imageio.v2 as imageio

        self.path, self.frames = Path(path), 0
        _writable_parent(self.path, "video")
        params = ["-preset", preset, "-movflags", "frag_keyframe+empty_moov", "-g", str(max(1, round(2 * fps)))]
        try:
            self._writer = imageio.get_writer(
                self.path, fps=fps, codec="libx264", quality=7, macro_block_size=16, pixelformat="yuv420p",
                output_params=params, ffmpeg_log_level="error")
        except OSError as exc:
            raise ViewerError(f"video {self.path}: cannot open for writing ({exc}); choose a writable path") from exc

    def write(self, image: np.ndarray) -> None:
        self._writer.append_data(image)
        self.frames += 1

    def close(self) -> None:
        self._writer.close()


class BackgroundVideo:
    """A VideoWriter fed from its own thread: ``write`` queues the frame (blocking only when ``depth`` frames
    wait, so no frame is ever skipped) and returns; the render thread then does not wait while ffmpeg takes
    each frame from the pipe (3-6 ms a frame, tens of ms at the p95 when x264's lookahead is full). Frames must
    not be modified after ``write`` (the Composer makes a new array per frame). A write error surfaces at the
    next ``write`` or at ``close``."""

    def __init__(self, writer: VideoWriter, depth: int = 8):
        self.writer, self.path = writer, writer.path
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="video-writer", daemon=True)
        self._thread.start()

    @property
    def frames(self) -> int:
        return self.writer.frames

    def _run(self) -> None:
        while (image := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.writer.write(image)
                except BaseException as exc:  # kept for the caller; the queue keeps draining
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise ViewerError(f"video {self.path}: writing failed ({self._error})") from self._error

    def write(self, image: np.ndarray) -> None:
        self._raise()
        self._queue.put(image)

    def close(self) -> None:
        """Write what waits, then finish the MP4."""
        self._queue.put(None)
        self._thread.join()
        self.writer.close()
        self._raise()


class HeadlessDisplay:
    """The view without a window: every composed frame into the MP4 (written from a background thread), the
    last one to ``screenshot_path``."""

    def __init__(self, video_path: str | Path, screenshot_path: str | Path, fps: float):
        self.video = BackgroundVideo(VideoWriter(video_path, fps))
        _writable_parent(Path(screenshot_path), "screenshot")
        self.screenshot_path = Path(screenshot_path)
        self.last: np.ndarray | None = None

    def show(self, image: np.ndarray) -> None:
        self.video.write(image)
        self.last = image

    def run(self, pipeline) -> None:
        """Headless: nothing to do on the main thread but wait (Ctrl-C stops the pipeline cleanly)."""
        pipeline.wait()

    def close(self) -> list[str]:
        """Finish the MP4, save the final screenshot; returns lines saying what was written."""
        self.video.close()
        if self.video.frames == 0:
            return ["video: no frame reached the view, nothing written"]
        lines = [f"video: {self.video.path} ({self.video.frames} frames)"]
        if self.last is not None:
            save_png(self.screenshot_path, self.last)
            lines.append(f"final screenshot: {self.screenshot_path}")
        return lines
