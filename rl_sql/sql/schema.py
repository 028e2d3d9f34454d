"""Database schemas: parsed from CREATE TABLE text or read from a SQLite file, rendered back as context.

``parse_schema(context)`` reads the CREATE TABLE statements of a prompt context: the
sql-create-context style (``CREATE TABLE head (age INTEGER)``, several joined by ``;``) and
Spider's real DDL from ``sqlite_master`` (quoted names, ``PRIMARY KEY (a, b)``, ``FOREIGN KEY``
clauses, inline ``REFERENCES``, ``VARCHAR(20)``, ``NUMBER``, no type at all...).

It tokenizes with sqlglot's SQLite tokenizer (quoting, comments, strings) and follows SQLite's
own CREATE TABLE grammar over the tokens instead of sqlglot's parser, because SQLite accepts DDL
that sqlglot's parser rejects: table constraints without commas between them and multi-word
type names (``unsigned big int``, ``character varchar(3)``) -- 8 of Spider's 821 tables. The
declared type is kept as written, and the column affinity follows SQLite's rules
(https://www.sqlite.org/datatype3.html, 3.1).

``Schema.to_context()`` renders one ``CREATE TABLE`` per table, joined with ``"; "`` (the
sql-create-context convention), with declared types, ``NOT NULL``, a ``PRIMARY KEY (...)`` clause
and one ``FOREIGN KEY (c) REFERENCES t(c)`` clause per foreign key (the synthesizer needs all
three: no NULLs where the real data has none, unique keys, joinable references). ``CHECK``,
``DEFAULT``, ``COLLATE`` and ``UNIQUE`` are left out to keep prompts short. Names are
double-quoted only when they are not plain identifiers.

The second half of the module looks at queries against a schema: ``tables_used(sql)`` and
``bind_columns(tree, schema)`` (which table column each column reference means, and which
double-quoted "identifiers" are really string literals, as SQLite reads them).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

Affinity = Literal["INTEGER", "REAL", "TEXT", "NUMERIC", "BLOB"]


class SchemaError(ValueError):
    """A context (or database) from which no usable schema can be read; the message says why."""


class QueryParseError(ValueError):
    """A query that sqlglot cannot parse as SQLite."""


def type_affinity(declared_type: str) -> Affinity:
    """SQLite's column affinity of a declared type (datatype3.html, section 3.1, rules in order)."""
    t = declared_type.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t.strip():
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = ""
    """Declared type as written (``VARCHAR(20)``, ``int``, ``""`` when there is none)."""
    not_null: bool = False
    collate: str | None = None

    @property
    def affinity(self) -> Affinity:
        return type_affinity(self.type)


@dataclass(frozen=True)
class ForeignKey:
    column: str
    ref_table: str
    ref_column: str | None
    """None: the referenced table's primary key (``REFERENCES t`` without a column list)."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    """UNIQUE column sets (column or table constraints), besides the primary key."""

    def column(self, name: str) -> Column | None:
        """The column called ``name`` (case-insensitive, as in SQLite), or None."""
        low = name.lower()
        for col in self.columns:
            if col.name.lower() == low:
                return col
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Schema:
    tables: tuple[Table, ...]
    _by_name: dict[str, Table] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {t.name.lower(): t for t in self.tables})

    def table(self, name: str) -> Table | None:
        """The table called ``name`` (case-insensitive), or None."""
        return self._by_name.get(name.lower())

    def resolve_fk(self, fk: ForeignKey) -> tuple[str, str] | None:
        """(table, column) that ``fk`` points at, in the schema's spelling; None if it points nowhere."""
        ref = self.table(fk.ref_table)
        if ref is None:
            return None
        if fk.ref_column is None:
            return (ref.name, ref.primary_key[0]) if len(ref.primary_key) == 1 else None
        col = ref.column(fk.ref_column)
        return (ref.name, col.name) if col is not None else None

    def to_context(self, tables: Iterable[str] | None = None) -> str:
        """CREATE TABLE statements joined with ``"; "``: every table, or those named in ``tables``
        (case-insensitive, in schema order; unknown names are an error)."""
        chosen = self.tables
        if tables is not None:
            wanted = {t.lower() for t in tables}
            unknown = wanted - set(self._by_name)
            if unknown:
                known = [t.name for t in self.tables]
                raise SchemaError(f"to_context: unknown tables {sorted(unknown)}; the schema has {known}")
            chosen = tuple(t for t in self.tables if t.name.lower() in wanted)
        return "; ".join(_render_table(t) for t in chosen)


# ---------------------------------------------------------------------------------------------
# Rendering


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words that SQLite (or sqlglot, when it reads the context back) would not take as a bare name.
_RESERVED = {
    "abort", "action", "add", "after", "all", "alter", "analyze", "and", "as", "asc", "attach", "autoincrement",
    "before", "begin", "between", "by", "cascade", "case", "cast", "check", "collate", "column", "commit",
    "conflict", "constraint", "create", "cross", "current", "current_date", "current_time", "current_timestamp",
    "database", "default", "deferrable", "deferred", "delete", "desc", "detach", "distinct", "do", "drop", "each",
    "else", "end", "escape", "except", "exclusive", "exists", "explain", "fail", "filter", "following", "for",
    "foreign", "from", "full", "glob", "group", "having", "if", "ignore", "immediate", "in", "index", "indexed",
    "initially", "inner", "insert", "instead", "intersect", "into", "is", "isnull", "join", "key", "left", "like",
    "limit", "match", "natural", "no", "not", "nothing", "notnull", "null", "of", "offset", "on", "or", "order",
    "outer", "over", "partition", "plan", "pragma", "preceding", "primary", "query", "raise", "range", "recursive",
    "references", "regexp", "reindex", "release", "rename", "replace", "restrict", "right", "rollback", "row",
    "rows", "savepoint", "select", "set", "table", "temp", "temporary", "then", "to", "transaction", "trigger",
    "unbounded", "union", "unique", "update", "using", "vacuum", "values", "view", "virtual", "when", "where",
    "window", "with", "without",
}


def quote_name(name: str) -> str:
    """``name`` as a SQLite identifier: bare when plain, else double-quoted."""
    if _PLAIN_NAME.match(name) and name.lower() not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _render_table(table: Table) -> str:
    parts = [f"{quote_name(c.name)} {c.type}".rstrip() + (" NOT NULL" if c.not_null else "") for c in table.columns]
    if table.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(quote_name(c) for c in table.primary_key)})")
    for fk in table.foreign_keys:
        ref = quote_name(fk.ref_table) + (f"({quote_name(fk.ref_column)})" if fk.ref_column else "")
        parts.append(f"FOREIGN KEY ({quote_name(fk.column)}) REFERENCES {ref}")
    return f"CREATE TABLE {quote_name(table.name)} ({', '.join(parts)})"


# ---------------------------------------------------------------------------------------------
# Parsing CREATE TABLE text


# Words that end a column's type name and start a column constraint.
_COLUMN_CONSTRAINT_WORDS = {
    "CONSTRAINT", "PRIMARY", "PRIMARY KEY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE",
    "REFERENCES", "GENERATED", "AS", "AUTOINCREMENT",
}
_TABLE_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "PRIMARY KEY", "UNIQUE", "CHECK", "FOREIGN", "FOREIGN KEY"}


class _Tokens:
    """A cursor over the tokens of one statement."""

    def __init__(self, tokens: list[Token], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.i = 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, ahead: int = 0) -> str:
        """Upper-case text of an unquoted token ('' for quoted names, strings and the end)."""
        tok = self.peek(ahead)
        if tok is None or tok.token_type in (TokenType.IDENTIFIER, TokenType.STRING):
            return ""
        return " ".join(tok.text.upper().split())

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise SchemaError("unexpected end of CREATE TABLE statement")
        self.i += 1
        return tok

    def accept(self, *words: str) -> bool:
        if self.word() in words:
            self.i += 1
            return True
        return False

    def at(self, token_type: TokenType) -> bool:
        tok = self.peek()
        return tok is not None and tok.token_type == token_type

    def skip_parens(self) -> None:
        """Skip a balanced ``( ... )`` group starting at the cursor."""
        depth = 0
        while True:
            tok = self.next()
            if tok.token_type == TokenType.L_PAREN:
                depth += 1
            elif tok.token_type == TokenType.R_PAREN:
                depth -= 1
                if depth == 0:
                    return


def _is_name(tok: Token | None) -> bool:
    """Identifiers, bare words (keywords are fine as column names: ``year``, ``text``), and strings
    (SQLite takes ``'name'`` as a name where one is expected)."""
    if tok is None:
        return False
    if tok.token_type in (TokenType.IDENTIFIER, TokenType.VAR, TokenType.STRING):
        return True
    return bool(re.match(r"^[A-Za-z_][A-Za-z0-9_$]*$", tok.text))


def _name(cur: _Tokens) -> str:
    """A possibly qualified name (``main.t`` -> ``t``)."""
    tok = cur.next()
    if not _is_name(tok):
        raise SchemaError(f"expected a name, found {tok.text!r}")
    name = tok.text
    while cur.at(TokenType.DOT):
        cur.next()
        name = cur.next().text
    return name


def _name_list(cur: _Tokens) -> list[str]:
    """``(a, b COLLATE x DESC, ...)`` -> ``[a, b]``."""
    if not cur.at(TokenType.L_PAREN):
        raise SchemaError(f"expected '(' before a column list, found {cur.peek().text if cur.peek() else 'the end'!r}")
    cur.next()
    names: list[str] = []
    expecting_name = True
    depth = 0
    while True:
        tok = cur.next()
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            if depth == 0:
                return names
            depth -= 1
        elif tok.token_type == TokenType.COMMA and depth == 0:
            expecting_name = True
        elif expecting_name and depth == 0:
            names.append(tok.text)
            expecting_name = False


def _skip_to_item_end(cur: _Tokens, stop_words: set[str]) -> None:
    """Advance to the ``,`` or ``)`` that ends the current item, or to a word in ``stop_words``."""
    while True:
        tok = cur.peek()
        if tok is None:
            raise SchemaError("unexpected end of CREATE TABLE statement (missing ')')")
        if tok.token_type in (TokenType.COMMA, TokenType.R_PAREN) or cur.word() in stop_words:
            return
        if tok.token_type == TokenType.L_PAREN:
            cur.skip_parens()
        else:
            cur.next()


def _references(cur: _Tokens) -> tuple[str, list[str]]:
    """After ``REFERENCES``: the table and its column list (possibly empty); skips ON/MATCH/DEFERRABLE."""
    table = _name(cur)
    cols = _name_list(cur) if cur.at(TokenType.L_PAREN) else []
    return table, cols


@dataclass
class _TableBuilder:
    name: str
    columns: list[Column] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    unique: list[tuple[str, ...]] = field(default_factory=list)

    def build(self) -> Table:
        if not self.columns:
            raise SchemaError(f"table {self.name!r} has no columns")
        canon = {c.name.lower(): c.name for c in self.columns}

        def fix(col: str, what: str) -> str:
            if col.lower() not in canon:
                raise SchemaError(f"table {self.name!r}: {what} names column {col!r}, which the table does not have")
            return canon[col.lower()]

        pk = tuple(fix(c, "PRIMARY KEY") for c in self.primary_key)
        fks = tuple(ForeignKey(fix(fk.column, "FOREIGN KEY"), fk.ref_table, fk.ref_column) for fk in self.foreign_keys)
        unique = tuple(tuple(fix(c, "UNIQUE") for c in u) for u in self.unique)
        return Table(self.name, tuple(self.columns), pk, fks, unique)


def _column_def(cur: _Tokens, table: _TableBuilder) -> None:
    name = _name(cur)
    # Type name: words up to a constraint word, then an optional (n) or (n, m).
    type_start = type_end = None
    while cur.peek() is not None and not cur.at(TokenType.COMMA) and not cur.at(TokenType.R_PAREN):
        if cur.at(TokenType.L_PAREN):
            if type_start is None:
                raise SchemaError(f"column {name!r}: unexpected '(' after the name")
            cur.skip_parens()
            type_end = cur.tokens[cur.i - 1].end
            break
        if cur.word() in _COLUMN_CONSTRAINT_WORDS or not _is_name(cur.peek()) or cur.at(TokenType.STRING):
            break
        tok = cur.next()
        if type_start is None:
            type_start = tok.start
        type_end = tok.end
    declared = cur.text[type_start : type_end + 1] if type_start is not None else ""
    declared = " ".join(declared.split())
    not_null = False
    collate: str | None = None
    while not cur.at(TokenType.COMMA) and not cur.at(TokenType.R_PAREN):
        if cur.peek() is None:
            raise SchemaError(f"column {name!r}: unexpected end of statement")
        if cur.accept("CONSTRAINT"):
            _name(cur)
        elif cur.accept("PRIMARY KEY") or (cur.word(1) == "KEY" and cur.accept("PRIMARY") and cur.accept("KEY")):
            table.primary_key.append(name)
            _skip_to_item_end(cur, _COLUMN_CONSTRAINT_WORDS - {"PRIMARY", "PRIMARY KEY", "AUTOINCREMENT"})
        elif cur.accept("NOT"):
            if cur.accept("NULL"):
                not_null = True
        elif cur.accept("UNIQUE"):
            table.unique.append((name,))
        elif cur.accept("REFERENCES"):
            ref_table, ref_cols = _references(cur)
            table.foreign_keys.append(ForeignKey(name, ref_table, ref_cols[0] if ref_cols else None))
            _skip_to_item_end(cur, _COLUMN_CONSTRAINT_WORDS)
        elif cur.accept("COLLATE"):
            collate = cur.next().text
        elif cur.at(TokenType.L_PAREN):
            cur.skip_parens()
        else:
            cur.next()
            _skip_to_item_end(cur, _COLUMN_CONSTRAINT_WORDS)
    table.columns.append(Column(name=name, type=declared, not_null=not_null, collate=collate))


def _table_constraint(cur: _Tokens, table: _TableBuilder) -> None:
    if cur.accept("CONSTRAINT"):
        _name(cur)
    if cur.accept("PRIMARY KEY") or (cur.accept("PRIMARY") and cur.accept("KEY")):
        table.primary_key.extend(_name_list(cur))
    elif cur.accept("UNIQUE"):
        table.unique.append(tuple(_name_list(cur)))
    elif cur.accept("FOREIGN KEY") or (cur.accept("FOREIGN") and cur.accept("KEY")):
        cols = _name_list(cur)
        if not cur.accept("REFERENCES"):
            raise SchemaError(f"table {table.name!r}: FOREIGN KEY ({', '.join(cols)}) without REFERENCES")
        ref_table, ref_cols = _references(cur)
        if ref_cols and len(ref_cols) != len(cols):
            raise SchemaError(
                f"table {table.name!r}: FOREIGN KEY ({', '.join(cols)}) references {len(ref_cols)} columns"
            )
        for i, col in enumerate(cols):
            table.foreign_keys.append(ForeignKey(col, ref_table, ref_cols[i] if ref_cols else None))
    elif cur.accept("CHECK"):
        cur.skip_parens()
    else:
        raise SchemaError(f"table {table.name!r}: unknown table constraint starting at {cur.peek().text!r}")
    # SQLite tolerates a missing comma between table constraints (Spider's DDL relies on it).
    _skip_to_item_end(cur, _TABLE_CONSTRAINT_WORDS)


def _create_table(cur: _Tokens) -> Table | None:
    """Parse ``CREATE [TEMP] TABLE [IF NOT EXISTS] name (defs...)`` at the cursor; None for
    ``CREATE TABLE ... AS SELECT`` (no declared columns)."""
    cur.accept("CREATE")
    cur.accept("TEMP", "TEMPORARY")
    if not cur.accept("TABLE"):
        raise SchemaError("expected TABLE after CREATE")
    if cur.word() == "IF":
        cur.next()
        cur.accept("NOT")
        cur.accept("EXISTS")
    table = _TableBuilder(_name(cur))
    if not cur.at(TokenType.L_PAREN):
        return None
    cur.next()
    while True:
        tok = cur.peek()
        if tok is None:
            raise SchemaError(f"table {table.name!r}: missing ')' at the end of the column list")
        if tok.token_type == TokenType.R_PAREN:
            cur.next()
            break
        if tok.token_type == TokenType.COMMA:
            cur.next()
            continue
        if cur.word() in _TABLE_CONSTRAINT_WORDS and not (cur.word() == "PRIMARY" and cur.word(1) != "KEY"):
            _table_constraint(cur, table)
        else:
            _column_def(cur, table)
    return table.build()


def _statements(context: str) -> list[list[Token]]:
    try:
        tokens = SQLite().tokenize(context)
    except SqlglotError as exc:
        raise SchemaError(f"cannot tokenize the schema context: {exc}") from None
    stmts: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            stmts.append([])
        else:
            stmts[-1].append(tok)
    return [s for s in stmts if s]


def parse_schema(context: str) -> Schema:
    """Tables, typed columns, primary and foreign keys of the CREATE TABLE statements in ``context``.

    Other statements (CREATE INDEX, INSERT...) are ignored. Raises SchemaError naming the
    problem when a CREATE TABLE statement cannot be read, when a table appears twice, or when
    there is no CREATE TABLE statement at all.
    """
    tables: list[Table] = []
    for stmt in _statements(context):
        cur = _Tokens(stmt, context)
        temp = cur.word(1) in ("TEMP", "TEMPORARY")
        is_create_table = cur.word() == "CREATE" and cur.word(2 if temp else 1) == "TABLE"
        if not is_create_table:
            continue
        snippet = " ".join(context[stmt[0].start : stmt[-1].end + 1].split())[:120]
        try:
            table = _create_table(cur)
            if table is not None and cur.peek() is not None:
                raise SchemaError(f"unexpected {cur.peek().text!r} after the column list")
        except SchemaError as exc:
            raise SchemaError(f"cannot read CREATE TABLE statement {snippet!r}: {exc}") from None
        if table is None:
            continue
        if any(t.name.lower() == table.name.lower() for t in tables):
            raise SchemaError(f"table {table.name!r} is created twice in the context")
        tables.append(table)
    if not tables:
        raise SchemaError(f"no CREATE TABLE statement with columns in the context: {' '.join(context.split())[:120]!r}")
    return Schema(tuple(tables))


def schema_from_sqlite(db_path: str | Path) -> Schema:
    """The schema of a SQLite file, from ``sqlite_master`` and ``PRAGMA table_info`` /
    ``foreign_key_list`` on a read-only connection (SQLite's own reading of the DDL; it reports
    some declared types upper-cased, ``int`` as ``INT``, with the same affinity)."""
    path = Path(db_path)
    if not path.is_file():
        raise SchemaError(f"database file {path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        listing = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        names = [r[0] for r in conn.execute(listing)]
        tables: list[Table] = []
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            info = conn.execute(f"PRAGMA table_info({quoted})").fetchall()  # cid, name, type, notnull, dflt, pk
            columns = tuple(Column(name=r[1], type=" ".join((r[2] or "").split()), not_null=bool(r[3])) for r in info)
            pk = tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
            fk_rows = conn.execute(f"PRAGMA foreign_key_list({quoted})").fetchall()  # id, seq, table, from, to, ...
            fks = []
            canon = {c.name.lower(): c.name for c in columns}
            for r in sorted(fk_rows, key=lambda r: (-r[0], r[1])):  # id counts from the last clause
                if r[3].lower() in canon:
                    fks.append(ForeignKey(canon[r[3].lower()], r[2], r[4]))
            tables.append(Table(name, columns, pk, tuple(fks)))
    except sqlite3.Error as exc:
        raise SchemaError(f"cannot read the schema of {path}: {exc}") from None
    finally:
        conn.close()
    if not tables:
        raise SchemaError(f"database {path} has no tables")
    return Schema(tuple(tables))


# ---------------------------------------------------------------------------------------------
# Queries against a schema


def parse_query(sql: str) -> exp.Expression:
    """One SQLite statement as a sqlglot tree; QueryParseError when it is not parseable."""
    try:
        trees = [t for t in sqlglot.parse(sql, read="sqlite") if t is not None]
    except SqlglotError as exc:
        raise QueryParseError(f"cannot parse query {sql[:200]!r}: {str(exc).splitlines()[0]}") from None
    if len(trees) != 1:
        raise QueryParseError(f"expected one statement, found {len(trees)} in {sql[:200]!r}")
    return trees[0]


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def tables_used(sql: str) -> set[str]:
    """Names of the tables a query reads, as written in it (CTE names excluded)."""
    tree = parse_query(sql)
    ctes = _cte_names(tree)
    return {t.name for t in tree.find_all(exp.Table) if t.name and t.name.lower() not in ctes}


@dataclass(frozen=True)
class Bindings:
    """What the column references of a parsed query mean, keyed by ``id(node)``."""

    columns: dict[int, tuple[str, str]]
    """Column node -> (table, column) in the schema's spelling."""
    string_literals: set[int]
    """Column nodes that SQLite reads as string literals: a double-quoted name that is not a column
    of any table in scope (``WHERE name = "Bob"``, common in Spider)."""


def _scope_sources(select: exp.Select, schema: Schema) -> list[tuple[str, object]]:
    """(alias-or-name lowercase, Table | dict[column lower -> (table, column) | None]) for the
    FROM and JOIN items of one SELECT. Derived tables map their output names to base columns."""
    items: list[exp.Expression] = []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        items.append(from_.this)
    for join in select.args.get("joins") or []:
        items.append(join.this)
    sources: list[tuple[str, object]] = []
    for item in items:
        if isinstance(item, exp.Table):
            table = schema.table(item.name)
            if table is not None:
                sources.append((item.alias_or_name.lower(), table))
        elif isinstance(item, exp.Subquery):
            inner = item.this
            outputs: dict[str, tuple[str, str] | None] = {}
            if isinstance(inner, exp.Select):
                for proj in inner.expressions:
                    outputs[proj.alias_or_name.lower()] = None
            sources.append((item.alias_or_name.lower(), outputs))
    return sources


def bind_columns(tree: exp.Expression, schema: Schema) -> Bindings:
    """Resolve each column reference of ``tree`` to a schema column, SQLite-style: a qualified
    reference by its table alias or name, an unqualified one by the first table in the innermost
    enclosing SELECT that has the column, then the outer SELECTs (correlated subqueries).
    Unresolvable references (select aliases, derived-table columns) are left out."""
    scopes: dict[int, list[tuple[str, object]]] = {}
    bound: dict[int, tuple[str, str]] = {}
    strings: set[int] = set()
    for col in tree.find_all(exp.Column):
        if not col.name:
            continue
        selects = []
        node = col.parent
        while node is not None:
            if isinstance(node, exp.Select):
                selects.append(node)
            node = node.parent
        target: tuple[str, str] | None = None
        in_scope = False
        qualifier = col.table.lower()
        for sel in selects:
            if id(sel) not in scopes:
                scopes[id(sel)] = _scope_sources(sel, schema)
            for alias, source in scopes[id(sel)]:
                if qualifier and alias != qualifier:
                    continue
                if isinstance(source, Table):
                    c = source.column(col.name)
                    if c is not None:
                        target = (source.name, c.name)
                        in_scope = True
                        break
                elif col.name.lower() in source:
                    in_scope = True
                    break
            if target is not None or in_scope:
                break
        if target is not None:
            bound[id(col)] = target
        elif not in_scope and not qualifier and col.this.args.get("quoted") and not _is_select_alias(col, selects):
            strings.add(id(col))
    return Bindings(bound, strings)


def _is_select_alias(col: exp.Column, selects: list[exp.Select]) -> bool:
    name = col.name.lower()
    return any(isinstance(p, exp.Alias) and p.alias.lower() == name for sel in selects[:1] for p in sel.expressions)
