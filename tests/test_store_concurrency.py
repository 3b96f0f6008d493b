"""Connections opening a new database at the same moment (the window's jobs do) all succeed."""

from __future__ import annotations

import threading
from pathlib import Path

from desktop.core.storage.store import Store


def open_at_once(path: Path, n: int = 4) -> list[BaseException]:
    """Open ``path`` from ``n`` threads released together; return the errors."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def open_it() -> None:
        start.wait()
        try:
            Store.open(path).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_opens_of_a_new_database_migrate_it_once(tmp_path):
    for attempt in range(5):
        path = tmp_path / f"index{attempt}.sqlite"
        assert open_at_once(path) == []
        with Store.open(path) as store:
            names = [r[0] for r in store.con.execute("SELECT name FROM _migrations")]
            assert len(names) == len(set(names)) and store.integrity_check() == "ok"
