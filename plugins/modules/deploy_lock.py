#!/usr/bin/python
"""One deploy at a time per host (outage I11)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take, release or inspect the per-host deploy lock
description:
  - Outage I11 (seed 004) began with two copies of the app running at once. Two deploys at once produce
    exactly that, so a deploy takes this lock on each host first and releases it last (also on failure).
  - The lock is a JSON file, C({owner, pid, host, acquired_at, expires_at, purpose, ttl}), created atomically
    (written to a temporary file, then hard-linked into place, so it never exists half-written). Every change
    happens under an flock on the lock's directory, so two deploys that race for the lock, or for a stale one,
    cannot both win.
  - A lock held by someone else fails the task with the owner's name and the lock's age, after waiting up to
    O(wait) seconds for it. A lock past its O(ttl) is stale; it is taken over and the result says
    RV(took_over) with the old owner. So is a lock dated more than 5 minutes ahead of the host's clock
    (RV(dated_ahead)).
  - Taking the lock again as its owner renews it (a new expiry). Releasing needs the owner, unless the lock
    is stale or O(force) is set.
version_added: "0.1.0"
options:
  state:
    description:
      - C(acquired) takes the lock (or renews it, as its owner); C(released) removes it;
        C(inspect) only reads it, for diagnose.
    type: str
    choices: [acquired, released, inspect]
    required: true
  path:
    description: The lock file, such as C({{ app_root }}/.deploy.lock). Its directory must exist.
    type: path
    required: true
  owner:
    description:
      - Who takes the lock, such as C(alice@laptop pid 4242). Must be the same string to release it.
      - Required for C(acquired); for C(released) unless O(force).
    type: str
  owner_pid:
    description:
      - The process id of the deploy on the controller, recorded so an operator can find it.
      - When the owner renews its lock without it, the lock keeps the one it has.
    type: int
  owner_host:
    description:
      - The host the deploy runs from (the controller), recorded for the operator.
      - When the owner renews its lock without it, the lock keeps the one it has.
    type: str
  purpose:
    description: What the lock is for, recorded in the lock, such as C(deploy) or C(recover).
    type: str
    default: deploy
  ttl:
    description: Seconds after which the lock is stale and may be taken over. Longer than the longest deploy.
    type: int
    default: 1800
  wait:
    description: Seconds to wait for a lock held by someone else before failing.
    type: int
    default: 0
  force:
    description:
      - With C(released), remove the lock even if someone else holds it.
      - With C(acquired), take it over even if it is not stale. Only when that deploy is known to be dead.
    type: bool
    default: false
notes:
  - Check mode reads the lock and reports what would happen; it never creates, changes or removes it, never
    waits, and does not fail because someone else holds the lock.
  - State C(inspect) never changes anything.
author: shipshape
"""

EXAMPLES = r"""
- name: Take the deploy lock on {{ inventory_hostname }}
  deploy_lock:
    state: acquired
    path: "{{ app_root }}/.deploy.lock"
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    wait: 60

- name: Release the deploy lock
  deploy_lock:
    state: released
    path: "{{ app_root }}/.deploy.lock"
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"

- name: Read the deploy lock for the diagnose report
  deploy_lock:
    state: inspect
    path: "{{ app_root }}/.deploy.lock"
  register: deploy_lock_state
"""

RETURN = r"""
lock:
  description: The lock as it is after the task (for check mode, as it would be); null when there is none.
  returned: always
  type: dict
  sample:
    owner: alice@laptop
    pid: 4242
    host: laptop
    acquired_at: "2025-01-01T03:00:00Z"
    expires_at: "2025-01-01T03:30:00Z"
    purpose: deploy
    ttl: 1800
found:
  description: The lock found before the task; null when there was none.
  returned: always
  type: dict
held:
  description: Whether a live (not stale) lock exists after the task.
  returned: always
  type: bool
stale:
  description: Whether the lock found was past its TTL, or dated ahead (see RV(dated_ahead)).
  returned: always
  type: bool
dated_ahead:
  description:
    - Whether the lock found is dated more than 5 minutes ahead of the host's clock. It was written while
      the clock was wrong, or the clock has been set back since; its times say nothing, so it counts as
      stale (taken over by the next deploy) instead of being held until the clock catches up.
  returned: always
  type: bool
age:
  description: Seconds since the lock found was taken; null when there was none.
  returned: always
  type: int
acquired:
  description: Whether this task holds the lock now (state acquired; false in check mode).
  returned: always
  type: bool
took_over:
  description: Whether a lock held by someone else (stale, or with force) was replaced.
  returned: always
  type: bool
previous_owner:
  description: The owner of the lock that was taken over or force-released.
  returned: always
  type: str
renewed:
  description: Whether the owner took its own lock again, giving it a new expiry.
  returned: always
  type: bool
waited:
  description: Seconds spent waiting for someone else's lock.
  returned: always
  type: int
"""

import calendar
import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ansible.module_utils.basic import AnsibleModule

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
POLL_INTERVAL = 1.0
# A lock dated further ahead of the host's clock than this was written while the clock was wrong, or the
# clock has been set back since (a fast clock corrected at boot): its times say nothing, and it would
# otherwise be held until the clock caught up, for as long as the clock was wrong. It counts as stale.
# Up to this much is clock adjustment while a deploy runs, and the lock stays held.
FUTURE_MARGIN = 300
# Times the lock file may turn up between reading the path (nothing there) and creating it, each time
# put there by something that does not take the guard, before the task fails instead of looking again.
CREATE_ATTEMPTS = 10
# What else than a regular file may be at the lock's path, as people call it.
FILE_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class LockError(Exception):
    """The lock could not be taken or released; carries the result to report."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class NotALockFileError(Exception):
    """Something other than a regular file is at the lock's path; the module leaves it alone."""

    def __init__(self, path: str, mode: int) -> None:
        kind = FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        if stat.S_ISLNK(mode):
            with contextlib.suppress(OSError):
                kind += f" to {os.readlink(path)}"
        super().__init__(
            f"The deploy lock's path {path} is {kind}, not a lock file: nothing was changed. Look at it "
            f"(ls -l {path}) and remove it if it was left there (by a copy or a restore of the app's "
            "directory); the next run then creates the lock."
        )


@dataclass(frozen=True)
class Lock:
    owner: str
    pid: int | None
    host: str | None
    acquired_at: int  # seconds since the epoch, UTC
    expires_at: int
    purpose: str
    ttl: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acquired_at"] = format_time(self.acquired_at)
        data["expires_at"] = format_time(self.expires_at)
        return data


def format_time(epoch: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


def parse_time(text: str) -> int:
    return calendar.timegm(time.strptime(text, TIME_FORMAT))


def format_duration(seconds: float) -> str:
    """3725 -> '1h02m05s'; for people reading a failure."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def parse_lock(text: str) -> Lock:
    """The lock from its JSON text. Raises ValueError when it is not a lock this module wrote."""
    try:
        data = json.loads(text)
        return Lock(
            owner=str(data["owner"]),
            pid=None if data.get("pid") is None else int(data["pid"]),
            host=None if data.get("host") is None else str(data["host"]),
            acquired_at=parse_time(data["acquired_at"]),
            expires_at=parse_time(data["expires_at"]),
            purpose=str(data.get("purpose", "deploy")),
            ttl=int(data.get("ttl", 0)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"not a deploy lock ({error.__class__.__name__}: {error})") from None


def unreadable_lock(modified: float, ttl: int, problem: str) -> Lock:
    """A lock file that cannot be parsed: held by an unknown owner from its mtime until its ttl passes."""
    return Lock(
        owner=f"unknown (the lock file is unreadable: {problem})",
        pid=None,
        host=None,
        acquired_at=int(modified),
        expires_at=int(modified) + ttl,
        purpose="unknown",
        ttl=ttl,
    )


def ahead_of_clock(lock: Lock, now: float) -> float:
    """Seconds by which the lock is dated ahead of now: it was taken (acquired_at), or last taken again
    (expires_at less its ttl), in the future. 0 or less for a lock written by a right clock."""
    last_taken = lock.expires_at - lock.ttl if lock.ttl > 0 else lock.acquired_at
    return max(lock.acquired_at, last_taken) - now


def dated_ahead(lock: Lock, now: float) -> bool:
    return ahead_of_clock(lock, now) > FUTURE_MARGIN


def is_stale(lock: Lock, now: float) -> bool:
    return now >= lock.expires_at or dated_ahead(lock, now)


def describe(lock: Lock, now: float) -> str:
    """'alice@laptop (pid 4242 on laptop) for deploy, taken 3m12s ago, expires in 26m48s'."""
    where = ", ".join(
        part for part in (lock.pid and f"pid {lock.pid}", lock.host and f"on {lock.host}") if part
    )
    who = f"{lock.owner} ({where})" if where else lock.owner
    if dated_ahead(lock, now):
        return (
            f"{who} for {lock.purpose}, dated {format_duration(ahead_of_clock(lock, now))} ahead of this "
            f"host's clock (taken at {format_time(lock.acquired_at)}, expiring at "
            f"{format_time(lock.expires_at)}): the clock was wrong when it was written or has been set back "
            "since, so its times say nothing and it counts as stale"
        )
    if is_stale(lock, now):
        expiry = f"stale since {format_duration(now - lock.expires_at)}"
    else:
        expiry = f"expires in {format_duration(lock.expires_at - now)} at {format_time(lock.expires_at)}"
    return f"{who} for {lock.purpose}, taken {format_duration(now - lock.acquired_at)} ago, {expiry}"


def decide_acquire(current: Lock | None, owner: str, now: float, force: bool) -> str:
    """create, renew, take_over or wait."""
    if current is None:
        return "create"
    if current.owner == owner:
        return "renew"
    if is_stale(current, now) or force:
        return "take_over"
    return "wait"


def decide_release(current: Lock | None, owner: str | None, now: float, force: bool) -> str:
    """absent, release or refuse. A stale lock is free for anyone, so anyone may remove it."""
    if current is None:
        return "absent"
    if current.owner == owner or force or is_stale(current, now):
        return "release"
    return "refuse"


def read_lock(path: str, ttl: int) -> Lock | None:
    """The lock at path, or None when there is none.

    A file that is not a lock this module wrote (not JSON, not UTF-8) counts as held by an unknown owner
    (unreadable_lock). Anything but a regular file raises NotALockFileError: a dangling symbolic link
    would read as no lock while none can be created over it, and a FIFO would block the read.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        mode = os.lstat(path).st_mode  # ELOOP: a symbolic link; ENXIO: a socket
        if not stat.S_ISREG(mode):
            raise NotALockFileError(path, mode) from None
        raise
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise NotALockFileError(path, status.st_mode)
    with os.fdopen(descriptor, "rb") as handle:
        raw = handle.read()
    try:
        return parse_lock(raw.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError is one
        return unreadable_lock(status.st_mtime, ttl, str(error))


def _write_temporary(path: str, lock: Lock) -> str:
    directory, name = os.path.split(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(lock.to_dict(), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # diagnose reads it as another user
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def create_lock(path: str, lock: Lock) -> bool:
    """Create the lock file with its full content, atomically; False if it already exists."""
    temporary = _write_temporary(path, lock)
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        return _create_exclusive(path, lock)  # a filesystem without hard links
    finally:
        os.unlink(temporary)


def _create_exclusive(path: str, lock: Lock) -> bool:
    """O_CREAT|O_EXCL: as atomic, but briefly empty. Writers hold the guard, so only readers can see that."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(lock.to_dict(), handle, indent=2, sort_keys=True)
        handle.write("\n")
    return True


def replace_lock(path: str, lock: Lock) -> None:
    """Replace the lock file atomically. Only under the guard, after reading what is replaced."""
    os.replace(_write_temporary(path, lock), path)


@contextlib.contextmanager
def guard(path: str) -> Iterator[None]:
    """Serialise every change to the lock: an exclusive flock on its directory, held for milliseconds."""
    descriptor = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # also releases the flock


def _result(found: Lock | None, lock: Lock | None, now: float, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "changed": False,
        "lock": lock.to_dict() if lock else None,
        "found": found.to_dict() if found else None,
        "held": lock is not None and not is_stale(lock, now),
        "stale": found is not None and is_stale(found, now),
        "dated_ahead": found is not None and dated_ahead(found, now),
        "age": int(now - found.acquired_at) if found else None,
        "acquired": False,
        "took_over": False,
        "previous_owner": None,
        "renewed": False,
        "waited": 0,
    }
    result.update(fields)
    return result


def acquire(
    path: str,
    owner: str,
    ttl: int,
    wait: int,
    force: bool,
    purpose: str,
    owner_pid: int | None,
    owner_host: str | None,
    clock: Clock,
    check_mode: bool,
) -> dict[str, Any]:
    started = clock.now()
    attempts = 0
    while True:
        now = clock.now()
        with contextlib.nullcontext() if check_mode else guard(path):
            found = read_lock(path, ttl)
            action = decide_acquire(found, owner, now, force)
            new = Lock(owner, owner_pid, owner_host, int(now), int(now) + ttl, purpose, ttl)
            if action == "renew":
                assert found is not None
                # Renewing a lock dated ahead (the clock was set back since it was taken) dates it now.
                taken = min(found.acquired_at, int(now))
                # The same run renews it (renew_lock.yml): its pid and host stay unless given again.
                pid = found.pid if owner_pid is None else owner_pid
                host = found.host if owner_host is None else owner_host
                new = Lock(owner, pid, host, taken, int(now) + ttl, purpose, ttl)
            waited = int(now - started)
            if check_mode and action != "wait":
                return _result(
                    found,
                    new,
                    now,
                    changed=True,
                    took_over=action == "take_over",
                    previous_owner=found.owner if action == "take_over" and found else None,
                    renewed=action == "renew",
                    msg=f"Would {action.replace('_', ' ')} the deploy lock {path} for {owner}.",
                )
            if action == "create" and not create_lock(path, new):
                attempts += 1
                if attempts < CREATE_ATTEMPTS:
                    continue  # created by something outside the guard in the meantime: look again
                raise LockError(
                    f"Could not create the deploy lock {path}: {attempts} times something that does not "
                    "take the lock's guard (another tool, or a person) put a file there first. Find what "
                    "writes it.",
                    _result(found, None, now),
                )
            if action in ("renew", "take_over"):
                replace_lock(path, new)
            if action != "wait":
                took_over = action == "take_over"
                assert found is not None or not took_over
                message = f"Took the deploy lock {path} for {owner}."
                if took_over and found is not None:
                    reason = "it was stale" if is_stale(found, now) else "force is set"
                    message = (
                        f"Took over the deploy lock {path} for {owner} from {describe(found, now)}: {reason}."
                    )
                elif action == "renew":
                    message = (
                        f"Renewed the deploy lock {path} for {owner} until {format_time(new.expires_at)}."
                    )
                return _result(
                    found,
                    new,
                    now,
                    changed=True,
                    acquired=True,
                    took_over=took_over,
                    previous_owner=found.owner if took_over and found else None,
                    renewed=action == "renew",
                    waited=waited,
                    msg=message,
                )
        assert found is not None
        if check_mode:
            return _result(
                found,
                found,
                now,
                msg=f"Would wait up to {wait} s for the deploy lock {path}, held by {describe(found, now)}.",
            )
        if now - started >= wait:
            raise LockError(
                f"Another deploy holds the lock {path}: {describe(found, now)}. Waited {waited} s. "
                "Wait for it to finish and run again (or raise wait). If that run is no longer going on, "
                "release the lock by hand (the playbook again with -e app_lock_release=true: it releases "
                f"the lock and stops), or run again after {format_time(found.expires_at)}, when it expires "
                "and is taken over.",
                _result(found, found, now, waited=waited),
            )
        clock.sleep(min(POLL_INTERVAL, wait - (now - started)))


def release(
    path: str, owner: str | None, force: bool, ttl: int, clock: Clock, check_mode: bool
) -> dict[str, Any]:
    now = clock.now()
    with contextlib.nullcontext() if check_mode else guard(path):
        found = read_lock(path, ttl)
        action = decide_release(found, owner, now, force)
        if action == "absent":
            return _result(None, None, now, msg=f"No deploy lock at {path}: nothing to release.")
        assert found is not None
        if action == "refuse":
            message = (
                f"The deploy lock {path} is held by {describe(found, now)}, not by {owner}; it was left in "
                "place. If that deploy is no longer running, release it with force: true."
            )
            if check_mode:
                return _result(found, found, now, msg=f"Would refuse: {message}")
            raise LockError(message, _result(found, found, now))
        theirs = found.owner != owner
        if not check_mode:
            os.unlink(path)
        verb = "Would release" if check_mode else "Released"
        whose = f", held by {describe(found, now)}" if theirs else ""
        return _result(
            found,
            None,
            now,
            changed=True,
            previous_owner=found.owner if theirs else None,
            msg=f"{verb} the deploy lock {path}{whose}.",
        )


def inspect(path: str, ttl: int, clock: Clock) -> dict[str, Any]:
    now = clock.now()
    found = read_lock(path, ttl)
    if found is None:
        message = f"No deploy lock at {path}."
    elif is_stale(found, now):
        message = (
            f"The deploy lock {path} is stale: {describe(found, now)}. The next deploy will take it over."
        )
    else:
        message = f"The deploy lock {path} is held by {describe(found, now)}."
    return _result(found, found, now, msg=message)


def validate(params: dict[str, Any]) -> str | None:
    """A message for the first bad argument, or None."""
    if params["ttl"] < 1:
        return f"ttl={params['ttl']} must be at least 1 second; it should outlast the longest deploy (1800)."
    if params["wait"] < 0:
        return f"wait={params['wait']} must be 0 or more seconds."
    if params["state"] == "acquired" and not (params["owner"] or "").strip():
        return "owner is required to take the deploy lock: say who you are, such as 'alice@laptop'."
    if params["state"] == "released" and not (params["owner"] or "").strip() and not params["force"]:
        return "owner is required to release the deploy lock (or force: true to release anyone's)."
    directory = os.path.dirname(os.path.abspath(params["path"]))
    if params["state"] != "inspect" and not os.path.isdir(directory):
        return (
            f"The directory of the lock, {directory}, does not exist: create the app's directory first "
            "(the app role does), or point path at an existing one."
        )
    return None


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["acquired", "released", "inspect"], "required": True},
            "path": {"type": "path", "required": True},
            "owner": {"type": "str"},
            "owner_pid": {"type": "int"},
            "owner_host": {"type": "str"},
            "purpose": {"type": "str", "default": "deploy"},
            "ttl": {"type": "int", "default": 1800},
            "wait": {"type": "int", "default": 0},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    problem = validate(params)
    if problem and not (module.check_mode and "does not exist" in problem):
        module.fail_json(msg=problem)
    clock = SystemClock()
    path = params["path"]
    try:
        if params["state"] == "inspect":
            result = inspect(path, params["ttl"], clock)
        elif params["state"] == "acquired":
            result = acquire(
                path,
                params["owner"],
                params["ttl"],
                params["wait"],
                params["force"],
                params["purpose"],
                params["owner_pid"],
                params["owner_host"],
                clock,
                module.check_mode,
            )
        else:
            result = release(path, params["owner"], params["force"], params["ttl"], clock, module.check_mode)
    except LockError as error:
        module.fail_json(msg=str(error), path=path, state=params["state"], **error.result)
    except NotALockFileError as error:
        module.fail_json(msg=str(error), path=path, state=params["state"])
    except OSError as error:
        module.fail_json(
            msg=f"Could not {params['state'].rstrip('d')} the deploy lock {path}: {error}. "
            "Check that the task runs as a user that may write its directory (become).",
            path=path,
            state=params["state"],
        )
    module.exit_json(path=path, state=params["state"], **result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
