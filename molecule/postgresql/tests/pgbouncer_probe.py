"""Run on the test host as postgres: more app clients through PgBouncer than it may open to PostgreSQL.

N clients log in to PgBouncer (127.0.0.1, its port) with the app role's password, all at once each run
BEGIN; SELECT pg_sleep(S); COMMIT, and each stays connected until every one has finished. Meanwhile a
superuser connection (peer, over the socket) watches pg_stat_activity for the most app backends running
pg_sleep at once: what PgBouncer really opened to PostgreSQL. With transaction pooling every client gets
its turn while all stay connected; with session pooling the clients beyond the server pool would wait
for one to disconnect, which none does. Prints one JSON line.
Arguments: N port database role sleep_seconds (the password comes from the PGPASSFILE libpq reads).
"""

import json
import sys
import threading
import time

import psycopg2
from probe_common import most_active_at_once

count, port, database, role, sleep_s = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    sys.argv[3],
    sys.argv[4],
    float(sys.argv[5]),
)
# Clients, plus the watcher: connected; then clients only: done, still connected.
everyone_connected = threading.Barrier(count + 1, timeout=60)
everyone_done = threading.Barrier(count, timeout=90)
results: list[str] = []


def one_client() -> None:
    try:
        connection = psycopg2.connect(
            host="127.0.0.1", port=port, dbname=database, user=role, connect_timeout=30
        )
    except Exception as error:
        results.append(f"connect failed: {error}".strip())
        everyone_connected.abort()
        return
    try:
        everyone_connected.wait()
        # One transaction: psycopg2 sends BEGIN before the query, COMMIT when the block ends.
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s), 1", (sleep_s,))
            answer = cursor.fetchone()[1]
        everyone_done.wait()
        results.append("ok" if answer == 1 else "wrong answer")
    except Exception as error:
        results.append(f"failed: {type(error).__name__} {error}".strip())
        everyone_done.abort()
    finally:
        connection.close()


threads = [threading.Thread(target=one_client) for _ in range(count)]
for thread in threads:
    thread.start()
report: dict = {"clients": count, "sleep_s": sleep_s}
admin = psycopg2.connect(dbname=database)
admin.autocommit = True
try:
    everyone_connected.wait()
    started = time.monotonic()
    # Watched until every client has finished (and disconnected).
    report["active_at_once"] = most_active_at_once(
        admin, role, lambda _: not any(thread.is_alive() for thread in threads)
    )
    report["queries_s"] = round(time.monotonic() - started, 2)
except threading.BrokenBarrierError:
    report["barrier"] = "broken: not every client got in"
admin.close()
for thread in threads:
    thread.join()
report["ok"] = results.count("ok")
report["errors"] = sorted(set(result for result in results if result != "ok"))[:5]
print(json.dumps(report))
