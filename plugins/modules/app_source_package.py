#!/usr/bin/python
"""Documentation only: the work is done on the controller by plugins/action/app_source_package.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_source_package
short_description: Pack an archive source into a reproducible tar on the controller and hash it
description:
  - A directory is packed into a tar in the run's temporary directory on the controller (removed when
    the run ends), with its entries sorted by name, every time set to 0, owners 0 and no names, and modes
    normalized (C(u+rwX,go+rX,go-w)), so the same tree always gives the same bytes and the same hash.
  - C(node_modules) and C(.next) are left out at every depth (a workspace package has its own), so are a
    developer's env files C(.env) and C(.env*.local) (the release's environment comes from the inventory),
    and so is every path of O(excludes).
  - A tarball (C(.tar), C(.tar.gz), C(.tgz)) is not repacked; it is only hashed.
  - Runs on the controller whatever the host; read-only for every host, so it runs in check mode too.
version_added: "0.9.0"
options:
  path:
    description: The source directory, or a tarball.
    type: path
    required: true
  excludes:
    description:
      - Paths from the top of the tree to leave out (shell patterns, where C(*) also matches C(/)).
      - A directory left out is left out with everything under it.
    type: list
    elements: str
    default: []
  prefix:
    description: Start of the package's file name, to tell packages apart in the temporary directory.
    type: str
    default: shipshape-
author: shipshape
"""

EXAMPLES = r"""
- name: Package and hash the source on the controller
  app_source_package:
    path: "{{ app_source.path }}"
    excludes: "{{ app_source_excludes }}"
    prefix: "shipshape-{{ app_name }}-"
  run_once: true
  register: source_package
"""

RETURN = r"""
package:
  description: The file to unpack on the hosts; the tarball itself for a tarball source.
  returned: success
  type: path
checksum:
  description: The SHA-256 of O(package), in hex.
  returned: success
  type: str
packed:
  description: Whether a directory was packed (false for a tarball source).
  returned: success
  type: bool
"""
