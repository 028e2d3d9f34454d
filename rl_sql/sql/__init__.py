"""Executing, extracting and comparing SQL; schemas, synthesized test databases, mutants."""

from .compare import query_has_order_by, results_match
from .extract import extract_sql
from .mutate import MUTANT_KINDS, Mutant, mutate_query
from .sandbox import SqlSandbox, execute_sql
from .schema import (
    Column,
    ForeignKey,
    QueryParseError,
    Schema,
    SchemaError,
    Table,
    parse_schema,
    schema_from_sqlite,
    tables_used,
)
from .synth import SynthResult, synthesize_databases
from .types import ErrorKind, ExecResult

__all__ = [
    "MUTANT_KINDS",
    "Column",
    "ErrorKind",
    "ExecResult",
    "ForeignKey",
    "Mutant",
    "QueryParseError",
    "Schema",
    "SchemaError",
    "SqlSandbox",
    "SynthResult",
    "Table",
    "execute_sql",
    "extract_sql",
    "mutate_query",
    "parse_schema",
    "query_has_order_by",
    "results_match",
    "schema_from_sqlite",
    "synthesize_databases",
    "tables_used",
]
