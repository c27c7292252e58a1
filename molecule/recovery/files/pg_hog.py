"""Hold PostgreSQL connections as the app's role until none is left (outage I3, seed 001).

Run with the app's env file: it takes DATABASE_URL from the environment. It grabs every connection
it can get, including the app's idle ones as its pool frees them (after 10 s idle), until none has
come for 45 s; then it holds them. A connection that is ended stays ended: it never reconnects.
"""

import os
import time
from urllib.parse import unquote, urlsplit

import psycopg2

url = urlsplit(os.environ["DATABASE_URL"])
params = {
    "host": url.hostname,
    "port": url.port or 5432,
    "user": unquote(url.username or ""),
    "password": unquote(url.password or ""),
    "dbname": url.path.lstrip("/"),
    "application_name": "hog",
    "connect_timeout": 3,
}
held = []
last_taken = time.monotonic()
while not held or time.monotonic() - last_taken < 45:
    try:
        held.append(psycopg2.connect(**params))
        last_taken = time.monotonic()
    except psycopg2.OperationalError:
        time.sleep(0.2)
print(f"holding {len(held)} connections", flush=True)
while True:
    time.sleep(3600)
