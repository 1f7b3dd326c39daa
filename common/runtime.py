"""Where and how a run executes: the device, torchrun/DDP and bf16 autocast. The same code
path runs on the CPU and on CUDA; only these choices differ."""
from __future__ import annotations

import os
from contextlib import nullcontext

import torch

from common.errors import UserError


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA where there is one, else the CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name} requested but no CUDA device is available")
    return torch.device(name)


def init_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, device) under torchrun (DDP: NCCL on CUDA, gloo on the CPU); (0, 1, device) alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def autocast(device: torch.device, bf16: bool = True):
    """bf16 autocast on CUDA when asked; a no-op context elsewhere (the CPU computes in fp32)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and device.type == "cuda" else nullcontext()

