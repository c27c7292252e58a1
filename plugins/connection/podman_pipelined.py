"""A podman connection with pipelining, for the test hosts and the demo server.

containers.podman.podman runs `podman exec` without `-i`, so it cannot pipe a module to the
container's python and declares no pipelining: every task costs a temporary directory, a file
copy, a chmod, the run and a cleanup, each a `podman exec` (about 0.4 s apiece here). With
`-i`, a module goes in on stdin and a task is one `podman exec`, as over SSH with pipelining.
Everything else (file transfer through the mounted container filesystem, options) is the
collection's plugin.
"""

from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
    name: podman_pipelined
    short_description: Run tasks in a podman container, modules piped in on stdin
    description:
      - containers.podman.podman, plus pipelining (C(podman exec -i)): one podman call per task.
      - Used by the molecule scenarios and the demo inventory; real servers use SSH.
    extends_documentation_fragment:
      - connection_pipelining
    options:
      remote_addr:
        description: The name or id of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: The user commands run as inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to pass to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description: Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""


class Connection(PodmanConnection):
    transport = "podman_pipelined"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        exec_args = ["exec"]
        if in_data is not None:
            # Keep stdin open: this is how a pipelined module reaches the container's python.
            exec_args.append("-i")
        if self.user:
            exec_args.extend(("--user", self.user))
        command = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        return self._podman(exec_args, command, in_data)
