"""keep_freed_memory: freed blocks stay in the process, so the tensors a training step allocates
and frees are not faulted in again at the next step (minor page faults counted by getrusage over
five steps of a small convolutional net, in a fresh interpreter each)."""

import platform
import subprocess
import sys

import pytest

from weakseg.engine.memory import keep_freed_memory

PROBE = """
import resource, sys, torch
from weakseg.engine.memory import keep_freed_memory
torch.set_num_threads(1)
if sys.argv[1] == "kept":
    assert keep_freed_memory()
conv = torch.nn.Conv2d(64, 64, 3, padding=1)
net = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3, padding=1))
def step():
    net(torch.randn(4, 64, 64, 64)).square().mean().backward()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc"
)


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return int(out.split()[-1])


@glibc
def test_kept_memory_is_not_faulted_in_again():
    system, kept = faults("system"), faults("kept")
    # system: the 4 MiB activations and gradients are mmapped and unmapped at every step
    # (measured ~17,000 faults against ~2,000 kept)
    assert system > 5 * 1024
    assert kept < system / 4


@glibc
def test_reports_that_it_applied():
    assert keep_freed_memory() is True
