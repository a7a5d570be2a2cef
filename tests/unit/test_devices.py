"""A step's device: the CPU flushes denormal floats to zero, in every thread of torch's pool."""

from __future__ import annotations

import subprocess
import sys

import torch

CODE = (
    "import torch\n"
    "torch.set_num_threads(2)\n"  # two OpenMP threads even on one core (a pinned test worker)
    "from pipeline.core.devices import resolve_device\n"
    "if {resolve}: resolve_device('cpu')\n"
    "tiny = torch.full((4_000_000,), 1e-39)\n"  # large enough to be split across the threads
    "print(int((tiny * 1.0 != 0).sum()), int((tiny + 0.0 != 0).sum()), torch.get_num_threads())"
)


def count_denormals_left(resolve: bool) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", CODE.format(resolve=resolve)], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_denormals_are_flushed_in_every_thread_once_the_device_is_resolved():
    supported = torch.set_flush_denormal(True)  # x86 with SSE3 and AArch64; elsewhere a no-op
    torch.set_flush_denormal(False)
    assert count_denormals_left(resolve=True) == (["0", "0", "2"] if supported else ["4000000", "4000000", "2"])
    assert count_denormals_left(resolve=False) == ["4000000", "4000000", "2"]  # without it they survive
