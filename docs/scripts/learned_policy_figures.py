"""The figure of the policies page's learned policy: docs/images/policy_learned.png.

A ``diffaug.search.Policy`` over ``all_ops()`` (one sub-policy, one stage, 14 candidates) learns,
by Adam on a pixel loss, to reproduce photos made 40 % brighter: a target only the Brightness
candidate can reach. Left: the choice probabilities before, after 30 and after 150 Adam steps.
Right: one call of the policy exported after 30 steps (``policy.export()``, no parameters) on
eight copies of a crop of scikit-image's astronaut photo, each sample's drawn operation written
above it. Run:
``python docs/scripts/learned_policy_figures.py`` (under a minute on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from skimage import data

from diffaug.search import Policy, all_ops

IMAGES = Path(__file__).resolve().parents[1] / "images"


def photos(size: int = 64) -> torch.Tensor:
    """Sixteen crops of the astronaut photo, ``(16, 3, size, size)`` float in ``[0, 1]``."""
    array = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    crops = [array[:, top : top + 256, left : left + 256] for top in (0, 128, 256) for left in (0, 128, 256)]
    batch = torch.nn.functional.interpolate(torch.stack(crops), size=(size, size), mode="area")
    return batch.repeat(2, 1, 1, 1)[:16]


def main() -> None:
    torch.manual_seed(0)
    images = photos()
    target = (1.4 * images).clamp(0, 1)
    policy = Policy(all_ops(), num_subpolicies=1, depth=1, temperature=1.0).train()
    stage = policy.subpolicies[0][0]
    before = stage.probabilities()
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.05)
    for step in range(150):
        optimizer.zero_grad()
        (policy(images) - target).square().mean().backward()
        optimizer.step()
        if step == 29:
            early, plain = stage.probabilities(), policy.export()  # half-way through learning: several ops left
    after = stage.probabilities()

    names = list(all_ops())
    fig = plt.figure(figsize=(13, 3.6))
    grid = fig.add_gridspec(2, 6, width_ratios=[3.2, 1, 1, 1, 1, 0.01])
    bars = fig.add_subplot(grid[:, 0])
    positions = torch.arange(len(names)).float()
    bars.barh(positions - 0.27, before.numpy(), height=0.27, label="before", color="#bbbbbb")
    bars.barh(positions, early.numpy(), height=0.27, label="after 30 steps (exported, right)", color="#90b8e0")
    bars.barh(positions + 0.27, after.numpy(), height=0.27, label="after 150 steps", color="#3070b0")
    bars.set_yticks(positions.tolist(), names, fontsize=7)
    bars.invert_yaxis()
    bars.set_xlabel("choice probability", fontsize=8)
    bars.legend(fontsize=7, loc="lower right")
    bars.set_title("target: the photos 40 % brighter", fontsize=8)

    batch = images[4:5].expand(8, -1, -1, -1)
    with torch.no_grad():
        params = plain.make_params(batch, generator=torch.Generator().manual_seed(1))
        out = plain.transform(batch, params)
    chosen = params.weights[0].argmax(-1)
    for index in range(8):
        ax = fig.add_subplot(grid[index // 4, 1 + index % 4])
        ax.imshow(out[index].clamp(0, 1).permute(1, 2, 0).numpy())
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(names[int(chosen[index])], fontsize=7)
    title = "A policy over every operation learns its choice; export() draws each sample's op from the learned probabilities"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGES / "policy_learned.png", dpi=72)
    plt.close(fig)
    brightness = names.index("Brightness")
    print("Brightness probability", round(float(before[brightness]), 3), "->", round(float(after[brightness]), 3))


if __name__ == "__main__":
    main()
