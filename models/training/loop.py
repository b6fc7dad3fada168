"""The training run: stages in order (models/training/stages.py), each with its own Adam optimiser and linear
learning-rate decay, DDP when launched by torchrun, checkpoints after every epoch and stage.

Files in OUT (rank 0 only): last.pt (after every epoch; --resume from it), stage<i>-<name>.pt (after each stage),
handnet.pt (the final network), steps.csv, history.json, loss.png; synthetic/ (the rendered synthetic set when no
other set is given).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from models.handnet.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from models.handnet.net import HandNet, build_handnet
from models.training import distributed as D
from models.training.config import StageSchedule, TrainConfig
from models.training.datasets import MonoTrainSet, Sources, StereoTrainSet
from models.training.records import TrainLog
from models.training.samples import collate_stereo, collate_views
from models.training.stages import STAGES, StageSpec, lr_factor, set_trainable
from models.training.steps import StageStep


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run shares."""

    cfg: TrainConfig
    out_dir: Path
    info: D.DistInfo
    device: torch.device
    net: HandNet
    hand_model: nn.Module
    hand_model_info: dict
    sources: Sources
    log: TrainLog


@dataclass(frozen=True)
class ResumePoint:
    """Where to continue: stage index, epochs already done in it, global step, optimiser state (or None)."""

    stage_index: int = 0
    epoch: int = 0
    global_step: int = 0
    optimizer: dict | None = None
    history: tuple = ()


def build_sources(cfg: TrainConfig, out_dir: Path, info: D.DistInfo) -> Sources:
    """FreiHAND (train split) when configured; the synthetic set: a models.synth set (dataset.json, train split)
    when synthetic_dir holds one, else the stand-in adapter's set, rendered by rank 0 first when incomplete."""
    from models.data.synth_set import SynthSetSource, is_synth_set
    from models.data.synthetic_adapter import is_complete, open_stereo_source

    freihand = _freihand(cfg) if cfg.data.freihand_dir else None
    syn_dir = Path(cfg.data.synthetic_dir or out_dir / "synthetic")
    if is_synth_set(syn_dir):
        return Sources(freihand, SynthSetSource(syn_dir, "train"))
    gen = cfg.data.synthetic if cfg.data.generate_synthetic and not is_complete(syn_dir, cfg.data.synthetic) else None
    if info.is_main:
        synthetic = open_stereo_source(syn_dir, gen, progress=cfg.progress)
    D.barrier(info)
    if not info.is_main:
        synthetic = open_stereo_source(syn_dir)
    return Sources(freihand, synthetic)


def _freihand(cfg: TrainConfig):
    from models.data.freihand import FreiHANDConfig, FreiHANDReader
    from models.hand_model import build_hand_model

    hands_mean = build_hand_model(cfg.hand_model).hands_mean.cpu().numpy()
    fh = FreiHANDConfig(cfg.data.freihand_dir, "train", cfg.data.freihand_val_fraction, cfg.seed,
                        load_verts=cfg.stages.synthetic_adaption.epochs > 0)
    return FreiHANDReader(fh, hands_mean)


def _hand_model(cfg: TrainConfig, device: torch.device) -> tuple[nn.Module, dict]:
    from models.hand_model import build_hand_model

    model = build_hand_model(cfg.hand_model).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), {"name": model.name, "mano_dir": cfg.hand_model.resolved_mano_dir()}


def _resume_point(cfg: TrainConfig, net: HandNet, resume: str | None) -> ResumePoint:
    """Load a checkpoint's weights into net and return where its training stopped."""
    if not resume:
        return ResumePoint()
    ckpt = load_checkpoint(resume)
    if ckpt.config != cfg.handnet:
        raise CheckpointError(f"{resume}: trained with HandNet {ckpt.config}, this run configures {cfg.handnet}; "
                              "resume with the run's own config file/preset")
    load_weights(net, ckpt)
    t = ckpt.train or {}
    return ResumePoint(int(t.get("stage_index", 0)), int(t.get("epoch", 0)), int(t.get("global_step", 0)),
                       t.get("optimizer"), tuple(t.get("history") or ()))


def setup(cfg: TrainConfig, out_dir: str | Path, resume: str | None = None) -> tuple[RunContext, ResumePoint]:
    use_cuda = cfg.device != "cpu" and torch.cuda.is_available()
    info = D.init_distributed(use_cuda)
    device = D.resolve_device(cfg.device, info)
    out = Path(out_dir)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    net = build_handnet(cfg.handnet)
    start = _resume_point(cfg, net, resume)
    if info.enabled:
        net = D.sync_batchnorm(net, device)
    net = net.to(device)
    if device.type == "cuda" and cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    hand_model, hm_info = _hand_model(cfg, device)
    log = TrainLog(out, enabled=info.is_main, history=list(start.history))
    ctx = RunContext(cfg, out, info, device, net, hand_model, hm_info, build_sources(cfg, out, info), log)
    return ctx, start


def stage_dataset(ctx: RunContext, index: int, spec: StageSpec):
    cfg = ctx.cfg
    if spec.stereo:
        return StereoTrainSet(ctx.sources.synthetic, cfg.augment, cfg.seed, index), collate_stereo
    return MonoTrainSet(ctx.sources.mono(spec.data), cfg.augment, cfg.seed, index), collate_views


def make_loader(ctx: RunContext, index: int, spec: StageSpec):
    """(loader, sampler, dataset): each rank loads batch_size / world_size samples of every global batch."""
    dataset, collate = stage_dataset(ctx, index, spec)
    world = ctx.info.world_size
    if ctx.cfg.optim.batch_size % world:
        raise ValueError(f"optim.batch_size {ctx.cfg.optim.batch_size} is not divisible by the {world} processes")
    sampler = DistributedSampler(dataset, num_replicas=world, rank=ctx.info.rank, shuffle=True,
                                 seed=ctx.cfg.seed + index, drop_last=True)
    loader = DataLoader(dataset, batch_size=ctx.cfg.optim.batch_size // world, sampler=sampler, drop_last=True,
                        collate_fn=collate, num_workers=ctx.cfg.data.num_workers,
                        pin_memory=ctx.device.type == "cuda", persistent_workers=False)
    return loader, sampler, dataset


def _autocast(ctx: RunContext):
    if ctx.device.type != "cuda" or not ctx.cfg.amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _scaler(ctx: RunContext) -> torch.amp.GradScaler:
    fp16 = ctx.device.type == "cuda" and ctx.cfg.amp and not torch.cuda.is_bf16_supported()
    return torch.amp.GradScaler("cuda", enabled=fp16)


def save_state(ctx: RunContext, path: Path, index: int, epoch: int, global_step: int, opt) -> None:
    if not ctx.info.is_main:
        return
    train = {"config": ctx.cfg.to_dict(), "stage_index": index, "stage": STAGES[index].name, "epoch": epoch,
             "global_step": global_step, "optimizer": None if opt is None else opt.state_dict(),
             "history": ctx.log.history}
    save_checkpoint(path, ctx.net, ctx.hand_model_info, train)


@dataclass
class _StageRun:
    """Mutable per-stage loop state (not a stage boundary: it never leaves this module)."""

    index: int
    spec: StageSpec
    sched: StageSchedule
    model: nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    steps: int
    global_step: int


def _step(ctx: RunContext, run: _StageRun, batch, epoch: int, step: int) -> float:
    """One optimiser step; returns the global-batch loss."""
    lr = ctx.cfg.optim.lr * run.sched.lr_scale * lr_factor(epoch + step / run.steps, run.sched.epochs,
                                                           run.sched.decay_epochs)
    for group in run.opt.param_groups:
        group["lr"] = lr
    with _autocast(ctx):
        total, terms = run.model(batch.to(ctx.device, non_blocking=True))
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(total).backward()
    run.scaler.step(run.opt)
    run.scaler.update()
    run.global_step += 1
    loss = float(D.global_mean(total, ctx.info))
    terms = {k: float(D.global_mean(v, ctx.info)) for k, v in terms.items()}
    write = step % max(ctx.cfg.log_every, 1) == 0 or step == run.steps - 1
    ctx.log.step(run.spec.name, epoch, step, run.global_step, lr, loss, terms, write)
    return loss


def _epoch(ctx: RunContext, run: _StageRun, loader, epoch: int) -> dict:
    from tqdm import tqdm

    t0 = time.perf_counter()
    bar = tqdm(total=run.steps, desc=f"{run.spec.name} {epoch + 1}/{run.sched.epochs}",
               disable=not (ctx.info.is_main and ctx.cfg.progress), leave=False)
    for step, batch in enumerate(loader):
        if step >= run.steps:
            break
        loss = _step(ctx, run, batch, epoch, step)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4g}")
    bar.close()
    return ctx.log.end_epoch(run.spec.name, epoch, time.perf_counter() - t0)


def run_stage(ctx: RunContext, index: int, start: ResumePoint) -> int:
    """Train stage ``index`` from ``start`` (its epoch count is resumed when start.stage_index == index).
    Returns the global step after the stage."""
    spec = STAGES[index]
    sched = getattr(ctx.cfg.stages, spec.name)
    params = set_trainable(ctx.net, spec.trained)
    step_module = StageStep(ctx.net, ctx.hand_model, spec, ctx.cfg.mano_loss, ctx.cfg.stereo_loss,
                            ctx.device.type == "cuda" and ctx.cfg.channels_last)
    model = D.wrap_ddp(step_module, ctx.device, ctx.info)
    o = ctx.cfg.optim
    opt = torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2))
    first = start.epoch if start.stage_index == index else 0
    if first and start.optimizer:
        opt.load_state_dict(start.optimizer)
    loader, sampler, dataset = make_loader(ctx, index, spec)
    steps = len(loader) if not o.max_steps_per_epoch else min(len(loader), o.max_steps_per_epoch)
    if steps == 0:
        raise ValueError(f"stage {spec.name}: {len(dataset)} samples give no full batch of {o.batch_size}; lower "
                         "optim.batch_size or add data")
    run = _StageRun(index, spec, sched, model, opt, _scaler(ctx), steps, start.global_step)
    for epoch in range(first, sched.epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        _epoch(ctx, run, loader, epoch)
        save_state(ctx, ctx.out_dir / "last.pt", index, epoch + 1, run.global_step, opt)
    save_state(ctx, ctx.out_dir / f"stage{index}-{spec.name}.pt", index, sched.epochs, run.global_step, None)
    return run.global_step


def train(cfg: TrainConfig, out_dir: str | Path, resume: str | None = None) -> Path:
    """Run every stage with epochs > 0 (continuing from ``resume``); returns OUT/handnet.pt."""
    ctx, start = setup(cfg, out_dir, resume)
    try:
        step = start.global_step
        for index, spec in enumerate(STAGES):
            sched = getattr(cfg.stages, spec.name)
            done = index < start.stage_index or (index == start.stage_index and start.epoch >= sched.epochs)
            if sched.epochs <= 0 or done:
                continue
            step = run_stage(ctx, index, ResumePoint(start.stage_index, start.epoch, step, start.optimizer))
        final = ctx.out_dir / "handnet.pt"
        save_state(ctx, final, len(STAGES) - 1, cfg.stages.stereo.epochs, step, None)
        ctx.log.write_summary(cfg.to_dict())
        ctx.log.plot()
        D.barrier(ctx.info)
        return final
    finally:
        D.shutdown()
