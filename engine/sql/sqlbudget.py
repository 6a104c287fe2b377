"""The render budget: what one render of a SQL template may spend, so that no template
(at validation, in ``render`` or in a consumer) can hang or fill memory.

A template shapes one statement; it needs a few loops over its params, not millions.
Each render gets, in a context variable, a :class:`RenderBudget` of

- ``MAX_STEPS`` steps: every loop iteration, call (a macro, a method, ``range``) and
  filter application costs one;
- ``MAX_SIZE`` units of size: every value an operator (``*``, ``**``, ``%``, ``+``,
  ``~``), a call or a filter makes costs its size (characters of a string, items of a
  list, counted through nested lists, digits of a number), and so does all text joined
  (the output, and the bodies of macros and ``set`` blocks). What an operation would
  make is estimated *before* it runs, from the sizes of its inputs, so ``"x" *
  3000000000`` stops before it allocates.

Exceeding either, or recursing deeper than Python allows, raises :class:`Exhausted`,
which the renderer reports with the template's line. The hooks act only inside a render:
called while Jinja compiles (it evaluates constant expressions), they refuse, and the
expression is left for the render.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any

MAX_STEPS = 100_000
MAX_SIZE = 10_000_000
#: Python prints no integer longer than this (sys.get_int_max_str_digits()).
MAX_DIGITS = 4300

HINT = "a template shapes one statement: loop over params, and leave bulk work to the SQL"


class Exhausted(Exception):
    """The render went over its budget (not a TemplateError: the renderer adds the line)."""


class RenderBudget:
    def __init__(self) -> None:
        self.steps = 0
        self.size = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Exhausted(
                f"took more than {MAX_STEPS} steps (loop iterations, calls and filters)"
            )

    def spend(self, size: int, what: str = "built") -> None:
        """Charge ``size`` units; ``what`` says whether they were built or would be."""
        self.size += size
        if self.size > MAX_SIZE:
            raise Exhausted(
                f"{what} more than {MAX_SIZE} characters or items in all"
                f" (text joined and values computed)"
            )

    def afford(self, estimate: int) -> None:
        """Refuse an operation that would make more than is left, before it runs."""
        if self.size + estimate > MAX_SIZE:
            raise Exhausted(
                f"would build a value of about {estimate} characters or items, over the"
                f" {MAX_SIZE} a render may build"
            )


_current: contextvars.ContextVar[RenderBudget] = contextvars.ContextVar("cronwright_budget")


def current() -> RenderBudget:
    """The running render's budget; outside a render (Jinja folding constants while it
    compiles), an error, so that nothing is evaluated without one."""
    try:
        return _current.get()
    except LookupError:
        raise Exhausted("not inside a render") from None


def start() -> contextvars.Token[RenderBudget]:
    return _current.set(RenderBudget())


def stop(token: contextvars.Token[RenderBudget]) -> None:
    _current.reset(token)


def size_of(value: Any, budget: RenderBudget | None = None) -> int:
    """Characters, items (through nested containers) or digits; the length of anything
    else sized (a range), else 1. Counting a container's items costs one size unit each
    when ``budget`` is given."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return digits(value)
    if not isinstance(value, list | tuple | set | frozenset | dict):
        return len(value) + 1 if isinstance(value, Sized) else 1
    items: Iterable[Any] = (
        (x for kv in value.items() for x in kv) if isinstance(value, dict) else value
    )
    total = 1
    for item in items:
        if budget is not None:
            budget.spend(1, "examined")
        total += size_of(item, budget)
        if total > MAX_SIZE:
            break  # enough to refuse it
    return total


def digits(value: int) -> int:
    """About how many decimal digits (from the bit length: no conversion)."""
    return max(1, math.ceil(abs(value).bit_length() * 0.30103))


def _int(value: Any) -> int:
    return abs(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _estimate(args: Iterable[Any], kwargs: Mapping[str, Any], budget: RenderBudget) -> int:
    """What a call may make from these inputs: (first + 1) x (1 + the rest), where an
    integer counts as its value (a width, a count). Generous for most calls; tight for
    the ones that multiply (``center(n)``, ``replace('', s)``, ``join``)."""
    named = [v for k, v in kwargs.items() if not k.startswith("_")]  # not _loop_vars
    sizes = [max(size_of(a, budget), _int(a), widths(a)) for a in [*args, *named]]
    if not sizes:
        return 1
    return (sizes[0] + 1) * (1 + sum(sizes[1:]))


def guarded(func: Callable[..., Any], *, lead: int = 0) -> Callable[..., Any]:
    """``func`` (a filter) charged one step, refused when its estimate is over what is
    left, and charged the size of what it returns. The first ``lead`` arguments are
    Jinja's (context or environment), not the filter's."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        own = [_materialised(a, budget) for a in args[lead:]]
        budget.afford(_estimate(own, kwargs, budget))
        result = func(*args[:lead], *own, **kwargs)
        budget.spend(size_of(result, budget))
        return result

    return run


def _materialised(value: Any, budget: RenderBudget) -> Any:
    """A generator or iterator (the result of ``map``, ``select``) read into a list, each
    item charged, so what it holds is known before a filter joins it."""
    if isinstance(value, Iterator):
        out = []
        for item in value:
            budget.step()
            out.append(item)
        return out
    return value


def call(
    func: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], run: Callable[[], Any]
) -> Any:
    """A call from a template (a macro, a method, a global) made by ``run``, charged
    like a filter; a method's object (a string's, for ``format``) is its first input."""
    budget = current()
    budget.step()
    owner = getattr(getattr(func, "__wrapped__", func), "__self__", None)
    inputs = [owner, *args] if isinstance(owner, str | list | dict | tuple) else list(args)
    budget.afford(_estimate(inputs, kwargs, budget))
    result = run()
    budget.spend(size_of(result, budget))
    return result


_PRINTF = r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?"  # compiled on first use


def widths(value: Any) -> int:
    """The widths and precisions a format string asks for, printf's (``%9s``) and
    ``str.format``'s (``{:>9}``), summed: what formatting with it may add."""
    if not isinstance(value, str) or ("%" not in value and "{" not in value):
        return 0
    total = sum(int(n) for m in re.finditer(_PRINTF, value) for n in m.groups() if n and n != "*")
    try:
        specs = [spec for _, field, spec, _ in string.Formatter().parse(value) if field is not None]
    except ValueError:  # not a str.format string; formatting with it fails anyway
        specs = []
    return total + sum(int(n) for spec in specs if spec for n in re.findall(r"\d+", spec))


def binop(operator: str, left: Any, right: Any) -> Any:
    """``*``, ``**``, ``%`` and ``+``: estimated from the operands, then done."""
    budget = current()
    a, b = size_of(left, budget), size_of(right, budget)
    if operator == "*" and isinstance(left, int) != isinstance(right, int):
        estimate = a * _int(right) if isinstance(right, int) else b * _int(left)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        estimate = _int(right) * a
    elif operator == "%" and isinstance(left, str):
        stars = sum(_int(v) for v in (right if isinstance(right, tuple) else (right,)))
        estimate = a + b + widths(left) + (stars if "*" in left else 0)
    else:
        estimate = a + b
    if isinstance(left, int) and isinstance(right, int) and estimate > MAX_DIGITS:
        raise Exhausted(f"would make a number of about {estimate} digits (at most {MAX_DIGITS})")
    budget.afford(estimate)
    result = _OPERATORS[operator](left, right)
    budget.spend(size_of(result, budget))
    return result


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "*": lambda a, b: a * b,
    "**": lambda a, b: a**b,
    "%": lambda a, b: a % b,
    "+": lambda a, b: a + b,
}
INTERCEPTED = frozenset(_OPERATORS)


def concat(parts: Iterable[Any]) -> str:
    """Join text (a render's output, a macro's or block's body), charging its length as
    it comes, so that a join too long for the budget stops before it is made."""
    budget = current()
    chunks = []
    for part in parts:
        text = str(part)
        budget.spend(len(text), "joined")
        chunks.append(text)
    return "".join(chunks)


def loop(items: Iterable[Any]) -> Iterator[Any]:
    """A ``{% for %}`` loop's items, one step each."""
    budget = current()
    for item in items:
        budget.step()
        yield item
