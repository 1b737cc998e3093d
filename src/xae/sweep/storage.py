"""``--storage URL``: where a shared Optuna study lives, opened with errors that say what to do.

* ``sqlite:///sweep.db`` (a relative path; ``sqlite:////abs/sweep.db`` for an absolute one),
  ``postgresql://user:pw@host/db`` or ``mysql://user:pw@host/db`` (``+driver`` allowed):
  Optuna's ``RDBStorage``. The server drivers are not dependencies of xae; a missing one is
  named with the package to install.
* a journal file, ``journal:///sweep.log`` (the same path rule as ``sqlite:///``) or a plain
  path ending in ``.log`` or ``.jsonl``: Optuna's ``JournalStorage`` on a
  ``JournalFileBackend`` (an append-only file, locked by a ``.lock`` link beside it while
  written, which Optuna breaks when a killed writer left it for 30 s; every worker must see
  the same file, e.g. on a shared file system).

SQLite alone does not make Optuna's "take a queued trial" step atomic: pysqlite opens a
transaction only at the first write, so two processes can both read a trial as WAITING and
both set it RUNNING. Every SQLite transaction here therefore starts with ``BEGIN IMMEDIATE``
(the database's write lock is taken before the read), which serializes them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from xae.errors import XaeError

SERVERS = ("postgresql", "mysql")
JOURNAL, JOURNAL_SUFFIXES = "journal:///", (".log", ".jsonl")
SQLITE_BUSY_S = 60  # how long a SQLite transaction waits for another worker's lock
DRIVERS = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "pg8000": "pg8000",
           "MySQLdb": "mysqlclient", "pymysql": "PyMySQL", "mysql": "mysql-connector-python"}
FORMS = ("sqlite:///sweep.db, postgresql://user@host/db, mysql://user@host/db, "
         "journal:///sweep.log or a path ending in .log")


def shown(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for messages."""
    if "://" not in url or "@" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is shown as given
        return url


def local_file(url: str) -> Path | None:
    """The file a SQLite or journal ``url`` names (None for a database server)."""
    if url.startswith("journal:") or ("://" not in url and url.endswith(JOURNAL_SUFFIXES)):
        if url.startswith("journal:") and not url.startswith(JOURNAL):
            raise XaeError(f"--storage {url!r}: write a journal file as {JOURNAL}PATH (or a "
                           f"plain path ending in .log), e.g. {JOURNAL}sweep.log")
        path = url[len(JOURNAL):] if url.startswith(JOURNAL) else url
        if not path:
            raise XaeError(f"--storage {url!r} names no file; e.g. {JOURNAL}sweep.log")
        return Path(path)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    backend = scheme.split("+", 1)[0]
    if backend == "sqlite":
        if not url.startswith("sqlite:///") or url[len("sqlite:///"):] in ("", ":memory:"):
            raise XaeError(f"--storage {url!r} is not a file, and workers need one to share; "
                           f"write sqlite:///sweep.db (or sqlite:////abs/path/sweep.db)")
        return Path(url[len("sqlite:///"):].split("?", 1)[0])
    if backend in SERVERS:
        return None
    raise XaeError(f"--storage {shown(url)!r} is not a storage xae knows; write one of {FORMS}")


def _check_file(path: Path, url: str, create: bool) -> None:
    if path.is_dir():
        raise XaeError(f"--storage {url!r} is a folder; name a file in it")
    if not create and not path.is_file():
        raise XaeError(f"--storage {url!r}: there is no file '{path}'; start the study first "
                       f"(xae sweep --optuna --space ... --storage {url}) or correct the path")
    if not path.parent.is_dir():
        raise XaeError(f"--storage {url!r}: the folder '{path.parent}' does not exist; "
                       f"create it or choose another path")


def _serialize_sqlite(engine: Any) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite leaves BEGIN to the listener below

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners are not reused


def _rdb(url: str) -> Any:
    import optuna
    import sqlalchemy.exc

    sqlite = url.startswith("sqlite")
    kwargs = {"connect_args": {"timeout": SQLITE_BUSY_S}} if sqlite else {}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except ImportError as e:
        module = getattr(e.__cause__, "name", None) or "the database driver"
        package = DRIVERS.get(module.split(".")[0], module)
        raise XaeError(f"--storage {shown(url)}: the Python driver '{module}' is not "
                       f"installed; pip install {package} (or name another driver in the "
                       f"URL, e.g. postgresql+psycopg2://, mysql+pymysql://)") from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise XaeError(f"--storage {shown(url)} cannot be opened ({first}); check the URL, "
                       f"that the server runs and that you may write there") from None
    if sqlite:
        _serialize_sqlite(storage.engine)
    return storage


def _journal(path: Path, url: str) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except (OSError, ValueError, KeyError, TypeError) as e:  # JSON errors are ValueErrors
        raise XaeError(f"--storage {url!r}: '{path}' is not an Optuna journal that can be "
                       f"read and written ({e}); choose another file") from None


def open_storage(url: str, create: bool = True) -> Any:
    """The Optuna storage ``url`` names. ``create=False``: a SQLite or journal file must
    already exist (a joining worker never makes an empty one)."""
    from xae.sweep.optuna_search import _optuna

    _optuna()  # the sweep extra's error if Optuna is missing
    path = local_file(url)
    if path is not None:
        _check_file(path, url, create)
    return _rdb(url) if path is None or url.startswith("sqlite") else _journal(path, url)
