"""The spending guard: every paid request is reserved before it leaves, refunded if not billed."""

from __future__ import annotations

import collections
import threading

CAP_IMAGES = "max_new_images"


class SpendingGuard:
    """Counts paid requests against the caps of one build or one command run.

    `reserve` is called when a paid request is about to leave, so refunds of failed requests come
    back before later jobs are turned away. A money cap (`max_cost`) belongs here too: `reserve`
    would take the request's estimated cost and refuse with its own reason.
    """

    def __init__(self, max_images: int | None) -> None:
        self.max_images = max_images  # None: no cap (the caller planned what it submits)
        self.reserved = 0
        self.refused: collections.Counter[str] = collections.Counter()  # reason -> jobs turned away
        self._lock = threading.Lock()

    def reserve(self) -> str | None:
        """Count one paid image; return None when allowed, else the cap that refuses it."""
        with self._lock:
            if self.max_images is not None and self.reserved >= self.max_images:
                self.refused[CAP_IMAGES] += 1
                return CAP_IMAGES
            self.reserved += 1
            return None

    def refund(self) -> None:
        """The API answered with an error: nothing was billed, so the slot comes back."""
        with self._lock:
            self.reserved -= 1

    def held_back(self) -> int:
        """Images the caps turned away: placeholders by choice, not failures."""
        return sum(self.refused.values())

    def report(self) -> str | None:
        """What the guard held back, and how to lift it; None when it held nothing back."""
        skipped = self.refused[CAP_IMAGES]
        if not skipped:
            return None
        return (
            f"{skipped} image(s) were not generated because this build reached "
            f"max_new_images ({self.max_images}); they show placeholders. Raise max_new_images in "
            "mkdocs.yml, or run `mkdocs-imagegen generate --max-new-images N`, to generate them"
        )
