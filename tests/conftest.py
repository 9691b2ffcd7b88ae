"""Shared test settings: hypothesis profiles sized for a 2-core CI machine."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

from diffaug import functional as daf

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Tests run two workers on two cores; more threads per worker only fight each other.
torch.set_num_threads(1)


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the real diffaug.functional.apply_colour (the one colour pass), made by any caller."""
    calls: list[int] = []
    real = daf.apply_colour

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(daf, "apply_colour", counting)
    return calls
