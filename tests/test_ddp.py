"""Learnable augmentation under DistributedDataParallel: 2 CPU processes, gloo.

What diffaug claims (docs: GPU training step), beyond what DDP's all-reduce guarantees: each
rank's draws come from its own generator (seeded per rank, they differ), a rank's draws and the
gradients they imply are a function of that generator and the data alone (replayed in one
process they come out the same), and every learnable piece of an augmentation is a parameter
DDP sees, so the synchronised gradient of a range or a probability is the average over ranks
of what each rank's own draws imply.
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

STEPS = 3
WORLD = 2
AUGMENTATION = ("crop.scale.raw", "crop.ratio.raw", "rotate.degrees.raw", "rotate.p_logit")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.crop = da.RandomResizedCrop(8, scale=(0.2, 0.9), learnable=True)
        self.rotate = da.RandomRotation(20.0, interpolation="bilinear", p=0.6, learnable=True, temperature=1.0)
        self.head = nn.Linear(3 * 8 * 8, 2)

    def forward(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.crop.make_params(images, generator=generator)
        crops = self.crop.transform(images, params)
        out = self.rotate.transform(crops, self.rotate.make_params(crops, generator=generator))
        return self.head(out.flatten(1)), params.boxes.detach()


def _step(model: nn.Module, rank: int, generators: tuple[torch.Generator, torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward + backward on rank ``rank``'s data and draws; returns the loss and the drawn boxes."""
    augment, data = generators
    images = torch.rand(6, 3, 16, 16, generator=data)
    labels = torch.randint(0, 2, (6,), generator=data)
    logits, boxes = model(images, augment)
    loss = nn.functional.cross_entropy(logits, labels)
    loss.backward()
    return loss.detach(), boxes


def _generators(rank: int) -> tuple[torch.Generator, torch.Generator]:
    # Per-rank augmentation draws and per-rank data shards, as a real run seeds them.
    return torch.Generator().manual_seed(1000 + rank), torch.Generator().manual_seed(rank)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)  # same initial parameters on every rank
    model = nn.parallel.DistributedDataParallel(Net())
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    generators = _generators(rank)
    first: dict[str, torch.Tensor] = {}
    boxes = []
    for step in range(STEPS):
        optimiser.zero_grad()
        _, drawn = _step(model, rank, generators)
        if step == 0:  # the gradients after DDP's all-reduce, before any update
            first = {name: p.grad.detach().clone() for name, p in model.module.named_parameters() if name in AUGMENTATION}
        optimiser.step()
        boxes.append(drawn)
    state = {name: p.detach().clone() for name, p in model.module.named_parameters()}
    torch.save({"first_grads": first, "params": state, "boxes": torch.stack(boxes)}, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alone(rank: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Rank ``rank``'s first step replayed in this process, without DDP: its own gradients and boxes."""
    torch.manual_seed(0)
    net = Net()
    _, boxes = _step(net, rank, _generators(rank))
    return {name: p.grad.detach().clone() for name, p in net.named_parameters() if name in AUGMENTATION}, boxes


def test_ddp_averages_what_each_ranks_draws_imply(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    # fork: the children reuse the parent's imports (spawn would import torch twice more).
    mp.start_processes(_worker, args=(WORLD, _free_port(), str(tmp_path)), nprocs=WORLD, join=True, start_method="fork")
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    alone = [_alone(rank) for rank in range(WORLD)]

    for rank in range(WORLD):
        # A rank's draws are a function of its generator: replayed alone, the same boxes.
        torch.testing.assert_close(alone[rank][1], results[rank]["boxes"][0], rtol=0, atol=0)
    # The ranks drew differently, so their own gradients differ ...
    assert not torch.allclose(results[0]["boxes"], results[1]["boxes"])
    for name in AUGMENTATION:
        own = [alone[rank][0][name] for rank in range(WORLD)]
        assert not torch.allclose(own[0], own[1]), f"{name}: both ranks imply the same gradient"
        # ... and the synchronised gradient of every range and probability is their average.
        for rank in range(WORLD):
            torch.testing.assert_close(results[rank]["first_grads"][name], sum(own) / WORLD, rtol=1e-5, atol=1e-7)

    torch.manual_seed(0)
    start = {name: p.detach() for name, p in Net().named_parameters()}
    for name in AUGMENTATION:
        a, b = results[0]["params"][name], results[1]["params"][name]
        assert torch.equal(a, b), f"{name} differs between ranks"
        assert not torch.equal(a, start[name]), f"{name} did not train"
