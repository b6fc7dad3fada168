"""The one error type of the capture package."""

from __future__ import annotations


class CaptureError(RuntimeError):
    """A source cannot be opened or read; the message names the source or file, the problem and the fix."""
