"""Mutants of a SQL query: small edits that usually change its meaning.

A test suite of databases is only as good as the wrong queries it tells apart from the gold.
``mutate_query`` makes those wrong queries the way a model gets SQL wrong: a neighbouring column,
operator, literal, aggregate or join type; a dropped condition, DISTINCT or ORDER BY; another
LIMIT, GROUP BY key or set operation. ``synth.py`` keeps the synthesized databases that tell the
most mutants apart from the gold (Zhong, Yu and Klein 2020, "Semantic Evaluation for Text-to-SQL
with Distilled Test Suites"); ``benchmarks/mutation_detection.py`` measures how many non-equivalent
mutants those databases catch.

Each edit is applied to a copy of the sqlglot tree and rendered back as SQLite. Only mutants whose
text differs from the original (and from its sqlglot rendering) are returned, one per distinct
text. At most ``max_per_kind`` edit sites per kind are used, chosen with ``random.Random(seed)``,
which also chooses among alternatives (which column, which operator); the same seed gives the same
mutants. Some mutants are equivalent to the gold (``x > 5`` -> ``x >= 5`` on integer data without 5s
is not, but on other data it may be): telling which are is the benchmark's job, not this module's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from rl_sql.sql.schema import Bindings, Schema, bind_columns, parse_query

MUTANT_KINDS: tuple[str, ...] = (
    "column_swap",  # a column -> another column of the same table (needs a schema)
    "comparison_op",  # = <-> !=, < <-> <=, > <-> >=, < <-> >, <= <-> >=
    "literal",  # n -> n+1; a string -> another literal of the query, a case or suffix variant; LIKE anchoring
    "drop_condition",  # one branch of an AND/OR in WHERE/HAVING, or the whole single condition
    "aggregate",  # COUNT(x) -> SUM(x), SUM -> AVG/COUNT, AVG -> SUM, MAX <-> MIN
    "drop_distinct",  # SELECT DISTINCT -> SELECT, COUNT(DISTINCT x) -> COUNT(x)
    "order_by",  # flip ASC/DESC; drop ORDER BY when a LIMIT follows it
    "limit",  # LIMIT n -> n+1
    "join_type",  # JOIN <-> LEFT JOIN
    "group_by",  # a GROUP BY column -> another column of its table; drop one of several keys
    "set_operation",  # UNION / INTERSECT / EXCEPT swapped, UNION <-> UNION ALL
)


@dataclass(frozen=True)
class Mutant:
    kind: str
    """One of MUTANT_KINDS."""
    sql: str


# An edit receives the copy of the site node and changes the copied tree in place; it returns
# the node that took the site's place when it replaced it (the new root, for a root site).
_Edit = Callable[[exp.Expression], exp.Expression | None]


@dataclass
class _Ctx:
    nodes: list[exp.Expression]
    index: dict[int, int]  # id(node) -> position in nodes
    bindings: Bindings | None
    schema: Schema | None
    rng: random.Random
    string_literals: list[str]  # string values in the query, for "another literal" edits


def mutate_query(sql: str, *, seed: int, schema: Schema | None = None, max_per_kind: int = 3) -> list[Mutant]:
    """Mutants of ``sql`` (column_swap and the column half of group_by need ``schema``).

    Raises QueryParseError when sqlglot cannot parse ``sql``.
    """
    tree = parse_query(sql)
    original = tree.sql(dialect="sqlite")
    nodes = list(tree.walk())
    bindings = bind_columns(tree, schema) if schema is not None else None
    ctx = _Ctx(
        nodes=nodes,
        index={id(n): i for i, n in enumerate(nodes)},
        bindings=bindings,
        schema=schema,
        rng=random.Random(seed),
        string_literals=[],
    )
    ctx.string_literals = sorted({v for n in nodes if (v := _string_value(n, ctx)) is not None})
    site_finders: dict[str, Callable[[_Ctx], list[tuple[int, _Edit]]]] = {
        "column_swap": _column_swap_sites,
        "comparison_op": _comparison_sites,
        "literal": _literal_sites,
        "drop_condition": _drop_condition_sites,
        "aggregate": _aggregate_sites,
        "drop_distinct": _distinct_sites,
        "order_by": _order_sites,
        "limit": _limit_sites,
        "join_type": _join_sites,
        "group_by": _group_sites,
        "set_operation": _set_op_sites,
    }
    seen = {original, sql.strip()}
    mutants: list[Mutant] = []
    for kind in MUTANT_KINDS:
        sites = site_finders[kind](ctx)
        if len(sites) > max_per_kind:
            sites = [sites[i] for i in sorted(ctx.rng.sample(range(len(sites)), max_per_kind))]
        for position, edit in sites:
            copy = tree.copy()
            target = list(copy.walk())[position]
            replacement = edit(target)
            root = replacement if position == 0 and replacement is not None else copy
            text = root.sql(dialect="sqlite")
            if text not in seen:
                seen.add(text)
                mutants.append(Mutant(kind, text))
    return mutants


# ---------------------------------------------------------------------------------------------
# Helpers


def _is_string_ident(node: exp.Expression, ctx: _Ctx) -> bool:
    """A double-quoted "identifier" that SQLite reads as a string literal."""
    if not isinstance(node, exp.Column):
        return False
    if ctx.bindings is not None:
        return id(node) in ctx.bindings.string_literals
    return not node.table and bool(node.this.args.get("quoted"))


def _string_value(node: exp.Expression, ctx: _Ctx) -> str | None:
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this
    if _is_string_ident(node, ctx):
        return node.name
    return None


def _is_value(node: exp.Expression, ctx: _Ctx) -> bool:
    if isinstance(node, exp.Literal) or _is_string_ident(node, ctx):
        return True
    return isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal)


def _inside(node: exp.Expression, kinds: tuple[type, ...]) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, kinds):
            return True
        parent = parent.parent
    return False


def _replace_with(factory: Callable[[exp.Expression], exp.Expression]) -> _Edit:
    def edit(node: exp.Expression) -> exp.Expression:
        new = factory(node)
        node.replace(new)
        return new

    return edit


def _used_tables(ctx: _Ctx) -> list:
    assert ctx.schema is not None
    return [t for n in ctx.nodes if isinstance(n, exp.Table) and (t := ctx.schema.table(n.name)) is not None]


def _pop(node: exp.Expression) -> None:
    node.pop()


# ---------------------------------------------------------------------------------------------
# Site finders: (position of the node in tree.walk() order, edit)


def _column_swap_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    if ctx.bindings is None or ctx.schema is None:
        return []
    used_tables = _used_tables(ctx)
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        target = ctx.bindings.columns.get(id(node))
        if target is None or _inside(node, (exp.Group,)):
            continue
        table = ctx.schema.table(target[0])
        assert table is not None
        current = table.column(target[1])
        assert current is not None
        choices = [c for c in table.columns if c.name.lower() != current.name.lower()]
        if not node.table:  # keep an unqualified name unambiguous among the query's tables
            choices = [c for c in choices if not any(t is not table and t.column(c.name) for t in used_tables)]
        if not choices:
            continue
        same_type = [c for c in choices if c.affinity == current.affinity]
        pick = ctx.rng.choice(same_type or choices).name
        out.append((i, _rename_column(pick)))
    return out


def _rename_column(name: str) -> _Edit:
    def edit(node: exp.Expression) -> None:
        node.set("this", exp.to_identifier(name, quoted=not name.isidentifier()))

    return edit


_COMPARISON_ALTERNATIVES: dict[type, tuple[type, ...]] = {
    exp.EQ: (exp.NEQ,),
    exp.NEQ: (exp.EQ,),
    exp.LT: (exp.LTE, exp.GT),
    exp.LTE: (exp.LT, exp.GTE),
    exp.GT: (exp.GTE, exp.LT),
    exp.GTE: (exp.GT, exp.LTE),
}


def _comparison_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        alternatives = _COMPARISON_ALTERNATIVES.get(type(node))
        if alternatives is None:
            continue
        # A column = column join key inside ON is not a mistake a model makes; skip it.
        if isinstance(node.this, exp.Column) and isinstance(node.expression, exp.Column) and _inside(node, (exp.Join,)):
            if not (_is_string_ident(node.this, ctx) or _is_string_ident(node.expression, ctx)):
                continue
        new_cls = ctx.rng.choice(alternatives)
        out.append((i, _replace_with(lambda n, c=new_cls: c(this=n.this, expression=n.expression))))
    return out


def _literal_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if _inside(node, (exp.Limit, exp.Offset)):
            continue
        if isinstance(node, exp.Literal) and not node.is_string:
            text = node.this
            try:
                new_number = str(int(text) + 1)
            except ValueError:
                try:
                    new_number = repr(float(text) + 1.0)
                except ValueError:
                    continue
            out.append((i, _replace_with(lambda n, v=new_number: exp.Literal.number(v))))
            continue
        value = _string_value(node, ctx)
        if value is None:
            continue
        new_value = _altered_string(value, isinstance(node.parent, (exp.Like, exp.ILike)), ctx)
        if new_value is not None:
            out.append((i, _replace_with(lambda n, v=new_value: exp.Literal.string(v))))
    return out


def _altered_string(value: str, in_like: bool, ctx: _Ctx) -> str | None:
    options: list[str] = [s for s in ctx.string_literals if s != value and (in_like or "%" not in s)]
    if in_like:
        core = value.strip("%")
        if value.startswith("%"):
            options.append(value[1:])
        if value.endswith("%") and len(value) > 1:
            options.append(value[:-1])
        if len(core) > 1:
            options.append(value.replace(core, core[:-1] + chr(ord(core[-1]) ^ 1)))
    else:
        options.append(value + "x")
        flipped = value.swapcase()
        if flipped != value:
            options.append(flipped)
    options = [o for o in options if o != value]
    return ctx.rng.choice(options) if options else None


def _drop_condition_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if not isinstance(node, (exp.Where, exp.Having)):
            continue
        cond = node.this
        while isinstance(cond, exp.Paren):
            cond = cond.this
        if not isinstance(cond, exp.Connector):
            out.append((i, _pop))
            continue
        stack = [cond]
        while stack:
            conn = stack.pop()
            j = ctx.index[id(conn)]
            out.append((j, _replace_with(lambda n: n.this)))
            out.append((j, _replace_with(lambda n: n.expression)))
            for child in (conn.this, conn.expression):
                while isinstance(child, exp.Paren):
                    child = child.this
                if isinstance(child, exp.Connector):
                    stack.append(child)
    return out


def _aggregate_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if isinstance(node, exp.Count):
            if isinstance(node.this, exp.Star) or node.this is None:
                continue
            new_cls: type = exp.Sum
        elif isinstance(node, exp.Sum):
            new_cls = ctx.rng.choice((exp.Avg, exp.Count))
        elif isinstance(node, exp.Avg):
            new_cls = exp.Sum
        elif isinstance(node, exp.Max):
            new_cls = exp.Min
        elif isinstance(node, exp.Min):
            new_cls = exp.Max
        else:
            continue
        if isinstance(node, (exp.Max, exp.Min)) and node.expressions:
            continue  # scalar MAX(a, b, ...) is not an aggregate
        out.append((i, _replace_with(lambda n, c=new_cls: c(this=n.this))))
    return out


def _distinct_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if isinstance(node, exp.Select) and node.args.get("distinct") is not None:
            out.append((i, _drop_select_distinct))
        elif isinstance(node, exp.Distinct) and isinstance(node.parent, exp.AggFunc) and len(node.expressions) == 1:
            out.append((i, _replace_with(lambda n: n.expressions[0])))
    return out


def _drop_select_distinct(node: exp.Expression) -> None:
    node.set("distinct", None)


def _order_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if isinstance(node, exp.Ordered):
            out.append((i, _flip_direction))
        elif isinstance(node, exp.Order) and node.parent is not None and node.parent.args.get("limit") is not None:
            out.append((i, _pop))
    return out


def _flip_direction(node: exp.Expression) -> None:
    desc = not node.args.get("desc")
    node.set("desc", desc)
    node.set("nulls_first", not desc)  # SQLite's default: NULLs first ascending, last descending


def _limit_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if isinstance(node, exp.Limit) and isinstance(node.expression, exp.Literal) and not node.expression.is_string:
            try:
                n = int(node.expression.this)
            except ValueError:
                continue
            out.append((i, _set_limit(n + 1)))
    return out


def _set_limit(value: int) -> _Edit:
    def edit(node: exp.Expression) -> None:
        node.set("expression", exp.Literal.number(value))

    return edit


def _join_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if not isinstance(node, exp.Join) or node.args.get("on") is None:
            continue
        side = (node.args.get("side") or "").upper()
        kind = (node.args.get("kind") or "").upper()
        if side == "LEFT":
            out.append((i, _set_join(side=None, kind=None)))
        elif not side and kind in ("", "INNER"):
            out.append((i, _set_join(side="LEFT", kind=None)))
    return out


def _set_join(side: str | None, kind: str | None) -> _Edit:
    def edit(node: exp.Expression) -> None:
        node.set("side", side)
        node.set("kind", kind)

    return edit


def _group_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if not isinstance(node, exp.Group):
            continue
        keys = node.expressions
        if len(keys) > 1:
            for k in range(len(keys)):
                out.append((i, _drop_group_key(k)))
        if ctx.bindings is None or ctx.schema is None:
            continue
        for key in keys:
            target = ctx.bindings.columns.get(id(key))
            if target is None:
                continue
            table = ctx.schema.table(target[0])
            assert table is not None
            choices = [c.name for c in table.columns if c.name.lower() != target[1].lower()]
            if key.table == "":
                used = _used_tables(ctx)
                choices = [c for c in choices if not any(t is not table and t.column(c) for t in used)]
            if choices:
                out.append((ctx.index[id(key)], _rename_column(ctx.rng.choice(choices))))
    return out


def _drop_group_key(k: int) -> _Edit:
    def edit(node: exp.Expression) -> None:
        node.expressions[k].pop()

    return edit


_SET_OPS: tuple[type, ...] = (exp.Union, exp.Intersect, exp.Except)


def _set_op_sites(ctx: _Ctx) -> list[tuple[int, _Edit]]:
    out: list[tuple[int, _Edit]] = []
    for i, node in enumerate(ctx.nodes):
        if not isinstance(node, _SET_OPS):
            continue
        options: list[tuple[type, bool]] = [(c, True) for c in _SET_OPS if c is not type(node)]
        if isinstance(node, exp.Union):
            options.append((exp.Union, not node.args.get("distinct", True)))
        new_cls, distinct = ctx.rng.choice(options)
        out.append((i, _replace_with(lambda n, c=new_cls, d=distinct: c(**{**n.args, "distinct": d}))))
    return out
