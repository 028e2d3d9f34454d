"""rl_sql/sql/schema.py: CREATE TABLE parsing (both context styles), keys, rendering, query analysis."""

from __future__ import annotations

import sqlite3

import pytest
from sqlglot import exp

from rl_sql.sql.schema import (
    Column,
    ForeignKey,
    QueryParseError,
    Schema,
    SchemaError,
    bind_columns,
    parse_query,
    parse_schema,
    quote_name,
    schema_from_sqlite,
    tables_used,
    type_affinity,
)

CREATE_CONTEXT = (
    "CREATE TABLE head (age INTEGER); "
    "CREATE TABLE management (department_id VARCHAR, head_id VARCHAR, temporary_acting VARCHAR); "
    "CREATE TABLE department (name VARCHAR, department_id VARCHAR, budget_in_billions REAL)"
)

# Spider's DDL as stored in sqlite_master, quirks included: quoted and back-quoted names, a
# composite key, FOREIGN KEY clauses with no comma between them, inline REFERENCES, a reference
# without a column list, multi-word types, comments, CHECK, no type at all.
SPIDER_DDL = """
CREATE TABLE IF NOT EXISTS "department" (
"Department_ID" int,
"Name" text,
"Budget_in_Billions" real,
PRIMARY KEY ("Department_ID")
);
CREATE TABLE IF NOT EXISTS "head" (
"head_ID" int,
"name" text,
"age" real,
PRIMARY KEY ("head_ID")
);
CREATE TABLE IF NOT EXISTS "management" (
"department_ID" int,
"head_ID" int,
"temporary_acting" text,
PRIMARY KEY ("Department_ID","head_ID"),
FOREIGN KEY ("Department_ID") REFERENCES `department`("Department_ID")
FOREIGN KEY ("head_ID") REFERENCES `head`("head_ID")
);
CREATE TABLE airports (
   apid integer PRIMARY KEY,      -- Id of the airport
   name text NOT NULL,            -- Name of airport
   elevation unsigned big int,
   iata character varchar(3),     -- 3-letter code; empty or null if unknown
   budget numeric(12,2) check (budget > 0),
   dept int REFERENCES department,
   note
);
CREATE INDEX airports_name ON airports (name);
"""


def test_sql_create_context_style() -> None:
    schema = parse_schema(CREATE_CONTEXT)
    assert [t.name for t in schema.tables] == ["head", "management", "department"]
    head = schema.table("HEAD")
    assert head is not None and head.columns == (Column("age", "INTEGER"),)
    dept = schema.table("department")
    assert dept is not None
    assert [(c.name, c.type, c.affinity) for c in dept.columns] == [
        ("name", "VARCHAR", "TEXT"),
        ("department_id", "VARCHAR", "TEXT"),
        ("budget_in_billions", "REAL", "REAL"),
    ]
    assert dept.primary_key == () and dept.foreign_keys == ()


def test_spider_ddl_keys_and_types() -> None:
    schema = parse_schema(SPIDER_DDL)
    assert [t.name for t in schema.tables] == ["department", "head", "management", "airports"]
    mgmt = schema.table("management")
    assert mgmt is not None
    # key columns take the table's spelling, whatever case the constraint used
    assert mgmt.primary_key == ("department_ID", "head_ID")
    assert mgmt.foreign_keys == (
        ForeignKey("department_ID", "department", "Department_ID"),
        ForeignKey("head_ID", "head", "head_ID"),
    )
    assert schema.resolve_fk(mgmt.foreign_keys[0]) == ("department", "Department_ID")
    airports = schema.table("airports")
    assert airports is not None
    types = {c.name: (c.type, c.affinity) for c in airports.columns}
    assert types == {
        "apid": ("integer", "INTEGER"),
        "name": ("text", "TEXT"),
        "elevation": ("unsigned big int", "INTEGER"),
        "iata": ("character varchar(3)", "TEXT"),
        "budget": ("numeric(12,2)", "NUMERIC"),
        "dept": ("int", "INTEGER"),
        "note": ("", "BLOB"),
    }
    assert airports.primary_key == ("apid",)
    name_col = airports.column("NAME")
    assert name_col is not None and name_col.not_null
    # REFERENCES without a column list points at the referenced table's primary key
    (fk,) = airports.foreign_keys
    assert fk == ForeignKey("dept", "department", None)
    assert schema.resolve_fk(fk) == ("department", "Department_ID")


@pytest.mark.parametrize(
    ("declared", "affinity"),
    [
        ("INT", "INTEGER"), ("TINYINT UNSIGNED", "INTEGER"), ("bigint(20)", "INTEGER"),
        ("VARCHAR(20)", "TEXT"), ("NCHAR(5)", "TEXT"), ("CLOB", "TEXT"), ("text", "TEXT"),
        ("BLOB", "BLOB"), ("", "BLOB"),
        ("REAL", "REAL"), ("DOUBLE PRECISION", "REAL"), ("float(10,2)", "REAL"),
        ("NUMBER", "NUMERIC"), ("DECIMAL(19,4)", "NUMERIC"), ("BOOL", "NUMERIC"), ("DATETIME", "NUMERIC"),
    ],
)
def test_affinity_follows_sqlite_rules(declared: str, affinity: str) -> None:
    assert type_affinity(declared) == affinity


def test_to_context_round_trips_and_selects_tables() -> None:
    schema = parse_schema(SPIDER_DDL)
    context = schema.to_context()
    assert context.count("CREATE TABLE") == 4 and "; CREATE TABLE" in context
    assert parse_schema(context) == schema
    part = schema.to_context(["HEAD", "management"])
    assert [t.name for t in parse_schema(part).tables] == ["head", "management"]
    assert "FOREIGN KEY (department_ID) REFERENCES department(Department_ID)" in part
    with pytest.raises(SchemaError, match="unknown tables"):
        schema.to_context(["nope"])


def test_quote_name_only_when_needed() -> None:
    assert quote_name("head_ID") == "head_ID"
    assert quote_name("%_Change_2007") == '"%_Change_2007"'
    assert quote_name("order") == '"order"'
    assert quote_name('a"b') == '"a""b"'
    weird = Schema((parse_schema('CREATE TABLE "my table" ("order" int, "%x" text)').tables[0],))
    assert parse_schema(weird.to_context()) == weird


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("", "no CREATE TABLE"),
        ("SELECT 1; INSERT INTO t VALUES (1)", "no CREATE TABLE"),
        ("CREATE TABLE t (a int", "unexpected end"),
        ("CREATE TABLE t (a int); CREATE TABLE T (b int)", "created twice"),
        ("CREATE TABLE t (a int, PRIMARY KEY (b))", "does not have"),
        ("CREATE TABLE t ()", "no columns"),
        ("CREATE TABLE t (a int, FOREIGN KEY (a))", "without REFERENCES"),
        ("CREATE TABLE t (a 'unterminated)", "tokenize"),
    ],
)
def test_errors_name_the_problem(context: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_schema(context)


def test_schema_from_sqlite_matches_parsed_ddl(tmp_path) -> None:
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SPIDER_DDL)
    conn.close()
    from_file = schema_from_sqlite(path)
    parsed = parse_schema(SPIDER_DDL)
    assert [t.name for t in from_file.tables] == [t.name for t in parsed.tables]
    for a, b in zip(from_file.tables, parsed.tables):
        # PRAGMA table_info reports some declared types upper-cased; the affinity is the same
        assert [(c.name, c.type.lower(), c.not_null) for c in a.columns] == [(c.name, c.type.lower(), c.not_null) for c in b.columns]
        assert [c.lower() for c in a.primary_key] == [c.lower() for c in b.primary_key]
        assert a.foreign_keys == b.foreign_keys
    with pytest.raises(SchemaError, match="does not exist"):
        schema_from_sqlite(tmp_path / "missing.sqlite")


def test_tables_used() -> None:
    sql = (
        "WITH recent AS (SELECT * FROM Orders) SELECT T1.name FROM Customers AS T1 JOIN recent AS r "
        "ON T1.id = r.cid WHERE T1.id IN (SELECT cid FROM payments)"
    )
    assert tables_used(sql) == {"Orders", "Customers", "payments"}
    with pytest.raises(QueryParseError):
        tables_used("SELECT FROM WHERE (")


def test_bind_columns_resolves_aliases_scopes_and_string_identifiers() -> None:
    schema = parse_schema(SPIDER_DDL)
    tree = parse_query(
        'SELECT T1.name, age FROM head AS T1 JOIN management AS T2 ON T1.head_id = T2.head_id '
        'WHERE T2.temporary_acting = "Yes" AND "name" = \'x\' '
        "AND T1.age > (SELECT avg(age) FROM head WHERE head_id = T2.department_id)"
    )
    bindings = bind_columns(tree, schema)
    seen = {}
    for col in tree.find_all(exp.Column):
        key = f"{col.table}.{col.name}" if col.table else col.name
        seen.setdefault(key, []).append(bindings.columns.get(id(col)) or ("string" if id(col) in bindings.string_literals else None))
    assert seen["T1.name"] == [("head", "name")]
    assert seen["age"] == [("head", "age"), ("head", "age")]
    assert seen["T2.head_id"] == [("management", "head_ID")]
    assert seen["Yes"] == ["string"]  # "Yes" names no column: SQLite reads a string
    assert seen["name"] == [("head", "name")]  # "name" is a column: a quoted identifier
    assert seen["T2.department_id"] == [("management", "department_ID")]  # correlated
