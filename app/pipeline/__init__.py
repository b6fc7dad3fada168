"""The live pipeline: one thread per stage (capture -> detection -> reconstruction -> texture -> render), joined
by bounded latest-wins mailboxes (``mailbox``), packets carrying the stage dataclasses and per-stage times
(``packet``), meters (``metrics``), the runner (``runner.Pipeline``), the stage objects (``stages``), their
construction from the AppConfig (``build``) and the end-of-run / --benchmark report (``report``).
"""

from app.pipeline.mailbox import END, Mailbox
from app.pipeline.packet import Packet, StageTime
from app.pipeline.runner import Pipeline, PipelineReport, StageSpec

__all__ = ["END", "Mailbox", "Packet", "Pipeline", "PipelineReport", "StageSpec", "StageTime"]
