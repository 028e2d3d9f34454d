"""Build the Spider subset shipped inside the package (``rl_sql/data/embedded/spider/``).

Run from the repository root::

    python -m rl_sql.data.make_embedded_subset --spider-dir /work/shared/data/spider

What it writes (Spider's own layout, so the same loader reads both):

- ``train.json``: every ``train_spider`` question (question, query, db_id) of the chosen databases,
  in Spider's order;
- ``tables.json``: those databases' entries of Spider's ``tables.json``;
- ``database/<db_id>/<db_id>.sqlite``: byte copies of the databases;
- ``PROVENANCE.md``: source, license, selection rule, sha256 of every copied file;
- ``LICENSE.md``: the CC BY-SA 4.0 attribution for this data.

Selection rule: the fixed list ``SUBSET_DB_IDS`` below, chosen by hand from Spider *train*
databases (never dev: dev is the benchmark) under 128 KiB with every gold query runnable,
mixing join-heavy (college_1, movie_1), nested-query-heavy (network_2, soccer_2), GROUP BY
(dorm_1, allergy_1) and small two-table schemas. The script re-checks every rule and fails
loudly when a database breaks one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

SUBSET_DB_IDS: tuple[str, ...] = (
    "college_1",
    "soccer_2",
    "music_1",
    "dorm_1",
    "allergy_1",
    "movie_1",
    "flight_1",
    "customers_and_addresses",
    "network_2",
    "tracking_orders",
    "small_bank_1",
    "ship_1",
    "insurance_policies",
    "storm_record",
    "gymnast",
    "city_record",
    "cinema",
    "swimming",
    "architecture",
    "department_management",
    "pilot_record",
)
MAX_DB_BYTES = 128 * 1024
TRAIN_QUESTIONS_FILE = "train_spider.question_query_dbid_only.json"
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded" / "spider"


LICENSE_NOTE = """# License of this folder

The files in this folder (train.json, tables.json, database/) are a subset of **Spider 1.0**
(Tao Yu et al., EMNLP 2018, https://yale-lily.github.io/spider), licensed under the Creative Commons Attribution-ShareAlike
4.0 International License (CC BY-SA 4.0): https://creativecommons.org/licenses/by-sa/4.0/.

They are redistributed unchanged (only selected) under the same license. The rest of rl_sql
is under its own license (Apache-2.0); CC BY-SA 4.0 applies to this data folder only.
See PROVENANCE.md for the selection and checksums.
"""


class SubsetError(RuntimeError):
    """A chosen database breaks the selection rule, or the Spider folder is incomplete."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorded_sha256(spider_dir: Path) -> dict[str, str]:
    """db_id -> sha256 from the staged Spider folder's PROVENANCE.md table (empty when absent)."""
    provenance = spider_dir / "PROVENANCE.md"
    if not provenance.is_file():
        return {}
    recorded: dict[str, str] = {}
    for line in provenance.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and len(cells[4]) == 64 and all(ch in "0123456789abcdef" for ch in cells[4]):
            recorded[cells[0]] = cells[4]
    return recorded


def _check_database(db_path: Path, queries: list[str]) -> None:
    if not db_path.is_file():
        raise SubsetError(f"{db_path} is missing")
    if db_path.stat().st_size > MAX_DB_BYTES:
        raise SubsetError(f"{db_path} is {db_path.stat().st_size} bytes, over the {MAX_DB_BYTES} limit")
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        for query in queries:
            try:
                con.execute(query).fetchall()
            except sqlite3.Error as exc:
                raise SubsetError(f"{db_path.name}: gold query fails ({exc}): {query}") from None
    finally:
        con.close()


def eligible_db_ids(spider_dir: Path) -> tuple[str, ...]:
    """Every Spider train database (first-seen order) that the selection rule allows: not a dev
    database, at most ``MAX_DB_BYTES``, every gold query runnable. Each one left out is printed
    with its reason. The larger-data study in BENCHMARKS.md trains on this selection (127
    databases, 5945 questions, 4.6 MB); the embedded default stays ``SUBSET_DB_IDS``."""
    train = json.loads((spider_dir / TRAIN_QUESTIONS_FILE).read_text())
    dev_db_ids = {e["db_id"] for e in json.loads((spider_dir / "dev.json").read_text())}
    queries: dict[str, list[str]] = {}
    for e in train:
        queries.setdefault(e["db_id"], []).append(e["query"])
    chosen: list[str] = []
    for db, qs in queries.items():
        if db in dev_db_ids:
            continue
        try:
            _check_database(spider_dir / "database" / db / f"{db}.sqlite", qs)
        except SubsetError as exc:
            print(f"left out {db}: {exc}")
            continue
        chosen.append(db)
    return tuple(chosen)


def build_subset(spider_dir: Path, out_dir: Path, db_ids: tuple[str, ...] = SUBSET_DB_IDS,
                 rule: str | None = None) -> dict[str, int]:
    """Write the subset of ``spider_dir`` into ``out_dir``; returns questions per database."""
    train_file = spider_dir / TRAIN_QUESTIONS_FILE
    for needed in (train_file, spider_dir / "tables.json", spider_dir / "dev.json"):
        if not needed.is_file():
            raise SubsetError(f"{needed} is missing: point --spider-dir at a staged Spider 1.0 folder")
    train = json.loads(train_file.read_text())
    dev_db_ids = {e["db_id"] for e in json.loads((spider_dir / "dev.json").read_text())}
    tables = {t["db_id"]: t for t in json.loads((spider_dir / "tables.json").read_text())}
    recorded = _recorded_sha256(spider_dir)

    chosen = set(db_ids)
    leaked = chosen & dev_db_ids
    if leaked:
        raise SubsetError(f"dev databases may not be embedded (they are the benchmark): {sorted(leaked)}")
    examples = [{"question": e["question"], "query": e["query"], "db_id": e["db_id"]} for e in train if e["db_id"] in chosen]
    counts = {db: sum(e["db_id"] == db for e in examples) for db in db_ids}
    if missing := [db for db, n in counts.items() if n == 0]:
        raise SubsetError(f"no train questions for {missing}")

    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "database").mkdir(parents=True)
    rows: list[str] = []
    for db in db_ids:
        src = spider_dir / "database" / db / f"{db}.sqlite"
        _check_database(src, [e["query"] for e in examples if e["db_id"] == db])
        digest = sha256_of(src)
        if recorded and db not in recorded:
            raise SubsetError(f"{db} is not listed in {spider_dir / 'PROVENANCE.md'}: its origin is unknown")
        if db in recorded and recorded[db] != digest:
            raise SubsetError(f"{src}: sha256 {digest} differs from the staged PROVENANCE.md ({recorded[db]})")
        dst = out_dir / "database" / db / f"{db}.sqlite"
        dst.parent.mkdir(parents=True)
        shutil.copyfile(src, dst)
        rows.append(f"| {db} | {counts[db]} | {src.stat().st_size} | {digest} |")

    (out_dir / "train.json").write_text(json.dumps(examples, indent=1, ensure_ascii=False) + "\n")
    (out_dir / "tables.json").write_text(json.dumps([tables[db] for db in db_ids], indent=1, ensure_ascii=False) + "\n")
    (out_dir / "PROVENANCE.md").write_text(_provenance_text(rows, len(examples), sha256_of(train_file), rule))
    (out_dir / "LICENSE.md").write_text(LICENSE_NOTE)
    return counts


FIXED_RULE = """A fixed list of Spider **train** databases (no dev database: dev is the evaluation benchmark),
each under {kib} KiB, every gold query of it runnable, mixing join-heavy,
nested-query, GROUP BY and small two-table schemas."""
ALL_SMALL_RULE = """Every Spider **train** database (no dev database: dev is the evaluation benchmark) of at
most {kib} KiB whose every gold query runs (`--all-small`)."""


def _provenance_text(rows: list[str], n_examples: int, train_sha: str, rule: str | None = None) -> str:
    table = "\n".join(rows)
    rule = (rule or FIXED_RULE).format(kib=MAX_DB_BYTES // 1024)
    return f"""# Embedded Spider subset: provenance and license

Data: **Spider 1.0** (Tao Yu et al., "Spider: A Large-Scale Human-Labeled Dataset for Complex and
Cross-Domain Semantic Parsing and Text-to-SQL Task", EMNLP 2018), https://yale-lily.github.io/spider.
License: **CC BY-SA 4.0** (https://creativecommons.org/licenses/by-sa/4.0/). This folder is a
redistributed subset under the same license; the files are unchanged except for the selection.

Built by `python -m rl_sql.data.make_embedded_subset --spider-dir <spider>` from the staged Spider
folder (see its PROVENANCE.md for where each file came from).

## Files
- `train.json`: {n_examples} examples (question, query, db_id) = every entry of
  `train_spider.question_query_dbid_only.json` (sha256 {train_sha}; a reduction of Spider's
  `train_spider.json` to these three fields) whose db_id is one of the databases below, in order.
- `tables.json`: the entries of Spider's `tables.json` for these databases.
- `database/<db_id>/<db_id>.sqlite`: byte copies; sha256 checked against the staged PROVENANCE.md.

## Selection rule
{rule} `train_others` examples are not used (they
have no questions in the staged data).

| db_id | questions | bytes | sha256 |
|---|---|---|---|
{table}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spider-dir", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, default=EMBEDDED_DIR)
    parser.add_argument("--all-small", action="store_true",
                        help="every eligible train database instead of the fixed list (needs --out-dir elsewhere than the package)")
    args = parser.parse_args(argv)
    if args.all_small:
        if args.out_dir.resolve() == EMBEDDED_DIR:
            parser.error("--all-small writes a study data set: give --out-dir (the embedded default stays the fixed list)")
        counts = build_subset(args.spider_dir, args.out_dir, eligible_db_ids(args.spider_dir), ALL_SMALL_RULE)
    else:
        counts = build_subset(args.spider_dir, args.out_dir)
    print(f"wrote {sum(counts.values())} questions over {len(counts)} databases to {args.out_dir}")


if __name__ == "__main__":
    main()
