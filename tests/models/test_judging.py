"""`judging(D)`: BatchNorm on batch statistics for diagnostics, nothing left changed; and
`evaluating(G)`: eval mode inside the block, the previous mode after it, even on an error."""
import pytest
import torch
from torch import nn

from gankit.models import evaluating, judging


class BNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(x))


def test_batch_statistics_used_and_buffers_restored():
    net = BNNet().train()
    # Running statistics that fit neither batch below: what training on separate real and
    # fake batches leaves behind.
    net.bn.running_mean.fill_(0.0)
    net.bn.running_var.fill_(1.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.tensor([[10.0], [12.0]])
    with judging(net):
        out = net(x)
        assert not net.training and net.bn.training and not net.drop.training
    # Batch statistics (mean 11, biased var 1) and no dropout: exactly -1, +1 (to BN's eps).
    torch.testing.assert_close(out, torch.tensor([[-1.0], [1.0]]), atol=1e-4, rtol=0)
    assert net.training                           # mode restored
    for k, v in net.state_dict().items():         # running stats and counter untouched
        assert torch.equal(v, before[k]), k
    net.eval()
    with judging(net):
        pass
    assert not net.training
    # eval mode proper uses the running stats: these inputs would be far from 0
    assert net(x).min() > 9


@pytest.mark.parametrize("mode", [True, False])
def test_evaluating_restores_the_mode_even_on_error(mode: bool):
    net = BNNet().train(mode)
    with evaluating(net) as inside:
        assert inside is net and not net.training and not net.bn.training
    assert net.training is mode and net.bn.training is mode
    with pytest.raises(RuntimeError, match="boom"):
        with evaluating(net):
            raise RuntimeError("boom")
    assert net.training is mode and net.bn.training is mode
