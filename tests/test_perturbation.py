"""The one-ulp perturbation switch used by the perturbed test run."""

import pytest
import torch
from torch import nn

from atf_lite.perturbation import PERTURB_ENV_VAR, perturb_ulp_, perturbation_seed


def test_seed_from_environment(monkeypatch):
    monkeypatch.delenv(PERTURB_ENV_VAR, raising=False)
    assert perturbation_seed() is None
    for off in ("", "0", " 0 "):
        monkeypatch.setenv(PERTURB_ENV_VAR, off)
        assert perturbation_seed() is None
    monkeypatch.setenv(PERTURB_ENV_VAR, "3")
    assert perturbation_seed() == 3
    for bad in ("yes", "-1", "1.5"):
        monkeypatch.setenv(PERTURB_ENV_VAR, bad)
        with pytest.raises(ValueError, match=PERTURB_ENV_VAR):
            perturbation_seed()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_moves_each_entry_by_at_most_one_ulp(dtype):
    net = nn.Sequential(nn.Linear(30, 20, dtype=dtype), nn.ReLU(), nn.Linear(20, 1, dtype=dtype))
    before = [p.detach().clone() for p in net.parameters()]
    perturb_ulp_(net, seed=1)
    moved = 0
    for old, new in zip(before, net.parameters()):
        new = new.detach()
        up = torch.nextafter(old, torch.full_like(old, float("inf")))
        down = torch.nextafter(old, torch.full_like(old, float("-inf")))
        assert bool(((new == old) | (new == up) | (new == down)).all())
        moved += int((new != old).sum())
    total = sum(p.numel() for p in before)
    assert 0.5 * total < moved < 0.8 * total  # about two thirds of the entries move


def test_reproducible_and_seed_dependent():
    def perturbed(seed):
        torch.manual_seed(0)
        net = nn.Linear(50, 40)
        return perturb_ulp_(net, seed).weight.detach().clone()

    assert torch.equal(perturbed(1), perturbed(1))
    assert not torch.equal(perturbed(1), perturbed(2))


def test_bad_arguments():
    with pytest.raises(TypeError, match="module"):
        perturb_ulp_(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="seed"):
        perturb_ulp_(nn.Linear(2, 2), -1)


def test_switch_moves_every_mlp_and_separates_cache_entries(monkeypatch):
    from atf_lite.cache import cache_key
    from atf_lite.networks.mlp import mlp

    monkeypatch.delenv(PERTURB_ENV_VAR, raising=False)
    plain = mlp(8, 16, 2, seed=0)
    key = cache_key("run", {"a": 1})
    monkeypatch.setenv(PERTURB_ENV_VAR, "1")
    moved = mlp(8, 16, 2, seed=0)
    assert cache_key("run", {"a": 1}) != key
    for old, new in zip(plain.parameters(), moved.parameters()):
        gap = (new - old).abs()
        ulp = torch.nextafter(old.abs(), torch.full_like(old, float("inf"))) - old.abs()
        assert bool((gap <= ulp).all())
    weight_moved = any(bool((a != b).any()) for a, b in zip(plain.parameters(), moved.parameters()))
    assert weight_moved
