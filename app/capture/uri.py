"""Source URIs: ``scheme[:target][?key=value&key=value]`` (syntax in docs/CAPTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.capture.errors import CaptureError


@dataclass(frozen=True)
class SourceURI:
    """A parsed source URI. target: the text after ``scheme:`` ('' if none); params: the query's key=value
    pairs (last one wins); text: the URI as given, for messages."""

    scheme: str
    target: str
    params: dict = field(default_factory=dict)
    text: str = ""

    def check_params(self, allowed: tuple[str, ...]) -> None:
        """CaptureError for a parameter this scheme does not take."""
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise CaptureError(
                f"source {self.text!r}: unknown parameter(s) {unknown}; "
                f"'{self.scheme}' takes {list(allowed) or 'no parameters'}"
            )

    def require(self, key: str, hint: str) -> str:
        """The value of parameter ``key``, or CaptureError explaining what to pass."""
        value = self.params.get(key, "")
        if not value:
            raise CaptureError(f"source {self.text!r}: parameter '{key}' is required; {hint}")
        return value

    def number(self, key: str, default: float, typ: type = float):
        """Parameter ``key`` as ``typ`` (int or float), ``default`` when absent."""
        raw = self.params.get(key)
        if raw is None or raw == "":
            return default
        try:
            return typ(raw)
        except ValueError as exc:
            raise CaptureError(
                f"source {self.text!r}: parameter '{key}={raw}' is not a number; " f"give a {typ.__name__}"
            ) from exc

    def flag(self, key: str, default: bool) -> bool:
        """Parameter ``key`` as a boolean (1/0, true/false, yes/no)."""
        raw = self.params.get(key)
        if raw is None or raw == "":
            return default
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise CaptureError(f"source {self.text!r}: parameter '{key}={raw}' must be 1 or 0")
        return raw.lower() in ("1", "true", "yes")


def parse_uri(text: str) -> SourceURI:
    """Split ``scheme:target?k=v&k=v``. The scheme is lower-cased; target and values are kept as given."""
    if not isinstance(text, str) or not text.strip():
        raise CaptureError(
            "empty source URI; give e.g. zed, zed-uvc:0?conf=SN123.conf, "
            "sbs:FILE.mp4?conf=SN123.conf, video:L.mp4,R.mp4?calib=FILE or recording:DIR"
        )
    text = text.strip()
    head, _, query = text.partition("?")
    scheme, _, target = head.partition(":")
    params = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CaptureError(
                f"source {text!r}: query item {item!r} is not key=value; write e.g. ?conf=SN1.conf"
            )
        params[key.strip().lower()] = value.strip()
    return SourceURI(scheme=scheme.strip().lower(), target=target.strip(), params=params, text=text)
