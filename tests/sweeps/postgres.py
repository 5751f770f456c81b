"""A throwaway PostgreSQL server for the tests of shared studies: Debian's `postgresql`
binaries, a cluster made by `initdb` in a temporary folder, listening on 127.0.0.1 (a free
port) and on a Unix socket in that folder, stopped and deleted at the end.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (or
`nobody`) through `runuser`, in a folder owned by that user. `make test` installs the
binaries (scripts/system-deps.sh); without them the tests are skipped with the reason.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "gankit"


def bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/VERSION/bin with initdb and pg_ctl, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    for initdb in reversed(found):
        if os.access(Path(initdb).parent / "pg_ctl", os.X_OK):
            return Path(initdb).parent
    path = shutil.which("initdb")
    return Path(path).parent if path and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running throwaway cluster; `url(db)` is its SQLAlchemy URL for database `db`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.prefix: list[str] = []
        self.owner: str | None = None
        if os.geteuid() == 0:
            self.owner = next((u for u in ("postgres", "nobody") if _user(u)), None)
            if self.owner is None or shutil.which("runuser") is None:
                raise RuntimeError("running as root with neither a postgres nor a nobody user "
                                   "(or no runuser) to run the server as")
            self.prefix = ["runuser", "-u", self.owner, "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="gankit-pg-"))  # short: a socket path < 108
        if self.owner:
            shutil.chown(self.dir, self.owner)
        self.data = self.dir / "data"
        self.port = _free_port()
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        # fsync off: a test server that is thrown away needs no durability
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -F -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                  "-t", "60", "-o", opts, "start")

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self.prefix, str(self.bindir / tool), *args],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text()[-1500:] if log.is_file() else ""
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip()}\n"
                               f"{tail}")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg2
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                                dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
