"""The Jinja sandbox SQL templates render in, wired to the render budget
(engine/sql/sqlbudget.py): its operators, calls and filters are charged, its loops and
``~`` joins instrumented, and a failed render turned into a located TemplateError."""

from __future__ import annotations

import io
from types import CodeType
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.nodes
import jinja2.sandbox
import jinja2.visitor
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context

from engine.core.errors import TemplateError
from engine.sql import sqlbudget

_LOOP, _CONCAT = "cronwright_loop", "cronwright_concat"


class Sandbox(jinja2.sandbox.SandboxedEnvironment):
    """Jinja's sandbox, with every operator that can multiply, every call and every
    filter charged to the render budget (engine/sql/sqlbudget.py)."""

    intercepted_binops = sqlbudget.INTERCEPTED

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return sqlbudget.binop(operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not self.is_safe_callable(obj):
            raise jinja2.exceptions.SecurityError(f"{obj!r} is not safely callable")
        return sqlbudget.call(obj, args, kwargs, lambda: context.call(obj, *args, **kwargs))


def budgeted(env: Sandbox) -> Sandbox:
    """``env`` with every filter charged, joins charged, and no ``lipsum``. Compile with
    it unoptimised: Jinja's constant folding would run filters while compiling."""
    env.optimized = False
    env.filters = {
        name: sqlbudget.guarded(f, lead=1 if hasattr(f, "jinja_pass_arg") else 0)
        for name, f in env.filters.items()
    }
    env.filters |= {_LOOP: sqlbudget.loop, _CONCAT: sqlbudget.concat}
    env.globals.pop("lipsum", None)  # lorem ipsum: no statement needs it
    env.concat = sqlbudget.concat  # type: ignore[method-assign]
    return env


class _Tracking(CodeGenerator):
    """Jinja's code generator, also noting the names a template reads from its context:
    what ``jinja2.meta.find_undeclared_variables`` finds, without a second pass."""

    def __init__(self, env: jinja2.Environment) -> None:
        super().__init__(env, None, "<template>", optimized=False)
        self.reads: set[str] = set()

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        for action, param in frame.symbols.loads.values():
            if action == "resolve" and param not in self.environment.globals:
                self.reads.add(param)


def compile_ast(env: Sandbox, ast: jinja2.nodes.Template) -> tuple[CodeType, frozenset[str]]:
    """The code compiled from the template's (instrumented) tree, and the names it reads.
    Raises TemplateSyntaxError (an unknown filter, say)."""
    gen = _Tracking(env)
    gen.visit(ast)
    assert isinstance(gen.stream, io.StringIO)
    return compile(gen.stream.getvalue(), "<template>", "exec"), frozenset(gen.reads)


def from_code(env: Sandbox, code: CodeType) -> jinja2.Template:
    """The template of compiled ``code``, in ``env``."""
    return env.template_class.from_code(env, code, env.make_globals(None))


def instrument(ast: jinja2.nodes.Template) -> jinja2.nodes.Template:
    """The parsed template with its loops and joins charged (see _Instrument)."""
    out = _Instrument().visit(ast)
    assert isinstance(out, jinja2.nodes.Template)
    return out


class _Instrument(jinja2.visitor.NodeTransformer):
    """Every loop's items and every ``~`` pass through the budget: a ``for`` costs a
    step an iteration, and ``a ~ b`` is charged what it joins."""

    def visit_For(self, node: jinja2.nodes.For) -> jinja2.nodes.Node:
        self.generic_visit(node)
        node.iter = jinja2.nodes.Filter(node.iter, _LOOP, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: jinja2.nodes.Concat) -> jinja2.nodes.Node:
        self.generic_visit(node)
        items = jinja2.nodes.List(node.nodes, lineno=node.lineno)
        return jinja2.nodes.Filter(items, _CONCAT, [], [], None, None, lineno=node.lineno)


def failure(name: str, exc: Exception) -> TemplateError:
    """A render's failure as a TemplateError naming the template and the line."""
    if isinstance(exc, jinja2.UndefinedError | jinja2.exceptions.SecurityError):
        return TemplateError(f"{name}: {exc.message}")
    at = _at(name, exc)
    if isinstance(exc, sqlbudget.Exhausted):
        return TemplateError(f"{at}render stopped: {exc}", hint=sqlbudget.HINT)
    if isinstance(exc, RecursionError):
        return TemplateError(
            f"{at}render stopped: recursion deeper than Python allows",
            hint="give a macro that calls itself a condition that ends it",
        )
    return TemplateError(f"{at}{type(exc).__name__}: {exc}", hint="fix the template at that line")


def _at(name: str, exc: BaseException) -> str:
    """``name: line N: `` for the last template line in the traceback."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{name}: line {line}: " if line is not None else f"{name}: "
