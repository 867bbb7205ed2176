"""The history store: keyed by content hash, whole rows only, migrations by schema version."""

import sqlite3

import pytest

from debrief import store as store_module
from debrief.errors import OutputError
from debrief.store import SCHEMA_VERSION, Store, bytes_hash, file_hash

RESULT = {"source": "a.wav", "transcript": "they said no", "outcome": "lost", "endpoint": "home.commit",
          "fix": {"step": "second.impact"}, "duration": 12.5}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "h.db") as s:
        yield s


def test_default_location_is_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBRIEF_HOME", str(tmp_path / "home"))
    with Store() as s:
        assert s.path == tmp_path / "home" / "debrief.db"
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_hash_is_of_the_content(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    assert file_hash(a) == file_hash(b) == bytes_hash(b"same bytes")


def test_a_result_round_trips(store):
    store.add_recording("h1", "a.wav", rep="dana", deal="acme", recorded_at="2026-11-01")
    assert not store.done("h1")
    store.save_result("h1", RESULT)
    entry = store.get("h1")
    assert store.done("h1")
    assert (entry.rep, entry.deal, entry.fix, entry.outcome, entry.duration) == ("dana", "acme", "second.impact", "lost", 12.5)
    assert entry.result == RESULT


def test_an_error_is_stored_and_is_not_done(store):
    store.add_recording("h2", "bad.wav")
    store.save_result("h2", {"source": "bad.wav", "error": "bad.wav: not audio", "exit_code": 3})
    assert not store.done("h2")
    assert store.get("h2").error == "bad.wav: not audio"


def test_the_same_file_twice_is_one_row_and_keeps_what_it_knew(store):
    store.add_recording("h1", "a.wav", rep="dana")
    store.add_recording("h1", "copy/a.wav", deal="acme")
    entry = store.get("h1")
    assert (entry.rep, entry.deal) == ("dana", "acme")
    assert len(store.history()) == 1


def test_history_filters(store):
    store.add_recording("1", "1.wav", rep="dana", deal="acme", recorded_at="2026-10-01")
    store.add_recording("2", "2.wav", rep="lee", deal="acme", recorded_at="2026-11-01")
    store.add_recording("3", "3.wav", rep="dana", deal="zenith", recorded_at="2026-11-15")
    assert [e.hash for e in store.history(rep="dana")] == ["1", "3"]
    assert [e.hash for e in store.history(deal="acme")] == ["1", "2"]
    assert [e.hash for e in store.history(since="2026-11-01")] == ["2", "3"]


def test_migrations_bring_an_old_file_up_to_date(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # version 0: an empty file
    extra = "CREATE TABLE notes (hash TEXT PRIMARY KEY, text TEXT);"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS + [extra])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store(path) as s:
        assert s.version == SCHEMA_VERSION + 1
        s.db.execute("INSERT INTO notes VALUES ('h', 'x')")


def test_a_newer_file_is_refused(tmp_path):
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(OutputError, match="newer debrief"):
        Store(path)


def test_an_unwritable_place_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot open the history store"):
        Store(blocker / "h.db")
