"""controller_report: diagnose's report files, written on the controller inside Ansible's process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from controller_report import write_report
from module_run import ON_THE_CONTROLLER, run_playbook, tail


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_text_is_written_beside_the_base_with_its_mode_and_a_final_newline(tmp_path: Path):
    base = tmp_path / "reports" / "web1-20261207T000000Z"
    paths = write_report(str(base), {"md": "# web1\n", "json": '{"a": 1}'})
    assert paths == [f"{base}.md", f"{base}.json"]
    assert Path(paths[0]).read_text() == "# web1\n"
    assert Path(paths[1]).read_text() == '{"a": 1}\n'
    assert {mode_of(Path(path)) for path in paths} == {0o640}
    # The directory did not exist: created with dir_mode, whatever the umask.
    assert mode_of(tmp_path / "reports") == 0o750
    # Nothing but the report is left in it (no temporary file).
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(Path(p).name for p in paths)


def test_an_existing_directory_keeps_the_mode_its_owner_set(tmp_path: Path):
    (tmp_path / "reports").mkdir(mode=0o700)
    os.chmod(tmp_path / "reports", 0o755)
    write_report(str(tmp_path / "reports" / "r"), {"md": "x"}, mode=0o600)
    assert mode_of(tmp_path / "reports") == 0o755
    assert mode_of(tmp_path / "reports" / "r.md") == 0o600


def test_a_report_written_again_replaces_the_old_text_whole(tmp_path: Path):
    base = str(tmp_path / "r")
    write_report(base, {"md": "a much longer first text\n" * 100})
    write_report(base, {"md": "second\n"})
    assert (tmp_path / "r.md").read_text() == "second\n"


@pytest.mark.parametrize("extension", ["../escape", "md/x", "", "MD", "j.son"])
def test_an_extension_that_is_not_a_plain_word_is_refused_before_anything_is_written(tmp_path, extension):
    with pytest.raises(ValueError, match="not a file extension"):
        write_report(str(tmp_path / "sub" / "r"), {"md": "x", extension: "y"})
    assert not (tmp_path / "sub").exists()


def test_the_action_writes_unchanged_and_writes_nothing_in_check_mode(tmp_path: Path):
    play = [
        {
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "controller_report": {
                        "base": f"{tmp_path}/out/{{{{ inventory_hostname }}}}",
                        "contents": {"md": "{{ 'hello' | upper }}", "json": "{{ {'n': 1} | to_json }}"},
                    },
                    "register": "written",
                },
                {
                    "controller_report": {"base": f"{tmp_path}/dry/r", "contents": {"md": "x"}},
                    "check_mode": True,
                    "register": "dry",
                },
                {
                    "controller_report": {"base": f"{tmp_path}/bad/r", "contents": {"md": "x"}, "mode": "rw"},
                    "register": "bad",
                    "ignore_errors": True,
                },
                {
                    "ansible.builtin.copy": {
                        "content": "{{ {'written': written, 'dry': dry, 'bad': bad} | to_json }}",
                        "dest": f"{tmp_path}/result.json",
                    }
                },
            ],
        }
    ]
    (tmp_path / "play.json").write_text(json.dumps(play))
    run = run_playbook(*ON_THE_CONTROLLER, tmp_path / "play.json")
    assert run.returncode == 0, tail(run)
    got = json.loads((tmp_path / "result.json").read_text())
    assert got["written"]["changed"] is False
    assert got["written"]["paths"] == [f"{tmp_path}/out/localhost.md", f"{tmp_path}/out/localhost.json"]
    assert (tmp_path / "out/localhost.md").read_text() == "HELLO\n"
    assert json.loads((tmp_path / "out/localhost.json").read_text()) == {"n": 1}
    assert got["dry"]["paths"] == [f"{tmp_path}/dry/r.md"] and not (tmp_path / "dry").exists()
    assert got["bad"]["failed"] is True and "octal" in got["bad"]["msg"]
    assert not (tmp_path / "bad").exists()
