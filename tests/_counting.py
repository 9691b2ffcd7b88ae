"""Test helpers that count real kernel calls without changing them."""

import torch
from torch.overrides import TorchFunctionMode


class CountGridSample(TorchFunctionMode):
    """Counts real grid_sample calls (the call itself goes through unchanged)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.nn.functional.grid_sample:
            self.count += 1
        return func(*args, **(kwargs or {}))
