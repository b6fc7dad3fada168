"""The interactive window (pyglet): shows the composed frames the render stage makes and turns keys and mouse
into ViewControls calls. Opened on the main thread; frames arrive through a latest-wins slot.

Without a display (no X11/Wayland, SSH without forwarding, CI) ``open_window`` says why, and the caller falls
back to the headless MP4.
"""

from __future__ import annotations

import os
import sys

from app.pipeline.mailbox import END, Mailbox
from app.viewer.controls import KEY_HELP, ViewControls
from app.viewer.view import ViewerError


def display_problem(environ=None) -> str | None:
    """Why no window can open here (one line), or None when a display may be available."""
    env = os.environ if environ is None else environ
    if sys.platform.startswith("linux") and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return "no display found (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


class WindowDisplay:
    """A pyglet window of ``canvas_wh`` pixels; ``show`` (any thread) hands it the newest frame."""

    def __init__(self, canvas_wh: tuple[int, int], controls: ViewControls, title: str = "RealisticHands Live"):
        import pyglet

        self._pg, self.controls, self.pipeline = pyglet, controls, None
        self._slot = Mailbox("window", 1, drop_stale=True)
        self._image = None
        try:
            self.window = pyglet.window.Window(*canvas_wh, caption=title, resizable=True)
        except Exception as exc:  # pyglet raises several types for a missing or refusing display
            raise ViewerError(f"cannot open a window ({type(exc).__name__}: {exc})") from exc
        self.window.push_handlers(self)

    def show(self, image) -> None:
        self._slot.put(image)

    def run(self, pipeline) -> None:
        """Run the window's event loop until it is closed or the pipeline ends; Ctrl-C stops cleanly."""
        self.pipeline = pipeline
        print(KEY_HELP)
        self._pg.clock.schedule_interval(self._tick, 1 / 60)
        try:
            self._pg.app.run()
        except KeyboardInterrupt:
            pipeline.stop("interrupted (Ctrl-C)")
        pipeline.wait()

    def _tick(self, _dt: float) -> None:
        if not self.pipeline.alive():
            self._pg.app.exit()
            return
        image = self._slot.get(timeout_s=0)
        if image is not None and image is not END:
            h, w = image.shape[:2]
            self._image = self._pg.image.ImageData(w, h, "RGB", image.tobytes(), pitch=-w * 3)

    def on_draw(self) -> None:
        self.window.clear()
        if self._image is not None:
            self._image.blit(0, 0, width=self.window.width, height=self.window.height)

    def on_close(self) -> None:
        """The window's close button (pyglet's own handler then closes the window)."""
        if self.pipeline is not None:
            self.pipeline.stop("window closed")
        self._pg.app.exit()

    def on_key_press(self, symbol, _modifiers) -> bool:
        name = self._pg.window.key.symbol_string(symbol)
        if name == "ESCAPE":
            self.on_close()
        elif (done := self.controls.press(name)) is not None:
            print(done)
        return True  # handled: keeps pyglet's default ESC handler from closing the window behind our back

    def on_mouse_drag(self, _x, _y, dx, dy, _buttons, _modifiers) -> None:
        self.controls.drag(dx, -dy)  # pyglet's y grows upwards

    def on_mouse_scroll(self, _x, _y, _sx, sy) -> None:
        self.controls.zoom(sy)

    def close(self) -> list[str]:
        if getattr(self.window, "context", None) is not None:  # not closed by its close button already
            self.window.close()
        return []


def open_window(canvas_wh: tuple[int, int], controls: ViewControls) -> tuple[WindowDisplay | None, str | None]:
    """(window, None), or (None, why) when there is no usable display."""
    problem = display_problem()
    if problem is not None:
        return None, problem
    try:
        return WindowDisplay(canvas_wh, controls), None
    except (ViewerError, ImportError) as exc:
        return None, str(exc)
