"""Recording of textured-hand sessions (raw frames, per-frame hand states, texture) and their export to glTF.

``SessionRecorder`` writes one session directory (layout in recorder.py), ``SessionSwitch`` turns recording on
and off while the pipeline runs, ``export_session(dir)`` writes hand.glb and sequence.glb
(``python -m app.session export DIR``).
"""

from app.session.recorder import SessionError, SessionRecorder
from app.session.switch import SessionSwitch

__all__ = ["SessionError", "SessionRecorder", "SessionSwitch"]
