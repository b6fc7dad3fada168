"""``python -m app.warmup``: compile the app's numba kernels (texture accumulation, refinement renderer and
skinning, the segmentation seed's silhouette) into their on-disk caches, once per machine (scripts/install.sh
runs it). The first process on a fresh machine otherwise spends ~20-40 s compiling them; later processes load
them in ~1 s."""

from __future__ import annotations

import json
import sys
import time


def warm_up() -> dict:
    """Runs each kernel once on made-up data; returns seconds per part."""
    import torch

    from app.config import HandModelConfig
    from app.reconstruction.fit import build_fitter
    from app.reconstruction.fit_config import FitConfig
    from app.reconstruction.refine import build_refiner, refine_preset
    from app.texture.accumulator import build_texture_accumulator
    from app.texture.config import TextureConfig
    from calibration.presets import preset_rig

    torch.set_num_threads(1)
    models = build_fitter(FitConfig(), HandModelConfig()).hand_models
    t0 = time.perf_counter()
    for model in models.values():
        build_refiner(refine_preset("scaled"), model).warm_up()
    warm_silhouette()
    t1 = time.perf_counter()
    for model in models.values():
        if model.uv is not None:
            build_texture_accumulator(TextureConfig(), model).warm_up(preset_rig("zed-mini", "640x360"))
    return {"refinement_s": round(t1 - t0, 2), "texture_s": round(time.perf_counter() - t1, 2)}


def warm_silhouette() -> None:
    """The segmentation seed's silhouette kernel (app/render/silhouette.py) on one triangle."""
    import numpy as np

    from app.render.silhouette import silhouette_mask

    K = np.array([[100.0, 0.0, 8.0], [0.0, 100.0, 8.0], [0.0, 0.0, 1.0]])
    silhouette_mask(np.array([[0.0, 0.0, 1.0], [0.05, 0.0, 1.0], [0.0, 0.05, 1.0]]), np.array([[0, 1, 2]]), K, (16, 16))


def main() -> int:
    print(json.dumps(warm_up()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
