"""Queue more clients in PgBouncer than the app's pool holds: outage I3 behind PgBouncer.

Run as the app user with the app's env file: it takes DATABASE_URL from the environment, writes the
password to a private PGPASSFILE (never on a command line), and starts CLIENTS psql sessions through
PgBouncer, each holding a server connection for SECONDS in pg_sleep; the password file goes once they
have connected. Each psql is bounded by timeout(1), so the load ends by itself.
Usage: pgbouncer_queue.py CLIENTS SECONDS
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from urllib.parse import unquote, urlsplit

clients, seconds = int(sys.argv[1]), int(sys.argv[2])
url = urlsplit(os.environ["DATABASE_URL"])
# systemctl stop: leave through the with block below, which removes the password file.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


with tempfile.TemporaryDirectory() as private:
    passfile = os.path.join(private, "pgpass")
    with open(passfile, "w", opener=lambda path, flags: os.open(path, flags, 0o600)) as out:
        out.write(f"*:*:*:{escaped(unquote(url.username or ''))}:{escaped(unquote(url.password or ''))}\n")
    env = {
        **os.environ,
        "PGPASSFILE": passfile,
        "PGHOST": url.hostname or "127.0.0.1",
        "PGPORT": str(url.port or 6432),
        "PGUSER": unquote(url.username or ""),
        "PGDATABASE": url.path.lstrip("/"),
        "PGAPPNAME": "pgbouncer-queue",
        "PGCONNECT_TIMEOUT": "5",
    }
    sql = f"SELECT pg_sleep({seconds})"
    sessions = [
        subprocess.Popen(
            ["timeout", str(seconds + 5), "psql", "-XAtq", "-c", sql], env=env, stdout=subprocess.DEVNULL
        )
        for _ in range(clients)
    ]
    print(f"started {clients} sessions of {sql}", flush=True)
    # libpq reads the file when it connects (PGCONNECT_TIMEOUT): not needed on disk after that.
    time.sleep(6)
    os.unlink(passfile)
    for session in sessions:
        session.wait()
