"""Process-group set-up that works under the ``deepspeed`` launcher and as a single plain process."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Topology:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def select_accelerator() -> bool:
    """Point DeepSpeed at its CPU accelerator when there is no CUDA device; True when on CUDA.

    Must run before DeepSpeed first resolves its accelerator (at import of most of its modules).
    """
    on_cuda = torch.cuda.is_available()
    if not on_cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    return on_cuda


def init() -> Topology:
    """Initialise torch.distributed through DeepSpeed: NCCL on GPUs, gloo on the CPU.

    Without a launcher this is rank 0 of 1, on a free local port.
    """
    on_cuda = select_accelerator()
    if "RANK" not in os.environ:
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"})
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(free_port())
    os.environ.setdefault("LOCAL_RANK", os.environ["RANK"])
    import deepspeed

    if not on_cuda:
        _skip_shared_memory_comm_op()
    deepspeed.init_distributed(dist_backend="nccl" if on_cuda else "gloo", auto_mpi_discovery=False, verbose=False)
    rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    local_rank = int(os.environ["LOCAL_RANK"])
    if on_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return Topology(rank, local_rank, world_size, device)


def _skip_shared_memory_comm_op() -> None:
    """DeepSpeed JIT-compiles a shared-memory allreduce for CPU ranks the first time it starts (about a
    minute, with a C++ compiler); gloo does that job on the CPU without any compiled op."""
    import importlib

    # (``deepspeed.comm.torch`` as an attribute is the torch package itself; the submodule needs importlib.)
    deepspeed_torch_comm = importlib.import_module("deepspeed.comm.torch")
    if hasattr(deepspeed_torch_comm, "build_shm_op"):
        deepspeed_torch_comm.build_shm_op = lambda: None


def all_gather_object(value):
    """Every rank's ``value``, in rank order (a plain list in a single process)."""
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return [value]
    gathered = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def barrier() -> None:
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.barrier()
