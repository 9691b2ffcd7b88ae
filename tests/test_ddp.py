"""Learnable augmentation under DistributedDataParallel: 2 CPU processes, gloo.

Augmentation ranges are ordinary parameters, so DDP averages their gradients and they stay
identical on every rank; the random draws come from a per-rank generator and differ.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import diffaug as da

STEPS = 4


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.crop = da.RandomResizedCrop(8, scale=(0.2, 0.9), learnable=True)
        self.rotate = da.RandomRotation(20.0, p=0.6, learnable=True, temperature=1.0)
        self.head = nn.Linear(3 * 8 * 8, 2)

    def forward(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.crop.make_params(images, generator=generator)
        crops = self.crop.transform(images, params)
        out = self.rotate.transform(crops, self.rotate.make_params(crops, generator))
        return self.head(out.flatten(1)), params.boxes.detach()


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)  # same initial parameters on every rank
    model = nn.parallel.DistributedDataParallel(Net())
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(1000 + rank)  # per-rank random draws
    data = torch.Generator().manual_seed(rank)
    boxes = []
    for _ in range(STEPS):
        images = torch.rand(6, 3, 16, 16, generator=data)
        labels = torch.randint(0, 2, (6,), generator=data)
        logits, drawn = model(images, generator)
        loss = nn.functional.cross_entropy(logits, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        boxes.append(drawn)
    state = {name: p.detach().clone() for name, p in model.module.named_parameters()}
    torch.save({"params": state, "boxes": torch.stack(boxes)}, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_keeps_augmentation_parameters_in_sync(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    # fork: the children reuse the parent's imports (spawn would import torch twice more).
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork")
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    torch.manual_seed(0)
    start = {name: p.detach() for name, p in Net().named_parameters()}
    for name in ("crop.scale.raw", "crop.ratio.raw", "rotate.degrees.raw", "rotate.p_logit"):
        a, b = results[0]["params"][name], results[1]["params"][name]
        assert torch.equal(a, b), f"{name} differs between ranks"
        assert not torch.equal(a, start[name]), f"{name} did not train"
    # The draws differ per rank (seeded per rank).
    assert not torch.allclose(results[0]["boxes"], results[1]["boxes"])
