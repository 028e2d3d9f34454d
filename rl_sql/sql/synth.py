"""Populated test databases for schema-only examples (test-suite style).

sql-create-context gives CREATE TABLE text and a gold query but no rows; on empty tables every
query that runs "matches" the gold. ``synthesize_databases(context, gold_sql, k=3, seed=0,
cache_dir=...)`` builds k small SQLite files on which the gold returns rows and on which wrong
queries tend to return other rows, after Zhong, Yu and Klein (2020), "Semantic Evaluation for
Text-to-SQL with Distilled Test Suites": fuzz a pool of random databases, keep the ones that tell
the gold apart from its mutants.

1. Schema: ``parse_schema(context)``. Gold hints (``analyze_gold``): the tables it reads, the
   literals compared with each column (``=``, ``<``, ``IN``, ``BETWEEN``, ``LIKE``), the column
   pairs it joins or matches with ``IN (SELECT ...)``, and HAVING thresholds.
2. Pool (``POOL_SIZE`` candidates: ``POOL_PROFILES``, then random profiles): each candidate fills
   every table with typed random values per column (declared affinity, refined by the name, the
   literals and arithmetic/SUM/AVG use in the gold), where literal-bearing columns take the
   literal or a neighbour (n-1, n, n+1; a case variant, a suffix variant, a date +-1 day; for a LIKE
   pattern its core alone, upper-cased, inside and around other text, and cut short) with the
   profile's literal density (some profiles put every variant in once first); NULLs (never in NOT
   NULL or key columns) and duplicate rows (tables without a key) at the profile's rates; primary
   keys unique; foreign keys drawn from the values the referenced column actually got (the gold's
   key literals favoured; a key that is also a foreign key leaves some parents without children);
   joined columns share one small value domain so joins hit. When the gold is uninformative on
   the whole pool, up to ``EXTRA_CANDIDATES`` literal-dense, larger candidates follow.
3. Distillation: the gold and its mutants (``mutate_query(gold, seed=SYNTH_MUTANT_SEED)``, a seed
   kept distinct from the ones ``benchmarks/mutation_detection.py`` uses) run on every candidate
   through ``execute_sql``. A mutant is killed by a candidate when its result differs from the
   gold's (``results_match``) or it fails where the gold runs; a mutant that times out anywhere is
   left out (a timeout depends on the machine's load; the choice must not). Candidates on which
   the gold's ``ORDER BY ... LIMIT n`` cut falls inside a tie are not chosen while others remain
   (a correct query could return another tied row). Greedy set cover picks k candidates: first
   the one killing most mutants among those where the gold's result is informative, then each
   next one killing most of the mutants still alive (ties: informative, more of the gold's
   literals present, more kills, fewer rows).
4. Cache: ``cache_dir/<sha256(version, context, gold, k, seed)>/`` holds ``db_<i>.sqlite`` and
   ``result.json``, written in a temporary folder and renamed into place, so concurrent reward
   actors never see half a result. Failures are cached too.

"Informative" (``gold_nonempty``): the gold returns at least one row with a value that is not
NULL, 0 or '' on at least one chosen database; ``SELECT count(*) ... WHERE name = 'x'`` answering
0 everywhere does not count, because any wrong literal would give 0 too.

Bad data never raises: an unreadable context (``error_kind="schema"``) or a gold that fails on the
synthesized schema (``"gold_error"``) gives a SynthResult with ``error`` set and no databases; a
gold that sqlglot cannot parse still gets random databases (no hints, no distillation, noted in
``stats``); a gold that is empty everywhere gives databases with ``gold_nonempty=False``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import random
import shutil
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from rl_sql.sql.compare import query_has_order_by, results_match
from rl_sql.sql.mutate import Mutant, mutate_query
from rl_sql.sql.sandbox import execute_sql
from rl_sql.sql.schema import QueryParseError, Schema, SchemaError, Table, bind_columns, parse_query, parse_schema
from rl_sql.sql.types import ErrorKind, ExecResult

GENERATOR_VERSION = 3
"""Part of the cache key: bump it whenever a change makes the generated databases differ."""
SYNTH_MUTANT_SEED = 104_729
"""Seed of the mutants used for distillation. ``benchmarks/mutation_detection.py`` judges with
mutants from other seeds, so it does not grade the synthesizer on the mutants it was tuned on."""
GOLD_TIMEOUT_S = 1.0
"""Deadline of the gold (and its tie probe) on one synthesized database."""
MUTANT_TIMEOUT_S = 0.25
"""Deadline of a mutant on one candidate; a mutant that times out counts as killed."""
MAX_ROWS = 10_000
MAX_MUTANTS_PER_KIND = 3
EXTRA_CANDIDATES = 6
"""Extra literal-dense candidates tried when the gold is uninformative on the whole pool."""


@dataclass(frozen=True)
class SynthResult:
    db_paths: tuple[str, ...]
    """The chosen databases (absolute paths; empty on failure), most mutant-killing first."""
    gold_nonempty: bool
    """The gold's result is informative (a row with a non-NULL, non-0, non-'' value) on at least one."""
    error: str | None
    """Why synthesis failed (None when databases were made)."""
    error_kind: str | None = None
    """``schema`` (context unreadable) or ``gold_error`` (the gold fails on the synthesized schema)."""
    stats: dict[str, Any] = field(default_factory=dict, compare=False)
    """candidates, mutants, mutants_killable (by some candidate), mutants_killed (by the chosen),
    mutants_killed_by_every_candidate, mutants_timed_out (left out of the choice), ambiguous_candidates
    (tie at the LIMIT cut), gold_rows (per chosen db), profiles (pool index of each chosen db),
    gold_parsed, seconds, cached."""


# ---------------------------------------------------------------------------------------------
# Gold hints


ColumnRef = tuple[str, str]  # (table, column) in the schema's spelling


@dataclass
class GoldHints:
    """What the gold query says about the data it needs."""

    tables: list[str] = field(default_factory=list)
    literals: dict[ColumnRef, list[object]] = field(default_factory=dict)
    """Literal values compared with each column (strings, ints, floats)."""
    like_patterns: dict[ColumnRef, list[str]] = field(default_factory=dict)
    ordered: dict[ColumnRef, bool] = field(default_factory=dict)
    """Columns compared with <, <=, >, >=, BETWEEN (neighbours on both sides matter)."""
    join_pairs: list[tuple[ColumnRef, ColumnRef]] = field(default_factory=list)
    numeric: set[ColumnRef] = field(default_factory=set)
    """Columns the gold aggregates with SUM/AVG or uses in arithmetic: numbers even when declared TEXT."""
    having_threshold: int = 0
    """Largest number compared in a HAVING clause (groups that big are needed)."""
    parsed: bool = True


_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)


def _literal_value(node: exp.Expression, string_idents: set[int]) -> object | None:
    """The Python value of a literal node (a double-quoted string "identifier" included)."""
    if isinstance(node, exp.Paren):
        return _literal_value(node.this, string_idents)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        try:
            return int(node.this)
        except ValueError:
            try:
                return float(node.this)
            except ValueError:
                return None
    if isinstance(node, exp.Neg):
        inner = _literal_value(node.this, string_idents)
        return -inner if isinstance(inner, (int, float)) else None
    if isinstance(node, exp.Column) and id(node) in string_idents:
        return node.name
    return None


def analyze_gold(gold_sql: str, schema: Schema) -> GoldHints:
    """Hints from the gold query; ``parsed=False`` (and no hints) when sqlglot cannot parse it."""
    try:
        tree = parse_query(gold_sql)
    except QueryParseError:
        return GoldHints(parsed=False)
    bindings = bind_columns(tree, schema)
    strings = bindings.string_literals
    hints = GoldHints()
    for node in tree.find_all(exp.Table):
        table = schema.table(node.name)
        if table is not None and table.name not in hints.tables:
            hints.tables.append(table.name)

    def column_of(node: exp.Expression) -> ColumnRef | None:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Column):
            return bindings.columns.get(id(node))
        # x + 1 > 5, -x < 3, avg(x) > 5: the literal still says where the column's values matter
        if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg, exp.Avg, exp.Sum, exp.Max, exp.Min)):
            cols = [bindings.columns.get(id(c)) for c in node.find_all(exp.Column)]
            cols = [c for c in cols if c is not None]
            return cols[0] if len(cols) == 1 else None
        return None

    def add_literal(col: ColumnRef, value: object, ordered: bool = False) -> None:
        values = hints.literals.setdefault(col, [])
        if value not in values:
            values.append(value)
        if ordered:
            hints.ordered[col] = True

    for node in tree.walk():
        if isinstance(node, (exp.Avg, exp.Sum, exp.Add, exp.Sub, exp.Mul, exp.Div)):
            for c in node.find_all(exp.Column):
                if (ref := bindings.columns.get(id(c))) is not None:
                    hints.numeric.add(ref)
        if isinstance(node, _COMPARISONS):
            left, right = node.this, node.expression
            lcol, rcol = column_of(left), column_of(right)
            lval, rval = _literal_value(left, strings), _literal_value(right, strings)
            ordered = not isinstance(node, (exp.EQ, exp.NEQ))
            if lcol is not None and rval is not None:
                add_literal(lcol, rval, ordered)
            elif rcol is not None and lval is not None:
                add_literal(rcol, lval, ordered)
            elif isinstance(node, exp.EQ) and lcol is not None and rcol is not None and lcol != rcol:
                hints.join_pairs.append((lcol, rcol))
            if _inside_having(node):
                for val in (lval, rval):
                    if isinstance(val, (int, float)) and not isinstance(val, bool):
                        hints.having_threshold = max(hints.having_threshold, int(min(val, 1000)))
        elif isinstance(node, exp.Between):
            col = column_of(node.this)
            if col is not None:
                for bound in (node.args.get("low"), node.args.get("high")):
                    val = _literal_value(bound, strings) if bound is not None else None
                    if val is not None:
                        add_literal(col, val, True)
        elif isinstance(node, (exp.Like, exp.ILike)):
            col = column_of(node.this)
            val = _literal_value(node.expression, strings)
            if col is not None and isinstance(val, str):
                patterns = hints.like_patterns.setdefault(col, [])
                if val not in patterns:
                    patterns.append(val)
        elif isinstance(node, exp.In):
            col = column_of(node.this)
            if col is None:
                continue
            for item in node.expressions:
                val = _literal_value(item, strings)
                if val is not None:
                    add_literal(col, val)
            query = node.args.get("query")
            inner = query.this if isinstance(query, exp.Subquery) else query
            if isinstance(inner, exp.Select) and len(inner.expressions) == 1:
                other = column_of(inner.expressions[0])
                if other is not None and other != col:
                    hints.join_pairs.append((col, other))
    return hints


def _inside_having(node: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Having):
            return True
        if isinstance(parent, exp.Select):
            return False
        parent = parent.parent
    return False


# ---------------------------------------------------------------------------------------------
# Profiles: how one candidate database is filled


@dataclass(frozen=True)
class Profile:
    rows: int
    """Rows of a table the gold reads (tables with foreign keys get ~1.5x, unused tables 3)."""
    domain: int
    """Distinct values of an ordinary column (small: duplicates for GROUP BY / DISTINCT)."""
    literal_density: float
    """Probability that a literal-bearing column takes the literal or a neighbour."""
    null_rate: float
    dup_rate: float
    """Fraction of extra duplicate rows in tables without a primary key."""
    cover_literals: bool = False
    """The first rows take each literal and neighbour of a column once, in order, so that every
    variant (``x LIKE 'a%'`` vs ``'%a%'``, ``=`` vs ``<=``) is present at least once."""


POOL_PROFILES: tuple[Profile, ...] = (
    Profile(rows=6, domain=3, literal_density=0.5, null_rate=0.0, dup_rate=0.0),
    Profile(rows=12, domain=5, literal_density=0.35, null_rate=0.1, dup_rate=0.2, cover_literals=True),
    Profile(rows=4, domain=2, literal_density=0.7, null_rate=0.0, dup_rate=0.0),
    Profile(rows=30, domain=3, literal_density=0.6, null_rate=0.05, dup_rate=0.1),
    Profile(rows=8, domain=12, literal_density=0.45, null_rate=0.0, dup_rate=0.0, cover_literals=True),
    Profile(rows=15, domain=4, literal_density=0.8, null_rate=0.1, dup_rate=0.1),
    Profile(rows=3, domain=3, literal_density=0.5, null_rate=0.25, dup_rate=0.0),
    Profile(rows=20, domain=20, literal_density=0.25, null_rate=0.0, dup_rate=0.0, cover_literals=True),
    Profile(rows=5, domain=1, literal_density=0.3, null_rate=0.0, dup_rate=0.0),
)
"""The first candidates of every pool; further ones are drawn by ``random_profile``."""
POOL_SIZE = 10


def random_profile(rng: random.Random) -> Profile:
    return Profile(
        rows=rng.choice((3, 5, 8, 12, 20, 30)),
        domain=rng.choice((2, 3, 4, 6, 10, 25)),
        literal_density=rng.choice((0.2, 0.4, 0.6, 0.8)),
        null_rate=rng.choice((0.0, 0.0, 0.1, 0.2)),
        dup_rate=rng.choice((0.0, 0.1, 0.3)),
        cover_literals=rng.random() < 0.5,
    )


def _dense_profile(i: int, having: int) -> Profile:
    """Extra candidates for golds that were empty on the pool: literals almost everywhere, and
    groups large enough for the HAVING threshold."""
    rows = max(10 + 10 * i, 3 * (having + 2))
    return Profile(
        rows=min(rows, 300),
        domain=2 + i % 3,
        literal_density=0.9,
        null_rate=0.0,
        dup_rate=0.1,
        cover_literals=i % 2 == 1,
    )


# ---------------------------------------------------------------------------------------------
# Values


_CONSONANTS = "bcdfghklmnprstvz"
_VOWELS = "aeiou"


def _word(rng: random.Random) -> str:
    syllables = rng.randint(1, 3)
    w = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
    if rng.random() < 0.3:
        w += rng.choice(_CONSONANTS)
    return w.capitalize() if rng.random() < 0.8 else w


def _value_kind(table: Table, column_name: str, literals: Sequence[object], numeric: bool) -> str:
    """int | real | text | date | datetime | bool, from the declared type, the name, the literals
    and whether the gold computes with the column (``numeric``)."""
    col = table.column(column_name)
    assert col is not None
    declared = col.type.upper()
    name = col.name.lower()
    numeric_lits = [v for v in literals if isinstance(v, (int, float))]
    string_lits = [v for v in literals if isinstance(v, str)]
    if col.affinity == "INTEGER":
        return "int"
    if col.affinity == "REAL":
        return "real"
    if "BOOL" in declared or declared == "BIT":
        return "bool"
    date_name = "date" in name or name.endswith("_time")
    if "DATE" in declared or "TIME" in declared or (col.affinity == "TEXT" and date_name):
        if not numeric_lits:
            return "datetime" if ("TIME" in declared and "DATE" in declared) or "TIMESTAMP" in declared else "date"
    if col.affinity == "NUMERIC":
        if "YEAR" in declared:
            return "int"
        return "real" if ("DEC" in declared or "NUM" in declared) and not declared.endswith(",0)") else "int"
    if col.affinity == "TEXT":
        return "int" if (numeric_lits or numeric) and not string_lits else "text"
    # BLOB (no declared type): the literals decide, else integers
    return "text" if string_lits and not numeric else "int"


def _random_value(kind: str, rng: random.Random, anchor: Sequence[float]) -> object:
    if kind == "int":
        if anchor:
            lo, hi = int(min(anchor)), int(max(anchor))
            spread = max(3, (hi - lo) // 2, abs(hi) // 4)
            return rng.randint(lo - spread, hi + spread)
        return rng.randint(1, 100)
    if kind == "real":
        if anchor:
            lo, hi = min(anchor), max(anchor)
            spread = max(3.0, (hi - lo) / 2, abs(hi) / 4)
            return round(rng.uniform(lo - spread, hi + spread), 1)
        return round(rng.uniform(0, 100), 1)
    if kind == "bool":
        return rng.randint(0, 1)
    if kind in ("date", "datetime"):
        day = dt.date(1995, 1, 1) + dt.timedelta(days=rng.randint(0, 30 * 365))
        if kind == "date":
            return day.isoformat()
        return f"{day.isoformat()} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return _word(rng)


def _neighbours(value: object, ordered: bool) -> list[object]:
    """Values next to a literal: ones a wrong operator or literal would treat differently."""
    if isinstance(value, bool):
        return [int(value)]
    if isinstance(value, int):
        return [value - 1, value + 1]
    if isinstance(value, float):
        return [round(value - 0.5, 3), round(value + 0.5, 3), value + 1]
    assert isinstance(value, str)
    out: list[object] = []
    try:
        day = dt.date.fromisoformat(value[:10])
        out += [(day + dt.timedelta(days=d)).isoformat() + value[10:] for d in (-1, 1)]
    except ValueError:
        pass
    try:
        number = float(value)
        shifted = [int(number) - 1, int(number) + 1] if number.is_integer() else [number - 1, number + 1]
        out += [str(x) for x in shifted]
    except ValueError:
        pass
    if value.swapcase() != value:
        out.append(value.swapcase() if len(value) > 1 else value.upper() if value.islower() else value.lower())
    out.append(value + "x")
    if ordered and len(value) > 1:
        out.append(value[:-1])
    return [v for v in out if v != value]


def _like_matches(pattern: str, rng: random.Random) -> list[str]:
    """Strings that match a LIKE pattern in different ways, and a near miss."""
    core = pattern.replace("%", " ").replace("_", " ").strip()
    filler = _word(rng).lower()
    out = []
    starts, ends = pattern.startswith("%"), pattern.endswith("%")
    if starts and ends:
        out += [f"{filler} {core} {filler}", core, core.upper(), f"{core}{filler}"]
    elif ends:
        out += [f"{core} {filler}", core, f"{filler} {core}"]
    elif starts:
        out += [f"{filler} {core}", core, f"{core} {filler}"]
    else:
        out += [core, core.upper()]
    if len(core) > 1:
        out.append(core[:-1])
    return out


@dataclass
class _ColumnPlan:
    kind: str
    literal_pool: list[object]  # literals first, then their neighbours
    n_literals: int
    anchor: list[float]  # numeric literals, to centre random numbers


def _column_plans(schema: Schema, hints: GoldHints, rng: random.Random) -> dict[ColumnRef, _ColumnPlan]:
    plans: dict[ColumnRef, _ColumnPlan] = {}
    for table in schema.tables:
        for col in table.columns:
            ref = (table.name, col.name)
            lits = list(hints.literals.get(ref, []))
            likes = hints.like_patterns.get(ref, [])
            kind = _value_kind(table, col.name, lits + likes, ref in hints.numeric)
            pool: list[object] = list(lits)
            for pattern in likes:
                pool.extend(_like_matches(pattern, rng))
            n_lits = len(pool)
            for v in lits:
                pool.extend(n for n in _neighbours(v, hints.ordered.get(ref, False)) if n not in pool)
            anchor = [float(v) for v in lits if isinstance(v, (int, float)) and not isinstance(v, bool)]
            plans[ref] = _ColumnPlan(kind, pool, n_lits, anchor)
    return plans


# ---------------------------------------------------------------------------------------------
# Filling one database


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[ColumnRef, ColumnRef] = {}

    def find(self, x: ColumnRef) -> ColumnRef:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: ColumnRef, b: ColumnRef) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _table_order(schema: Schema) -> list[Table]:
    """Referenced tables before the tables that reference them (cycles broken in schema order)."""
    done: list[Table] = []
    seen: set[str] = set()

    def visit(table: Table, stack: set[str]) -> None:
        if table.name in seen or table.name in stack:
            return
        stack.add(table.name)
        for fk in table.foreign_keys:
            target = schema.resolve_fk(fk)
            if target is not None and target[0] != table.name:
                parent = schema.table(target[0])
                assert parent is not None
                visit(parent, stack)
        stack.discard(table.name)
        seen.add(table.name)
        done.append(table)

    for table in schema.tables:
        visit(table, set())
    return done


@dataclass
class _Plan:
    """Everything about the data that does not depend on the profile."""

    schema: Schema
    hints: GoldHints
    columns: dict[ColumnRef, _ColumnPlan]
    classes: dict[ColumnRef, ColumnRef]  # column -> representative of its join class
    fk_targets: dict[ColumnRef, ColumnRef]
    order: list[Table]


def make_plan(schema: Schema, hints: GoldHints, seed: int) -> _Plan:
    rng = random.Random(seed)
    columns = _column_plans(schema, hints, rng)
    uf = _UnionFind()
    fk_targets: dict[ColumnRef, ColumnRef] = {}
    for table in schema.tables:
        for fk in table.foreign_keys:
            target = schema.resolve_fk(fk)
            if target is not None:
                fk_targets[(table.name, fk.column)] = target
                uf.union((table.name, fk.column), target)
    for a, b in hints.join_pairs:
        uf.union(a, b)
    classes = {ref: uf.find(ref) for ref in uf.parent}
    # A join class takes one value kind: integers when any member is integer-like.
    members: dict[ColumnRef, list[ColumnRef]] = {}
    for ref, root in classes.items():
        members.setdefault(root, []).append(ref)
    for group in members.values():
        kinds = {columns[r].kind for r in group}
        kind = "int" if "int" in kinds or not kinds - {"int", "real", "bool"} else "text"
        if len(kinds) == 1:
            kind = next(iter(kinds))
        for r in group:
            columns[r].kind = kind
    return _Plan(schema, hints, columns, classes, fk_targets, _table_order(schema))


def _merged_plan(plan: _Plan, root: ColumnRef) -> _ColumnPlan:
    """The column plan of a join class: its kind, and the literals of all its members."""
    members = [plan.columns[ref] for ref, r in sorted(plan.classes.items()) if r == root]
    pool: list[object] = []
    for m in members:
        pool.extend(v for v in m.literal_pool[: m.n_literals] if v not in pool)
    n_lits = len(pool)
    for m in members:
        pool.extend(v for v in m.literal_pool[m.n_literals :] if v not in pool)
    anchor = [a for m in members for a in m.anchor]
    return _ColumnPlan(plan.columns[root].kind, pool, n_lits, anchor)


def _unique_values(plan: _ColumnPlan, n: int, rng: random.Random, start: int = 1) -> list[object]:
    """n distinct values of the column's kind, its literals first."""
    values: list[object] = []
    seen: set[object] = set()
    for v in plan.literal_pool:
        if len(values) >= n:
            break
        key = v if not isinstance(v, str) else ("s", v)
        if key not in seen:
            seen.add(key)
            values.append(v)
    counter = start
    tries = 0
    while len(values) < n:
        if plan.kind in ("int", "bool"):
            v: object = counter
            counter += 1
        elif plan.kind == "real":
            v = counter + 0.5
            counter += 1
        else:
            v = _random_value(plan.kind, rng, plan.anchor)
            tries += 1
            if tries > 20 * n:
                v = f"{v}{counter}"
                counter += 1
        key = v if not isinstance(v, str) else ("s", v)
        if key not in seen:
            seen.add(key)
            values.append(v)
    rng.shuffle(values)
    return values


def fill_database(plan: _Plan, profile: Profile, seed: int) -> dict[str, list[tuple]]:
    """Rows for every table: deterministic for (plan, profile, seed)."""
    rng = random.Random(seed)
    schema, hints = plan.schema, plan.hints
    used = set(hints.tables) if hints.tables else {t.name for t in schema.tables}
    n_rows: dict[str, int] = {}
    for table in schema.tables:
        if table.name not in used:
            n_rows[table.name] = 3
        elif any(plan.fk_targets.get((table.name, fk.column)) for fk in table.foreign_keys):
            n_rows[table.name] = max(1, round(profile.rows * rng.uniform(1.2, 1.8)))
        else:
            n_rows[table.name] = max(1, round(profile.rows * rng.uniform(0.7, 1.3)))
    if hints.having_threshold:
        for name in used:
            n_rows[name] = max(n_rows[name], min(300, (hints.having_threshold + 2) * max(1, profile.domain)))

    # Shared domains of join classes, sized to the largest table whose key is in the class.
    domains: dict[ColumnRef, list[object]] = {}
    for ref, root in sorted(plan.classes.items()):
        if root in domains:
            continue
        size = profile.domain + 2
        for other, r in plan.classes.items():
            if r == root:
                table = schema.table(other[0])
                assert table is not None
                if table.primary_key == (other[1],):
                    size = max(size, n_rows[table.name] + 1)
        domains[root] = _unique_values(_merged_plan(plan, root), size, rng)

    data: dict[str, list[tuple]] = {}
    generated: dict[ColumnRef, list[object]] = {}
    for table in plan.order:
        rows = _fill_table(plan, profile, table, n_rows[table.name], domains, generated, rng)
        data[table.name] = rows
        for i, col in enumerate(table.columns):
            generated[(table.name, col.name)] = [r[i] for r in rows if r[i] is not None]
    _repair_late_references(plan, data, rng)
    return {t.name: data[t.name] for t in schema.tables}


def _repair_late_references(plan: _Plan, data: dict[str, list[tuple]], rng: random.Random) -> None:
    """Foreign keys filled before their parent (self references, cycles) drew from the join
    domain: point the values that miss the parent at existing parent values."""
    for table in plan.schema.tables:
        rows = data[table.name]
        for fk in table.foreign_keys:
            target = plan.fk_targets.get((table.name, fk.column))
            if target is None or fk.column in table.primary_key:
                continue
            parent = plan.schema.table(target[0])
            assert parent is not None
            j = [c.name for c in parent.columns].index(target[1])
            present = [r[j] for r in data[parent.name] if r[j] is not None]
            present_set = set(present)
            i = [c.name for c in table.columns].index(fk.column)
            for r, row in enumerate(rows):
                if row[i] is not None and row[i] not in present_set:
                    value = rng.choice(present) if present else None
                    rows[r] = row[:i] + (value,) + row[i + 1 :]


def _fill_table(
    plan: _Plan,
    profile: Profile,
    table: Table,
    n: int,
    domains: dict[ColumnRef, list[object]],
    generated: dict[ColumnRef, list[object]],
    rng: random.Random,
) -> list[tuple]:
    pk = set(table.primary_key)
    single_pk = table.primary_key[0] if len(table.primary_key) == 1 else None
    columns: list[list[object]] = []
    for col in table.columns:
        ref = (table.name, col.name)
        cplan = plan.columns[ref]
        fk_target = plan.fk_targets.get(ref)
        parent_values = generated.get(fk_target) if fk_target is not None else None
        root = plan.classes.get(ref)
        source: list[object] | None = parent_values or (domains.get(root) if root is not None else None)
        if col.name == single_pk:
            if source:
                pool = list(dict.fromkeys(source))
                if parent_values and len(pool) > 1:  # leave some parents childless (LEFT JOIN vs JOIN)
                    n = min(n, len(pool) - max(1, len(pool) // 4))
                n = min(n, len(pool))
                values = rng.sample(pool, n)
            else:
                values = _unique_values(cplan, n, rng)
            columns.append(values)
            continue
        nullable = not col.not_null and col.name not in pk
        null_rate = profile.null_rate if nullable else 0.0
        local_domain = None if source else _local_domain(cplan, profile, rng)
        # key values that the gold names (WHERE fk = 5) come up as often as other literals
        wanted = [v for v in cplan.literal_pool[: cplan.n_literals] if v in source] if source else []
        covering = cplan.literal_pool if profile.cover_literals and not source else []
        values = []
        for i in range(n):
            if i < len(covering):
                values.append(covering[i])
            elif null_rate and rng.random() < null_rate:
                values.append(None)
            elif source:
                values.append(rng.choice(wanted if wanted and rng.random() < profile.literal_density else source))
            elif cplan.literal_pool and rng.random() < profile.literal_density:
                # the literals themselves twice as often as their neighbours
                if cplan.n_literals and rng.random() < 0.6:
                    values.append(cplan.literal_pool[rng.randrange(cplan.n_literals)])
                else:
                    values.append(rng.choice(cplan.literal_pool))
            else:
                assert local_domain is not None
                values.append(rng.choice(local_domain))
        columns.append(values)
    n = min(len(c) for c in columns)
    rows = [tuple(c[i] for c in columns) for i in range(n)]
    if len(table.primary_key) > 1:
        key_idx = [i for i, c in enumerate(table.columns) if c.name in pk]
        seen: set[tuple] = set()
        unique_rows = []
        for row in rows:
            key = tuple(row[i] for i in key_idx)
            if key not in seen and all(v is not None for v in key):
                seen.add(key)
                unique_rows.append(row)
        rows = unique_rows
    elif not table.primary_key and rows and profile.dup_rate:
        rows += [rng.choice(rows) for _ in range(math.ceil(len(rows) * profile.dup_rate))]
        rng.shuffle(rows)
    return rows


def _local_domain(cplan: _ColumnPlan, profile: Profile, rng: random.Random) -> list[object]:
    size = max(1, round(profile.domain * rng.choice((0.5, 1.0, 1.0, 1.5, 2.0))))
    out: list[object] = []
    for _ in range(size * 3):
        v = _random_value(cplan.kind, rng, cplan.anchor)
        if v not in out:
            out.append(v)
        if len(out) >= size:
            break
    return out


def _create_statements(schema: Schema) -> list[str]:
    """CREATE TABLE with the declared types and collations (no constraints: the generator
    enforces keys itself, and CHECK clauses must not reject a row)."""

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    out = []
    for table in schema.tables:
        cols = ", ".join(
            f"{q(c.name)} {c.type}".rstrip() + (f" COLLATE {c.collate}" if c.collate else "") for c in table.columns
        )
        out.append(f"CREATE TABLE {q(table.name)} ({cols})")
    return out


def write_database(path: Path, schema: Schema, data: dict[str, list[tuple]]) -> None:
    """Create ``path`` with the schema's tables and the rows, in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        for stmt in _create_statements(schema):
            conn.execute(stmt)
        for table in schema.tables:
            rows = data[table.name]
            if rows:
                marks = ", ".join("?" * len(table.columns))
                name = '"' + table.name.replace('"', '""') + '"'
                conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Distillation


def informative(result: ExecResult) -> bool:
    """A result that says something: a row with a value other than NULL, 0 and ''."""
    return result.ok and any(v is not None and v != 0 and v != "" for row in result.rows for v in row)


def _tie_probe(gold_sql: str) -> tuple[str, int] | None:
    """For a gold ending in ``ORDER BY keys LIMIT n``: the gold with the keys appended to its
    columns and LIMIT n+1, and n. None when not applicable (no such cut, DISTINCT, OFFSET)."""
    try:
        tree = parse_query(gold_sql)
    except QueryParseError:
        return None
    if not isinstance(tree, exp.Select) or tree.args.get("distinct") is not None:
        return None
    order, limit = tree.args.get("order"), tree.args.get("limit")
    if order is None or limit is None or tree.args.get("offset") is not None:
        return None
    lit = limit.expression
    if not isinstance(lit, exp.Literal) or lit.is_string or not lit.this.isdigit():
        return None
    n = int(lit.this)
    probe = tree.copy()
    for ordered in probe.args["order"].expressions:
        probe.append("expressions", ordered.this.copy())
    probe.args["limit"].set("expression", exp.Literal.number(n + 1))
    return probe.sql(dialect="sqlite"), n


def _tied_at_cut(db: str, probe: tuple[str, int], width: int) -> bool:
    """Whether rows n and n+1 of the probe have equal keys (``width`` = the gold's column count)."""
    sql, n = probe
    res = execute_sql(db, sql, timeout_s=GOLD_TIMEOUT_S, max_rows=MAX_ROWS)
    if not res.ok or len(res.rows) <= n or n == 0:
        return False
    return res.rows[n - 1][width:] == res.rows[n][width:]


@dataclass
class _Candidate:
    path: Path
    profile: Profile
    gold: ExecResult
    kills: set[int]
    informative: bool
    ambiguous: bool
    size: int  # total rows
    coverage: int  # literals and neighbours of the gold present in their columns


def _coverage(plan: _Plan, data: dict[str, list[tuple]]) -> int:
    """How many (column, literal-or-neighbour) pairs of the gold occur in the data."""
    total = 0
    for table in plan.schema.tables:
        rows = data[table.name]
        for i, col in enumerate(table.columns):
            pool = plan.columns[(table.name, col.name)].literal_pool
            if pool and rows:
                present = {r[i] for r in rows}
                total += sum(1 for v in pool if v in present)
    return total


def _select(cands: list[_Candidate], k: int) -> list[_Candidate]:
    """Greedy set cover over mutant kills; the first pick has an informative gold result if any does."""
    ok = [c for c in cands if c.gold.ok]
    eligible = [c for c in ok if not c.ambiguous] or ok
    chosen: list[_Candidate] = []
    covered: set[int] = set()
    remaining = list(eligible)
    while remaining and len(chosen) < k:
        need_informative = not any(c.informative for c in chosen) and any(c.informative for c in remaining)
        pool = [c for c in remaining if c.informative] if need_informative else remaining
        best = max(pool, key=lambda c: (len(c.kills - covered), c.informative, c.coverage, len(c.kills), -c.size))
        chosen.append(best)
        covered |= best.kills
        remaining.remove(best)
    return chosen


# ---------------------------------------------------------------------------------------------
# Entry point


def _cache_key(context: str, gold_sql: str, k: int, seed: int) -> str:
    payload = json.dumps([GENERATOR_VERSION, context, gold_sql, k, seed], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _seed_for(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def _load_cached(final: Path) -> SynthResult | None:
    meta = final / "result.json"
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    paths = tuple(str(final / name) for name in data["db_files"])
    if not all(os.path.isfile(p) for p in paths):
        return None
    stats = dict(data["stats"], cached=True)
    return SynthResult(paths, data["gold_nonempty"], data["error"], data["error_kind"], stats)


def synthesize_databases(
    context: str, gold_sql: str, *, k: int = 3, seed: int = 0, cache_dir: str | Path
) -> SynthResult:
    """k populated SQLite databases for ``context`` on which ``gold_sql`` is informative and its
    mutants differ from it (see the module docstring). Deterministic for (context, gold, k, seed,
    GENERATOR_VERSION) and cached on disk under ``cache_dir``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    root = Path(cache_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    key = _cache_key(context, gold_sql, k, seed)
    final = root / key
    cached = _load_cached(final)
    if cached is not None:
        return cached
    tmp = root / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        result, files = _synthesize_into(tmp, context, gold_sql, k, seed)
        meta = {
            "db_files": files,
            "gold_nonempty": result.gold_nonempty,
            "error": result.error,
            "error_kind": result.error_kind,
            "stats": result.stats,
        }
        (tmp / "result.json").write_text(json.dumps(meta, indent=1))
        if final.exists() and _load_cached(final) is None:
            # a broken entry (files deleted by hand): move it aside, then replace it
            trash = root / f".trash-{uuid.uuid4().hex}"
            try:
                os.rename(final, trash)
            except OSError:
                pass  # someone else moved it already
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            # another process finished the same key first (its result is identical): use it
            if _load_cached(final) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    loaded = _load_cached(final)
    if loaded is None:
        raise RuntimeError(f"synthesis cache entry {final} is unreadable right after writing it")
    stats = dict(result.stats, cached=False)
    return SynthResult(loaded.db_paths, loaded.gold_nonempty, loaded.error, loaded.error_kind, stats)


def _synthesize_into(tmp: Path, context: str, gold_sql: str, k: int, seed: int) -> tuple[SynthResult, list[str]]:
    """Build the pool in ``tmp``, keep the chosen k as ``db_<i>.sqlite`` there; returns the result
    (paths relative to ``tmp``) and the kept file names."""
    started = time.perf_counter()
    try:
        schema = parse_schema(context)
    except SchemaError as exc:
        return SynthResult((), False, str(exc), "schema", {"seconds": time.perf_counter() - started}), []
    hints = analyze_gold(gold_sql, schema)
    mutants: list[Mutant] = []
    if hints.parsed:
        mutants = mutate_query(gold_sql, seed=SYNTH_MUTANT_SEED, schema=schema, max_per_kind=MAX_MUTANTS_PER_KIND)
    order_matters = query_has_order_by(gold_sql)
    probe = _tie_probe(gold_sql)
    plan = make_plan(schema, hints, _seed_for("plan", seed, context, gold_sql))
    rng = random.Random(_seed_for("profiles", seed, context, gold_sql))
    pool_size = max(POOL_SIZE, k + 4)
    profiles = list(POOL_PROFILES[:pool_size])
    while len(profiles) < pool_size:
        profiles.append(random_profile(rng))

    cands: list[_Candidate] = []
    # Mutants that hit their deadline somewhere: a timeout depends on the machine's load, so
    # they take no part in the choice (which must be deterministic) and are not run again.
    timed_out: set[int] = set()

    def run_candidate(i: int, profile: Profile) -> _Candidate:
        data = fill_database(plan, profile, _seed_for("fill", seed, context, gold_sql, i))
        path = tmp / f"cand_{i}.sqlite"
        write_database(path, schema, data)
        db = str(path)
        gold = execute_sql(db, gold_sql, timeout_s=GOLD_TIMEOUT_S, max_rows=MAX_ROWS)
        kills: set[int] = set()
        if gold.ok:
            for j, m in enumerate(mutants):
                if j in timed_out:
                    continue
                res = execute_sql(db, m.sql, timeout_s=MUTANT_TIMEOUT_S, max_rows=MAX_ROWS)
                if res.error is ErrorKind.TIMEOUT:
                    timed_out.add(j)
                elif not res.ok or not results_match(gold, res, order_matters=order_matters):
                    kills.add(j)
        ambiguous = bool(gold.ok and probe is not None and _tied_at_cut(db, probe, len(gold.columns)))
        size = sum(len(r) for r in data.values())
        return _Candidate(path, profile, gold, kills, informative(gold), ambiguous, size, _coverage(plan, data))

    for i, profile in enumerate(profiles):
        cands.append(run_candidate(i, profile))
    if not any(c.informative and not c.ambiguous for c in cands) and any(c.gold.ok for c in cands):
        for j in range(EXTRA_CANDIDATES):
            cands.append(run_candidate(len(cands), _dense_profile(j, hints.having_threshold)))
            if cands[-1].informative and not cands[-1].ambiguous:
                break

    stats: dict[str, Any] = {
        "candidates": len(cands),
        "mutants": len(mutants),
        "gold_parsed": hints.parsed,
        "ambiguous_candidates": sum(c.ambiguous for c in cands),
    }
    if not any(c.gold.ok for c in cands):
        failure = cands[0].gold
        kind = failure.error.value if failure.error is not None else "unknown"
        stats["seconds"] = time.perf_counter() - started
        message = f"the gold query fails on the synthesized schema ({kind}): {failure.message}"
        return SynthResult((), False, message, "gold_error", stats), []

    # Mutants that every candidate kills say nothing about the choice; leave them out of it.
    full_kills = {id(c): set(c.kills) - timed_out for c in cands}
    always = set.intersection(*(c.kills for c in cands if c.gold.ok))
    for c in cands:
        c.kills -= always | timed_out
    chosen = _select(cands, k)
    files = []
    for i, c in enumerate(chosen):
        name = f"db_{i}.sqlite"
        os.rename(c.path, tmp / name)
        files.append(name)
    for c in cands:
        if c not in chosen:
            c.path.unlink()
    killable = set().union(*(full_kills[id(c)] for c in cands))
    killed = set().union(*(full_kills[id(c)] for c in chosen))
    stats.update(
        mutants_killed_by_every_candidate=len(always - timed_out),
        mutants_timed_out=len(timed_out),
        mutants_killable=len(killable),
        mutants_killed=len(killed),
        gold_rows=[len(c.gold.rows) for c in chosen],
        profiles=[cands.index(c) for c in chosen],
        seconds=time.perf_counter() - started,
    )
    gold_nonempty = any(c.informative for c in chosen)
    return SynthResult(tuple(files), gold_nonempty, None, None, stats), files
