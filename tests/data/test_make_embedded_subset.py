"""make_embedded_subset: rebuilds a subset from a Spider-layout folder and enforces its rules."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from rl_sql.data import EMBEDDED_SPIDER_DIR
from rl_sql.data.make_embedded_subset import SubsetError, build_subset, eligible_db_ids, main
from rl_sql.data.spider import load_spider_split


@pytest.fixture()
def spider_src(tmp_path):
    """A staged-Spider-like folder holding two embedded databases and their questions."""
    src = tmp_path / "spider"
    rows = [r for r in json.loads((EMBEDDED_SPIDER_DIR / "train.json").read_text()) if r["db_id"] in ("gymnast", "pilot_record")]
    (src / "database").mkdir(parents=True)
    for db in ("gymnast", "pilot_record"):
        shutil.copytree(EMBEDDED_SPIDER_DIR / "database" / db, src / "database" / db)
    (src / "train_spider.question_query_dbid_only.json").write_text(json.dumps(rows))
    (src / "tables.json").write_text((EMBEDDED_SPIDER_DIR / "tables.json").read_text())
    (src / "dev.json").write_text(json.dumps([{"question": "q", "query": "SELECT 1", "db_id": "pilot_record"}]))
    return src


def test_builds_a_loadable_subset_with_checksums(spider_src, tmp_path):
    out = tmp_path / "out"
    counts = build_subset(spider_src, out, db_ids=("gymnast",))
    assert counts == {"gymnast": 40}
    examples = load_spider_split(out, "train")
    assert len(examples) == 40 and {e.db_id for e in examples} == {"gymnast"}
    digest = hashlib.sha256((out / "database/gymnast/gymnast.sqlite").read_bytes()).hexdigest()
    assert digest in (out / "PROVENANCE.md").read_text()
    assert "CC BY-SA 4.0" in (out / "LICENSE.md").read_text()
    assert [t["db_id"] for t in json.loads((out / "tables.json").read_text())] == ["gymnast"]


def test_refuses_dev_databases(spider_src, tmp_path):
    with pytest.raises(SubsetError, match="dev databases may not be embedded"):
        build_subset(spider_src, tmp_path / "out", db_ids=("pilot_record",))


def test_refuses_a_failing_gold_query(spider_src, tmp_path):
    path = spider_src / "train_spider.question_query_dbid_only.json"
    rows = json.loads(path.read_text()) + [{"question": "q", "query": "SELECT nope FROM gymnast", "db_id": "gymnast"}]
    path.write_text(json.dumps(rows))
    with pytest.raises(SubsetError, match="gold query fails"):
        build_subset(spider_src, tmp_path / "out", db_ids=("gymnast",))


def test_all_small_takes_every_eligible_train_database(spider_src, tmp_path, capsys):
    path = spider_src / "train_spider.question_query_dbid_only.json"
    rows = json.loads(path.read_text())
    shutil.copytree(spider_src / "database/gymnast", spider_src / "database/broken")
    (spider_src / "database/broken/gymnast.sqlite").rename(spider_src / "database/broken/broken.sqlite")
    rows.append({"question": "q", "query": "SELECT nope FROM gymnast", "db_id": "broken"})
    path.write_text(json.dumps(rows))
    assert eligible_db_ids(spider_src) == ("gymnast",)  # pilot_record is a dev database here, broken fails
    assert "left out broken: " in capsys.readouterr().out
    main(["--spider-dir", str(spider_src), "--out-dir", str(tmp_path / "out"), "--all-small"])
    assert {e.db_id for e in load_spider_split(tmp_path / "out", "train")} == {"gymnast"}
    assert "whose every gold query runs" in (tmp_path / "out/PROVENANCE.md").read_text()
