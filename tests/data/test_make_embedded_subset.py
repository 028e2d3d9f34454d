"""make_embedded_subset: rebuilds the train subset and the dev copy from a Spider-layout folder
and enforces their rules."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from rl_sql.config import DataConfig
from rl_sql.data import EMBEDDED_SPIDER_DEV_DIR, EMBEDDED_SPIDER_DIR
from rl_sql.data import make_embedded_subset
from rl_sql.data.make_embedded_subset import SubsetError, build_dev_copy, build_subset, eligible_db_ids, main
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


# --------------------------------------------------------------------------- the dev copy

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_DBS = ("singer", "poker_player")


@pytest.fixture()
def dev_src(tmp_path):
    """A Spider-like folder: two dev databases of the embedded copy and a dev.json whose
    question 1 is on a database the folder lacks."""
    src = tmp_path / "spider_src"
    (src / "database").mkdir(parents=True)
    for db in DEV_DBS:
        shutil.copytree(EMBEDDED_SPIDER_DEV_DIR / "database" / db, src / "database" / db)
    dev = [
        {"question": "How many singers do we have?", "query": "SELECT count(*) FROM singer", "db_id": "singer", "sql": {}},
        {"question": "How many players?", "query": "SELECT count(*) FROM players", "db_id": "wta_1", "sql": {}},
        {"question": "Count the poker players.", "query": "SELECT count(*) FROM poker_player", "db_id": "poker_player", "sql": {}},
        {"question": "Names of singers?", "query": "SELECT Name FROM singer", "db_id": "singer", "sql": {}},
    ]
    (src / "dev.json").write_text(json.dumps(dev))
    (src / "tables.json").write_text((EMBEDDED_SPIDER_DEV_DIR / "tables.json").read_text())
    return src


def test_dev_copy_keeps_each_questions_dev_json_index(dev_src, tmp_path, capsys):
    out = tmp_path / "out"
    main(["--spider-dir", str(dev_src), "--dev", "--out-dir", str(out)])
    assert "wrote 3 dev questions over 2 databases" in capsys.readouterr().out
    written = json.loads((out / "dev.json").read_text())
    assert [(r["dev_index"], r["db_id"]) for r in written] == [(0, "singer"), (2, "poker_player"), (3, "singer")]
    assert set(written[0]) == {"dev_index", "question", "query", "db_id"}  # the parsed "sql" is dropped
    assert json.loads((out / "dev_left_out.json").read_text()) == [{"dev_index": 1, "db_id": "wta_1"}]
    assert [ex.id for ex in load_spider_split(out, "dev")] == ["spider-dev-0", "spider-dev-2", "spider-dev-3"]
    assert sorted(t["db_id"] for t in json.loads((out / "tables.json").read_text())) == sorted(DEV_DBS)
    for db in DEV_DBS:
        copied = out / "database" / db / f"{db}.sqlite"
        assert copied.read_bytes() == (dev_src / "database" / db / f"{db}.sqlite").read_bytes()
        assert hashlib.sha256(copied.read_bytes()).hexdigest() in (out / "PROVENANCE.md").read_text()
    provenance = (out / "PROVENANCE.md").read_text()
    assert "wta_1 (1 questions)" in provenance and "no PROVENANCE.md" in provenance
    assert "CC BY-SA 4.0" in (out / "LICENSE.md").read_text()


def test_dev_copy_refuses_a_failing_gold_query(dev_src, tmp_path):
    rows = json.loads((dev_src / "dev.json").read_text())
    rows.append({"question": "q", "query": "SELECT nope FROM singer", "db_id": "singer"})
    (dev_src / "dev.json").write_text(json.dumps(rows))
    with pytest.raises(SubsetError, match="singer.sqlite: gold query fails .*SELECT nope FROM singer"):
        build_dev_copy(dev_src, tmp_path / "out")


def test_dev_copy_refuses_a_big_database(dev_src, tmp_path, monkeypatch):
    monkeypatch.setattr(make_embedded_subset, "MAX_DEV_DB_BYTES", 16 * 1024)
    with pytest.raises(SubsetError, match=r"singer.sqlite is 20480 bytes, over the 16384 limit"):
        build_dev_copy(dev_src, tmp_path / "out")


def test_dev_copy_checks_the_staged_checksums(dev_src, tmp_path):
    (dev_src / "PROVENANCE.md").write_text(
        "| db_id | split | source repo | size (bytes) | sha256 | tables | total rows |\n"
        f"| singer | dev | x | 1 | {'0' * 64} | 2 | 16 |\n"
    )
    with pytest.raises(SubsetError, match="singer.sqlite: sha256 .* differs from the staged PROVENANCE.md"):
        build_dev_copy(dev_src, tmp_path / "out")


def test_the_shipped_dev_copy_is_rebuilt_byte_for_byte(tmp_path):
    full = Path(os.environ.get("RL_SQL_SPIDER_DIR") or REPO_ROOT / DataConfig().spider_dir)
    if not (full / "dev.json").is_file():
        pytest.skip("the full Spider folder (../shared/data/spider or RL_SQL_SPIDER_DIR) is absent, as in CI")
    out = tmp_path / "spider_dev"
    counts = build_dev_copy(full, out)
    assert sum(counts.values()) == 972 and len(counts) == 19
    shipped = sorted(p.relative_to(EMBEDDED_SPIDER_DEV_DIR) for p in EMBEDDED_SPIDER_DEV_DIR.rglob("*") if p.is_file())
    rebuilt = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert rebuilt == shipped
    for rel in shipped:
        assert (out / rel).read_bytes() == (EMBEDDED_SPIDER_DEV_DIR / rel).read_bytes(), rel
