"""The spending guard: every paid request is reserved before it leaves, refunded if not billed."""

from __future__ import annotations

import collections
import threading

from ..pricing import format_cost

CAP_IMAGES = "max_new_images"
CAP_COST = "max_cost"


class SpendingGuard:
    """Counts paid requests, and their estimated cost, against the caps of one build or command run.

    `reserve` is called when a paid request is about to leave, so refunds of failed requests come
    back before later jobs are turned away. With a money cap (`max_cost`, US dollars), an image
    whose cost cannot be estimated counts as over it: an unknown price is never a free one.
    """

    def __init__(self, max_images: int | None, max_cost: float | None = None) -> None:
        self.max_images = max_images  # None: no cap (the caller planned what it submits)
        self.max_cost = max_cost  # None: no money cap
        self.reserved = 0
        self.reserved_cost = 0.0
        self.refused: collections.Counter[str] = collections.Counter()  # reason -> jobs turned away
        self._lock = threading.Lock()

    def reserve(self, cost: float | None = None) -> str | None:
        """Count one paid image of estimated `cost`; None when allowed, else the cap that refuses it."""
        with self._lock:
            if self.max_images is not None and self.reserved >= self.max_images:
                self.refused[CAP_IMAGES] += 1
                return CAP_IMAGES
            over = cost is None or self.reserved_cost + cost > (self.max_cost or 0.0) + 1e-9
            if self.max_cost is not None and over:
                self.refused[CAP_COST] += 1
                return CAP_COST
            self.reserved += 1
            self.reserved_cost += cost or 0.0
            return None

    def refund(self, cost: float | None = None) -> None:
        """The API answered with an error: nothing was billed, so the slot (and its cost) come back."""
        with self._lock:
            self.reserved -= 1
            self.reserved_cost = max(0.0, self.reserved_cost - (cost or 0.0))

    def held_back(self) -> int:
        """Images the caps turned away: placeholders by choice, not failures."""
        return sum(self.refused.values())

    def report(self) -> str | None:
        """What the guard held back, and how to lift it; None when it held nothing back."""
        parts = []
        skipped = self.refused[CAP_IMAGES]
        if skipped:
            parts.append(
                f"{skipped} image(s) were not generated because this build reached "
                f"max_new_images ({self.max_images}); they show placeholders. Raise max_new_images in "
                "mkdocs.yml, or run `mkdocs-imagegen generate --max-new-images N`, to generate them"
            )
        over = self.refused[CAP_COST]
        if over:
            parts.append(
                f"{over} image(s) were not generated because they would take this build over max_cost "
                f"({format_cost(self.max_cost)}; an image whose cost cannot be estimated counts as over "
                "it); they show placeholders. Raise max_cost in mkdocs.yml to generate them"
            )
        return "\n".join(parts) or None
