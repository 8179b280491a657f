"""`prompt_template`: the site's Jinja2 template around each prompt, bounded in size and in time.

A template is code the site runs at build time on every directive, so it runs in Jinja2's
sandbox with what one operation may build bounded too, streamed so its output is capped while
it is made, and traced line by line so a runaway loop ends as a page's error, not a hung build.
"""

from __future__ import annotations

import sys
import threading
import time
from functools import lru_cache
from types import FrameType
from typing import Any

from jinja2 import TemplateError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from .. import options
from ..options import OptionError
from .directive import PageInfo

MAX_TEMPLATE_OUTPUT = 4 * options.MAX_PROMPT_CHARS
_MAX_SEQUENCE = 100_000  # what one `*`, `+` or range() in a template may build


class _BoundedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox, with the size of what one operation can build bounded too.

    The sandbox already refuses attribute tricks and caps range() at 100,000 items; a string
    multiplied by four billion, or `**` on big numbers, would still take the machine's memory.
    """

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError("'**' with an exponent over 64 is not allowed in prompt_template")
        seqs = (str, list, tuple)
        too_long = (
            operator == "*"
            and any(
                isinstance(seq, seqs) and isinstance(times, int) and len(seq) * max(times, 0) > _MAX_SEQUENCE
                for seq, times in ((left, right), (right, left))
            )
        ) or (
            operator == "+"
            and isinstance(left, seqs)
            and isinstance(right, seqs)
            and len(left) + len(right) > _MAX_SEQUENCE
        )
        if too_long:
            raise SecurityError("a value built in prompt_template is too long")
        return super().call_binop(context, operator, left, right)


MAX_TEMPLATE_STEPS = 1_000_000  # lines a rendering may run: ample for a prompt, a second or so
MAX_TEMPLATE_SECONDS = 2.0
_budget = threading.local()
_runaway: dict[str, str] = {}


def _trace_calls(frame: FrameType, event: str, arg: Any) -> Any:
    """Trace only a template's own code (compiled under the name <template>), line by line."""
    return _trace_lines if frame.f_code.co_filename == "<template>" else None


def _trace_lines(frame: FrameType, event: str, arg: Any) -> Any:
    _budget.steps += 1
    if _budget.steps % 4096 == 0 and (
        _budget.steps > MAX_TEMPLATE_STEPS or time.monotonic() > _budget.deadline
    ):
        raise SecurityError(
            f"prompt_template ran longer than allowed ({MAX_TEMPLATE_STEPS} steps or "
            f"{MAX_TEMPLATE_SECONDS:g} s) for this directive"
        )
    return _trace_lines


_jinja = _BoundedSandbox(autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=64)
def compile_template(source: str) -> Any:
    """Compile a prompt template; a template that never uses `{{ prompt }}` is refused."""
    if "prompt" not in meta.find_undeclared_variables(_jinja.parse(source)):
        raise TemplateError(
            "it never uses {{ prompt }}, so every image would get the same prompt; "
            'write it around the prompt, such as "{{ prompt }}, flat vector illustration"'
        )
    return _jinja.from_string(source)


def apply_template(template: str | None, prompt: str, page: PageInfo) -> str:
    """The prompt inside the site's template; any failure of the template is the directive's error."""
    if not template:
        return prompt
    if template in _runaway:  # it ran out of time once: no other page gets to wait for it again
        raise OptionError(_runaway[template])
    page_vars = {"title": page.title, "meta": page.meta, "src_uri": page.src_uri}
    pieces: list[str] = []
    size = 0
    _budget.steps, _budget.deadline = 0, time.monotonic() + MAX_TEMPLATE_SECONDS
    previous = sys.gettrace()
    if previous is None:  # under a debugger or coverage, theirs stays and ours is skipped
        sys.settrace(_trace_calls)
    try:
        # Streamed, so output is bounded while it is made, not after.
        for piece in compile_template(template).generate(
            prompt=prompt, page=page_vars, title=page.title, meta=page.meta
        ):
            size += len(piece)
            if size > MAX_TEMPLATE_OUTPUT:
                raise OptionError(
                    f"prompt_template made more than {MAX_TEMPLATE_OUTPUT} characters for this directive"
                )
            pieces.append(piece)
    except OptionError:
        raise
    except SecurityError as exc:
        message = f"prompt_template failed: {exc}"
        if "ran longer" in str(exc):
            _runaway[template] = message
        raise OptionError(message) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        # An include without a loader is a TypeError; every failure is the template's, not a crash.
        raise OptionError(f"prompt_template failed: {type(exc).__name__}: {exc}") from None
    except MemoryError:
        raise OptionError("prompt_template failed: it ran out of memory") from None
    finally:
        if previous is None:
            sys.settrace(None)
    return options.check_prompt("".join(pieces))
