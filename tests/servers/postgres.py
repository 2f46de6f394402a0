"""A throw-away PostgreSQL cluster: `initdb` into a temporary directory, a free port on 127.0.0.1.

`Cluster` is one server for a whole test session (tests/backends.py starts it once); each test
gets a fresh database of its own (`create_database`), copied from a template that already holds
the migrated schema, which is much quicker than migrating every time. The cluster is tuned for
tests, not durability (`fsync = off`): a test that restarts the server uses `restart()`, a clean
stop, so nothing acknowledged is lost.

PostgreSQL refuses to run as root; as root (CI, these machines) the server runs as the
`postgres` system user the Debian package creates, in a directory of its own that user owns.

Authentication: the cluster's superuser `console` connects without a password from 127.0.0.1
(the tests' own connections); every other role (the agents of tests/store/test_agent_roles.py)
needs its password (scram-sha-256), as on a real server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "console"
INSTALL = "sudo apt-get install postgresql"


def bindir() -> Path | None:
    """Where Debian's (or any) PostgreSQL server programs are: initdb, pg_ctl, postgres."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, bin_dir: Path, root: Path | None = None):
        self.bin = bin_dir
        self.root = Path(root or tempfile.mkdtemp(prefix="console-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._user = None
        if os.getuid() == 0:
            self._user = "postgres"
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, PostgreSQL needs the `postgres` user: " + INSTALL) from None
            self.root.chmod(0o755)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._databases = 0
        self._run(["initdb", "-D", str(self.data), "-U", SUPERUSER, "--encoding=UTF8", "--locale=C.UTF-8",
                   "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])
        hba = self.data / "pg_hba.conf"
        lines = hba.read_text()
        hba.write_text(f"host all {SUPERUSER} 127.0.0.1/32 trust\n" + lines)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                       "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\nmax_connections = 300\n"
                       "shared_buffers = 128MB\nlog_min_messages = warning\n")
        self.start()

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], user=self._user, capture_output=True,
                              text=True, check=check, cwd=self.root)

    def start(self) -> None:
        done = self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"], check=False)
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()} {self.server_log()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        self._run(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (every connection is cut), wait, start it again."""
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self, template: str | None = None) -> str:
        """A new, empty database (or a copy of `template`); returns its name."""
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        self.sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
