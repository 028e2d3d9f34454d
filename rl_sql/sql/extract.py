"""Find the SQL statement in a model completion.

``extract_sql`` looks in these places, in order, and returns the first statement it
finds (None when nothing looks like SQL):

1. the last complete fenced block tagged ``sql`` (or ``sqlite``, ``mysql``, ...), then
   the last complete untagged fenced block, then a fenced block the completion left
   open (a truncated generation);
2. the last ``<sql>...</sql>`` (also ``<query>``, ``<answer>``) block, then an open one;
3. the text after an ``SQL:`` / ``SQL query:`` / ``Query:`` / ``Answer:`` label (the
   last label first);
4. the whole completion.

Before that, chat-template leftovers are removed: everything up to the last
assistant header (``<|im_start|>assistant``, ``[/INST]``, ...), reasoning up to the
last ``</think>``, everything from the first end-of-turn token (``<|im_end|>``,
``<|eot_id|>``, ``</s>``, ...), and any other ``<|...|>`` token.

Within a place, the statement starts at the first ``SELECT`` or ``WITH`` that is
written in capitals, or starts a line, or follows a ``:`` or a backtick (so the
"select" of a prose sentence is not taken); a ``WITH`` must open a common table
expression (``WITH name AS (``). It ends at the first ';' outside strings and
comments, at a blank line that is not followed by more SQL, at a line of prose
("This query returns ...", "Note: ...", list items), or at the closing backtick of
inline code. Trailing semicolons, whitespace and a sentence's final period are
dropped.
"""

from __future__ import annotations

import re

from .sandbox import find_statement_end

_SQL_FENCE_LANGS = frozenset({"sql", "sqlite", "sqlite3", "mysql", "postgresql", "postgres", "psql", "tsql", "plsql"})
_FENCE_RE = re.compile(r"```[ \t]*(?:([\w+-]+)[ \t]*\n|\n?)(.*?)```", re.DOTALL)
_OPEN_FENCE_RE = re.compile(r"```[ \t]*(?:([\w+-]+)[ \t]*\n|\n?)(.*)\Z", re.DOTALL)
_TAG_RE = re.compile(r"<(sql|query|answer)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_OPEN_TAG_RE = re.compile(r"<(sql|query|answer)>((?:(?!</?(?:sql|query|answer)>).)*)\Z", re.DOTALL | re.IGNORECASE)
_LABEL_RE = re.compile(
    r"(?:^|\n)[ \t>*#_-]*(?:final\s+)?(?:sql(?:ite)?(?:\s+query)?|query|answer)[ \t*_]*:[ \t*_]*",
    re.IGNORECASE,
)

_ASSISTANT_HEADER_RE = re.compile(
    r"<\|im_start\|>\s*assistant\s*|<\|start_header_id\|>\s*assistant\s*<\|end_header_id\|>\s*|\[/INST\]\s*"
    r"|<start_of_turn>\s*model\s*|<\|assistant\|>\s*|###\s*(?:Response|Assistant)\s*:\s*",
    re.IGNORECASE,
)
_END_OF_TURN_RE = re.compile(
    r"<\|im_end\|>|<\|eot_id\|>|<\|endoftext\|>|<\|end_of_text\|>|<\|end\|>|</s>|<end_of_turn>|<eos>|<\|user\|>"
    r"|<\|im_start\|>",
    re.IGNORECASE,
)
_SPECIAL_TOKEN_RE = re.compile(r"<\|[^|<>\n]{1,40}\|>|<s>|<bos>")
_THINK_END = "</think>"

_START_RE = re.compile(r"\b(select|with)\b", re.IGNORECASE)
_CTE_RE = re.compile(
    r"with\s+(?:recursive\s+)?(?:\w+|\"[^\"]+\"|`[^`]+`|\[[^\]]+\])"  # WITH [RECURSIVE] name
    r"\s*(?:\([^()]*\))?\s*as\s*(?:not\s+)?(?:materialized\s+)?\(",  # [(columns)] AS [NOT MATERIALIZED] (
    re.IGNORECASE,
)
_SQL_LINE_WORDS = frozenset(
    "select from where group order having limit offset union intersect except join inner left right full "
    "cross natural outer on and or not in exists between like glob is null case when then else end as with "
    "distinct all asc desc by using values over partition window count sum avg min max cast coalesce ifnull".split()
)
_PROSE_LINE_RE = re.compile(
    r"\s*(?:"
    r"(?:[-•#]+|\d+[.)])\s"  # list item or heading ("* " is left out: "* FROM t" is SQL)
    r"|\*\*"  # bold text
    r"|[A-Za-z][\w ]{0,30}:(?!:)"  # "Note:", "Explanation:", "Output:"
    r"|(?P<word>[A-Z][a-z']*)(?:[ \t]+[a-z][\w',]*){2,}"  # "This query returns ..."
    r")"
)
_CONTINUATION_RE = re.compile(r"\s*(?:[),]|(?P<word>[A-Za-z_]+))")


def extract_sql(completion: str) -> str | None:
    """The SQL statement in ``completion`` (without the final ';'), or None when
    nothing in it looks like SQL."""
    text = _strip_chat_markup(completion)
    for region in _regions(text):
        statement = _statement_in(region)
        if statement:
            return statement
    return None


def _strip_chat_markup(text: str) -> str:
    headers = list(_ASSISTANT_HEADER_RE.finditer(text))
    if headers:
        text = text[headers[-1].end() :]
    think_end = text.rfind(_THINK_END)
    if think_end >= 0:
        text = text[think_end + len(_THINK_END) :]
    text = text.lstrip()
    while True:  # an end-of-turn token with nothing before it is a leftover, not the end
        leading = _END_OF_TURN_RE.match(text)
        if not leading:
            break
        text = text[leading.end() :].lstrip()
    end = _END_OF_TURN_RE.search(text)
    if end:
        text = text[: end.start()]
    return _SPECIAL_TOKEN_RE.sub("", text)


def _regions(text: str):
    """Places that may hold the statement, most specific first."""
    fences = list(_FENCE_RE.finditer(text))
    tagged = [m.group(2) for m in fences if (m.group(1) or "").lower() in _SQL_FENCE_LANGS]
    untagged = [m.group(2) for m in fences if not m.group(1)]
    yield from reversed(tagged)
    yield from reversed(untagged)
    after_fences = text[fences[-1].end() :] if fences else text
    open_fence = _OPEN_FENCE_RE.search(after_fences)
    if open_fence and (not open_fence.group(1) or open_fence.group(1).lower() in _SQL_FENCE_LANGS):
        yield open_fence.group(2)
    tags = list(_TAG_RE.finditer(text))
    yield from (m.group(2) for m in reversed(tags))
    open_tag = _OPEN_TAG_RE.search(text[tags[-1].end() :] if tags else text)
    if open_tag:
        yield open_tag.group(2)
    for label in reversed(list(_LABEL_RE.finditer(text))):
        yield text[label.end() :]
    yield text


def _statement_in(region: str) -> str | None:
    start = _statement_start(region)
    if start is None:
        return None
    inline_code = start > 0 and region[start - 1] == "`" and not region[:start].endswith("```")
    end = region.find("```", start)
    end = len(region) if end < 0 else end
    if inline_code:
        closing = region.find("`", start)
        end = min(end, closing) if closing >= 0 else end
    end = min(end, _end_of_sql_lines(region, start, end))
    end = min(end, find_statement_end(region[:end], start))
    return _tidy(region[start:end]) or None


def _statement_start(region: str) -> int | None:
    for match in _START_RE.finditer(region):
        word = match.group(1)
        if word.lower() == "with":
            if _CTE_RE.match(region, match.start()):
                return match.start()
            continue
        if word == "SELECT" or _starts_line(region, match.start()):
            return match.start()
    return None


def _starts_line(region: str, pos: int) -> bool:
    """True when only whitespace, a ':' label or a backtick precede ``pos`` on its line."""
    line_start = region.rfind("\n", 0, pos) + 1
    before = region[line_start:pos].rstrip()
    return before == "" or before.endswith((":", "`", ">", "("))


def _end_of_sql_lines(region: str, start: int, end: int) -> int:
    """Where the statement's lines stop: a blank line not followed by SQL, or prose."""
    first_break = region.find("\n", start, end)
    if first_break < 0:
        return end
    pos = first_break + 1
    blank_seen = False
    while pos < end:
        line_end = region.find("\n", pos, end)
        line_end = end if line_end < 0 else line_end
        line = region[pos:line_end]
        if not line.strip():
            blank_seen = True
        elif _is_prose(line) or line.lstrip().startswith("```") or (blank_seen and not _continues_sql(line)):
            return pos - 1
        else:
            blank_seen = False
        pos = line_end + 1
    return end


def _is_prose(line: str) -> bool:
    if line.lstrip().startswith("--"):
        return False
    match = _PROSE_LINE_RE.match(line)
    if not match:
        return False
    word = match.group("word")
    return word is None or word.lower() not in _SQL_LINE_WORDS


def _continues_sql(line: str) -> bool:
    match = _CONTINUATION_RE.match(line)
    if not match:
        return False
    word = match.group("word")
    return word is None or word.lower() in _SQL_LINE_WORDS


def _tidy(sql: str) -> str:
    sql = sql.strip().rstrip(";").rstrip()
    if sql.endswith(".") and len(sql) > 1 and not sql[-2].isdigit():
        sql = sql[:-1].rstrip()
    return sql
