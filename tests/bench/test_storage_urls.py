"""Storage URLs work as written (issue 33): the README's `postgresql://` reaches the installed driver,
and a server that never answers is refused in one line naming its host and port, within the timeout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from bench import storage
from helpers import study_toml

POSTGRES = os.environ.get("STABGEN_TEST_POSTGRES")


def test_the_bare_postgresql_scheme_is_bound_to_the_installed_driver():
    try:
        import psycopg  # noqa: F401
        want = "postgresql://u:p@h:5432/db"
    except ImportError:
        want = "postgresql+psycopg2://u:p@h:5432/db"
    assert storage.driver_url("postgresql://u:p@h:5432/db") == want
    assert storage.driver_url("postgres://u:p@h:5432/db") == want
    assert storage.driver_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"  # as given
    assert storage.driver_url("sqlite:///x.db") == "sqlite:///x.db"
    assert storage.resolve_url("postgresql://u@h/db", None, "runs", "s").startswith("postgresql")


def test_the_readme_recipe_runs_a_study_on_postgresql_as_written(tmp_path):
    """STABGEN_STORAGE=postgresql://… (docs/running.md, Many workers), with the scheme as written."""
    if not POSTGRES:
        from helpers import missing
        missing("no PostgreSQL server: set STABGEN_TEST_POSTGRES to a storage URL (scripts/pg-scratch start DIR)")
    url = "postgresql://" + POSTGRES.split("://", 1)[1]  # whatever the server script printed, the bare scheme
    name = f"readme-{os.getpid()}-{int(time.time())}"
    (tmp_path / "s.toml").write_text(study_toml(name=name))
    r = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--study", "s.toml"], cwd=tmp_path,
                       env={**os.environ, "STABGEN_STORAGE": url}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "stabgen-secret" not in r.stdout + r.stderr  # the password is never printed


def test_a_server_that_never_answers_is_refused_in_one_line_naming_host_and_port(tmp_path, monkeypatch):
    """A port where something listens but never speaks PostgreSQL: refused after the connect timeout."""
    from bench import api
    from stabgen.errors import StabgenError

    monkeypatch.setattr(storage, "CONNECT_TIMEOUT", 2)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections into its backlog, never answers
    port = silent.getsockname()[1]
    spec = api.load_spec("smoke")
    t0 = time.perf_counter()
    try:
        with pytest.raises(StabgenError) as e:
            storage.open_study(spec, storage.driver_url(f"postgresql://u:pw@127.0.0.1:{port}/db"), heartbeat=10.0)
    finally:
        silent.close()
    msg = str(e.value)
    assert f"127.0.0.1:{port}" in msg and "pw" not in msg.replace("postgresql", "") and "\n" not in msg
    assert time.perf_counter() - t0 < 30


@pytest.mark.slow
def test_two_studies_of_one_name_on_different_storages_never_share_a_trial_folder(tmp_path):
    """The README's 'a fresh --storage' advice once overwrote runs/NAME/trials/0 of the other study."""
    (tmp_path / "s.toml").write_text(study_toml(name="same"))
    run = [sys.executable, "-m", "bench.cli", "run", "--study", "s.toml"]
    assert subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300).returncode == 0
    before = (tmp_path / "runs/same/trials/0/config.json").read_text()
    r = subprocess.run([*run, "--storage", f"sqlite:///{tmp_path / 'other.db'}"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "on another storage" in lines[0] and "--runs-dir" in lines[0]
    assert (tmp_path / "runs/same/trials/0/config.json").read_text() == before
    r = subprocess.run([*run, "--storage", f"sqlite:///{tmp_path / 'other.db'}", "--runs-dir", "runs2"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # its own folder: fine


def test_a_database_left_by_a_killed_writer_is_not_called_corrupt(tmp_path):
    """kill -9 in the middle of a write leaves a hot journal beside the SQLite file; the read-only check
    before a resume must not refuse it (SQLite rolls it back when the study is opened), while a file of
    garbage after a valid header is refused in one line."""
    import subprocess
    import sys

    import pytest

    from bench.storage import check_url
    from stabgen.errors import StabgenError

    db = tmp_path / "study.db"
    writer = (f"import os, signal, sqlite3\nc = sqlite3.connect({str(db)!r})\nc.execute('create table t(x)')\n"
              "c.commit()\nc.execute('pragma cache_size=1')\nc.execute('begin immediate')\n"
              "c.executemany('insert into t values (?)', [(b'x' * 1000,)] * 2000)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", writer], timeout=600)
    assert (tmp_path / "study.db-journal").exists()  # the hot journal a killed writer leaves
    assert check_url(f"sqlite:///{db}") == f"sqlite:///{db}"
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(StabgenError, match="not a readable SQLite database"):
        check_url(f"sqlite:///{bad}")
