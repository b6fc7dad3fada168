"""torch.distributed support: launched with ``torchrun --nproc_per_node N -m models.train ...`` every process trains
one shard of each global batch under DistributedDataParallel; rank 0 alone logs and writes checkpoints.

Equivalence with one process on the same global batch (tests/models/training/test_distributed.py) needs three
things: the same samples per global batch (DistributedSampler: rank r takes every N-th index of one seeded
permutation, so the N shards of batch k are exactly the single process's batch k), gradients averaged over ranks
(DDP), and batch-norm statistics over the global batch, not each shard (SyncBatchNorm on CUDA; on CPU, where
PyTorch's SyncBatchNorm refuses to run, ``GlobalBatchNorm2d`` below).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """rank / world_size / local_rank of this process (0 / 1 / 0 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group torchrun describes in the environment (NCCL on CUDA, gloo on CPU); no-op alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return info


def resolve_device(spec: str, info: DistInfo) -> torch.device:
    """'auto' -> this rank's GPU when CUDA is available, else the CPU; 'cuda' / 'cpu' explicitly."""
    if spec not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device {spec!r} unknown; use auto, cuda or cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use device=auto or device=cpu")
    if spec == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", info.local_rank)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def global_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a scalar over ranks (for logging the global-batch loss); detached."""
    value = value.detach().clone()
    if info.enabled:
        dist.all_reduce(value)
        value /= info.world_size
    return value


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: y = sum_r x_r on every rank; each rank's input gradient is the sum over
    ranks of dL_r / dy (every rank's loss depends on every rank's input)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span all ranks' shards (CPU / gloo stand-in for SyncBatchNorm).

    Two passes, each a differentiable all-reduce (gradients flow back to every rank's inputs): the global mean,
    then the global mean squared deviation (two-pass: no cancellation of E[x^2] - E[x]^2). Running statistics
    use the unbiased variance of the global batch, as nn.BatchNorm2d does for one process. Single process or
    eval mode: plain batch norm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        n = torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype, device=x.device)
        dist.all_reduce(n)
        mean = all_reduce_sum(x.sum(dim=(0, 2, 3))) / n
        var = all_reduce_sum((x - mean[None, :, None, None]).pow(2).sum(dim=(0, 2, 3))) / n
        self._update_running(mean.detach(), var.detach(), n)
        # Written out (not F.batch_norm in eval mode, which treats mean and var as constants): the gradient
        # must flow through the global statistics to every rank's inputs.
        scale = self.weight * torch.rsqrt(var + self.eps)
        return x * scale[None, :, None, None] + (self.bias - mean * scale)[None, :, None, None]

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        self.num_batches_tracked += 1
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(m * mean)
        self.running_var.mul_(1 - m).add_(m * var * n / (n - 1).clamp(min=1))


def _to_global_bn(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by a GlobalBatchNorm2d sharing its parameters and buffers."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            new.weight.requires_grad_(child.weight.requires_grad)
            new.bias.requires_grad_(child.bias.requires_grad)
            setattr(module, name, new)
        else:
            _to_global_bn(child)
    return module


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm over the global batch: SyncBatchNorm on CUDA, GlobalBatchNorm2d on CPU (same state keys)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_bn(module)


def wrap_ddp(module: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """DDP over the module's trainable parameters (call after freezing: DDP registers requires_grad params only).

    forward_sync_buffers=False: the hand model's large constant buffers need no per-step broadcast, and the batch-norm
    running statistics are identical on every rank anyway (computed from global statistics).
    """
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
