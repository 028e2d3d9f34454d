"""Build the Spider data shipped inside the package: the training subset
(``rl_sql/data/embedded/spider/``) and the dev copy (``rl_sql/data/embedded/spider_dev/``).

Run from the repository root::

    python -m rl_sql.data.make_embedded_subset --spider-dir /work/shared/data/spider
    python -m rl_sql.data.make_embedded_subset --spider-dir /work/shared/data/spider --dev

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

The dev copy (``--dev``, ``build_dev_copy``): every ``dev.json`` question whose database file
the Spider folder has, in dev.json's order, each with its index there (``dev_index``, its id);
``dev_left_out.json`` lists the index and db_id of the others; ``tables.json`` and
``database/`` hold those databases. Every gold query must run and no database may exceed
``MAX_DEV_DB_BYTES``, else the build fails (nothing is left out silently).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

from rl_sql.data.spider import DEV_INDEX_KEY, DEV_LEFT_OUT_FILE

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
EMBEDDED_DEV_DIR = Path(__file__).resolve().parent / "embedded" / "spider_dev"
MAX_DEV_DB_BYTES = 1024 * 1024
"""A dev database above this is refused, to keep the package small (the largest we have,
world_1, is 312 KiB; the 19 together are 0.9 MB)."""
DEV_FIELDS = ("question", "query", "db_id")


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


def _check_database(db_path: Path, queries: list[str], max_bytes: int = MAX_DB_BYTES) -> None:
    if not db_path.is_file():
        raise SubsetError(f"{db_path} is missing")
    if db_path.stat().st_size > max_bytes:
        raise SubsetError(f"{db_path} is {db_path.stat().st_size} bytes, over the {max_bytes} limit")
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


def _copy_database(spider_dir: Path, db: str, out_dir: Path, recorded: dict[str, str]) -> str:
    """Byte-copy one database into ``out_dir/database``, after checking its sha256 against the staged
    PROVENANCE.md (``recorded``, when there is one); returns the sha256."""
    src = spider_dir / "database" / db / f"{db}.sqlite"
    digest = sha256_of(src)
    if recorded and db not in recorded:
        raise SubsetError(f"{db} is not listed in {spider_dir / 'PROVENANCE.md'}: its origin is unknown")
    if db in recorded and recorded[db] != digest:
        raise SubsetError(f"{src}: sha256 {digest} differs from the staged PROVENANCE.md ({recorded[db]})")
    dst = out_dir / "database" / db / f"{db}.sqlite"
    dst.parent.mkdir(parents=True)
    shutil.copyfile(src, dst)
    return digest


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
        digest = _copy_database(spider_dir, db, out_dir, recorded)
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


DEV_LICENSE_NOTE = """# License of this folder

The files in this folder (dev.json, dev_left_out.json, tables.json, database/) are taken from the
dev split of **Spider 1.0** (Tao Yu et al., EMNLP 2018, https://yale-lily.github.io/spider),
licensed under the Creative Commons Attribution-ShareAlike 4.0 International License
(CC BY-SA 4.0): https://creativecommons.org/licenses/by-sa/4.0/.

They are redistributed under the same license: the databases byte for byte, the questions
reduced to their question, query and db_id fields with their index in Spider's dev.json added.
The rest of rl_sql is under its own license (Apache-2.0); CC BY-SA 4.0 applies to this data
folder only. See PROVENANCE.md for the selection and checksums.
"""


def build_dev_copy(spider_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write the dev copy of ``spider_dir`` into ``out_dir`` (see the module docstring); returns
    questions per database, in dev.json's order of first appearance."""
    dev_file, tables_file = spider_dir / "dev.json", spider_dir / "tables.json"
    for needed in (dev_file, tables_file):
        if not needed.is_file():
            raise SubsetError(f"{needed} is missing: point --spider-dir at a Spider 1.0 folder")
    dev = json.loads(dev_file.read_text())
    tables = json.loads(tables_file.read_text())
    has_db = {e["db_id"]: (spider_dir / "database" / e["db_id"] / f"{e['db_id']}.sqlite").is_file() for e in dev}
    kept = [{DEV_INDEX_KEY: i, **{k: e[k] for k in DEV_FIELDS}} for i, e in enumerate(dev) if has_db[e["db_id"]]]
    left_out = [{DEV_INDEX_KEY: i, "db_id": e["db_id"]} for i, e in enumerate(dev) if not has_db[e["db_id"]]]
    counts = {db: sum(e["db_id"] == db for e in kept) for db in dict.fromkeys(e["db_id"] for e in kept)}
    if not counts:
        raise SubsetError(f"no database of {dev_file} is in {spider_dir / 'database'}")
    if missing := sorted(set(counts) - {t["db_id"] for t in tables}):
        raise SubsetError(f"{tables_file} has no entry for {missing}")
    recorded = _recorded_sha256(spider_dir)

    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "database").mkdir(parents=True)
    rows: list[str] = []
    for db, n in counts.items():
        src = spider_dir / "database" / db / f"{db}.sqlite"
        _check_database(src, [e["query"] for e in kept if e["db_id"] == db], MAX_DEV_DB_BYTES)
        digest = _copy_database(spider_dir, db, out_dir, recorded)
        rows.append(f"| {db} | {n} | {src.stat().st_size} | {digest} |")

    (out_dir / "dev.json").write_text(json.dumps(kept, indent=1, ensure_ascii=False) + "\n")
    (out_dir / DEV_LEFT_OUT_FILE).write_text(json.dumps(left_out, indent=1) + "\n")
    (out_dir / "tables.json").write_text(
        json.dumps([t for t in tables if t["db_id"] in counts], indent=1, ensure_ascii=False) + "\n"
    )
    total_bytes = sum((out_dir / "database" / db / f"{db}.sqlite").stat().st_size for db in counts)
    (out_dir / "PROVENANCE.md").write_text(
        _dev_provenance_text(spider_dir, out_dir, rows, len(dev), Counter(e["db_id"] for e in left_out), total_bytes)
    )
    (out_dir / "LICENSE.md").write_text(DEV_LICENSE_NOTE)
    return counts


def _origin_lines(spider_dir: Path) -> list[str]:
    """What the Spider folder's own PROVENANCE.md says about where dev.json, tables.json and the
    databases came from (its lines on them, verbatim), or that it has none."""
    provenance = spider_dir / "PROVENANCE.md"
    if not provenance.is_file():
        return ["The source folder has no PROVENANCE.md: its files are taken to be the official release."]
    lines = provenance.read_text().splitlines()
    about_json = [
        line for line in lines
        if line.startswith("| `") and line.split("|")[1].strip(" `").endswith(("/dev.json", "/tables.json"))
    ]
    about_databases = [line for line in lines if line.startswith("Source for ")]
    return [
        "Lines of the source folder's PROVENANCE.md on these files, verbatim:",
        "",
        "| file | rows | source repo | path in repo | commit | git blob | size (bytes) | sha256 | notes |",
        "|---|---|---|---|---|---|---|---|---|",
        *about_json,
        "",
        *about_databases,
    ]


def _dev_provenance_text(
    spider_dir: Path, out_dir: Path, rows: list[str], n_dev: int, left_out: Counter[str], total_bytes: int
) -> str:
    n_kept = sum(int(row.split("|")[2]) for row in rows)
    left_out_text = ", ".join(f"{db} ({n} questions)" for db, n in sorted(left_out.items())) or "none"
    origin = "\n".join(_origin_lines(spider_dir))
    table = "\n".join(rows)
    return f"""# Embedded Spider dev copy: provenance and license

Data: the dev split of **Spider 1.0** (Tao Yu, Rui Zhang, Kai Yang, Michihiro Yasunaga, Dongxu Wang,
Zifan Li, James Ma, Irene Li, Qingning Yao, Shanelle Roman, Zilin Zhang and Dragomir Radev, "Spider:
A Large-Scale Human-Labeled Dataset for Complex and Cross-Domain Semantic Parsing and Text-to-SQL
Task", EMNLP 2018), https://yale-lily.github.io/spider.
License: **CC BY-SA 4.0** (https://creativecommons.org/licenses/by-sa/4.0/), see LICENSE.md. This
folder is redistributed under the same license.

Built by `python -m rl_sql.data.make_embedded_subset --spider-dir <spider> --dev` (in this project
`<spider>` is the staged copy `/work/shared/data/spider`) from the Spider folder whose dev.json and
tables.json have the sha256 below; `--dev` writes `rl_sql/data/embedded/spider_dev/` unless
`--out-dir` says otherwise. Rerun on the same folder, the build writes the same bytes.

## Source
- `dev.json`: {n_dev} questions, sha256 {sha256_of(spider_dir / "dev.json")}.
- `tables.json`: sha256 {sha256_of(spider_dir / "tables.json")}.

{origin}

## What was kept and why
- `dev.json` here: the {n_kept} questions of Spider's dev.json whose database file the source has,
  in dev.json's order, each reduced to `question`, `query`, `db_id` (dropped: `query_toks`,
  `query_toks_no_value`, `question_toks`, `sql`, which rl_sql does not read) plus `dev_index`, its
  index in Spider's dev.json. rl_sql's ids are `spider-dev-<dev_index>`, the same as on the full
  folder. sha256 {sha256_of(out_dir / "dev.json")}.
- `{DEV_LEFT_OUT_FILE}`: `dev_index` and `db_id` of the {n_dev - n_kept} questions left out because the
  source has no database file for them: {left_out_text}. The evaluation counts them as skipped
  (`missing_database`), as it does on the full folder. sha256 {sha256_of(out_dir / DEV_LEFT_OUT_FILE)}.
- `tables.json`: the entries of Spider's tables.json for the databases below, in its order.
  sha256 {sha256_of(out_dir / "tables.json")}.
- `database/<db_id>/<db_id>.sqlite`: byte copies ({len(rows)} files, {total_bytes} bytes in all), sha256
  checked against the source folder's PROVENANCE.md. Every gold query of every kept question runs
  on its database (checked by the build); no database is over {MAX_DEV_DB_BYTES // 1024} KiB.

| db_id | questions | bytes | sha256 |
|---|---|---|---|
{table}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spider-dir", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"default: {EMBEDDED_DIR} ({EMBEDDED_DEV_DIR} with --dev)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--all-small", action="store_true",
                      help="every eligible train database instead of the fixed list (needs --out-dir elsewhere than the package)")
    what.add_argument("--dev", action="store_true",
                      help="the dev copy: every dev question whose database exists, with its dev.json index")
    args = parser.parse_args(argv)
    if args.dev:
        out_dir = args.out_dir or EMBEDDED_DEV_DIR
        counts = build_dev_copy(args.spider_dir, out_dir)
        left_out = json.loads((out_dir / DEV_LEFT_OUT_FILE).read_text())
        print(f"wrote {sum(counts.values())} dev questions over {len(counts)} databases to {out_dir}; "
              f"left out {len(left_out)} whose database is missing (see {DEV_LEFT_OUT_FILE})")
        return
    args.out_dir = args.out_dir or EMBEDDED_DIR
    if args.all_small:
        if args.out_dir.resolve() == EMBEDDED_DIR:
            parser.error("--all-small writes a study data set: give --out-dir (the embedded default stays the fixed list)")
        counts = build_subset(args.spider_dir, args.out_dir, eligible_db_ids(args.spider_dir), ALL_SMALL_RULE)
    else:
        counts = build_subset(args.spider_dir, args.out_dir)
    print(f"wrote {sum(counts.values())} questions over {len(counts)} databases to {args.out_dir}")


if __name__ == "__main__":
    main()
