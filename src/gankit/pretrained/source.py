"""One loader for the commands that use a trained generator: a run folder or a pretrained model."""
from __future__ import annotations

from gankit.errors import UserError
from gankit.pretrained.store import load_pretrained
from gankit.training.runs import Run, load_run


def check_source(run: str | None, pretrained: str | None) -> None:
    """Exactly one of a run folder and --pretrained NAME, or a UserError saying so."""
    if bool(run) == bool(pretrained):
        raise UserError("give a run folder or --pretrained NAME (e.g. --pretrained default), "
                        "not both or neither")


def load_source(run: str | None, pretrained: str | None, which: str = "best",
                device: str = "cpu") -> Run:
    """The run folder's checkpoint `which`, or the pretrained model `pretrained`."""
    check_source(run, pretrained)
    if pretrained:
        return load_pretrained(pretrained, device=device)
    return load_run(run, which=which, device=device)
