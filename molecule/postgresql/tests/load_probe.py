"""Run on the test host as postgres: hold N connections of the app role at once.

Each of N threads logs in over TCP with the app role's password (at most 16 logins in flight, as pools
open gradually: a storm of hundreds at once on a busy test machine measures the machine, not the budget).
Once all are in, all run SELECT pg_sleep(5) together; meanwhile a superuser connection (peer, over the
socket) watches pg_stat_activity for the most app backends active at once, and one more app login is
attempted, which the role's CONNECTION LIMIT must refuse. Prints one JSON line.
Arguments: N database role (the password comes from the PGPASSFILE libpq reads).
"""

import json
import sys
import threading
import time

import psycopg2
from probe_common import most_active_at_once

SLEEP_S = 5
count, database, role = int(sys.argv[1]), sys.argv[2], sys.argv[3]
everyone_connected = threading.Barrier(count + 1, timeout=300)
logins_in_flight = threading.Semaphore(16)
results: list[str] = []


def app_connection():
    return psycopg2.connect(host="127.0.0.1", dbname=database, user=role, connect_timeout=60)


def hold_one_connection() -> None:
    try:
        with logins_in_flight:
            connection = app_connection()
    except Exception as error:
        results.append(f"connect failed: {error}".strip())
        everyone_connected.abort()
        return
    try:
        everyone_connected.wait()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_sleep({SLEEP_S}), 1")
            results.append("ok" if cursor.fetchone()[1] == 1 else "wrong answer")
    except Exception as error:
        results.append(f"query failed: {error}".strip())
    finally:
        connection.close()


threads = [threading.Thread(target=hold_one_connection) for _ in range(count)]
started = time.monotonic()
for thread in threads:
    thread.start()
report = {"granted": count}
admin = psycopg2.connect(dbname=database)
admin.autocommit = True
try:
    everyone_connected.wait()
    released = time.monotonic()
    report["connected_in_s"] = round(released - started, 2)
    # Watched for the length of the sleeps, or until every connection was seen active.
    deadline = time.monotonic() + SLEEP_S
    report["active_at_once"] = most_active_at_once(
        admin, role, lambda most: most >= count or time.monotonic() >= deadline
    )
    try:
        app_connection().close()
        report["one_more"] = "accepted"
    except psycopg2.OperationalError as error:
        report["one_more"] = str(error).strip().splitlines()[-1]
except threading.BrokenBarrierError:
    report["barrier"] = "broken: not every connection was made"
admin.close()
for thread in threads:
    thread.join()
if "connected_in_s" in report:
    report["queries_s"] = round(time.monotonic() - released, 2)
report["sleep_s"] = SLEEP_S
report["ok"] = results.count("ok")
report["errors"] = sorted(set(result for result in results if result != "ok"))[:5]
print(json.dumps(report))
