"""What both probe scripts watch: the app role's backends running their pg_sleep at one moment.

Copied to the test host beside the probe that imports it (run_probe in test_postgresql.py).
"""

import time
from collections.abc import Callable


def most_active_at_once(admin, role: str, done: Callable[[int], bool]) -> int:
    """Highest number of the role's backends seen running pg_sleep at the same moment, sampled
    every 0.1 s over the superuser connection `admin` until done(highest so far) is true."""
    most = 0
    with admin.cursor() as cursor:
        while not done(most):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE usename = %s AND state = 'active' AND query LIKE 'SELECT pg_sleep%%'",
                (role,),
            )
            most = max(most, cursor.fetchone()[0])
            time.sleep(0.1)
    return most
