"""Which score locates a crop-scale upper bound near 1: the measurement behind the search's polish.

For the target ``RandomResizedCrop(48, scale=(0.1, 1.0))`` (seed 1 sources), six independent draws
of the polish's samples (``32 x 256`` candidates with common random numbers, ``4 x`` as many target
draws) score upper bounds ``h`` in ``0.88, 0.89, ..., 1.0`` at the true lower bound, with the W2
quantile loss of the gradient phase and with the Anderson-Darling distance the polish uses. Prints
each draw's best ``h`` per score and the mean score curves (minus each draw's minimum).

Run: ``python docs/scripts/search_polish_scores.py`` (about a minute on a quiet 2-core CPU).
"""

from __future__ import annotations

import torch

from diffaug.distributions import Range
from diffaug.search import QuantileMatcher, SearchConfig, features, texture_bank
from diffaug.search.search import _anderson_darling, _apply, _columns_of, _pipeline, _select
from diffaug.transforms.crop import RandomResizedCrop

LOW, HIGH, SEED, DRAWS = 0.1, 1.0, 1, 6


def main() -> None:
    torch.set_num_threads(1)
    config = SearchConfig(target_scale=(LOW, HIGH), seed=SEED)
    sources, columns = _select(config, texture_bank(8, 64, 6.0, torch.Generator().manual_seed(SEED)))
    hidden = _pipeline(config, config.target_scale, None, learnable=False)
    crop = _pipeline(config, (0.08, 1.0), None, learnable=True)[0]
    assert isinstance(crop, RandomResizedCrop) and crop.scale.raw is not None
    grid = torch.linspace(0.88, 1.0, 13).tolist()
    count = 32 * config.batch
    curves: dict[str, list[list[float]]] = {"W2": [], "Anderson-Darling": []}
    with torch.no_grad():
        for draw in range(DRAWS):
            generator = torch.Generator().manual_seed(SEED + 1 + 100 * draw)
            chunks = []
            for _ in range(8):
                pick = torch.randint(0, config.sources, (count // 2,), generator=generator)
                chunks.append(_columns_of(features(_apply(hidden, sources[pick], generator)), columns))
            target = torch.cat(chunks)
            matcher, reference = QuantileMatcher(target, count), target.T.contiguous().sort(dim=1).values
            images = sources[torch.randint(0, config.sources, (count,), generator=generator)]
            w2, ad = [], []
            for high in grid:
                crop.scale.raw.copy_(Range((LOW, high), domain=crop.scale.domain, learnable=True).raw)  # type: ignore[arg-type]
                noise = torch.Generator().manual_seed(SEED + 2 + 100 * draw)  # the same for every h
                out = _columns_of(features(_apply([crop], images, noise)), columns)
                w2.append(float(matcher(out)))
                ad.append(float(_anderson_darling(out, reference)))
            curves["W2"].append(w2)
            curves["Anderson-Darling"].append(ad)
    print("h:", " ".join(f"{h:.2f}" for h in grid))
    for name, values in curves.items():
        table = torch.tensor(values)
        best = [grid[int(i)] for i in table.argmin(1)]
        mean = (table - table.min(1, keepdim=True).values).mean(0) * 1e4
        print(f"{name}: best h per draw {', '.join(f'{h:.2f}' for h in best)}")
        print(f"  mean excess x 1e4: {' '.join(f'{v:.2f}' for v in mean)}")


if __name__ == "__main__":
    main()
