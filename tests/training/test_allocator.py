"""cpu_allocator: `keep` stops the page faults of a step's freed-and-asked-again activations.

Each case runs in a fresh process: the setting is process-wide and cannot be undone."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gankit.config import resolve
from gankit.training import allocator
from gankit.training.validate import validate

# Report 004's DCGAN forward and backward at batch 128 in bf16, as training runs it: prints
# whether the setting was applied and the median page faults of 10 steps after a warm-up (the
# median: a step that grows the heap once faults in new pages under either setting).
SCRIPT = """
import resource, sys, torch
from gankit.config import resolve
from gankit.models import build_models
from gankit.training import allocator
print(allocator.apply(sys.argv[1]))
torch.manual_seed(0)
G, D = build_models(resolve("dcgan-r004").model, (1, 28, 28), 0)
def steps(n):
    for _ in range(n):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = D(G(torch.randn(128, G.nz))).float().mean()
        loss.backward()
steps(3)
per_step = []
for _ in range(10):
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    steps(1)
    per_step.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(sorted(per_step)[5])
"""

glibc = pytest.mark.skipif(allocator._mallopt() is None,
                           reason="the C library here is not glibc: `keep` changes nothing")


def faults(name: str) -> tuple[bool, float]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, name], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", float(out[1])


@glibc
@pytest.mark.slow
def test_keep_serves_a_steady_step_from_the_heap():
    applied, kept = faults("keep")
    not_applied, system = faults("system")
    assert applied and not not_applied
    # kept: a step in the steady state is served from the heap (0 faults in every run seen).
    # glibc's defaults give the memory a step frees at the top of the heap back to the kernel
    # and fault it in again later, but when depends on its dynamic thresholds and on what runs
    # beside (medians of 0 and 3,514 seen in three runs; means of 69 to 3,800), so only the
    # order is pinned on that side
    assert kept < 50
    assert kept <= system


def test_the_setting_is_a_checked_choice():
    with pytest.raises(Exception, match="cpu_allocator='mine' is not valid; choose one of: "
                                        "keep, system"):
        validate(resolve("default", {"cpu_allocator": "mine"}))
