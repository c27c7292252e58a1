#!/usr/bin/python
"""Documentation only: the work is done on the controller by plugins/action/controller_report.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: controller_report
short_description: Write a report's files on the controller
description:
  - Writes each text of O(contents) to C(BASE.EXT) on the controller, inside Ansible's own process (no
    module is shipped), whatever host the task runs for. Each file is written whole or not at all (a
    temporary file in the same directory, renamed) with O(mode).
  - The directory of O(base) is created with O(dir_mode) when it does not exist; an existing one keeps its
    mode.
  - Never a change to a host (C(changed) is always false). In check mode nothing is written, and the paths
    it would write are returned.
version_added: "0.16.0"
options:
  base:
    description: Path of the report without its extension, on the controller.
    type: path
    required: true
  contents:
    description: The text of each file, by extension (lowercase letters and digits, such as C(md) or C(json)).
    type: dict
    required: true
  mode:
    description: Mode of each file, an octal string.
    type: raw
    default: "0640"
  dir_mode:
    description: Mode of the directory when it is created, an octal string.
    type: raw
    default: "0750"
author: shipshape
"""

EXAMPLES = r"""
- name: Write the report for people and for machines
  controller_report:
    base: "{{ report_dir }}/{{ inventory_hostname }}"
    contents:
      md: "{{ lookup('ansible.builtin.template', 'report.md.j2') }}"
      json: "{{ report | to_nice_json }}"
"""

RETURN = r"""
paths:
  description: The files written (or, in check mode, that would be), in the order of O(contents).
  returned: always
  type: list
  elements: str
"""
