"""Profile one row of the benchmark suite with torch.profiler: where does the time go?

    python benchmarks/profile_row.py --case 8,3,32,32->32 --row "diffaug RandomResizedCrop" [--backward] [--ops]

Prints the profiler's table (self CPU time per ATen op) and, with ``--ops``, how many ATen ops
one call dispatches (per-call overhead on small inputs is roughly that count times a few
microseconds).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite import _parse_cases  # noqa: E402  (this folder is on sys.path when run as a script)


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.counts[func._overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="8,3,32,32->32")
    parser.add_argument("--row", default="diffaug RandomResizedCrop", help="exact row name of the suite")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--backward", action="store_true", help="profile forward + backward")
    parser.add_argument("--ops", action="store_true", help="count the ATen ops of one call")
    parser.add_argument("--limit", type=int, default=25, help="table rows")
    args = parser.parse_args()

    case = _parse_cases(args.case)[0]
    rows, _ = case.rows(case, torch.device("cpu"), False)
    row = next((r for r in rows if r.name == args.row), None)
    if row is None:
        print(f"no row {args.row!r}; rows: {[r.name for r in rows]}", file=sys.stderr)
        return 2
    images = torch.rand(case.shape).requires_grad_(args.backward)

    def call() -> None:
        out = row.fn(images)
        if args.backward:
            out.sum().backward()

    for _ in range(5):
        call()
    if args.ops:
        counter = _CountOps()
        with counter:
            call()
        total = sum(counter.counts.values())
        print(f"{total} ATen ops per call: {dict(counter.counts.most_common(15))}")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.calls):
            call()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
