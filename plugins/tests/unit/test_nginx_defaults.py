"""The nginx role's derived defaults, as ansible-playbook templates them (no host is asked)."""

from __future__ import annotations

import json

import yaml
from module_run import ON_THE_CONTROLLER, PROJECT, run_playbook, tail

# A size nginx refuses gives the floor: validation names it, and the default must not fail first.
SIZES = {"128k": 120, "20m": 120, "30m": 120, "100m": 400, "1g": 4096, "20 MB": 120}


def test_proxy_timeout_follows_the_body_limit(tmp_path):
    """I4: the body limit and the proxy timeouts come from app_max_body_size."""
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars_files": [str(PROJECT / "roles/nginx/defaults/main.yml")],
            "tasks": [
                {
                    "ansible.builtin.set_fact": {
                        "timeouts": "{{ timeouts | default({}) | combine({item: timeout}) }}"
                    },
                    "vars": {"app_max_body_size": "{{ item }}", "timeout": "{{ nginx_proxy_timeout }}"},
                    "loop": list(SIZES),
                },
                {
                    "ansible.builtin.copy": {
                        "content": "{{ timeouts | to_json }}",
                        "dest": str(tmp_path / "out.json"),
                    }
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    run = run_playbook(*ON_THE_CONTROLLER, tmp_path / "play.yml")
    assert run.returncode == 0, tail(run)
    assert json.loads((tmp_path / "out.json").read_text()) == SIZES
