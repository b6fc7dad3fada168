"""Hand model: MANO-layout file loading (real MANO or the embedded open model) and the torch layer.

Import-light on purpose: no renderer or detector imports here.
"""

from models.hand_model.layer import (
    MANO_TO_MEDIAPIPE,
    HandModel,
    HandModelOutput,
    build_hand_model,
    describe_default_model,
)
from models.hand_model.mano_io import ManoFileError, load_mano_dict

__all__ = [
    "MANO_TO_MEDIAPIPE",
    "HandModel",
    "HandModelOutput",
    "ManoFileError",
    "build_hand_model",
    "describe_default_model",
    "load_mano_dict",
]
