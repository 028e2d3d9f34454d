"""Spider dev for the evaluation tests: the full dev set when it is present, else a dev-layout
folder built from the Spider subset embedded in the package (train questions on their real
databases), with two questions on a database that does not exist (like wta_1 in the staged copy).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rl_sql.config import DataConfig
from rl_sql.data.spider import EMBEDDED_SPIDER_DIR, SPIDER_DIR_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
MISSING_DB = "no_such_db_1"


@dataclass(frozen=True)
class DevData:
    root: Path
    """A Spider folder holding dev.json, tables.json and database/."""
    full: bool
    """True: the real Spider dev set; False: built from the embedded subset."""
    rows: list[dict]

    def db_path(self, db_id: str) -> Path:
        return self.root / "database" / db_id / f"{db_id}.sqlite"

    def present(self) -> list[tuple[int, dict]]:
        """(index, row) of the questions whose database exists."""
        return [(i, row) for i, row in enumerate(self.rows) if self.db_path(row["db_id"]).is_file()]


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


def spider_dev(tmp_dir: Path) -> DevData:
    full = full_spider_dir()
    root = full if full is not None else build_embedded_dev(tmp_dir / "spider")
    return DevData(root=root, full=full is not None, rows=json.loads((root / "dev.json").read_text()))
