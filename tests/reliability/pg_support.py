"""A throwaway PostgreSQL server for the tests: pgserver's bundled binaries, else a ``postgres``
found on PATH, in a temporary folder, reachable only through a Unix socket.

PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not
permitted). pgserver's own answer, when run as root, is to create a system user with
``useradd`` and to open the permissions of every folder above its data directory and its
binaries; a test should change neither the machine's users nor its permissions, so as root
the server runs here as the existing unprivileged user ``nobody`` instead (``subprocess``'s
``user``/``group``), in a fresh folder under the system temp dir that is given to that user.
Without binaries :func:`find_postgres` says why, and without such a user
:func:`postgres_server` does; the tests skip with that reason.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The programs the server needs, all in one folder.
PROGRAMS = ("initdb", "pg_ctl", "postgres")
#: The unprivileged account the server runs as when the tests run as root.
RUN_AS = "nobody"


@dataclass(frozen=True)
class Postgres:
    """Where the server comes from: its ``bin`` folder, and how it was found."""

    bin_dir: Path
    source: str


def _complete(folder: Path) -> bool:
    return all((folder / p).is_file() and os.access(folder / p, os.X_OK) for p in PROGRAMS)


def find_postgres() -> tuple[Postgres | None, str]:
    """:return: ``(the binaries, "")``, or ``(None, why none can run here)``."""
    spec = importlib.util.find_spec("pgserver")  # not imported: it sets up files on import
    if spec is not None and spec.origin is not None:
        folder = Path(spec.origin).parent / "pginstall" / "bin"
        if _complete(folder):
            return Postgres(folder, "pgserver"), ""
    found = shutil.which("postgres")
    if found is not None:
        folder = Path(found).resolve().parent  # /usr/local/bin/postgres -> .../15/bin/postgres
        if _complete(folder):
            return Postgres(folder, f"PATH ({folder})"), ""
    if spec is None and found is None:
        return None, (
            "no PostgreSQL here: neither pgserver (pip install 'unigen-sb3[dev]') nor a "
            "`postgres` binary on PATH"
        )
    return None, f"PostgreSQL found but without all of {PROGRAMS} in one folder"


def _run_as() -> tuple[dict[str, Any], int | None, int | None]:
    """subprocess keywords that drop root for the server, and that user's uid and gid."""
    if os.geteuid() != 0:
        return {}, None, None
    import pwd

    try:
        entry = pwd.getpwnam(RUN_AS)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL refuses to run as root, and there is no unprivileged user "
            f"{RUN_AS!r} to run it as"
        ) from None
    kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    return kwargs, entry.pw_uid, entry.pw_gid


@contextmanager
def postgres_server(pg: Postgres) -> Iterator[str]:
    """Start a server in a new temporary folder; yield the URL of its ``postgres`` database.

    Authentication is ``trust`` and the server listens on no TCP address, only on a Unix
    socket inside its folder. It is stopped (``immediate``) and its folder removed on exit.

    :raises RuntimeError: with the server's own output, if it cannot be started.
    """
    kwargs, uid, gid = _run_as()
    top = Path(tempfile.mkdtemp(prefix="unigen-pg-"))
    if uid is not None and gid is not None:
        os.chown(top, uid, gid)
    data, log = top / "data", top / "server.log"
    run = {"capture_output": True, "text": True, "cwd": top, "timeout": 120, **kwargs}

    def call(*args: str) -> None:
        proc = subprocess.run([str(pg.bin_dir / args[0]), *args[1:]], **run)
        if proc.returncode != 0:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()} {text[-2000:]}"
            )

    started = False
    try:
        call("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
        options = f"-c listen_addresses='' -k {top} -c fsync=off"
        call("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        yield f"postgresql://postgres@/postgres?host={top}"
    finally:
        if started:
            subprocess.run(
                [str(pg.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                **run,
            )
        shutil.rmtree(top, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url``; return its URL."""
    import psycopg

    host = url.split("?host=", 1)[1]
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@/{name}?host={host}"
