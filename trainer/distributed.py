"""Training that scales out: one process, or many under ``torchrun`` (PyTorch's DistributedDataParallel).

Every task's training loop starts with :func:`setup` and goes through the :class:`Runtime` it returns for
what depends on the world it runs in: the device, which share of the global batch this process computes,
the DDP wrapper, mixed precision (``--precision``), and whether this process logs, validates and writes
checkpoints (rank 0 only). Nothing else in the loops knows about ranks.

- **One process, no torchrun**: ``WORLD_SIZE`` is unset; no process group, no wrapper, ``share`` is the whole
  batch. A run on the Debian collections without ``--workers`` keeps the loop's own sampler and behaves exactly
  as before this module existed.
- **torchrun** (``python3 -m torch.distributed.run --nproc_per_node N -m trainer TASK train ...``): torchrun sets
  ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` joins the group
  (``gloo`` on CPU, ``nccl`` on CUDA, where process ``LOCAL_RANK`` takes GPU ``LOCAL_RANK``). ``--batch`` is the
  **global** batch: rank r computes samples ``[r B / W, (r + 1) B / W)`` of each step (B must divide by W), and
  DDP averages the gradients, so W processes take the same optimizer step as one process with batch B
  (Goyal et al. 2017's rule keeps the learning rate when the global batch is unchanged).
- **Data** is drawn per sample from the sample's global index (:mod:`trainer.data.stream`): sample k of the run
  is the same picture, crop and augmentation whichever rank draws it, so a checkpoint resumes in any world size.

Precision (``--precision``): ``fp32`` (default); ``bf16`` autocasts the forward pass to bfloat16 (CPU or CUDA;
weights, optimizer and loss stay float32); ``fp16`` autocasts to float16 with a gradient scaler (CUDA only:
``ValueError`` on CPU, where PyTorch's autocast has no float16). Recorded in the checkpoint's ``args``,
``summary.json`` (:meth:`Runtime.record`) and the exported manifest (``training.scale_out``:
:func:`trainer.manifest.scale_out`).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class Runtime:
    """Where this training process runs and which share of the work is its own.

    Attributes:
        rank / world: this process's rank and the number of processes (0 / 1 without torchrun).
        device: ``torch.device`` of this process (``cuda:LOCAL_RANK`` under torchrun on CUDA).
        precision: ``fp32`` | ``bf16`` | ``fp16`` (module docstring).
        indexed: whether the loop must draw its data by global sample index (:mod:`trainer.data.stream`): under
            torchrun, with ``--workers`` > 0, or for streamed photo folders; False keeps a loop's own sampler.
    """

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    indexed: bool = False
    scaler: torch.cuda.amp.GradScaler | None = None

    @property
    def main(self) -> bool:
        """True on the process that validates, logs and writes checkpoints (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is up (torchrun with at least 2 processes)."""
        return self.world > 1

    def share(self, batch: int) -> tuple[int, int]:
        """This rank's slice ``[lo, hi)`` of a global batch of ``batch`` samples.
        Raises ValueError when ``batch`` is not a multiple of the world size."""
        if batch % self.world:
            raise ValueError(f"--batch {batch} is the global batch: it must be a multiple of the {self.world} processes")
        n = batch // self.world
        return self.rank * n, (self.rank + 1) * n

    def wrap(self, model: torch.nn.Module, method: str | None = None):
        """``model`` in :class:`torch.nn.parallel.DistributedDataParallel` when distributed (gradients averaged
        over the ranks in backward, overlapped with it), else ``model`` itself (or its bound ``method``). With
        ``method`` (e.g. ``"logits"``) calling the result calls ``model.method`` inside DDP's forward (DDP syncs
        only what runs through its own ``forward``). The caller keeps ``model`` for the EMA, validation and
        checkpoints (its weights are the wrapper's)."""
        if not self.distributed:
            return getattr(model, method) if method else model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(_Method(model, method) if method else model, device_ids=ids)

    def sync_grads(self, module: torch.nn.Module) -> None:
        """Average ``module``'s gradients over the ranks (all-reduce, then / world), in place; no-op in one
        process. For a GAN critic that runs several forward passes before its one backward (real, fake, and the
        generator's pass), where DDP's once-per-iteration reducer does not fit: call it after ``backward`` and
        before ``opt.step()``, on every rank."""
        if not self.distributed:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        i = 0
        for g in grads:
            g.copy_(flat[i:i + g.numel()].view_as(g))
            i += g.numel()

    def autocast(self):
        """The forward pass's context: autocast to bfloat16 / float16 for ``--precision bf16`` / ``fp16``, else a
        no-op. Compute the loss in float32 (``.float()`` on the outputs) inside or after it."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """``zero_grad``, backward and ``opt.step()``, through the gradient scaler for fp16."""
        opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
            opt.step()

    def mean(self, value: float) -> float:
        """The mean of a float over the ranks (for logging a loss of the whole global batch); ``value`` alone
        without a process group. Every rank must call it at the same step."""
        if not self.distributed:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def per_process(self, total: torch.Tensor) -> torch.Tensor:
        """A normaliser for a loss that divides by a count over the batch (e.g. hole pixels): the count over the
        whole global batch / world, detached. ``sum_r / per_process(count_r)`` averaged over the ranks by DDP is
        the global ``sum / count`` one process computes; ``total`` itself in one process."""
        if not self.distributed:
            return total
        t = total.detach().clone().to(torch.float64)
        torch.distributed.all_reduce(t)
        return (t / self.world).to(total.dtype)

    def close(self) -> None:
        """End of training: every rank waits for the others (no-op in one process). The process group is not
        destroyed here: with PyTorch 1.13's gloo, tearing it down while a DDP reducer still holds it deadlocks
        (the group's destructor joins a gloo thread that waits for the GIL the destructor holds; seen in CI).
        :func:`exit_process` ends a distributed process without running those destructors."""
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def record(self, batch: int, lr: float | None = None, batches=None) -> dict:
        """The scale-out fields of a run's ``summary.json``: world size, global and per-process batch, learning rate
        (when given), precision, and the files skipped over all ranks (``batches``: the loop's
        :class:`~trainer.data.stream.IndexedBatches`, None when it draws its own way; a file skipped on two ranks
        counts twice). A collective when distributed: every rank calls it at the same point."""
        skipped = round(self.mean(len(batches.skipped)) * self.world) if batches is not None else 0
        return {"world_size": self.world, "global_batch": batch, "batch_per_process": batch // self.world,
                **({"lr": lr} if lr is not None else {}), "precision": self.precision, "skipped_files": skipped}

    def print(self, *args, **kwargs) -> None:
        """``print`` (flushed) on rank 0, nothing on the other ranks: the training loops' progress lines."""
        if self.main:
            print(*args, **{"flush": True, **kwargs})

    def describe(self, batch: int) -> str:
        """One line for the log: world size, device, per-process and global batch, precision."""
        return (f"{self.world} process(es) on {self.device.type}"
                + (f" ({'nccl' if self.device.type == 'cuda' else 'gloo'})" if self.distributed else "")
                + f", global batch {batch} ({batch // self.world} per process), precision {self.precision}")


class _Method(torch.nn.Module):
    """``forward`` = ``inner.<name>`` (so DDP can wrap a model's non-forward entry point, e.g. ``logits``)."""

    def __init__(self, inner: torch.nn.Module, name: str) -> None:
        super().__init__()
        self.inner, self.name = inner, name

    def forward(self, *args, **kwargs):
        return getattr(self.inner, self.name)(*args, **kwargs)


def rss_mib() -> float:
    """Resident memory (MiB) of this process plus its child processes (DataLoader workers), from ``/proc``
    (Linux); 0.0 where ``/proc`` is missing."""
    import glob
    pids = [str(os.getpid())]
    for f in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            pids += open(f).read().split()
        except OSError:
            pass
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
    return total / 2**20


def start(args, indexed: bool = False) -> tuple[Runtime, tuple[int, int]]:
    """What every training loop does first: :func:`setup`, this rank's share of the global ``args.batch``
    (:meth:`Runtime.share`) and, on rank 0, the run folder ``args.out``. Raises as :func:`setup` and
    :meth:`Runtime.share` do."""
    rt = setup(args, indexed)
    share = rt.share(args.batch)
    if rt.main:
        os.makedirs(args.out, exist_ok=True)
    return rt, share


def exit_process(status: int) -> None:
    """End a process that joined a process group: flush stdout/stderr and ``os._exit(status)``, skipping the
    interpreter's teardown, whose gloo / DDP destructors can deadlock (:meth:`Runtime.close`). Returns (does
    nothing) when no group is up."""
    import sys
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def world_from_env() -> tuple[int, int, int]:
    """``(rank, world, local_rank)`` from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
    ``(0, 1, 0)`` without torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def setup(args, indexed: bool = False) -> Runtime:
    """Set up this training process from its parsed options and torchrun's environment (module docstring):
    torch threads (``args.threads``), the seed (``args.seed``, the same on every rank: every replica starts from
    the same weights), the device, the process group, the precision and its gradient scaler.

    Args:
        args: the verb's options (``threads``, ``seed``, ``device``; optional ``precision``, ``workers``).
        indexed: the data source needs indexed sampling anyway (a streamed photo folder).
    Raises:
        ValueError: ``--precision fp16`` on the CPU, or an unknown precision.
        RuntimeError: from ``torch.distributed`` when the rendezvous fails.
    """
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rank, world, local_rank = world_from_env()
    precision = getattr(args, "precision", "fp32") or "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {PRECISIONS}, got {precision!r}")
    cuda = getattr(args, "device", "cpu") == "cuda"
    if precision == "fp16" and not cuda:
        raise ValueError("--precision fp16 needs --device cuda (PyTorch's CPU autocast has bfloat16 only: use bf16)")
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    rt = Runtime(rank=rank, world=world, device=device, precision=precision,
                 indexed=indexed or world > 1 or getattr(args, "workers", 0) > 0)
    if precision == "fp16":
        rt.scaler = torch.cuda.amp.GradScaler()
    args.precision = precision
    args.world_size = world
    return rt
