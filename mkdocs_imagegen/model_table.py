"""What each known image model can do, what it costs and when it goes away: the one table.

Each fact's source, and its date, is in the README's "Models" section. The questions asked of the
table (which entry a name means, whether a directive is possible, which fields a request carries)
are `models`'s.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

from .options import parse_size

# The date the table's lifecycle facts were checked.
AS_OF = "2026-12-01"
SQUARE = (1024, 1024)
_GPT_FIXED = ((1024, 1024), (1536, 1024), (1024, 1536))
_GPT_QUALITIES = ("low", "medium", "high", "auto")
_GPT_BACKGROUNDS = ("transparent", "opaque", "auto")


@dataclass(frozen=True)
class FreeSize:
    """A size rule instead of a list: any WIDTHxHEIGHT within these bounds."""

    multiple: int = 16
    max_side: int = 3840
    max_pixels: int = 3840 * 2160
    max_ratio: float = 3.0

    def accepts(self, width: int, height: int) -> bool:
        return (
            width % self.multiple == 0
            and height % self.multiple == 0
            and max(width, height) <= self.max_side
            and width * height <= self.max_pixels
            and max(width, height) / min(width, height) <= self.max_ratio
        )

    def nearest(self, width: int, height: int) -> tuple[int, int]:
        """A size the rule accepts, of the asked aspect as far as the rule allows, never smaller
        than asked where it can be (the crop then only ever shrinks)."""
        ratio = min(max(width / height, 1 / self.max_ratio), self.max_ratio)
        area = max(width * height, 1)
        w = math.sqrt(area * ratio)
        h = w / ratio
        scale = min(1.0, self.max_side / max(w, h), math.sqrt(self.max_pixels / (w * h)))
        w, h = w * scale, h * scale
        m = self.multiple

        def snap(v: float) -> int:
            return max(m, math.ceil(v / m) * m)

        sw, sh = snap(w), snap(h)
        while not self.accepts(sw, sh):  # rounding up went over a bound: step down
            if sw * sh > self.max_pixels or max(sw, sh) > self.max_side:
                sw, sh = (sw - m, sh) if sw >= sh else (sw, sh - m)
            elif sw / sh > self.max_ratio:
                sw -= m
            else:
                sh -= m
        return sw, sh

    def describe(self) -> str:
        w, h = _fit_pixels(self.max_side, self.max_pixels)
        return (
            f"any WIDTHxHEIGHT in multiples of {self.multiple}, aspect 1:{self.max_ratio:g} to "
            f"{self.max_ratio:g}:1, at most {w}x{h}"
        )


def _fit_pixels(side: int, pixels: int) -> tuple[int, int]:
    return side, pixels // side


@dataclass(frozen=True)
class Model:
    """One model's capabilities, prices and lifecycle."""

    name: str
    family: str  # "gpt-image", "dall-e-2" or "dall-e-3": decides the request's shape
    sizes: tuple[tuple[int, int], ...] = ()  # the sizes it takes, when it takes a list
    free_size: FreeSize | None = None  # or the rule, when it takes any size within bounds
    size_auto: bool = True
    qualities: tuple[str, ...] = _GPT_QUALITIES  # on /images/generations
    edit_qualities: tuple[str, ...] = _GPT_QUALITIES  # on /images/edits
    backgrounds: tuple[str, ...] = _GPT_BACKGROUNDS  # () when the field is not accepted
    output_format: bool = True  # output_format and output_compression
    moderation: bool = True  # on generations; the multipart edit schema has no moderation
    edits: bool = True
    max_inputs: int = 16
    input_fidelity: bool = False
    prompt_max: int = 32_000
    # quality -> "WxH" -> US dollars per image; a free-size model has the 1024x1024 price only and
    # scales it by pixel area (never below it).
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    shutdown: str | None = None  # at OpenAI, ISO date, as announced
    replacement: str | None = None
    lumenfall: bool = False  # Lumenfall's model list serves it (as of AS_OF)
    source: str = ""

    # -- sizes ---------------------------------------------------------------------------------
    def api_size(self, size: str) -> str:
        """The size to ask for: as written where the model takes it, else the nearest it takes
        (the answer is then cropped and resized to what was asked)."""
        dims = parse_size(size)
        if dims is None:
            return size
        if self.free_size is not None:
            if self.free_size.accepts(*dims):
                return size
            w, h = self.free_size.nearest(*dims)
            return f"{w}x{h}"
        if not self.sizes or dims in self.sizes:
            return size
        w, h = _closest_aspect(dims, self.sizes)
        return f"{w}x{h}"

    def describe_sizes(self) -> str:
        if self.free_size is not None:
            text = self.free_size.describe()
        else:
            text = ", ".join(f"{w}x{h}" for w, h in self.sizes)
        return text + (", auto" if self.size_auto else "")

    # -- prices --------------------------------------------------------------------------------
    def price(self, quality: str | None, size: str) -> float | None:
        """Dollars for one image of `size` (the size asked of the API) at `quality`; an unset or
        `auto` quality is priced at the dearest tier and `auto` size at the dearest size, so an
        estimate never undershoots."""
        if not self.prices:
            return None
        tiers = [self.prices[quality]] if quality in self.prices else list(self.prices.values())
        dims = parse_size(size)
        best = 0.0
        for table in tiers:
            if self.free_size is not None:
                base = table["1024x1024"]
                if dims is None:  # auto: priced as the largest standard size
                    dims = (1536, 1024)
                best = max(best, base * max(1.0, dims[0] * dims[1] / (SQUARE[0] * SQUARE[1])))
            elif dims is None:
                best = max(best, max(table.values()))
            else:
                key = f"{dims[0]}x{dims[1]}"
                best = max(best, table.get(key, max(table.values())))
        return round(best, 6)

    # -- lifecycle -----------------------------------------------------------------------------
    def retired(self, today: datetime.date | None = None) -> bool:
        if not self.shutdown:
            return False
        return datetime.date.fromisoformat(self.shutdown) <= (today or datetime.date.today())


def _closest_aspect(dims: tuple[int, int], sizes: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    target = math.log(dims[0] / dims[1])
    return min(sizes, key=lambda s: (abs(math.log(s[0] / s[1]) - target), -s[0] * s[1]))


def _gpt_prices(
    low: tuple[float, float], medium: tuple[float, float], high: tuple[float, float]
) -> dict[str, dict[str, float]]:
    def row(pair: tuple[float, float]) -> dict[str, float]:
        return {"1024x1024": pair[0], "1536x1024": pair[1], "1024x1536": pair[1]}

    return {"low": row(low), "medium": row(medium), "high": row(high)}


_OPENAI_PAGES = "OpenAI pricing and deprecations pages, read 2026-12-01"
_FREE = FreeSize()
_ASSUMED = (
    "named as a replacement on OpenAI's deprecations page; rules assumed from gpt-image-2; no price found"
)
_TO_2_6 = "gpt-image-2.6-sunburst or gpt-image-2.6-flare"


def _gpt_fixed(
    name: str,
    prices: dict[str, dict[str, float]],
    *,
    shutdown: str,
    replacement: str,
    input_fidelity: bool = True,
    lumenfall: bool = False,
) -> Model:
    """A gpt-image model of the three fixed sizes, announced to shut down at OpenAI."""
    return Model(
        name,
        "gpt-image",
        sizes=_GPT_FIXED,
        input_fidelity=input_fidelity,
        prices=prices,
        shutdown=shutdown,
        replacement=replacement,
        lumenfall=lumenfall,
        source=_OPENAI_PAGES,
    )


def _gpt_free(name: str, source: str, prices: dict[str, dict[str, float]] | None = None) -> Model:
    """A model of gpt-image-2's rules: any size within bounds, no transparent background."""
    return Model(
        name, "gpt-image", free_size=_FREE, backgrounds=("opaque", "auto"), prices=prices or {}, source=source
    )


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        _gpt_fixed(
            "gpt-image-1-mini",
            _gpt_prices((0.005, 0.006), (0.011, 0.015), (0.036, 0.052)),
            input_fidelity=False,
            shutdown="2026-12-01",
            replacement=_TO_2_6,
            lumenfall=True,
        ),
        _gpt_fixed(
            "gpt-image-1",
            _gpt_prices((0.011, 0.016), (0.042, 0.063), (0.167, 0.25)),
            shutdown="2026-10-23",
            replacement="gpt-image-2",
        ),
        *(  # one model under two names
            _gpt_fixed(
                name,
                _gpt_prices((0.009, 0.013), (0.034, 0.05), (0.133, 0.2)),
                shutdown="2026-12-01",
                replacement=_TO_2_6,
            )
            for name in ("gpt-image-1.5", "chatgpt-image-latest")
        ),
        _gpt_free(
            "gpt-image-2",
            _OPENAI_PAGES + "; sizes from the OpenAPI spec 2.3.0",
            {"low": {"1024x1024": 0.006}, "medium": {"1024x1024": 0.053}, "high": {"1024x1024": 0.211}},
        ),
        _gpt_free("gpt-image-2.6-sunburst", _ASSUMED),
        _gpt_free("gpt-image-2.6-flare", _ASSUMED),
        Model(
            "dall-e-3",
            "dall-e-3",
            sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
            size_auto=False,
            qualities=("standard", "hd"),
            edit_qualities=(),
            backgrounds=(),
            output_format=False,
            moderation=False,
            edits=False,
            max_inputs=0,
            prompt_max=4000,
            prices={
                "standard": {"1024x1024": 0.04, "1792x1024": 0.08, "1024x1792": 0.08},
                "hd": {"1024x1024": 0.08, "1792x1024": 0.12, "1024x1792": 0.12},
            },
            shutdown="2026-05-12",
            replacement="gpt-image-2",
            source=_OPENAI_PAGES + "; OpenAPI spec 2.3.0",
        ),
        Model(
            "dall-e-2",
            "dall-e-2",
            sizes=((256, 256), (512, 512), (1024, 1024)),
            size_auto=False,
            qualities=("standard",),
            edit_qualities=("standard",),
            backgrounds=(),
            output_format=False,
            moderation=False,
            max_inputs=1,
            prompt_max=1000,
            prices={"standard": {"256x256": 0.016, "512x512": 0.018, "1024x1024": 0.02}},
            shutdown="2026-05-12",
            replacement="gpt-image-2",
            source=_OPENAI_PAGES + "; OpenAPI spec 2.3.0",
        ),
    )
}
