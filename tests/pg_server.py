"""A throwaway PostgreSQL server for the tests: initdb in a temporary folder, started on a free loopback port.

Debian's ``postgresql`` package (``make test`` installs it) provides the binaries; as root they run as
the ``postgres`` user (PostgreSQL refuses to run as root). Each test gets a database of its own.
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/<version>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresServer:
    def __init__(self, port: int):
        self.port = port
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="reportqa-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.user = "reportqa"
        self._run_as: list[str] = []

    def why_not(self) -> str | None:
        """Why a server cannot run here, or None."""
        if self.bindir is None:
            return "PostgreSQL is not installed (make test installs Debian's postgresql)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run PostgreSQL as"
            if not shutil.which("runuser"):
                return "running as root without runuser to run PostgreSQL as the postgres user"
        return None

    def _cmd(self, *args: str) -> list[str]:
        return [*self._run_as, *args]

    def start(self) -> "PostgresServer":
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.root, postgres.pw_uid, postgres.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run(self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                                 "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"),
                       check=True, capture_output=True, timeout=120)
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
                                 "-w", "-t", "60", "start"), check=True, capture_output=True, timeout=90)
        return self

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import sqlalchemy

        name = "t_" + secrets.token_hex(6)
        engine = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.NullPool)
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                                     "stop"), capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
