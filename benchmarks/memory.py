"""Resident-memory readings for the benchmark scripts (Linux ``/proc``; each method is timed in
its own process, so the peak belongs to that method alone)."""

from __future__ import annotations

import pathlib

__all__ = ["status_kib", "reset_peak"]


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB, e.g. ``"VmRSS"`` (resident) or ``"VmHWM"`` (peak)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak() -> None:
    """Reset the peak resident set size (``VmHWM``) to the current one."""
    # Writing 5 to clear_refs is the kernel's documented way to reset VmHWM.
    pathlib.Path("/proc/self/clear_refs").write_text("5")
