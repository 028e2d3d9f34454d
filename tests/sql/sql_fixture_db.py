"""A small real SQLite database for the rl_sql.sql tests (imported by the test modules)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SINGERS = [
    (1, "Joe Sharp", "Netherlands", 52, 1.5, b"\x89PNG"),
    (2, "Timbaland", "United States", 32, 2.0, None),
    (3, "Justin Brown", "France", 29, 1.0, None),
    (4, "Rose White", "France", 41, 2.5, b"\x00\x01"),
    (5, "John Nizinik", "France", 43, None, None),
]
CONCERTS = [(1, 1, 2014), (2, 2, 2014), (3, 2, 2015), (4, 4, 2015), (5, 3, 2016)]
BIG_ROWS = 200


def build_db(path: Path, *, singers: list[tuple] = SINGERS) -> Path:
    """Write the test database to ``path``: singer (5 rows), concert (5), big (200)."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER,
                             net_worth REAL, photo BLOB);
        CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER REFERENCES singer(singer_id),
                              year INTEGER);
        CREATE TABLE big (x INTEGER);
        """
    )
    conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?, ?, ?)", singers)
    conn.executemany("INSERT INTO concert VALUES (?, ?, ?)", CONCERTS)
    conn.executemany("INSERT INTO big VALUES (?)", [(i,) for i in range(BIG_ROWS)])
    conn.commit()
    conn.close()
    return path
