"""One database for what citizens leave behind: a SQLite file by default, PostgreSQL with a URL.

SQLAlchemy 2 (Core) speaks both; Alembic migrations (``records/migrations``, shipped in the
package) create and upgrade the schema, and ``Database.upgrade`` runs them on first use and when
the app starts. Several replicas or processes may start at once: on SQLite the upgrade runs in
one ``BEGIN IMMEDIATE`` transaction, on PostgreSQL under a transaction-scoped advisory lock, so
exactly one of them migrates and the others find the schema current.

SQLite discipline (unchanged from the hand-written store): WAL, a busy timeout, a fresh
connection per call (``NullPool``: never shared across threads, nothing held open between
calls), and every write one ``BEGIN IMMEDIATE`` transaction, so a vote waits its turn instead
of failing. ``synchronous = NORMAL``, WAL's usual partner: a commit is not flushed to the disk
on its own (5.3 -> 3.3 ms a logged question); a power cut may lose the last commits, never the
file.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from core.errors import ReportQAError

BUSY_TIMEOUT_S = 5.0
MIGRATIONS = "records:migrations"
HEAD = "0002"  # the newest migration in records/migrations/versions
LEGACY_REVISION = "0001"  # a file made by the hand-written store (PRAGMA user_version 1) holds this schema
_ADVISORY_LOCK = 7_231_460_113  # pg_advisory_xact_lock key: "one ReportQA migrates at a time"


class DatabaseError(ReportQAError):
    """The database cannot be opened, reached or written (damaged, newer, locked, unreachable)."""


# The name the feedback store always raised; kept so callers and tests that catch it still do.
FeedbackStoreError = DatabaseError


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and "://" in target


class Database:
    """A SQLite file (a path) or any SQLAlchemy URL (``postgresql+psycopg://user@host/db``).

    Cheap to construct: nothing is opened, created or connected until first use.
    """

    def __init__(self, target: str | Path):
        if isinstance(target, Database):
            raise TypeError("already a Database")
        self.path: Path | None = None if is_url(target) else Path(target)
        try:
            self.url: URL = make_url(str(target)) if self.path is None else URL.create("sqlite", database=str(self.path))
        except ArgumentError:
            raise DatabaseError(f"Not a database URL: {str(target)[:80]!r} (e.g. postgresql+psycopg://user@host/db)",
                                "数据库地址格式不正确。") from None
        if self.url.get_backend_name() == "postgresql" and self.url.drivername == "postgresql":
            self.url = self.url.set(drivername="postgresql+psycopg")  # psycopg 3, the driver we install
        self._engine: Engine | None = None
        self._ready = False
        self._lock = threading.Lock()

    # -- what it is ------------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def where(self) -> str:
        """The file, or the URL without its password: safe for the log and the staff page."""
        return str(self.path) if self.path is not None else self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.where!r})"

    # -- connections -----------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine()
            return self._engine

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            try:
                return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                     connect_args={"connect_timeout": int(BUSY_TIMEOUT_S)})
            except (NoSuchModuleError, ImportError) as exc:
                raise DatabaseError(f"No driver for {self.where}: {exc}", f"无法连接数据库（缺少驱动）：{self.where}") from None
        engine = create_engine(self.url, poolclass=NullPool, connect_args={"timeout": BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            # No implicit transactions from the driver: we say BEGIN ourselves (below).
            dbapi_connection.isolation_level = None
            dbapi_connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            dbapi_connection.execute("PRAGMA synchronous = NORMAL")
            _use_wal(dbapi_connection)

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            # A write takes the write lock at once, so two writers queue on the busy timeout instead of
            # one failing when it upgrades a read lock; a read begins deferred and blocks no one.
            read = connection.get_execution_options().get("reportqa_read", False)
            connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that commits at the end (rolls back on an error); the schema is current."""
        self.upgrade()
        with self._errors():
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading; the schema is current."""
        self.upgrade()
        with self._errors():
            with self.engine.connect() as conn:
                conn = conn.execution_options(reportqa_read=True)
                with conn.begin():
                    yield conn

    # -- the schema ------------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Create the tables or run the migrations they lack; once per process, then a no-op."""
        if self._ready:
            return
        self._prepare_file()
        with self._errors():
            with self.engine.connect() as conn:
                with conn.begin():
                    if not self.is_sqlite:
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
                    self._migrate(conn)
        self._ready = True

    def revision(self) -> str | None:
        """The schema revision the database is at (None: empty)."""
        with self._errors():
            with self.engine.connect() as conn:
                return _current_revision(conn)

    def _migrate(self, conn: Connection) -> None:
        from alembic import command
        from alembic.config import Config

        current = _current_revision(conn)
        if current is None and inspect(conn).has_table("feedback"):
            current = LEGACY_REVISION  # made by the hand-written SQLite store: same table, no alembic_version
            _stamp(conn, current)
        if current == HEAD:
            return
        if current is not None and current not in _known_revisions():
            raise DatabaseError(
                f"Database {self.where} has schema revision {current}, newer than this ReportQA understands "
                f"({HEAD}); upgrade ReportQA or point it at another database.",
                f"数据库 {self.where} 的版本（{current}）比当前 ReportQA 支持的版本（{HEAD}）新，"
                "请升级 ReportQA 或改用其他数据库。",
            )
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")

    def _prepare_file(self) -> None:
        if self.path is None:
            return
        # Only stat the path: open()+close() of the database file here would drop every POSIX lock
        # this process holds on it (SQLite's "how to corrupt" 2.2). SQLite itself refuses a foreign
        # file with SQLITE_NOTADB before writing anything.
        if self.path.is_dir():
            raise DatabaseError(
                f"Feedback database {self.path} is a folder, not a file; choose another path.",
                f"反馈数据库路径 {self.path} 是一个文件夹，不是文件，请换一个路径。",
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"Cannot create the folder for the feedback database {self.path}: {exc.strerror or exc}",
                f"无法创建反馈数据库所在的文件夹 {self.path.parent}：{exc.strerror or exc}",
            ) from None

    # -- errors ----------------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors become one DatabaseError with an English and a Chinese message, no traceback."""
        try:
            yield
        except DatabaseError:
            raise
        except (DBAPIError, sqlite3.DatabaseError) as exc:  # busy, NOTADB, CORRUPT, I/O, refused connection
            raise self._explain(getattr(exc, "orig", None) or exc) from None
        except SQLAlchemyError as exc:
            raise self._unusable(str(exc).splitlines()[0]) from None

    def _explain(self, exc: BaseException) -> DatabaseError:
        message = str(exc)
        if self.is_sqlite:
            code = getattr(exc, "sqlite_errorname", "")
            if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in message \
                    or "malformed" in message:
                return DatabaseError(
                    f"Feedback database {self.path} is not a SQLite database or is damaged; move it aside "
                    f"(e.g. rename it to {self.path.name}.bad) and a new one will be created. Nothing was written.",
                    f"反馈数据库文件 {self.path} 已损坏或不是 SQLite 数据库；请将其移走（例如改名为 {self.path.name}.bad），"
                    "系统会新建一个。原文件未被改动。",
                )
            if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in message:
                return DatabaseError(
                    f"Feedback database {self.path} stayed busy for more than {BUSY_TIMEOUT_S:g} s "
                    "(another program holds it open?); try again.",
                    "反馈数据库正忙（可能被其他程序占用），请稍后重试。",
                )
        elif "connect" in message.lower() or "timeout" in message.lower():
            return DatabaseError(
                f"Cannot reach the database {self.where}: {message.splitlines()[0] if message else exc!r}",
                "暂时无法连接数据库，请稍后重试。",
            )
        return self._unusable(message.splitlines()[0] if message else repr(exc))

    def _unusable(self, reason: str) -> DatabaseError:
        return DatabaseError(f"Cannot use the database {self.where}: {reason}", f"无法使用数据库 {self.where}：{reason}")


def _use_wal(dbapi_connection: sqlite3.Connection) -> None:
    """Switch to WAL (persistent in the file); retried because the switch can report busy at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                dbapi_connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _stamp(conn: Connection, revision: str) -> None:
    conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision})


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
