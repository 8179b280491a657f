"""The generation engine, as small parts that read top to bottom (see `core` for the flow).

`jobs` (one job per key), `tiers` (where images are kept, and claims), `loop` (the runner),
`retry` (when to ask again), `spending` (the caps), `finish` (the one step every stored image
passes) and `core` (the engine that strings them together). Nothing here knows a concrete
provider or renderer: `runtime.open_engine` wires those in.
"""

from __future__ import annotations

from .core import Engine
from .fallback import Renderer
from .jobs import Job, Outcome, Stats, Status
from .retry import RetryPolicy
from .spending import SpendingGuard
from .tiers import Tier

__all__ = ["Engine", "Job", "Outcome", "Renderer", "RetryPolicy", "SpendingGuard", "Stats", "Status", "Tier"]
