"""The named statistics of D's logits, shared by the training step and the held-out pass."""
import torch

from gankit.training.stats import D_STATS, LOGIT_STATS, logit_stats, named


def test_logit_stats_by_hand():
    real = torch.tensor([2.0, -1.0, 0.5, 3.0])      # 3 of 4 called real
    fake = torch.tensor([-2.0, 1.0, 0.0, -0.5])     # 2 of 4 called fake (0 is not < 0)
    s = logit_stats(torch.tensor(0.7), real, fake)
    got = named(LOGIT_STATS, s, "train")
    assert list(got) == [f"train/{k}" for k in LOGIT_STATS]
    assert got["train/d_loss"] == torch.tensor(0.7).item()
    assert got["train/acc_real"] == 0.75 and got["train/acc_fake"] == 0.5
    assert abs(got["train/d_real"] - torch.sigmoid(real).mean().item()) < 1e-7
    assert abs(got["train/d_fake"] - torch.sigmoid(fake).mean().item()) < 1e-7


def test_logit_stats_keep_no_graph():
    real = torch.randn(8, requires_grad=True)
    s = logit_stats((real ** 2).mean(), real, real * 2)
    assert not s.requires_grad and s.shape == (len(LOGIT_STATS),)
    assert D_STATS[:len(LOGIT_STATS)] == LOGIT_STATS
