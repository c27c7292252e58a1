"""Run tasks in a local podman container by entering its namespaces: the test hosts and the demo.

A `podman exec` costs 0.2 s on a quiet machine and over 0.5 s under load (the podman binary
starts, reads its database, asks conmon and runc to start the process), and the collection's
podman connection adds a `podman mount` per task and cannot pipeline. A task that copies a file
paid four or five of those. On a real server the same task is one SSH round trip on a persistent
connection, a few milliseconds, so the test hosts made Ansible look several times slower than it is.

This connection asks podman once per run for the container's init pid and environment, then runs
every command with `nsenter` into that process's mount, UTS, IPC, network and pid namespaces:
a few milliseconds, like SSH with ControlPersist. Modules are piped in on stdin (pipelining) and
files go through `cat` on stdin and stdout, so a task is one process on the controller.

It needs root on the controller (nsenter into another process's namespaces), which is how the
tests and the demo run. Commands run as root in the container; tasks that need another user use
`become`, as over SSH.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess

from ansible import constants
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display

display = Display()

DOCUMENTATION = """
    name: podman_nsenter
    short_description: Run tasks in a local podman container through nsenter, modules piped in
    description:
      - Looks up the container's init process once per run (C(podman inspect)) and runs each command
        with C(nsenter) in its namespaces, with the container's environment. A task is one process on
        the controller, as a task over SSH with pipelining is one round trip.
      - Needs root on the controller. Used by the molecule scenarios and the demo inventory; real
        servers use SSH.
    extends_documentation_fragment:
      - connection_pipelining
    options:
      remote_addr:
        description:
          - The name or id of the container.
          - Of the variables, the last one set wins. C(inventory_hostname) comes first, as in the ssh
            connection, because under C(delegate_to) it stays the name of the task's own host while Ansible
            sets C(ansible_host) to the delegated host's name.
        default: inventory_hostname
        vars:
          - name: inventory_hostname
          - name: ansible_host
          - name: ansible_podman_host
      remote_user:
        description: Must be root or unset; use become for other users.
        vars:
          - name: ansible_user
      podman_executable:
        description: The podman command, used once per run to find the container's init process.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""

# Enter everything a container has of its own; its cgroup namespace is the host's here, and the
# user namespace too (rootful podman). --root and --wd take the init process's root and directory.
NSENTER_NAMESPACES = ("--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd")


class Connection(ConnectionBase):
    transport = "podman_nsenter"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._container = None
        self._pid = None
        self._env = None

    def _cache_path(self):
        # DEFAULT_LOCAL_TMP is this run's private directory, made before the workers fork: one
        # lookup per container per run, shared by every task.
        return os.path.join(constants.DEFAULT_LOCAL_TMP, f"podman-nsenter-{self._container}.json")

    def _still_running(self, pid, container_id):
        # A restarted or re-created container has another init pid; a reused pid is another
        # process, outside this container's cgroup.
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8") as cgroup:
                return container_id in cgroup.read()
        except OSError:
            return False

    def _inspect(self):
        podman = get_bin_path(self.get_option("podman_executable"))
        template = "{{.State.Running}}\t{{.State.Pid}}\t{{.Id}}\t{{json .Config.Env}}"
        result = subprocess.run(
            [podman, "inspect", "--type", "container", "--format", template, self._container],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise AnsibleConnectionFailure(
                f"podman cannot find the container {self._container}: {to_text(result.stderr).strip()}"
            )
        running, pid, container_id, env = to_text(result.stdout).strip().split("\t", 3)
        if running != "true":
            raise AnsibleConnectionFailure(f"the container {self._container} is not running")
        return {"pid": int(pid), "id": container_id, "env": json.loads(env)}

    def _connect(self):
        if self._connected:
            return self
        super()._connect()
        if self.get_option("remote_user") not in (None, "", "root"):
            raise AnsibleError(
                f"podman_nsenter runs commands as root, not as {self.get_option('remote_user')}: use become"
            )
        if os.geteuid() != 0:
            raise AnsibleError(
                "podman_nsenter needs root on the controller (it enters another process's namespaces)"
            )
        self._container = self.get_option("remote_addr")
        cache = self._cache_path()
        found = None
        try:
            with open(cache, encoding="utf-8") as cached:
                found = json.load(cached)
        except (OSError, ValueError):
            pass
        if not found or not self._still_running(found["pid"], found["id"]):
            found = self._inspect()
            if not self._still_running(found["pid"], found["id"]):
                # Podman's record outlives processes killed from outside it (the session that
                # started the container ended): say so, rather than fail in nsenter.
                raise AnsibleConnectionFailure(
                    f"podman says {self._container} runs with init pid {found['pid']}, but that process "
                    f"is gone: its processes were killed outside podman; re-create it "
                    f"(podman rm -f {self._container})"
                )
            partial = f"{cache}.{os.getpid()}"
            with open(partial, "w", encoding="utf-8") as out:
                json.dump(found, out)
            os.replace(partial, cache)
        self._pid = found["pid"]
        self._env = dict(item.split("=", 1) for item in found["env"] if "=" in item)
        self._env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self._env.setdefault("HOME", "/root")
        self._connected = True
        display.vvv(f"ESTABLISH PODMAN NSENTER: container {self._container}, init pid {self._pid}")
        return self

    def _nsenter(self, command):
        return [get_bin_path("nsenter"), f"--target={self._pid}", *NSENTER_NAMESPACES, "--", *command]

    def _run(self, command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, in_data=None):
        argv = [to_bytes(arg, errors="surrogate_or_strict") for arg in self._nsenter(command)]
        display.vvv(f"EXEC {argv}", host=self._container)
        if in_data is not None:
            stdin = subprocess.PIPE
        with subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=self._env
        ) as process:
            out, err = process.communicate(in_data)
        return process.returncode, out or b"", err or b""

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        command = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        return self._run(command, in_data=in_data)

    @ensure_connect
    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container)
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as source:
            rc, _, err = self._run(["/bin/sh", "-c", 'cat > "$1"', "put_file", out_path], stdin=source)
        if rc != 0:
            raise AnsibleError(f"cannot write {out_path} in {self._container}: {to_text(err).strip()}")

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container)
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as target:
            rc, _, err = self._run(["/bin/cat", in_path], stdout=target)
        if rc != 0:
            raise AnsibleError(f"cannot read {in_path} in {self._container}: {to_text(err).strip()}")

    def reset(self):
        self.close()

    def close(self):
        self._connected = False
