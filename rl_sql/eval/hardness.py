"""Spider hardness of a gold query: easy, medium, hard or extra.

The Spider benchmark (Yu et al., 2018) buckets its questions by counting the parts of the gold
SQL. This module counts them on sqlglot's parse of the query (SQLite dialect) and applies the
published thresholds. Only the top-level SELECT is counted (for ``A UNION B`` that is ``A``);
nested queries count as a whole in ``component2``.

``component1`` (clauses and connectives of the top-level SELECT):
  +1 for each of WHERE, GROUP BY, ORDER BY and LIMIT that is present; +1 for each table beyond
  the first in FROM (each JOIN, a FROM subquery counts as a table); +1 for each OR and each
  LIKE / NOT LIKE in the JOIN ... ON, WHERE and HAVING conditions.
``component2`` (nesting):
  +1 for each subquery that is an operand of a JOIN ... ON, WHERE or HAVING condition
  (``x IN (SELECT ...)``, ``x > (SELECT ...)``, ``EXISTS (SELECT ...)``); +1 when a set operation
  (UNION, INTERSECT, EXCEPT) follows the top-level SELECT.
``others`` (size):
  +1 when more than one aggregate is counted (see below); +1 for more than one SELECT column;
  +1 for more than one WHERE condition; +1 for more than one GROUP BY key.

Conditions are counted as the reference parser reads them: when the right-hand side of a
comparison is a column (``T2.Mar < T2.Jul``), it takes everything up to the next AND as that
value, so OR branches right after such a comparison are not counted (one query in Spider
train, none in dev, depends on this).

Aggregates counted for ``others`` follow the reference evaluator's counting exactly, quirks
included, so that buckets agree with published Spider numbers: aggregates (COUNT, SUM, AVG, MAX,
MIN) at the head of a SELECT column, of a GROUP BY key or of an ORDER BY operand; negated
conditions (``NOT IN``, ``NOT LIKE``) in WHERE; and in HAVING the negated conditions *plus each
AND/OR connective* (the reference tests the first field of each element of its condition list,
which is the negation flag for a condition and a non-empty string for a connective). Aggregates
inside WHERE or HAVING comparisons do not count.

Buckets (c1 = component1, c2 = component2, o = others), first that applies:
  easy:   c1 <= 1 and o == 0 and c2 == 0
  medium: (o <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and o < 2 and c2 == 0)
  hard:   (o > 2 and c1 <= 2 and c2 == 0) or (2 < c1 <= 3 and o <= 2 and c2 == 0)
          or (c1 <= 1 and o == 0 and c2 <= 1)
  extra:  everything else.

Checked against the reference implementation on all 1034 Spider dev queries
(tests/eval/test_official_agreement.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

Hardness = Literal["easy", "medium", "hard", "extra"]
HARDNESS_LEVELS: tuple[Hardness, ...] = ("easy", "medium", "hard", "extra")

_AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Max, exp.Min)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)


class HardnessError(ValueError):
    """The query cannot be parsed into a SELECT whose parts can be counted."""


@dataclass(frozen=True)
class Components:
    component1: int
    component2: int
    others: int


@dataclass
class _Conditions:
    """Leaves of one AND/OR condition tree, in order, and its connectives."""

    leaves: list[exp.Expression]
    num_or: int
    num_connectives: int


def classify(c: Components) -> Hardness:
    """The bucket of a query with these counts (thresholds in the module docstring)."""
    c1, c2, o = c.component1, c.component2, c.others
    if c1 <= 1 and o == 0 and c2 == 0:
        return "easy"
    if (o <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and o < 2 and c2 == 0):
        return "medium"
    if (o > 2 and c1 <= 2 and c2 == 0) or (2 < c1 <= 3 and o <= 2 and c2 == 0) or (c1 <= 1 and o == 0 and c2 <= 1):
        return "hard"
    return "extra"


@lru_cache(maxsize=8192)
def spider_hardness(sql: str) -> Hardness:
    """easy / medium / hard / extra of ``sql``; raises HardnessError when it does not parse."""
    return classify(count_components(sql))


def count_components(sql: str) -> Components:
    """component1, component2 and others of the top-level SELECT of ``sql`` (module docstring)."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, RecursionError) as exc:
        raise HardnessError(f"sqlglot cannot parse the query ({type(exc).__name__}): {sql[:200]}") from None
    select, has_set_operation = _top_select(tree, sql)

    join_conds = [_conditions(join.args.get("on")) for join in select.args.get("joins") or []]
    where = _conditions(_clause_body(select, "where"))
    having = _conditions(_clause_body(select, "having"))
    all_conds = [*join_conds, where, having]
    leaves = [leaf for conds in all_conds for leaf in conds.leaves]

    num_tables = (1 if select.args.get("from_") is not None else 0) + len(select.args.get("joins") or [])
    group_keys = list(select.args["group"].expressions) if select.args.get("group") else []
    order_keys = [o.this for o in select.args["order"].expressions] if select.args.get("order") else []

    component1 = sum(
        select.args.get(key) is not None for key in ("where", "group", "order", "limit")
    )
    component1 += max(num_tables - 1, 0)
    component1 += sum(conds.num_or for conds in all_conds)
    component1 += sum(_is_like(leaf) for leaf in leaves)

    component2 = sum(_nested_subqueries(leaf) for leaf in leaves) + int(has_set_operation)

    aggregates = sum(_head_is_aggregate(_unalias(e)) for e in select.expressions)
    aggregates += sum(_negated(leaf) for leaf in where.leaves)
    aggregates += sum(_head_is_aggregate(e) for e in group_keys)
    aggregates += sum(_aggregate_operands(e) for e in order_keys)
    aggregates += sum(_negated(leaf) for leaf in having.leaves) + having.num_connectives
    others = int(aggregates > 1)
    others += int(len(select.expressions) > 1)
    others += int(len(where.leaves) > 1)
    others += int(len(group_keys) > 1)
    return Components(component1=component1, component2=component2, others=others)


def _top_select(tree: exp.Expression, sql: str) -> tuple[exp.Select, bool]:
    """The left-most SELECT of the statement, and whether a set operation follows it."""
    node, has_set_operation = tree, False
    while True:
        if isinstance(node, exp.SetOperation):
            has_set_operation = True
            node = node.this
        elif isinstance(node, (exp.Subquery, exp.Paren)):
            node = node.this
        elif isinstance(node, exp.Select):
            return node, has_set_operation
        else:
            raise HardnessError(f"not a SELECT query ({type(node).__name__}): {sql[:200]}")


def _clause_body(select: exp.Select, key: str) -> exp.Expression | None:
    clause = select.args.get(key)
    return clause.this if clause is not None else None


def _conditions(node: exp.Expression | None) -> _Conditions:
    """The conditions of an AND/OR tree (left to right) and its connectives, as the reference
    parser sees them (see ``_reference_reading``)."""
    leaves: list[exp.Expression] = []
    connectives: list[type] = []  # connectives[i] joins leaves[i] and leaves[i + 1]

    def walk(current: exp.Expression) -> None:
        while isinstance(current, exp.Paren) and isinstance(current.this, exp.Connector):
            current = current.this
        if isinstance(current, exp.Connector):
            walk(current.this)
            connectives.append(type(current))
            walk(current.expression)
        else:
            leaves.append(current)

    if node is not None:
        walk(node)
    return _reference_reading(leaves, connectives)


def _reference_reading(leaves: list[exp.Expression], connectives: list[type]) -> _Conditions:
    """Drop what the reference parser drops: when a comparison's right-hand side is a column,
    it reads the value up to the next AND (or comma, parenthesis or clause keyword), so OR
    branches right after it vanish from its counts (``a < T.b OR c > T.d`` is one condition)."""
    kept = [leaves[0]] if leaves else []
    kept_connectives: list[type] = []
    swallowing = bool(leaves) and _compares_to_column(leaves[0])
    for connective, leaf in zip(connectives, leaves[1:]):
        if swallowing and connective is exp.Or:
            continue
        kept_connectives.append(connective)
        kept.append(leaf)
        swallowing = _compares_to_column(leaf)
    return _Conditions(
        leaves=kept,
        num_or=sum(c is exp.Or for c in kept_connectives),
        num_connectives=len(kept_connectives),
    )


def _compares_to_column(leaf: exp.Expression) -> bool:
    inner, _ = _strip_not(leaf)
    if not isinstance(inner, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like)):
        return False
    value = _unparen(inner.expression)
    # A double-quoted "value" parses as a quoted identifier; Spider (and SQLite, when no such
    # column exists) reads it as a string.
    return isinstance(value, exp.Column) and not value.this.args.get("quoted")


def _strip_not(leaf: exp.Expression) -> tuple[exp.Expression, bool]:
    negated = False
    while isinstance(leaf, (exp.Not, exp.Paren)):
        negated ^= isinstance(leaf, exp.Not)
        leaf = leaf.this
    return leaf, negated or bool(leaf.args.get("negate"))


def _negated(leaf: exp.Expression) -> bool:
    return _strip_not(leaf)[1]


def _is_like(leaf: exp.Expression) -> bool:
    return isinstance(_strip_not(leaf)[0], exp.Like)


def _nested_subqueries(leaf: exp.Expression) -> int:
    """Subqueries that are direct operands of a condition (``IN (SELECT ..)``, ``> (SELECT ..)``)."""
    inner, _ = _strip_not(leaf)
    if isinstance(inner, exp.Exists):
        return 1
    count = 0
    for key in ("this", "expression", "query", "low", "high"):
        operand = inner.args.get(key)
        while isinstance(operand, exp.Paren):
            operand = operand.this
        count += isinstance(operand, (exp.Subquery, exp.Query))
    return count


def _unalias(node: exp.Expression) -> exp.Expression:
    return node.this if isinstance(node, exp.Alias) else node


def _head_is_aggregate(node: exp.Expression) -> bool:
    """An aggregate at the head of a column, or as the first operand of arithmetic on it."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, _ARITHMETIC):
        return _head_is_aggregate(node.this)
    return isinstance(node, _AGGREGATES)


def _aggregate_operands(node: exp.Expression) -> int:
    """Aggregated operands of an ORDER BY key (``sum(a) - min(b)`` has two)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, _ARITHMETIC):
        return sum(isinstance(_unparen(part), _AGGREGATES) for part in (node.this, node.expression))
    return int(isinstance(node, _AGGREGATES))


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node
