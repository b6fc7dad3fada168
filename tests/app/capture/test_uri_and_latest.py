"""Source URI parsing, the scheme registry, the latest-wins reader thread."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from app.capture import CaptureError, known_schemes, open_source, parse_uri, register_source
from app.capture.latest import LatestFrameThread


def test_parse_uri_parts():
    u = parse_uri(" ZED-UVC:1?conf=SN1.conf&mode=VGA&fps= ")
    assert (u.scheme, u.target, u.params) == ("zed-uvc", "1", {"conf": "SN1.conf", "mode": "VGA", "fps": ""})
    assert u.number("fps", 30, int) == 30
    assert (
        parse_uri("zed").target == "" and parse_uri("video:a.mp4,b.mp4?calib=c.json").target == "a.mp4,b.mp4"
    )
    assert parse_uri("sbs:C:/x.mp4?conf=a").target == "C:/x.mp4"


@pytest.mark.parametrize(
    "text, words",
    [("", "empty source URI"), ("sbs:x?conf", "not key=value"), ("zed-uvc:0?fps=abc", "not a number")],
)
def test_bad_uris(text, words):
    with pytest.raises(CaptureError, match=words):
        parse_uri(text).number("fps", 30, int)


def test_register_source_adds_a_scheme_without_touching_the_parser():
    sentinel = object()
    register_source("test-fake", lambda uri: (sentinel, uri.params), replace=True)
    assert "test-fake" in known_schemes()
    assert open_source("test-fake?x=1") == (sentinel, {"x": "1"})
    with pytest.raises(ValueError, match="already registered"):
        register_source("test-fake", lambda uri: None)
    for builtin in ("zed", "svo", "zed-uvc", "sbs", "video", "recording"):
        assert builtin in known_schemes()


def test_latest_frame_thread_keeps_only_the_newest():
    counter = itertools.count()

    def grab():
        time.sleep(0.001)
        return np.full((2, 2), next(counter) % 256, np.uint8)

    reader = LatestFrameThread(grab, "fake")
    try:
        first, _ = reader.get()
        time.sleep(0.1)  # a slow consumer: the device produced many frames meanwhile
        newest, t_ns = reader.get()
        assert int(newest[0, 0]) > int(first[0, 0]) + 5 and reader.dropped > 5
        assert abs(t_ns - time.monotonic_ns()) < 1e9
    finally:
        reader.stop()


def test_latest_frame_thread_reports_device_errors():
    reader = LatestFrameThread(lambda: None, "dead", max_failures=3)
    with pytest.raises(CaptureError, match="3 reads in a row failed"):
        reader.get(timeout_s=2)
    boom = threading.Event()

    def grab():
        boom.set()
        raise OSError("unplugged")

    reader = LatestFrameThread(grab, "cam")
    with pytest.raises(CaptureError, match="cam: reading failed \\(unplugged\\)"):
        reader.get(timeout_s=2)
