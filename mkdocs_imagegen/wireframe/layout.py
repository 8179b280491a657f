"""Fitting a placeholder's text into its image: wrap, shrink, ellipsize; measured, never drawn.

A face is handed in already loaded (see `wireframe._face`), so this module decides only where
text goes and at what size, whichever font Pillow could give.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class Face:
    """A font at one size plus a per-character advance cache.

    FreeType's getlength() reloads every glyph on every call (~70 us for a line), and
    wrapping measures many candidate lines; with Pillow's basic layout a string's width
    is exactly the sum of its characters' advances, so those are cached instead.
    """

    __slots__ = ("_advance", "font", "scalable", "size", "space", "step")

    def __init__(self, font: Font, size: int) -> None:
        self.font = font
        self.scalable = isinstance(self.font, ImageFont.FreeTypeFont)
        self.size = size if self.scalable else int(self.font.getbbox("Ay")[3])
        if isinstance(self.font, ImageFont.FreeTypeFont):
            ascent, descent = self.font.getmetrics()
            self.step = round((ascent + descent) * 1.12)  # baseline-to-baseline with leading
        else:
            self.step = self.size + 3
        self._advance: dict[str, float] = {}
        # The font's space is ~0.2 em, which hinting squeezes to 2 px at small sizes
        # ("rockycliff"); double it there so words stay apart.
        self.space = "  " if self.length(" ") < 0.25 * self.size else " "

    def length(self, text: str) -> float:
        advance = self._advance
        total = 0.0
        for ch in text:
            width = advance.get(ch)
            if width is None:
                width = advance[ch] = self.font.getlength(ch)
            total += width
        return total


def fit_prefix(text: str, face: Face, max_width: float, suffix: str = "") -> str:
    """The longest prefix of ``text`` that fits (with ``suffix``) in ``max_width`` (binary search)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if face.length(text[:mid] + suffix) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def wrap(text: str, face: Face, max_width: float, max_lines: int) -> tuple[list[str], bool]:
    """Greedy word wrap; words longer than a line are broken. Stops early at ``max_lines``.

    Returns (lines, truncated). Stopping early keeps a 5,000-character prompt cheap.
    """
    if max_lines <= 0:
        return [], bool(text)
    lines: list[str] = []
    current, current_w = "", 0.0
    sep = face.space
    space = face.length(sep)
    words = text.split(" ")
    for index, word in enumerate(words):
        word_w = face.length(word)
        if current and current_w + space + word_w <= max_width:
            current, current_w = current + sep + word, current_w + space + word_w
            continue
        if not current and word_w <= max_width:
            current, current_w = word, word_w
            continue
        if current:
            lines.append(current)
            if len(lines) == max_lines:
                return lines, True
        while word_w > max_width:  # a URL, a hash, a long compound...
            head = fit_prefix(word, face, max_width) or word[:1]
            lines.append(head)
            word = word[len(head) :]
            word_w = face.length(word)
            if len(lines) == max_lines:
                return lines, bool(word) or index + 1 < len(words)
        current, current_w = word, word_w
    if current:
        lines.append(current)
    return lines, False


def ellipsize(line: str, face: Face, max_width: float) -> str:
    """End ``line`` with an ellipsis, dropping characters until it fits."""
    mark = "\u2026" if face.scalable else "..."
    if face.length(line + mark) <= max_width:
        return line + mark
    return fit_prefix(line, face, max_width, mark).rstrip() + mark


def lines_fitting(text: str, face: Face, max_width: float, max_lines: int) -> list[str]:
    """Wrap and, if the text does not fit in ``max_lines``, truncate with an ellipsis."""
    lines, truncated = wrap(text, face, max_width, max_lines)
    if truncated and lines:
        lines[-1] = ellipsize(lines[-1], face, max_width)
    return lines


class Block:
    """One run of wrapped lines in one face."""

    __slots__ = ("face", "lines")

    def __init__(self, face: Face, lines: list[str]) -> None:
        self.face = face
        self.lines = lines

    @property
    def height(self) -> int:
        return self.face.step * len(self.lines)


def prompt_block(
    text: str, faces: Callable[[int], Face], max_width: float, max_height: float, start: int, smallest: int
) -> Block | None:
    """The prompt at the largest size (from ``start`` down) at which it fits, else truncated."""
    size = start
    while True:
        face = faces(size)
        max_lines = int(max_height // face.step)
        last = size <= smallest or not face.scalable
        # Cheap pre-check: skip sizes at which the text clearly cannot fit.
        capacity = max_lines * max_width / (0.4 * size)
        if last or len(text) <= capacity:
            lines, truncated = wrap(text, face, max_width, max_lines)
            if not truncated or last:
                if not lines:
                    return None
                if truncated:
                    lines[-1] = ellipsize(lines[-1], face, max_width)
                return Block(face, lines)
        size = max(smallest, int(size * 0.86))


def fit_stack(
    prompt: str,
    label: str,
    small: Face,
    faces: Callable[[int], Face],
    room: tuple[int, int],
    *,
    gap: int,
    size_line: bool,
    prompt_sizes: tuple[int, int],
) -> tuple[Block, Block | None]:
    """(label, prompt) for a centred stack in `room` (width, height) above an optional size line.

    The label, in the `small` face, takes at most three lines; the prompt is as large as
    `prompt_sizes` (start, smallest) allow, and takes the label's room when it needs it.
    """
    avail_w, avail_h = room
    label_lines: list[str] = []
    if label:
        rows = int((avail_h - (small.step + gap if size_line else 0)) // small.step)
        label_lines = lines_fitting(label, small, avail_w, min(3, rows - 1))
    label_block = Block(small, label_lines)

    def prompt_room() -> float:
        used = label_block.height + (small.step if size_line else 0)
        used += gap * ((1 if label_block.lines else 0) + (1 if size_line else 0))
        return avail_h - used

    start, smallest = prompt_sizes
    body = prompt_block(prompt, faces, avail_w, prompt_room(), start, smallest) if prompt else None
    while prompt and body is None and label_block.lines:
        # The prompt matters more than the label: give it the label's room, a line at a time.
        label_block.lines = label_block.lines[:1] if len(label_block.lines) > 1 else []
        body = prompt_block(prompt, faces, avail_w, prompt_room(), start, smallest)
    return label_block, body
