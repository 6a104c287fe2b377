"""SQL templates: Jinja shapes the statement, every value becomes a ``$n`` bind parameter.

``{{ window_start }}`` renders as ``$1`` and the datetime travels as a parameter; the
same value used twice reuses its number. Identifiers are the one thing spliced into the
text, and only through the ``ident`` filter, which double-quotes them
(``{{ params.table | ident }}`` -> ``"analytics"."event_aggregates"``). Undefined
variables are errors, so a typo fails at validation, not at 03:00. Templates render in
Jinja's sandbox, and validation rejects any reach for an attribute or key that starts
with ``_`` (``__class__``, ``__globals__``), so a template cannot climb out to Python.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.nodes

from engine.core.errors import TemplateError
from engine.core.model import Job
from engine.sql import sqlbudget, sqlcache, sqlsandbox

#: What the runtime provides to every template. Validation rejects anything else.
RUNTIME_VARIABLES = frozenset(
    {"slot", "window_start", "window_end", "settle_seconds", "rerun", "params", "job"}
)


class SqlIdent(str):
    """A quoted identifier: the only text a template may splice in."""


def quote_ident(value: object) -> SqlIdent:
    """Quote ``schema.table`` style names part by part, doubling embedded quotes."""
    if not isinstance(value, str) or not value:
        raise TemplateError(f"ident filter needs a non-empty string, got {value!r}")
    parts = value.split(".")
    return SqlIdent(".".join('"' + p.replace('"', '""') + '"' for p in parts))


_binds: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("cronwright_binds")


def _finalize(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        # finalize sees the Undefined object itself; make it fail as StrictUndefined should.
        str(value)
    if isinstance(value, SqlIdent):
        return str(value)
    binds = _binds.get()
    for i, seen in enumerate(binds):
        if type(seen) is type(value) and seen == value:
            return f"${i + 1}"
    binds.append(value)
    return f"${len(binds)}"


def environment(loader: jinja2.BaseLoader | None = None) -> sqlsandbox.Sandbox:
    env = sqlsandbox.Sandbox(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ident"] = quote_ident
    return sqlsandbox.budgeted(env)


@dataclass(frozen=True)
class Rendered:
    sql: str
    args: tuple[Any, ...]


def split_statements(rendered: Rendered) -> list[Rendered]:
    """The rendered template's statements (each ends with ``;``; quotes and comments are
    respected), each with its binds renumbered from ``$1``: asyncpg binds parameters per
    statement."""
    return [
        Rendered(sql=sql, args=tuple(rendered.args[n - 1] for n in numbers))
        for sql, numbers in _split(rendered.sql)
    ]


@functools.lru_cache(maxsize=256)
def _split(sql: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    # A template renders the same text for every slot (values are binds), so the split
    # is done once per text, not once per run; tuples, since the result is shared.
    from engine.sql import sqlsplit  # not needed to validate: the CLI starts faster

    return tuple(
        (text, tuple(numbers)) for text, numbers in map(sqlsplit.renumber, sqlsplit.split(sql))
    )


def context_for(job: Job, slot: datetime, *, rerun: bool = False) -> dict[str, Any]:
    """The variables a template sees: all derived from the slot, never the clock.
    ``rerun`` is True when the run must recompute the slot from the source as it stands
    and replace what earlier runs wrote (``cronwright run --rerun``); a plain Python
    bool, so ``{% if rerun %}`` shapes the statement and never becomes a bind."""
    try:
        start, end = job.bounds(slot)
    except OverflowError:
        raise TemplateError(
            f"{job.template}: the window of slot {slot.isoformat()} lies outside the calendar",
            hint="use a slot between 1970 and 9999",
        ) from None
    return {
        "slot": slot,
        "window_start": start,
        "window_end": end,
        "settle_seconds": job.settle_seconds,
        "rerun": rerun,
        "params": dict(job.params),
        "job": {"name": job.name, "type": job.type},
    }


@functools.cache
def _shared() -> sqlsandbox.Sandbox:
    return environment()


# A template is parsed once and compiled once per text, for validation and every render
# after it: binds and the budget live in context variables, so sharing is safe.
@functools.lru_cache(maxsize=2048)
def _parsed(source: str) -> jinja2.nodes.Template:
    """The syntax tree, instrumented for the budget (shared: never change it)."""
    return sqlsandbox.instrument(_shared().parse(source))


@dataclass(frozen=True)
class _Compiled:
    template: jinja2.Template
    reads: frozenset[str]  # the variables it reads
    private: tuple[tuple[int, str], ...]  # (line, name) of its reaches for `_` names


#: Compiled code depends on the text of these modules besides the template's.
_CACHE = sqlcache.Cache(*(Path(str(m.__file__)) for m in (sqlbudget, sqlsandbox)), Path(__file__))


@functools.lru_cache(maxsize=2048)
def _compiled(source: str) -> _Compiled:
    """The compiled template, from the on-disk cache (engine/sql/sqlcache.py) when an
    earlier process compiled the same text. Raises TemplateSyntaxError."""
    entry = _CACHE.load(source)
    if entry is None:
        ast = _parsed(source)
        code, reads = sqlsandbox.compile_ast(_shared(), ast)
        entry = (code, reads, tuple(_private_lookups(ast)))
        _CACHE.store(source, entry)
    code, reads, private = entry
    return _Compiled(sqlsandbox.from_code(_shared(), code), reads, private)


def render_source(source: str, context: Mapping[str, Any], *, name: str = "<template>") -> Rendered:
    """The template rendered under the render budget. Every failure is a TemplateError
    naming the template (and the line, for all but undefined names and the sandbox)."""
    try:
        template = _compiled(source).template
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{name}:{exc.lineno}: {exc.message}") from exc
    token, budget = _binds.set([]), sqlbudget.start()
    try:
        sql = template.render(**context)
        args = tuple(_binds.get())
    except TemplateError:  # the ident filter's
        raise
    except Exception as exc:  # the budget, recursion, or the template's own (1/0, 'a' + 1)
        raise sqlsandbox.failure(name, exc) from exc
    finally:
        sqlbudget.stop(budget)
        _binds.reset(token)
    return Rendered(sql=sql.strip() + "\n", args=args)


def render(job: Job, source: str, slot: datetime, *, rerun: bool = False) -> Rendered:
    return render_source(source, context_for(job, slot, rerun=rerun), name=job.template or job.name)


def shown(job: Job, source: str, slot: datetime) -> list[tuple[str, dict[str, str]]]:
    """Each statement of ``job``'s template for ``slot``, with its bind parameters as
    text (``{"$1": "2026-10-31 09:00:00+00:00"}``): what ``cronwright render`` prints and
    the console's slot page shows."""
    return [
        (stmt.sql, {f"${n}": str(v) for n, v in enumerate(stmt.args, 1)})
        for stmt in split_statements(render(job, source, slot))
    ]


def variables_read(source: str) -> frozenset[str]:
    """The runtime variables the template reads (none for a template that does not
    compile: check_source reports that)."""
    try:
        return _compiled(source).reads & RUNTIME_VARIABLES
    except jinja2.TemplateSyntaxError:
        return frozenset()


def check_source(source: str) -> list[tuple[str, str]]:
    """(problem, fix) for what a template gets wrong on its own: syntax (an unknown
    filter too), private attributes, and variables the runtime lacks."""
    try:
        compiled = _compiled(source)
    except jinja2.TemplateSyntaxError as exc:
        return [(f"line {exc.lineno}: {exc.message}", "fix the Jinja syntax")]
    unknown = sorted(compiled.reads - RUNTIME_VARIABLES)
    provided = ", ".join(sorted(RUNTIME_VARIABLES))
    return [
        *(
            (
                f"line {line}: reaches for '{attr}', which the template sandbox forbids",
                "use only the runtime's variables and their public fields",
            )
            for line, attr in compiled.private
        ),
        *(
            (
                f"uses undefined variable '{name}' (the runtime provides {provided})",
                "use only the runtime's variables",
            )
            for name in unknown
        ),
    ]


def _private_lookups(ast: jinja2.nodes.Template) -> list[tuple[int, str]]:
    """``x.__class__``, ``x['__globals__']``, ``x|attr('_y')``: names starting with ``_``,
    found without rendering, so a branch the sample slot skips is checked too."""
    found = []
    for node in ast.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem, jinja2.nodes.Filter)):
        if isinstance(node, jinja2.nodes.Getattr):
            name: object = node.attr
        elif isinstance(node, jinja2.nodes.Getitem):
            name = node.arg.value if isinstance(node.arg, jinja2.nodes.Const) else None
        elif (
            isinstance(node, jinja2.nodes.Filter)
            and node.name == "attr"
            and node.args
            and isinstance(node.args[0], jinja2.nodes.Const)
        ):
            name = node.args[0].value
        else:
            continue
        if isinstance(name, str) and name.startswith("_"):
            found.append((node.lineno, name))
    return sorted(set(found))


#: The variables whose values change from one slot to the next.
SLOT_VARIABLES = ("slot", "window_start", "window_end")


class _SlotValue:
    """Stands for one slot variable's value in a :class:`Prepared` render."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SlotValue) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class Prepared:
    """A job's template rendered once, with a stand-in for each slot value: each run only
    puts its values in (a render costs ~30 us, this ~2 us). Only for a template whose
    text cannot depend on the slot (:func:`prepare`)."""

    sql: str
    args: tuple[Any, ...]

    def fill(self, job: Job, slot: datetime) -> Rendered:
        start, end = job.bounds(slot)
        values = {"slot": slot, "window_start": start, "window_end": end}
        return Rendered(
            sql=self.sql,
            args=tuple(values[a.name] if type(a) is _SlotValue else a for a in self.args),
        )


def prepare(job: Job, source: str, *, rerun: bool = False) -> Prepared | None:
    """The template rendered once for every slot of ``job``, or None when its text could
    depend on the slot: when a slot variable appears anywhere but alone in ``{{ }}`` (a
    condition, a filter, an attribute, an assignment, a loop). Alone in ``{{ }}``, a
    slot value only ever becomes a bind. Equal slot values get a ``$n`` each here where a
    full render shares one: the same values reach the same places."""
    try:
        ast = _parsed(source)
    except jinja2.TemplateSyntaxError:
        return None
    alone = {
        id(node)
        for output in ast.find_all(jinja2.nodes.Output)
        for node in output.nodes
        if isinstance(node, jinja2.nodes.Name) and node.name in SLOT_VARIABLES
    }
    if any(
        node.name in SLOT_VARIABLES and id(node) not in alone
        for node in ast.find_all(jinja2.nodes.Name)
    ):
        return None
    context = context_for(job, datetime(2000, 1, 1, tzinfo=UTC), rerun=rerun)
    context.update({name: _SlotValue(name) for name in SLOT_VARIABLES})
    rendered = render_source(source, context, name=job.template or job.name)
    return Prepared(sql=rendered.sql, args=rendered.args)
