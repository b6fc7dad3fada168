"""Frame sources behind one interface, chosen by a source URI (syntax in docs/CAPTURE.md).

    with open_source("sbs:session.mp4?conf=SN123.conf") as src:
        while (frame := src.read()) is not None: ...

Other packages add schemes with ``register_source(scheme, factory)``; ``factory(SourceURI) -> FrameSource``.
"""

from __future__ import annotations

from collections.abc import Callable

from app.capture.base import FrameSource
from app.capture.errors import CaptureError
from app.capture.uri import SourceURI, parse_uri

SourceFactory = Callable[[SourceURI], FrameSource]
_REGISTRY: dict[str, SourceFactory] = {}


def register_source(scheme: str, factory: SourceFactory, *, replace: bool = False) -> None:
    """Make ``scheme:...`` URIs open through ``factory``. Re-registering needs ``replace=True``."""
    key = scheme.strip().lower()
    if not key or any(c in key for c in ":?&=,"):
        raise ValueError(f"scheme {scheme!r}: use a plain name such as 'synthetic'")
    if key in _REGISTRY and not replace:
        raise ValueError(f"scheme {key!r} is already registered; pass replace=True to override it")
    _REGISTRY[key] = factory


def known_schemes() -> list[str]:
    return sorted(_REGISTRY)


def open_source(uri: str | SourceURI) -> FrameSource:
    """Open the source named by ``uri``; CaptureError (listing the known schemes) when it cannot."""
    parsed = uri if isinstance(uri, SourceURI) else parse_uri(uri)
    factory = _REGISTRY.get(parsed.scheme)
    if factory is None:
        raise CaptureError(
            f"source {parsed.text!r}: unknown scheme {parsed.scheme!r}; known schemes: "
            f"{', '.join(known_schemes())} (see docs/CAPTURE.md)"
        )
    return factory(parsed)


def _sbs(uri: SourceURI) -> FrameSource:
    from app.capture.sbs import open_sbs_file

    return open_sbs_file(uri)


def _zed_uvc(uri: SourceURI) -> FrameSource:
    from app.capture.sbs import open_zed_uvc

    return open_zed_uvc(uri)


def _video(uri: SourceURI) -> FrameSource:
    from app.capture.video import open_video_pair

    return open_video_pair(uri)


def _recording(uri: SourceURI) -> FrameSource:
    from app.capture.recording import open_recording

    return open_recording(uri)


def _zed(uri: SourceURI) -> FrameSource:
    from app.capture.zed_sdk import open_zed

    return open_zed(uri)


def _synthetic(uri: SourceURI) -> FrameSource:
    from app.capture.synthetic import open_synthetic

    return open_synthetic(uri)


for _scheme, _factory in (
    ("sbs", _sbs),
    ("zed-uvc", _zed_uvc),
    ("video", _video),
    ("recording", _recording),
    ("zed", _zed),
    ("svo", _zed),
    ("synthetic", _synthetic),
):
    register_source(_scheme, _factory)

__all__ = [
    "CaptureError",
    "FrameSource",
    "SourceURI",
    "known_schemes",
    "open_source",
    "parse_uri",
    "register_source",
]
