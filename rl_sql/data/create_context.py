"""sql-create-context format: rows of question, context (CREATE TABLE text), answer (SQL).

Read from a local JSON file (a list of objects), JSON Lines, or parquet, or from the
Hugging Face hub (``datasets.load_dataset(hub_id, split="train")``) when no path is given.
These examples have no database: ``db_paths`` stays empty and the execution reward
synthesizes databases from the context and the gold query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from rl_sql.data.example import SqlExample

REQUIRED_COLUMNS = ("question", "context", "answer")


class CreateContextError(ValueError):
    """A create-context file or hub dataset that cannot be read as question/context/answer rows."""


def load_create_context(path: str | Path | None, hub_id: str) -> list[SqlExample]:
    """Examples with ids ``create-context-{row index}``, from ``path`` if given, else the hub."""
    if path is not None:
        rows, where = _read_file(Path(path).expanduser()), str(path)
    else:
        rows, where = _read_hub(hub_id), f"hub dataset {hub_id}"
    return _to_examples(rows, where)


def _read_file(path: Path) -> list[Mapping]:
    if not path.is_file():
        raise CreateContextError(f"{path} does not exist: data.path must be a JSON, JSONL or parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        _check_columns(table.column_names, str(path))
        return table.select(list(REQUIRED_COLUMNS)).to_pylist()
    if suffix == ".jsonl":
        rows = []
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise CreateContextError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
        return rows
    if suffix == ".json":
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CreateContextError(
                f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); JSON Lines files must end in .jsonl"
            ) from None
        if not isinstance(loaded, list):
            raise CreateContextError(f"{path}: expected a JSON list of objects, got {type(loaded).__name__}")
        return loaded
    raise CreateContextError(f"{path}: unknown file type {suffix!r} (use .json, .jsonl or .parquet)")


def _read_hub(hub_id: str) -> list[Mapping]:
    import datasets

    try:
        dataset = datasets.load_dataset(hub_id, split="train")
    except OSError as exc:  # offline (ConnectionError), unknown id (DatasetNotFoundError): both OSError
        raise CreateContextError(
            f"could not load {hub_id!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Offline? Download it elsewhere and pass data.path=<local .json/.jsonl/.parquet file>."
        ) from exc
    _check_columns(dataset.column_names, f"hub dataset {hub_id}")
    return list(dataset.select_columns(list(REQUIRED_COLUMNS)))


def _check_columns(columns: Iterable[str], where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in set(columns)]
    if missing:
        raise CreateContextError(f"{where}: missing column(s) {missing}; create-context rows need {list(REQUIRED_COLUMNS)}")


def _to_examples(rows: list[Mapping], where: str) -> list[SqlExample]:
    examples = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise CreateContextError(f"{where}: row {index} is a {type(row).__name__}, not an object")
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise CreateContextError(f"{where}: row {index} lacks column(s) {missing}")
        bad = [c for c in REQUIRED_COLUMNS if not isinstance(row[c], str)]
        if bad:
            raise CreateContextError(f"{where}: row {index}: {bad} must be strings")
        examples.append(
            SqlExample(
                id=f"create-context-{index}",
                question=row["question"],
                context=row["context"],
                answer=row["answer"],
                source="create-context",
            )
        )
    return examples
