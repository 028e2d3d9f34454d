"""``rl-sql eval``: execution accuracy on Spider dev or the held-out split, with the Spider
evaluator's rules (``rl_sql.eval.spider_eval``).

Data (``--data``):
  ``spider-dev``  every Spider dev question, on its real database, from ``--spider-dir`` when
                  given, else ``RL_SQL_SPIDER_DIR`` when set (either must be a Spider folder:
                  a missing one is an error, never a silent fallback), else the dev copy shipped
                  in the package (``rl_sql/data/embedded/spider_dev``: the 972 questions of the
                  19 dev databases we have; ``wta_1``'s 62 are listed in its
                  ``dev_left_out.json``). ``data_source`` in summary.json and report.md says which.
                  Questions whose database file is missing (``wta_1`` on the staged copy and in
                  the shipped one) are skipped and counted, so both give the same summary.
                  Prediction ids are indexes in Spider's ``dev.json`` (``12``, ``"12"`` or
                  ``"spider-dev-12"``), whichever folder is read.
  ``heldout``     the held-out side of the recipe's training data (``load_examples`` then
                  ``split_examples`` with ``data.heldout_fraction`` and ``data.seed``, as training
                  splits it): real databases, or databases synthesized from the schema and the
                  gold (``reward.num_synth_dbs``, ``reward.synth_seed``, cached in
                  ``reward.cache_dir``); an example whose synthesis yields no database is skipped.
                  Prediction ids are the example ids (``spider-embedded-12``).

Predictions: ``--predictions FILE`` (JSON lines with ``id``, ``db_id``, ``sql``; no model is
involved), or generated (``rl_sql.eval.predict``) by ``--model PATH [--adapter DIR]`` or
``--endpoint URL --model-name NAME``. A prediction whose id is unknown, whose ``db_id``
differs from the example's, or that repeats an id is an error naming the lines; an example
without a prediction counts as wrong (error ``no_prediction``).

Output in ``--out DIR``:
  ``verdicts.jsonl``  one line per judged example: id, db_id, correct, error (null when
                      correct; an ErrorKind value, ``wrong_result`` or ``no_prediction``),
                      hardness (Spider's buckets of the gold query), the SQL scored, and more;
  ``skipped.jsonl``   examples that could not be judged, with the reason;
  ``predictions.jsonl`` the predictions scored (with completions when a model wrote them);
  ``summary.json``    accuracy, n, correct, a seeded percentile-bootstrap 95% CI, skipped counts,
                      breakdowns by hardness, database and error kind, and the rules used;
  ``report.md``       the same for people.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rl_sql.config import Config
from rl_sql.data import load_examples, split_examples
from rl_sql.data.example import SqlExample
from rl_sql.data.spider import (
    EMBEDDED_SPIDER_DEV_DIR,
    SPIDER_DIR_ENV,
    check_spider_dir,
    database_path,
    dev_question_db_ids,
    load_spider_split,
)
from rl_sql.eval.hardness import HARDNESS_LEVELS, HardnessError, spider_hardness
from rl_sql.eval.predict import Prediction
from rl_sql.eval.spider_eval import GOLD_FAILED, EvalRules, SpiderJudge
from rl_sql.eval.stats import bootstrap_ci

log = logging.getLogger(__name__)

NO_PREDICTION = "no_prediction"
MISSING_DATABASE = "missing_database"
SYNTH_FAILED = "synth_failed"
UNKNOWN_HARDNESS = "unknown"
DATA_CHOICES = ("spider-dev", "heldout")


class EvalInputError(ValueError):
    """Bad evaluation input (predictions file, data choice): the message says what to fix."""


@dataclass(frozen=True)
class Skip:
    id: str
    db_id: str | None
    reason: str
    detail: str


@dataclass
class EvalSet:
    """The examples to judge and those that cannot be (with why)."""

    name: str
    examples: list[SqlExample]
    skipped: list[Skip] = field(default_factory=list)
    source: str = ""
    known_ids: dict[str, str | None] = field(default_factory=dict)
    """Every example id of the data (also those beyond ``--limit``) -> its db_id: predictions
    for these are accepted (and ignored when not judged)."""


@dataclass(frozen=True)
class Verdict:
    id: str
    db_id: str | None
    correct: bool
    error: str | None
    hardness: str
    sql: str | None
    message: str = ""
    num_dbs: int = 0
    synthesized: bool = False
    order_matters: bool = False
    gold_empty: bool = False


# --------------------------------------------------------------------------- data


def spider_dev_dir(spider_dir: str | None) -> tuple[Path, str]:
    """The Spider folder to read dev from, and the words that say why: ``spider_dir``
    (``--spider-dir``) when given, else ``RL_SQL_SPIDER_DIR`` when set, else the embedded copy.
    A named folder that is not a Spider folder raises SpiderNotFound."""
    if spider_dir:
        root = check_spider_dir(spider_dir, "--spider-dir must name a folder with dev.json, tables.json and database/")
        return root, f"--spider-dir {root.resolve()}"
    if configured := os.environ.get(SPIDER_DIR_ENV):
        root = check_spider_dir(
            configured,
            f"{SPIDER_DIR_ENV} must name a folder with dev.json, tables.json and database/ "
            "(unset it to use the dev copy embedded in the package)",
        )
        return root, f"{SPIDER_DIR_ENV}={root.resolve()}"
    return EMBEDDED_SPIDER_DEV_DIR, f"embedded dev copy {EMBEDDED_SPIDER_DEV_DIR} (no --spider-dir, {SPIDER_DIR_ENV} unset)"


def spider_dev_set(root: Path, origin: str, limit: int | None = None) -> EvalSet:
    """Spider dev of a Spider folder, full or partial like the embedded copy (its questions with
    index below ``limit`` when given): examples with their database, the other dev questions
    skipped as ``missing_database``. ``origin`` (which folder, and why) is its ``source``."""
    all_db_ids = dev_question_db_ids(root)
    judged = {f"spider-dev-{i}": db for i, db in all_db_ids.items() if limit is None or i < limit}
    examples = [e for e in load_spider_split(root, "dev") if e.id in judged]
    present = {e.id for e in examples}
    skipped = [
        Skip(example_id, db, MISSING_DATABASE, f"{database_path(root, db)} does not exist")
        for example_id, db in judged.items()
        if example_id not in present
    ]
    known = {f"spider-dev-{i}": db for i, db in all_db_ids.items()}
    return EvalSet("spider-dev", examples, skipped, source=origin, known_ids=known)


def heldout_set(config: Config, limit: int | None = None) -> EvalSet:
    """The held-out side of the recipe's data (its first ``limit`` examples when given), split
    exactly as training splits it."""
    _, heldout = split_examples(load_examples(config.data), config.data.heldout_fraction, config.data.seed)
    if not heldout:
        raise EvalInputError(
            f"data.heldout_fraction={config.data.heldout_fraction} leaves no held-out examples; raise it"
        )
    known = {e.id: e.db_id for e in heldout}
    return EvalSet("heldout", heldout[:limit], [], source=f"data.source={config.data.source}", known_ids=known)


class Databases:
    """Where each example runs: its own databases, else (cached) synthesized ones."""

    def __init__(self, config: Config) -> None:
        self.reward = config.reward
        self._cache: dict[str, tuple[tuple[str, ...], str | None]] = {}

    def __call__(self, example: SqlExample) -> tuple[str, ...]:
        return self.resolve(example)[0]

    def resolve(self, example: SqlExample) -> tuple[tuple[str, ...], str | None]:
        """(paths, synthesis error or None)."""
        if example.db_paths:
            return example.db_paths, None
        if example.id not in self._cache:
            from rl_sql.sql.synth import synthesize_databases

            synth = synthesize_databases(
                example.context,
                example.answer,
                k=self.reward.num_synth_dbs,
                seed=self.reward.synth_seed,
                cache_dir=self.reward.cache_dir,
            )
            self._cache[example.id] = (tuple(synth.db_paths), synth.error)
        return self._cache[example.id]


# --------------------------------------------------------------------------- predictions


def _normalize_id(raw: object, eval_set: EvalSet) -> str | None:
    if eval_set.name == "spider-dev":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return f"spider-dev-{raw}"
        if isinstance(raw, str):
            text = raw.removeprefix("spider-dev-")
            return f"spider-dev-{int(text)}" if text.isdigit() else None
        return None
    return raw if isinstance(raw, str) else None


def read_predictions(path: str | Path, eval_set: EvalSet) -> dict[str, Prediction]:
    """Predictions by example id; every problem in the file is reported at once (EvalInputError)."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"predictions file {path} does not exist")
    db_of = eval_set.known_ids or ({e.id: e.db_id for e in eval_set.examples} | {s.id: s.db_id for s in eval_set.skipped})
    found: dict[str, Prediction] = {}
    problems: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict) or "id" not in record or "sql" not in record:
            problems.append(f"line {number}: needs an object with id, db_id and sql")
            continue
        example_id = _normalize_id(record["id"], eval_set)
        sql = record["sql"]
        if example_id is None or example_id not in db_of:
            problems.append(f"line {number}: unknown id {record['id']!r} (not an example of {eval_set.name})")
        elif "db_id" in record and record["db_id"] != db_of[example_id]:
            problems.append(
                f"line {number}: id {record['id']!r} has db_id {record['db_id']!r}, but the example's is {db_of[example_id]!r}"
            )
        elif example_id in found:
            problems.append(f"line {number}: a second prediction for id {record['id']!r}")
        elif sql is not None and not isinstance(sql, str):
            problems.append(f"line {number}: sql must be a string or null, got {type(sql).__name__}")
        else:
            found[example_id] = Prediction(example_id, db_of[example_id], sql, record.get("completion"))
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise EvalInputError(f"{path}: {len(problems)} bad prediction line(s):\n  {shown}{more}")
    return found


# --------------------------------------------------------------------------- scoring


def hardness_of(sql: str) -> str:
    try:
        return spider_hardness(sql)
    except HardnessError as exc:
        log.warning("hardness unknown: %s", exc)
        return UNKNOWN_HARDNESS


def score(
    eval_set: EvalSet, predictions: dict[str, Prediction], judge: SpiderJudge, databases: Databases
) -> tuple[list[Verdict], list[Skip]]:
    """A verdict for every judgeable example, and the skips (the set's own plus new ones)."""
    verdicts: list[Verdict] = []
    skipped = list(eval_set.skipped)
    for example in eval_set.examples:
        paths, synth_error = databases.resolve(example)
        if not paths:
            skipped.append(Skip(example.id, example.db_id, SYNTH_FAILED, synth_error or "no database was synthesized"))
            continue
        synthesized = not example.db_paths
        hardness = hardness_of(example.answer)
        prediction = predictions.get(example.id)
        if prediction is None:
            verdicts.append(
                Verdict(example.id, example.db_id, False, NO_PREDICTION, hardness, None,
                        "no prediction for this example", synthesized=synthesized)
            )
            continue
        judgement = judge.judge(example.answer, prediction.sql, paths)
        if judgement.error == GOLD_FAILED:
            skipped.append(Skip(example.id, example.db_id, GOLD_FAILED, judgement.message))
            continue
        verdicts.append(
            Verdict(
                example.id, example.db_id, judgement.correct, judgement.error, hardness, prediction.sql,
                judgement.message, judgement.num_dbs, synthesized, judgement.order_matters, judgement.gold_empty,
            )
        )
    return verdicts, skipped


def _breakdown(verdicts: Sequence[Verdict], key) -> dict[str, dict]:
    groups: dict[str, list[bool]] = {}
    for v in verdicts:
        groups.setdefault(key(v), []).append(v.correct)
    return {
        name: {"n": len(c), "correct": sum(c), "accuracy": sum(c) / len(c)}
        for name, c in groups.items()
    }


def summarize(
    eval_set: EvalSet,
    verdicts: Sequence[Verdict],
    skipped: Sequence[Skip],
    rules: EvalRules,
    *,
    resamples: int = 1000,
    seed: int = 0,
    prediction_source: str = "",
) -> dict:
    """summary.json's content (see the module docstring)."""
    if not verdicts:
        reasons = Counter(s.reason for s in skipped)
        raise EvalInputError(f"no example of {eval_set.name} could be judged (skipped: {dict(reasons)})")
    correct = [v.correct for v in verdicts]
    accuracy, low, high = bootstrap_ci(correct, resamples=resamples, seed=seed)
    by_hardness = _breakdown(verdicts, lambda v: v.hardness)
    order = [*HARDNESS_LEVELS, UNKNOWN_HARDNESS]
    return {
        "data": eval_set.name,
        "data_source": eval_set.source,
        "predictions": prediction_source,
        "n": len(verdicts),
        "correct": sum(correct),
        "accuracy": accuracy,
        "ci95": [low, high],
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95, "method": "percentile"},
        "skipped": len(skipped),
        "skipped_by_reason": dict(Counter(s.reason for s in skipped)),
        "missing_predictions": sum(v.error == NO_PREDICTION for v in verdicts),
        "synthesized_databases": sum(v.synthesized for v in verdicts),
        "gold_empty": sum(v.gold_empty for v in verdicts),
        "by_hardness": {h: by_hardness[h] for h in order if h in by_hardness},
        "by_database": dict(sorted(_breakdown(verdicts, lambda v: v.db_id or "(synthesized)").items())),
        "error_kinds": dict(Counter(v.error for v in verdicts if v.error is not None).most_common()),
        "rules": {
            **asdict(rules),
            "distinct": "kept" if rules.keep_distinct else "removed from both queries",
            "row_order": "significant when the gold contains ORDER BY",
        },
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render_report(summary: dict) -> str:
    """report.md: accuracy with its CI, breakdowns by hardness, database and error kind."""
    low, high = summary["ci95"]
    lines = [
        f"# Execution accuracy: {summary['data']}",
        "",
        f"- Data: {summary['data_source']}",
        f"- Predictions: {summary['predictions']}",
        f"- Rules: Spider evaluator defaults; DISTINCT {summary['rules']['distinct']}; row order "
        f"{summary['rules']['row_order']}; {summary['rules']['timeout_s']:g} s per query.",
        "",
        f"**Accuracy: {_pct(summary['accuracy'])}** ({summary['correct']} of {summary['n']}), "
        f"95% CI [{_pct(low)}, {_pct(high)}] (percentile bootstrap, {summary['bootstrap']['resamples']} "
        f"resamples, seed {summary['bootstrap']['seed']}).",
        "",
        f"Skipped (not judged): {summary['skipped']}"
        + (
            " (" + ", ".join(f"{reason}: {n}" for reason, n in summary["skipped_by_reason"].items()) + ")"
            if summary["skipped"]
            else ""
        )
        + f". Examples without a prediction (counted wrong): {summary['missing_predictions']}.",
    ]
    if summary["synthesized_databases"]:
        lines.append(
            f"Judged on synthesized databases: {summary['synthesized_databases']}; of those and the rest, "
            f"{summary['gold_empty']} have an empty gold result everywhere (weak evidence)."
        )
    lines += ["", "## By hardness", "", "| hardness | n | correct | accuracy |", "|---|---:|---:|---:|"]
    for name, row in summary["by_hardness"].items():
        lines.append(f"| {name} | {row['n']} | {row['correct']} | {_pct(row['accuracy'])} |")
    lines += ["", "## By database", "", "| database | n | correct | accuracy |", "|---|---:|---:|---:|"]
    for name, row in summary["by_database"].items():
        lines.append(f"| {name} | {row['n']} | {row['correct']} | {_pct(row['accuracy'])} |")
    lines += ["", "## Error kinds (wrong predictions)", ""]
    if summary["error_kinds"]:
        lines += ["| error | count | share of judged |", "|---|---:|---:|"]
        for name, count in summary["error_kinds"].items():
            lines.append(f"| {name} | {count} | {_pct(count / summary['n'])} |")
    else:
        lines.append("None: every judged prediction is correct.")
    return "\n".join(lines) + "\n"


def write_outputs(
    out_dir: str | Path,
    summary: dict,
    verdicts: Sequence[Verdict],
    skipped: Sequence[Skip],
    predictions: dict[str, Prediction],
) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "verdicts.jsonl").write_text("".join(json.dumps(asdict(v)) + "\n" for v in verdicts))
    (out / "skipped.jsonl").write_text("".join(json.dumps(asdict(s)) + "\n" for s in skipped))
    (out / "predictions.jsonl").write_text(
        "".join(
            json.dumps({"id": p.id, "db_id": p.db_id, "sql": p.sql, "completion": p.completion,
                        "votes": p.votes, "samples": p.samples, **p.extra}) + "\n"
            for p in predictions.values()
        )
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(render_report(summary))
    return out


# --------------------------------------------------------------------------- command


def build_parser(prog: str = "rl-sql eval") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Execution accuracy with the Spider evaluator's rules, on Spider dev or the held-out split",
    )
    p.add_argument("--data", required=True, choices=DATA_CHOICES)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for verdicts.jsonl, summary.json, report.md")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", metavar="FILE", help="JSON lines with id, db_id, sql (no model involved)")
    source.add_argument("--model", metavar="PATH", help="model folder or hub id, generated with vLLM in this process")
    source.add_argument("--endpoint", metavar="URL", help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1)")
    p.add_argument("--adapter", metavar="DIR", help="PEFT LoRA adapter folder on top of --model")
    p.add_argument("--model-name", help="model name to ask the --endpoint for")
    p.add_argument("--api-key", default=None, help="key for --endpoint (default: env OPENAI_API_KEY, else none)")
    p.add_argument("--config", default=None, metavar="RECIPE", help="YAML recipe (required for --data heldout)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides of the recipe")
    p.add_argument("--spider-dir", default=None,
                   help=f"Spider folder for --data spider-dev (default: {SPIDER_DIR_ENV}, else the dev copy in the package)")
    p.add_argument("--keep-distinct", action="store_true", help="do not remove DISTINCT before comparing")
    p.add_argument("--samples", type=int, default=1, help="k samples per question, majority vote by result (default 1: greedy)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: 0 for one sample, else rollout.temperature)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: rollout.max_new_tokens")
    p.add_argument("--limit", type=int, default=None, help="judge only the first N examples")
    p.add_argument("--timeout-s", type=float, default=EvalRules.timeout_s, help="deadline of one query on one database")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95%% CI")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of sampling")
    return p


def _load_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.max_new_tokens is not None:
        overrides.append(f"rollout.max_new_tokens={args.max_new_tokens}")
    return Config.load(args.config, overrides)


def _generator(args: argparse.Namespace, config: Config):
    if args.endpoint:
        if not args.model_name:
            raise EvalInputError("--endpoint needs --model-name (the model the server serves)")
        from rl_sql.eval.predict import EndpointGenerator

        return EndpointGenerator(
            args.endpoint, args.model_name, prompt_style=config.data.prompt_style,
            max_new_tokens=config.rollout.max_new_tokens, stop=config.rollout.stop, api_key=args.api_key, seed=args.seed,
        )
    from rl_sql.eval.predict import LocalGenerator

    if args.adapter:
        adapter_cfg = Path(args.adapter) / "adapter_config.json"
        if not adapter_cfg.is_file():
            raise EvalInputError(f"--adapter {args.adapter}: no adapter_config.json (a PEFT adapter folder is expected)")
        r = int(json.loads(adapter_cfg.read_text())["r"])
        config = config.model_copy(update={"lora": config.lora.model_copy(update={"enabled": True, "r": r})})
    else:
        config = config.model_copy(update={"lora": config.lora.model_copy(update={"enabled": False})})
    return LocalGenerator(config, args.model, args.adapter, seed=args.seed)


def run(argv: list[str]) -> dict:
    """Parse ``argv``, evaluate, write the outputs; returns the summary."""
    args = build_parser().parse_args(argv)
    if args.adapter and not args.model:
        raise EvalInputError("--adapter needs --model (the base model it was trained on)")
    if args.data == "heldout" and args.config is None:
        raise EvalInputError("--data heldout needs --config RECIPE (the recipe whose data was split for training)")
    if args.samples < 1:
        raise EvalInputError(f"--samples must be >= 1, got {args.samples}")
    if args.limit is not None and args.limit < 1:
        raise EvalInputError(f"--limit must be >= 1, got {args.limit}")
    config = _load_config(args)

    if args.data == "spider-dev":
        root, origin = spider_dev_dir(args.spider_dir)
        eval_set = spider_dev_set(root, origin, args.limit)
    else:
        eval_set = heldout_set(config, args.limit)

    rules = EvalRules(keep_distinct=args.keep_distinct, timeout_s=args.timeout_s)
    databases = Databases(config)
    with SpiderJudge(rules) as judge:
        if args.predictions:
            predictions = read_predictions(args.predictions, eval_set)
            source = f"file {args.predictions}"
        else:
            from rl_sql.eval.predict import predict

            temperature = args.temperature if args.temperature is not None else (
                0.0 if args.samples == 1 else config.rollout.temperature
            )
            generator = _generator(args, config)
            try:
                generated = predict(
                    eval_set.examples, generator, samples=args.samples, temperature=temperature,
                    judge=judge, databases=databases,
                )
            finally:
                generator.close()
            predictions = {p.id: p for p in generated}
            who = f"endpoint {args.endpoint} ({args.model_name})" if args.endpoint else f"model {args.model}" + (
                f" + adapter {args.adapter}" if args.adapter else ""
            )
            how = "greedy" if args.samples == 1 and temperature == 0 else (
                f"majority vote of {args.samples} samples at temperature {temperature:g}"
            )
            source = f"{who}, {how}, prompt style {config.data.prompt_style}"
        targets = {e.id for e in eval_set.examples}
        predictions = {k: v for k, v in predictions.items() if k in targets}
        verdicts, skipped = score(eval_set, predictions, judge, databases)
    summary = summarize(eval_set, verdicts, skipped, rules, resamples=args.resamples, seed=args.seed,
                        prediction_source=source)
    out = write_outputs(args.out, summary, verdicts, skipped, predictions)
    log.info("accuracy %.4f on %d examples (%d skipped) of %s; wrote %s", summary["accuracy"], summary["n"],
             summary["skipped"], eval_set.source, out)
    return summary
