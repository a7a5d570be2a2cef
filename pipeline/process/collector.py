"""The garbage collector of a step process: off while the step starts, then on with what it built frozen.

A full collection walks every object the collector tracks, and a step's start-up makes 400,000 of them
(torch, MLflow, SQLAlchemy, matplotlib), which live until the process ends. With the collector on, a
step walks them in several full collections as they grow (benchmarks/step_overhead.py measures it as
`bare_import_gc_s`; docs/speed.md has the figures). The process entries
(pipeline/__main__.py, pipeline/search/__main__.py) pause the collector first thing and, once the step's
modules are imported, `resume_frozen` moves everything alive to the permanent generation (gc.freeze) and
turns the collector back on for what the step allocates from then on. Garbage cycles
made during start-up stay until the process ends: made once, so they never grow.
"""

from __future__ import annotations

import gc


def pause() -> None:
    """Collector off: for a process's start-up only (its process entry)."""
    gc.disable()


def resume_frozen() -> None:
    """Freeze what is alive and turn the collector back on, once, in a process that paused it; a no-op
    in any other (the tests, or a driver calling a step in its own process)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
