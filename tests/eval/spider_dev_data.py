"""Spider dev for the evaluation tests: the full dev set when it is present (../shared or
``RL_SQL_SPIDER_DIR``), else the dev copy embedded in the package (972 questions; wta_1's 62 are
listed in its dev_left_out.json). ``build_embedded_dev`` makes a small dev-layout folder from the
embedded train subset, with two questions on a database that does not exist.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rl_sql.config import DataConfig
from rl_sql.data.spider import EMBEDDED_SPIDER_DEV_DIR, EMBEDDED_SPIDER_DIR, SPIDER_DIR_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
MISSING_DB = "no_such_db_1"


@dataclass(frozen=True)
class DevData:
    root: Path
    """A Spider folder holding dev.json, tables.json and database/."""
    full: bool
    """True: the real Spider dev set; False: the embedded dev copy."""
    rows: dict[int, dict]
    """Index in Spider's dev.json -> entry, for every question the folder's dev.json holds."""
    db_ids: dict[int, str]
    """Index -> db_id of every dev question, also those the folder leaves out."""

    def db_path(self, db_id: str) -> Path:
        return self.root / "database" / db_id / f"{db_id}.sqlite"

    def present(self) -> list[tuple[int, dict]]:
        """(index, row) of the questions whose database exists."""
        return [(i, row) for i, row in self.rows.items() if self.db_path(row["db_id"]).is_file()]


def full_spider_dir() -> Path | None:
    configured = os.environ.get(SPIDER_DIR_ENV) or str(REPO_ROOT / DataConfig().spider_dir)
    root = Path(configured).expanduser()
    if (root / "dev.json").is_file() and (root / "tables.json").is_file() and (root / "database").is_dir():
        return root
    return None


def build_embedded_dev(dest: Path, *, every: int = 1) -> Path:
    """A dev-layout Spider folder from the embedded subset (every ``every``-th question), with
    two questions on the missing database ``MISSING_DB`` at indexes 3 and 7."""
    rows = json.loads((EMBEDDED_SPIDER_DIR / "train.json").read_text())[::every]
    for index in (3, 7):
        rows.insert(index, {"question": "How many players are there?", "query": "SELECT count(*) FROM players", "db_id": MISSING_DB})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "dev.json").write_text(json.dumps(rows))
    shutil.copy(EMBEDDED_SPIDER_DIR / "tables.json", dest / "tables.json")
    (dest / "database").mkdir(exist_ok=True)
    for db_dir in (EMBEDDED_SPIDER_DIR / "database").iterdir():
        link = dest / "database" / db_dir.name
        if not link.exists():
            link.symlink_to(db_dir, target_is_directory=True)
    return dest


def read_dev(root: Path, full: bool) -> DevData:
    """The dev questions of ``root``, read from its files (each entry's ``dev_index`` when it has
    one, else its position; ``dev_left_out.json`` when there is one)."""
    entries = json.loads((root / "dev.json").read_text())
    rows = {row.get("dev_index", position): row for position, row in enumerate(entries)}
    db_ids = {i: row["db_id"] for i, row in rows.items()}
    left_out = root / "dev_left_out.json"
    if left_out.is_file():
        db_ids |= {entry["dev_index"]: entry["db_id"] for entry in json.loads(left_out.read_text())}
    return DevData(root=root, full=full, rows=rows, db_ids=dict(sorted(db_ids.items())))


def spider_dev() -> DevData:
    """The full dev set when present, else the embedded dev copy."""
    full = full_spider_dir()
    return read_dev(full if full is not None else EMBEDDED_SPIDER_DEV_DIR, full is not None)
