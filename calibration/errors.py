"""The one error type of the calibration package."""

from __future__ import annotations


class CalibrationError(ValueError):
    """A calibration file or value is wrong; the message names the file, the field and the fix."""
