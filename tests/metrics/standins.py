"""Stand-in generators: the G contract (nz, num_classes, conditional; G(z, y) in [-1, 1])
without gankit.models."""
import torch
from torch import nn


class MemorizingG(nn.Module):
    """Returns real training images: of the requested class when conditional, else any
    (or only `only_classes`). A stand-in for a perfect generator, picked by the noise."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, conditional: bool = True,
                 only_classes: tuple[int, ...] | None = None, nz: int = 8):
        super().__init__()
        self.nz, self.conditional = nz, conditional
        self.num_classes = 10 if conditional else 0
        keep = torch.ones(len(labels), dtype=torch.bool)
        if only_classes is not None:
            keep = torch.isin(labels, torch.tensor(only_classes))
        self.register_buffer("bank", images[keep].float() / 127.5 - 1)   # (N, 1, 28, 28)
        self.register_buffer("bank_labels", labels[keep])
        self.dummy = nn.Parameter(torch.zeros(()))   # generate() asks for a parameter's device

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        pick = (z[:, 0].abs() * 1e6).long()
        if y is None:
            return self.bank[pick % len(self.bank)]
        out = torch.empty(len(z), *self.bank.shape[1:])
        for k in y.unique():
            pool = self.bank[self.bank_labels == k]
            sel = y == k
            out[sel] = pool[pick[sel] % len(pool)]
        return out


class BlobG(nn.Module):
    """A bad generator: smooth random blobs, nothing like digits."""

    def __init__(self, conditional: bool = False, nz: int = 16):
        super().__init__()
        self.nz, self.conditional, self.num_classes = nz, conditional, 10 if conditional else 0
        self.fc = nn.Linear(nz, 7 * 7)
        g = torch.Generator().manual_seed(0)      # the same weights for every instance
        torch.nn.init.normal_(self.fc.weight, std=0.5, generator=g)
        torch.nn.init.normal_(self.fc.bias, std=0.5, generator=g)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = self.fc(z).view(-1, 1, 7, 7)
        return torch.tanh(nn.functional.interpolate(x, size=(28, 28), mode="bilinear"))
