"""2D drawing on composed images (cv2): hand skeletons and the HUD. Images are (H, W, 3) uint8 RGB, modified
in place."""

from __future__ import annotations

import cv2
import numpy as np

from app.viewer.view import HudStatus

# MediaPipe's 21-keypoint skeleton: (parent, child) bones.
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
         (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))
HAND_COLOURS = ((255, 200, 40), (60, 200, 255))  # RGB, per hand index
FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_skeleton(img: np.ndarray, points_px: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Bones and joints of one hand; points_px (21, 2) pixels of ``img`` (NaN rows are skipped)."""
    pts = np.asarray(points_px, np.float64)
    ok = np.isfinite(pts).all(1)
    ipts = np.round(np.where(ok[:, None], pts, 0)).astype(int)
    for a, b in BONES:
        if ok[a] and ok[b]:
            cv2.line(img, tuple(ipts[a]), tuple(ipts[b]), colour, 2, cv2.LINE_AA)
    for p in ipts[ok]:
        cv2.circle(img, tuple(p), 3, (255, 255, 255), -1, cv2.LINE_AA)


def hud_lines(status: HudStatus, timings_ms: dict, mode: str) -> list[str]:
    """The HUD's text lines: rate and state, per-stage milliseconds of this frame, notes."""
    rec = f"REC {status.recorded_frames}" if status.recording else "not recording (R)"
    head = f"{status.fps:5.1f} fps | hands {status.hands_seen} | {rec} | dropped {status.dropped} | view {mode} (V)"
    stages = "  ".join(f"{name} {ms:.0f}" for name, ms in timings_ms.items()) + " ms"
    return [head, stages, *status.notes]


def draw_hud(img: np.ndarray, lines: list[str], recording: bool) -> None:
    """Text on a dark band at the top; a red dot at the right when recording."""
    scale, step = 0.45, 18
    band = img[: step * len(lines) + 8]
    band[:] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(img, line, (8, step * (i + 1)), FONT, scale, (235, 235, 235), 1, cv2.LINE_AA)
    if recording:
        cv2.circle(img, (img.shape[1] - 16, 14), 7, (230, 30, 30), -1, cv2.LINE_AA)


def draw_centre_text(img: np.ndarray, text: str) -> None:
    (tw, th), _ = cv2.getTextSize(text, FONT, 0.6, 1)
    org = ((img.shape[1] - tw) // 2, (img.shape[0] + th) // 2)
    cv2.putText(img, text, org, FONT, 0.6, (200, 200, 200), 1, cv2.LINE_AA)
