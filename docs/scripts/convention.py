"""Draw docs/images/convention.png: pixel edges and centres, a box, normalised coordinates, and
where ``affine_grid`` samples the input for a crop of that box.

Everything plotted is computed by diffaug (``boxes_to_theta``, ``crop``) and by PyTorch's own
``affine_grid``; the script only draws it. Run: ``python docs/scripts/convention.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

import diffaug.functional as daf

OUT = Path(__file__).resolve().parents[1] / "images" / "convention.png"

H, W = 4, 6  # input canvas
BOX = torch.tensor([1.0, 0.5, 4.5, 3.0], dtype=torch.float64)  # x1, y1, x2, y2 (pixels, exclusive ends)
OUT_SIZE = (2, 3)  # crop output (h, w)


def main() -> Path:
    theta = daf.boxes_to_theta(BOX, (H, W))
    # Where grid_sample reads the input for each output pixel: affine_grid's normalised points, in pixels.
    grid = F.affine_grid(theta.unsqueeze(0), [1, 1, *OUT_SIZE], align_corners=False)[0]
    sample_x = (grid[..., 0] + 1) * W / 2
    sample_y = (grid[..., 1] + 1) * H / 2
    image = torch.arange(H * W, dtype=torch.float64).reshape(1, H, W)
    cropped = daf.crop(image, BOX, OUT_SIZE)

    fig, (ax, ax_out) = plt.subplots(1, 2, figsize=(11, 4.3), gridspec_kw={"width_ratios": [1.6, 1]})
    ax.imshow(image[0], cmap="Greys", extent=(0, W, H, 0), vmin=-8, vmax=H * W + 8, interpolation="nearest")
    for x in range(W + 1):
        ax.axvline(x, color="0.35", lw=0.8)
    for y in range(H + 1):
        ax.axhline(y, color="0.35", lw=0.8)
    cy, cx = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    ax.scatter(cx.flatten(), cy.flatten(), s=14, color="tab:blue", zorder=3, label="pixel centres (j + 0.5, i + 0.5)")
    x1, y1, x2, y2 = BOX.tolist()
    ax.add_patch(
        Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="tab:red", lw=2.2, zorder=4, label=f"box {tuple(BOX.tolist())}")
    )
    ax.scatter(
        sample_x.flatten(),
        sample_y.flatten(),
        marker="x",
        s=60,
        color="tab:red",
        zorder=5,
        label=f"where a {OUT_SIZE[0]}x{OUT_SIZE[1]} crop samples",
    )
    ax.set_xlim(-0.3, W + 0.3)
    ax.set_ylim(H + 0.3, -0.3)
    ax.set_xticks(range(W + 1))
    ax.set_yticks(range(H + 1))
    ax.set_xlabel("x (pixels): pixel j covers [j, j+1)")
    ax.set_ylabel("y (pixels)")
    top = ax.secondary_xaxis("top", functions=(lambda x: 2 * x / W - 1, lambda u: (u + 1) * W / 2))
    top.set_xticks([-1, -0.5, 0, 0.5, 1])
    top.set_xlabel("u = 2x / W - 1 (normalised, align_corners=False: ±1 on the outer edges)")
    right = ax.secondary_yaxis("right", functions=(lambda y: 2 * y / H - 1, lambda v: (v + 1) * H / 2))
    right.set_yticks([-1, 0, 1])
    right.set_ylabel("v = 2y / H - 1")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.36), ncol=3, fontsize=8, frameon=False)
    t = theta.tolist()
    ax.set_title(
        f"input {H}x{W}, theta = [[{t[0][0]:.3g}, 0, {t[0][2]:.3g}], [0, {t[1][1]:.3g}, {t[1][2]:.3g}]]",
        fontsize=10,
        pad=34,
    )

    ax_out.imshow(
        cropped[0], cmap="Greys", vmin=-8, vmax=H * W + 8, extent=(0, OUT_SIZE[1], OUT_SIZE[0], 0), interpolation="nearest"
    )
    for i in range(OUT_SIZE[0]):
        for j in range(OUT_SIZE[1]):
            ax_out.text(j + 0.5, i + 0.5, f"{cropped[0, i, j]:.2f}", ha="center", va="center", color="tab:red", fontsize=10)
    ax_out.set_xticks(range(OUT_SIZE[1] + 1))
    ax_out.set_yticks(range(OUT_SIZE[0] + 1))
    ax_out.set_title("daf.crop(image, box, (2, 3)): bilinear values\n(input pixel value = 6 i + j)", fontsize=10)
    for i in range(H):
        for j in range(W):
            ax.text(j + 0.5, i + 0.78, f"{int(image[0, i, j])}", ha="center", va="center", fontsize=7, color="0.2")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    plt.close(fig)
    return OUT


if __name__ == "__main__":
    print(f"wrote {main()}")
