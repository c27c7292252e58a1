from __future__ import annotations

import json
import multiprocessing
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import deploy_lock
import pytest
from deploy_lock import (
    Lock,
    LockError,
    SystemClock,
    acquire,
    create_lock,
    decide_acquire,
    decide_release,
    describe,
    format_duration,
    format_time,
    inspect,
    parse_lock,
    parse_time,
    read_lock,
    release,
)
from module_run import RunModule

T0 = 1_735_700_400  # 2025-01-01T03:00:00Z
TTL = 1800


class FakeClock:
    """Time that moves only when someone sleeps; on_sleep lets a test act while a waiter waits."""

    def __init__(self, now: float = T0, on_sleep: Callable[[float], None] | None = None) -> None:
        self.current = now
        self.on_sleep = on_sleep
        self.slept = 0.0

    def now(self) -> float:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += seconds
        self.slept += seconds
        if self.on_sleep:
            self.on_sleep(self.current)


def take(path: Path, owner: str = "alice@laptop", clock: Any = None, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "ttl": TTL,
        "wait": 0,
        "force": False,
        "purpose": "deploy",
        "owner_pid": 4242,
        "owner_host": "laptop",
        "check_mode": False,
    }
    arguments.update(overrides)
    return acquire(str(path), owner, clock=clock or FakeClock(), **arguments)


def on_disk(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / ".deploy.lock"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (59, "59s"), (60, "1m00s"), (192, "3m12s"), (3725, "1h02m05s"), (-5, "0s")],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_time_round_trip() -> None:
    assert format_time(T0) == "2025-01-01T03:00:00Z"
    assert parse_time("2025-01-01T03:00:00Z") == T0


def test_parse_lock_round_trip() -> None:
    lock = Lock("alice@laptop", 4242, "laptop", T0, T0 + TTL, "deploy", TTL)
    assert parse_lock(json.dumps(lock.to_dict())) == lock


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"owner": "x"}',
        '{"owner": "x", "acquired_at": "yesterday", "expires_at": "2025-01-01T03:00:00Z"}',
    ],
)
def test_parse_lock_refuses_what_is_not_a_lock(text: str) -> None:
    with pytest.raises(ValueError, match="not a deploy lock"):
        parse_lock(text)


HELD = Lock("bob@ci", None, None, T0, T0 + TTL, "deploy", TTL)
YEAR = 365 * 86400


@pytest.mark.parametrize(
    ("current", "owner", "now", "force", "expected"),
    [
        (None, "alice", T0, False, "create"),
        (HELD, "bob@ci", T0 + 10, False, "renew"),
        (HELD, "alice", T0 + 10, False, "wait"),
        (HELD, "alice", T0 + TTL - 1, False, "wait"),
        (HELD, "alice", T0 + TTL, False, "take_over"),
        (HELD, "alice", T0 + 10, True, "take_over"),
        # Dated ahead of the clock: taken (or taken again) in the future, beyond the 5 minutes' margin.
        (HELD, "alice", T0 - 300, False, "wait"),
        (HELD, "alice", T0 - 301, False, "take_over"),
        (HELD, "alice", T0 - YEAR, False, "take_over"),
        (Lock("bob@ci", None, None, T0, T0 + 600 + TTL, "deploy", TTL), "alice", T0 + 10, False, "take_over"),
        (Lock("bob@ci", None, None, T0, T0 + 600 + TTL, "deploy", TTL), "alice", T0 + 400, False, "wait"),
    ],
)
def test_decide_acquire(current: Lock | None, owner: str, now: float, force: bool, expected: str) -> None:
    assert decide_acquire(current, owner, now, force) == expected


@pytest.mark.parametrize(
    ("current", "owner", "now", "force", "expected"),
    [
        (None, "alice", T0, False, "absent"),
        (HELD, "bob@ci", T0 + 10, False, "release"),
        (HELD, "alice", T0 + 10, False, "refuse"),
        (HELD, None, T0 + 10, False, "refuse"),
        (HELD, "alice", T0 + 10, True, "release"),
        (HELD, "alice", T0 + TTL + 1, False, "release"),
    ],
)
def test_decide_release(
    current: Lock | None, owner: str | None, now: float, force: bool, expected: str
) -> None:
    assert decide_release(current, owner, now, force) == expected


@pytest.mark.parametrize(
    ("lock", "now", "expected"),
    [
        (
            Lock("alice@laptop", 4242, "laptop", T0, T0 + TTL, "deploy", TTL),
            T0 + 192,
            "alice@laptop (pid 4242, on laptop) for deploy, taken 3m12s ago, "
            "expires in 26m48s at 2025-01-01T03:30:00Z",
        ),
        (HELD, T0 + TTL + 60, "bob@ci for deploy, taken 31m00s ago, stale since 1m00s"),
        (
            HELD,
            T0 - 3600,
            "bob@ci for deploy, dated 1h00m00s ahead of this host's clock (taken at 2025-01-01T03:00:00Z, "
            "expiring at 2025-01-01T03:30:00Z): the clock was wrong when it was written or has been set "
            "back since, so its times say nothing and it counts as stale",
        ),
    ],
)
def test_describe(lock: Lock, now: float, expected: str) -> None:
    assert describe(lock, now) == expected


def test_acquire_a_free_lock_writes_the_owner(lock_path: Path) -> None:
    result = take(lock_path)
    assert (result["changed"], result["acquired"], result["took_over"], result["held"]) == (
        True,
        True,
        False,
        True,
    )
    assert on_disk(lock_path) == {
        "owner": "alice@laptop",
        "pid": 4242,
        "host": "laptop",
        "acquired_at": "2025-01-01T03:00:00Z",
        "expires_at": "2025-01-01T03:30:00Z",
        "purpose": "deploy",
        "ttl": TTL,
    }
    assert result["lock"] == on_disk(lock_path)
    assert oct(lock_path.stat().st_mode & 0o777) == "0o644"
    assert [entry.name for entry in lock_path.parent.iterdir()] == [lock_path.name]  # no temporary left


def test_acquire_again_as_owner_renews(lock_path: Path) -> None:
    take(lock_path)
    result = take(lock_path, clock=FakeClock(T0 + 600))
    assert (result["renewed"], result["acquired"], result["took_over"]) == (True, True, False)
    assert on_disk(lock_path)["acquired_at"] == "2025-01-01T03:00:00Z"
    assert on_disk(lock_path)["expires_at"] == "2025-01-01T03:40:00Z"


def test_renewing_without_pid_and_host_keeps_those_of_the_lock(lock_path: Path) -> None:
    # renew_lock.yml gives only the owner: the run, its pid and its controller are the same.
    take(lock_path)
    take(lock_path, clock=FakeClock(T0 + 600), owner_pid=None, owner_host=None)
    assert (on_disk(lock_path)["pid"], on_disk(lock_path)["host"]) == (4242, "laptop")


def test_a_held_lock_fails_with_the_owner_and_age_after_waiting(lock_path: Path) -> None:
    take(lock_path, owner="bob@ci")
    clock = FakeClock(T0 + 192)
    with pytest.raises(LockError) as raised:
        take(lock_path, clock=clock, wait=5)
    message = str(raised.value)
    assert "Another deploy holds the lock" in message
    # the age is as of the failure, after the wait
    assert "bob@ci (pid 4242, on laptop) for deploy, taken 3m17s ago" in message
    assert "Waited 5 s" in message and "-e app_lock_release=true" in message
    assert clock.slept == 5
    assert raised.value.result["held"] is True and raised.value.result["acquired"] is False
    assert on_disk(lock_path)["owner"] == "bob@ci"


def test_a_lock_released_while_waiting_is_taken(lock_path: Path) -> None:
    take(lock_path, owner="bob@ci")
    clock = FakeClock(T0 + 10, on_sleep=lambda now: lock_path.unlink() if now >= T0 + 13 else None)
    result = take(lock_path, clock=clock, wait=60)
    assert (result["acquired"], result["took_over"], result["waited"]) == (True, False, 3)
    assert on_disk(lock_path)["owner"] == "alice@laptop"


@pytest.mark.parametrize(
    ("now", "force", "reason"), [(T0 + TTL + 5, False, "it was stale"), (T0 + 5, True, "force is set")]
)
def test_take_over_says_so_with_the_old_owner(lock_path: Path, now: float, force: bool, reason: str) -> None:
    take(lock_path, owner="bob@ci")
    result = take(lock_path, clock=FakeClock(now), force=force)
    assert (result["acquired"], result["took_over"], result["previous_owner"]) == (True, True, "bob@ci")
    assert result["found"]["owner"] == "bob@ci"
    assert reason in result["msg"] and "from bob@ci" in result["msg"]
    assert on_disk(lock_path)["owner"] == "alice@laptop"


def test_a_lock_dated_a_year_ahead_is_taken_over_not_held_for_a_year(lock_path: Path) -> None:
    # Written while the host's clock was a year fast; the clock has been put right since.
    take(lock_path, owner="bob@ci", clock=FakeClock(T0 + YEAR))
    seen = inspect(str(lock_path), TTL, FakeClock(T0))
    assert (seen["held"], seen["stale"], seen["dated_ahead"]) == (False, True, True)
    assert "dated 8760h00m00s ahead of this host's clock" in seen["msg"]
    assert "The next deploy will take it over." in seen["msg"]
    result = take(lock_path, clock=FakeClock(T0))
    assert (result["acquired"], result["took_over"], result["dated_ahead"]) == (True, True, True)
    assert result["msg"].startswith(f"Took over the deploy lock {lock_path} for alice@laptop from bob@ci")
    assert "ahead of this host's clock" in result["msg"] and result["msg"].endswith(": it was stale.")
    assert on_disk(lock_path)["acquired_at"] == "2025-01-01T03:00:00Z"


def test_a_lock_dated_ahead_within_the_margin_is_held(lock_path: Path) -> None:
    take(lock_path, owner="bob@ci", clock=FakeClock(T0 + 120))
    with pytest.raises(LockError, match="Another deploy holds the lock") as raised:
        take(lock_path, clock=FakeClock(T0))
    assert raised.value.result["dated_ahead"] is False


def test_renewing_ones_own_lock_dated_ahead_dates_it_now(lock_path: Path) -> None:
    # Taken, then the clock was set back an hour: renewed, the lock is dated by the clock as it is now.
    take(lock_path, clock=FakeClock(T0 + 3600))
    result = take(lock_path, clock=FakeClock(T0))
    assert (result["renewed"], result["held"]) == (True, True)
    assert on_disk(lock_path)["acquired_at"] == "2025-01-01T03:00:00Z"
    assert inspect(str(lock_path), TTL, FakeClock(T0 + 60))["held"] is True


@pytest.mark.parametrize(
    "content", [b"{half a lock", b"\xff\xfe not UTF-8 \x80"], ids=["not-json", "not-utf8"]
)
def test_an_unreadable_lock_file_is_held_until_its_ttl_from_mtime(lock_path: Path, content: bytes) -> None:
    lock_path.write_bytes(content)
    os.utime(lock_path, (T0, T0))
    with pytest.raises(LockError, match=r"unknown \(the lock file is unreadable"):
        take(lock_path, clock=FakeClock(T0 + 60))
    result = take(lock_path, clock=FakeClock(T0 + TTL + 1))
    assert result["took_over"] is True
    assert on_disk(lock_path)["owner"] == "alice@laptop"


def _make_symlink(path: Path) -> None:
    path.symlink_to(path.parent / "gone")


def _make_symlink_to_a_lock(path: Path) -> None:
    take(path.parent / "elsewhere.lock", owner="bob@ci")
    path.symlink_to(path.parent / "elsewhere.lock")


def _make_socket(path: Path) -> None:
    # Bound, then closed: the socket file stays, and opening it fails with ENXIO.
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))


NOT_LOCK_FILES = {
    "dangling-symlink": (_make_symlink, "a symbolic link to"),
    "symlink-to-a-lock": (_make_symlink_to_a_lock, "a symbolic link to"),
    "directory": (Path.mkdir, "a directory"),
    "fifo": (os.mkfifo, "a FIFO"),
    "socket": (_make_socket, "a socket"),
}


@pytest.mark.parametrize("kind", NOT_LOCK_FILES)
@pytest.mark.parametrize("state", ["acquired", "released", "inspect"])
def test_anything_but_a_regular_file_at_the_lock_path_fails_naming_it(
    lock_path: Path, run_module: RunModule, kind: str, state: str
) -> None:
    # A dangling symlink read as "no lock", and creating one over it failed: acquire looped for ever.
    make, words = NOT_LOCK_FILES[kind]
    make(lock_path)
    before = os.lstat(lock_path)
    result = run_module(deploy_lock, {"state": state, "path": str(lock_path), "owner": "alice@laptop"})
    assert result["failed"] is True
    assert result["msg"].startswith(f"The deploy lock's path {lock_path} is {words}")
    assert "nothing was changed" in result["msg"]
    after = os.lstat(lock_path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_acquire_stops_looking_again_when_the_lock_keeps_turning_up(
    lock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = []

    def found_there_first(path: str, lock: Lock) -> bool:
        attempts.append(path)
        return False

    monkeypatch.setattr(deploy_lock, "create_lock", found_there_first)
    with pytest.raises(LockError, match=f"Could not create the deploy lock {lock_path}: 10 times"):
        take(lock_path)
    assert len(attempts) == deploy_lock.CREATE_ATTEMPTS


@pytest.mark.parametrize(
    ("existing", "now", "took_over", "renewed"),
    [(None, T0, False, False), ("alice@laptop", T0 + 60, False, True), ("bob@ci", T0 + TTL + 1, True, False)],
)
def test_check_mode_acquire_reports_and_writes_nothing(
    lock_path: Path, existing: str | None, now: float, took_over: bool, renewed: bool
) -> None:
    if existing:
        take(lock_path, owner=existing)
    before = lock_path.read_text() if existing else None
    result = take(lock_path, clock=FakeClock(now), check_mode=True)
    assert (result["changed"], result["acquired"], result["took_over"], result["renewed"]) == (
        True,
        False,
        took_over,
        renewed,
    )
    assert result["msg"].startswith("Would ")
    assert (lock_path.read_text() if existing else lock_path.exists()) == (before if existing else False)


def test_check_mode_does_not_wait_or_fail_on_a_held_lock(lock_path: Path) -> None:
    take(lock_path, owner="bob@ci")
    clock = FakeClock(T0 + 5)
    result = take(lock_path, clock=clock, wait=600, check_mode=True)
    assert (result["changed"], result["acquired"], result["held"]) == (False, False, True)
    assert clock.slept == 0
    assert "Would wait up to 600 s" in result["msg"] and "bob@ci" in result["msg"]


def test_release_by_the_owner(lock_path: Path) -> None:
    take(lock_path)
    result = release(str(lock_path), "alice@laptop", False, TTL, FakeClock(T0 + 60), False)
    assert (result["changed"], result["held"], result["previous_owner"]) == (True, False, None)
    assert not lock_path.exists()


def test_release_of_someone_elses_lock_is_refused(lock_path: Path) -> None:
    take(lock_path, owner="bob@ci")
    with pytest.raises(LockError, match=r"is held by bob@ci .* not by alice@laptop"):
        release(str(lock_path), "alice@laptop", False, TTL, FakeClock(T0 + 60), False)
    assert on_disk(lock_path)["owner"] == "bob@ci"


@pytest.mark.parametrize(
    ("owner", "force", "now"), [("alice", True, T0 + 60), (None, True, T0 + 60), ("alice", False, T0 + TTL)]
)
def test_release_of_someone_elses_lock_with_force_or_when_stale(
    lock_path: Path, owner: str | None, force: bool, now: float
) -> None:
    take(lock_path, owner="bob@ci")
    result = release(str(lock_path), owner, force, TTL, FakeClock(now), False)
    assert (result["changed"], result["previous_owner"]) == (True, "bob@ci")
    assert not lock_path.exists()


def test_release_without_a_lock_changes_nothing(lock_path: Path) -> None:
    result = release(str(lock_path), "alice", False, TTL, FakeClock(), False)
    assert (result["changed"], result["lock"]) == (False, None)


@pytest.mark.parametrize(("owner", "changed"), [("alice@laptop", True), ("bob@ci", False)])
def test_check_mode_release_keeps_the_file(lock_path: Path, owner: str, changed: bool) -> None:
    take(lock_path)
    result = release(str(lock_path), owner, False, TTL, FakeClock(T0 + 1), True)
    assert result["changed"] is changed
    assert lock_path.exists()


@pytest.mark.parametrize(
    ("now", "held", "stale", "words"),
    [(T0 + 60, True, False, "is held by alice@laptop"), (T0 + TTL + 60, False, True, "is stale")],
)
def test_inspect(lock_path: Path, now: float, held: bool, stale: bool, words: str) -> None:
    take(lock_path)
    before = lock_path.read_text()
    result = inspect(str(lock_path), TTL, FakeClock(now))
    assert (result["changed"], result["held"], result["stale"], result["age"]) == (
        False,
        held,
        stale,
        now - T0,
    )
    assert words in result["msg"]
    assert lock_path.read_text() == before


def test_inspect_without_a_lock(lock_path: Path) -> None:
    result = inspect(str(lock_path), TTL, FakeClock())
    assert (result["held"], result["stale"], result["lock"], result["age"]) == (False, False, None, None)


def test_create_lock_never_overwrites(lock_path: Path) -> None:
    first = Lock("a", None, None, T0, T0 + 1, "deploy", 1)
    assert create_lock(str(lock_path), first) is True
    assert create_lock(str(lock_path), Lock("b", None, None, T0, T0 + 1, "deploy", 1)) is False
    assert read_lock(str(lock_path), TTL) == first


def _race(path: str, owner: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        result = acquire(path, owner, TTL, 0, False, "deploy", os.getpid(), None, SystemClock(), False)
        results.put((owner, result["acquired"], result["took_over"]))
    except LockError:
        results.put((owner, False, False))


def _run_race(path: Path, racers: int) -> list[tuple[str, bool, bool]]:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(racers), context.Queue()
    workers = [
        context.Process(target=_race, args=(str(path), f"racer-{index}", barrier, results))
        for index in range(racers)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=30) for _worker in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return outcomes


@pytest.mark.parametrize("round_number", range(5))
def test_racing_acquirers_exactly_one_wins(lock_path: Path, round_number: int) -> None:
    outcomes = _run_race(lock_path, 8)
    winners = [owner for owner, acquired, _took_over in outcomes if acquired]
    assert len(winners) == 1
    assert on_disk(lock_path)["owner"] == winners[0]


@pytest.mark.parametrize("round_number", range(5))
def test_racing_for_a_stale_lock_exactly_one_takes_it_over(lock_path: Path, round_number: int) -> None:
    take(lock_path, owner="dead@deploy", clock=FakeClock(T0 - 10 * TTL))
    outcomes = _run_race(lock_path, 8)
    winners = [(owner, took_over) for owner, acquired, took_over in outcomes if acquired]
    assert len(winners) == 1 and winners[0][1] is True
    assert on_disk(lock_path)["owner"] == winners[0][0]


def test_module_life_cycle(lock_path: Path, run_module: RunModule) -> None:
    path = str(lock_path)
    taken = run_module(
        deploy_lock, {"state": "acquired", "path": path, "owner": "alice@laptop", "owner_pid": 7}
    )
    assert (taken["changed"], taken["acquired"], taken["lock"]["pid"]) == (True, True, 7)
    refused = run_module(deploy_lock, {"state": "acquired", "path": path, "owner": "bob@ci"})
    assert refused["failed"] is True and "alice@laptop" in refused["msg"]
    seen = run_module(deploy_lock, {"state": "inspect", "path": path})
    assert (seen["changed"], seen["held"], seen["stale"], seen["lock"]["owner"]) == (
        False,
        True,
        False,
        "alice@laptop",
    )
    checked = run_module(
        deploy_lock, {"state": "released", "path": path, "owner": "alice@laptop", "_ansible_check_mode": True}
    )
    assert checked["changed"] is True and lock_path.exists()
    released = run_module(deploy_lock, {"state": "released", "path": path, "owner": "alice@laptop"})
    assert released["changed"] is True and not lock_path.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"state": "acquired"}, "owner is required to take the deploy lock"),
        ({"state": "released"}, "owner is required to release"),
        ({"state": "acquired", "owner": "a", "ttl": 0}, "ttl=0 must be at least 1 second"),
        ({"state": "acquired", "owner": "a", "wait": -1}, "wait=-1 must be 0 or more"),
        (
            {"state": "acquired", "owner": "a", "path": "/nonexistent/shop/.deploy.lock"},
            "/nonexistent/shop, does not exist",
        ),
    ],
)
def test_module_refuses_bad_arguments(
    lock_path: Path, run_module: RunModule, args: dict[str, Any], message: str
) -> None:
    result = run_module(deploy_lock, {"path": str(lock_path), **args})
    assert result["failed"] is True
    assert message in result["msg"]


def test_module_check_mode_on_a_new_host_without_the_directory(run_module: RunModule) -> None:
    result = run_module(
        deploy_lock,
        {
            "state": "acquired",
            "path": "/nonexistent/shop/.deploy.lock",
            "owner": "a",
            "_ansible_check_mode": True,
        },
    )
    assert (result.get("failed", False), result["changed"]) == (False, True)
