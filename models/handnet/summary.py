"""Per-block parameter counts and output shapes of a HandNet, for ``python -m models.handnet info``.

Rows follow Table A.1 (thesis appendix A.1) plus the regressor and stereo outputs. Shapes come from running a
real forward pass (stereo, with segmentation) on zero inputs through forward hooks, so they cannot drift from
the code.
"""

from __future__ import annotations

import torch
from torch import nn

from models.handnet.config import HandNetConfig
from models.handnet.net import HandNet, build_handnet

# (row name, dotted module path) in Table A.1 order.
BLOCKS = (
    ("ImgHead.Down1", "image_head.down1"), ("ImgHead.Down2", "image_head.down2"),
    ("ImgHead.Down3", "image_head.down3"),
    ("KpHead.Down1", "keypoint_head.down1"), ("KpHead.Down2", "keypoint_head.down2"),
    ("KpHead.Down3", "keypoint_head.down3"),
    ("Fusion.Conv1", "fusion.squeeze"), ("Fusion.Conv2", "fusion.excite"), ("Fusion.Conv3", "fusion.project"),
    ("Tail.Down4", "tail.down4"), ("Tail.Down5", "tail.down5"),
    ("Segment.Up1", "decoder.ups.0"), ("Segment.Up2", "decoder.ups.1"), ("Segment.Up3", "decoder.ups.2"),
    ("Segment.Up4", "decoder.ups.3"), ("Segment.Up5", "decoder.ups.4"), ("Segment.Conv", "decoder.out"),
    ("Regress.FC", "regressor.mlp"), ("Regress.Pose", "regressor.pose"), ("Regress.Shape", "regressor.shape"),
    ("Regress.Cam", "regressor.cam"), ("Stereo.FC", "stereo.fc"),
)


def _in_channels(module: nn.Module) -> int:
    """Input channels / features of a block: those of its first conv or linear layer."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            return int(m.in_channels)
        if isinstance(m, nn.Linear):
            return int(m.in_features)
    return -1


def _record_shapes(net: HandNet, size: int) -> dict[str, list[int]]:
    """Output shape (without the batch dim) of every BLOCKS module for one stereo pair of zero inputs."""
    shapes: dict[str, list[int]] = {}
    hooks = []
    for _, path in BLOCKS:
        def hook(_m, _inp, out, path=path):
            shapes[path] = list(out.shape[1:])
        hooks.append(net.get_submodule(path).register_forward_hook(hook))
    images = torch.zeros(1, 2, net.cfg.image_channels, size, size)
    heat = torch.zeros(1, 2, net.cfg.keypoint_channels, size, size)
    with torch.no_grad():
        net.forward_stereo(images, heat, segment=True)
    for h in hooks:
        h.remove()
    return shapes


def describe_handnet(cfg: HandNetConfig) -> dict:
    """{'config', 'input', 'total_params', 'groups' {group: params}, 'blocks' [{name, module, in_channels,
    output_shape, params}]} for a ``cfg.crop_size`` input."""
    net = build_handnet(cfg).eval()
    shapes = _record_shapes(net, cfg.crop_size)
    rows = []
    for name, path in BLOCKS:
        m = net.get_submodule(path)
        rows.append({"name": name, "module": path, "in_channels": _in_channels(m), "output_shape": shapes[path],
                     "params": sum(p.numel() for p in m.parameters())})
    groups = {g: sum(p.numel() for p in getattr(net, g).parameters())
              for g in ("image_head", "keypoint_head", "fusion", "tail", "regressor", "decoder", "stereo")}
    return {"config": cfg.to_dict(), "input": [cfg.crop_size, cfg.crop_size],
            "total_params": sum(p.numel() for p in net.parameters()), "groups": groups, "blocks": rows}


def format_table(info: dict) -> str:
    """Human-readable table of :func:`describe_handnet`'s result."""
    lines = [f"{'block':16s} {'in':>6s}  {'output':>16s} {'params':>12s}"]
    for r in info["blocks"]:
        shape = "x".join(str(s) for s in r["output_shape"])
        lines.append(f"{r['name']:16s} {r['in_channels']:6d}  {shape:>16s} {r['params']:12,d}")
    lines.append(f"{'total':16s} {'':6s}  {'':16s} {info['total_params']:12,d}")
    return "\n".join(lines)
