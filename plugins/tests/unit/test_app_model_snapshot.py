"""app_model_snapshot: the model files that served before a deploy, saved and put back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import app_model_snapshot
import pytest
import yaml
from app_model import model_file_name
from app_model_snapshot import SnapshotError, restore, save
from module_run import ON_THE_CONTROLLER, PROJECT, RunModule, run_playbook, tail


@pytest.fixture
def model(tmp_path: Path) -> dict[str, Path]:
    """A live model: two env files (one 0600), a programs file and the smoke tests' record."""
    files = {
        "web": tmp_path / "env/web.env",
        "worker": tmp_path / "env/worker.env",
        "programs": tmp_path / "supervisor/shop.conf",
        "record": tmp_path / "model.json",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    files["web"].write_text("SECRET=old\n")
    files["web"].chmod(0o600)
    files["worker"].write_text("QUEUE=old\n")
    files["programs"].write_text("[program:web]\n")
    files["record"].write_text(json.dumps({"ports": [3000], "max_body_size": "20m"}))
    return files


def paths(model: dict[str, Path], *extra: Path) -> list[str]:
    return [str(path) for path in [*model.values(), *extra]]


def test_save_then_restore_puts_back_content_and_mode_and_removes_new_files(tmp_path: Path, model) -> None:
    snapshot = str(tmp_path / "snapshot")
    added = tmp_path / "env/socket.env"
    saved = save(snapshot, paths(model, added), str(model["record"]), check_mode=False)
    assert saved["changed"] and saved["model"] == {"ports": [3000], "max_body_size": "20m"}
    assert os.stat(snapshot).st_mode & 0o777 == 0o700
    # The deploy renders a new model.
    model["web"].write_text("SECRET=new\n")
    model["web"].chmod(0o644)
    model["record"].write_text(json.dumps({"ports": [3001], "max_body_size": "30m"}))
    added.write_text("NEW=1\n")
    result = restore(snapshot, str(model["record"]), check_mode=False)
    assert result["changed"] and result["found"]
    assert result["restored"] == [str(model["web"]), str(model["record"])]
    assert result["removed"] == [str(added)]
    assert model["web"].read_text() == "SECRET=old\n" and model["web"].stat().st_mode & 0o777 == 0o600
    assert not added.exists()
    assert result["model"] == {"ports": [3000], "max_body_size": "20m"}
    # Put back once: again changes nothing.
    assert not restore(snapshot, str(model["record"]), check_mode=False)["changed"]


def test_saving_an_unchanged_model_changes_nothing_and_a_changed_one_replaces_the_snapshot(
    tmp_path: Path, model
) -> None:
    snapshot = str(tmp_path / "snapshot")
    save(snapshot, paths(model), None, check_mode=False)
    assert not save(snapshot, paths(model), None, check_mode=False)["changed"]
    model["worker"].write_text("QUEUE=second\n")
    second = save(snapshot, paths(model), None, check_mode=False)
    assert second["changed"] and second["saved"] == [str(model["worker"])]
    model["worker"].write_text("QUEUE=third\n")
    restore(snapshot, None, check_mode=False)
    assert model["worker"].read_text() == "QUEUE=second\n"
    # A list with a file fewer is a change too, and the one left out is no longer put back.
    assert save(snapshot, paths(model)[1:], None, check_mode=False)["changed"]
    model["web"].write_text("SECRET=later\n")
    restore(snapshot, None, check_mode=False)
    assert model["web"].read_text() == "SECRET=later\n"


def test_check_mode_reports_and_writes_nothing(tmp_path: Path, model) -> None:
    snapshot = tmp_path / "snapshot"
    assert save(str(snapshot), paths(model), None, check_mode=True)["changed"]
    assert not snapshot.exists()
    save(str(snapshot), paths(model), None, check_mode=False)
    model["programs"].write_text("[program:other]\n")
    result = restore(str(snapshot), None, check_mode=True)
    assert result["restored"] == [str(model["programs"])]
    assert model["programs"].read_text() == "[program:other]\n"


def test_restore_without_a_snapshot_changes_nothing(tmp_path: Path) -> None:
    result = restore(str(tmp_path / "none"), None, check_mode=False)
    assert result == {
        "changed": False,
        "found": False,
        "saved": [],
        "restored": [],
        "removed": [],
        "model": None,
    }


def test_a_record_that_was_missing_gives_no_model_and_is_removed(tmp_path: Path, model) -> None:
    snapshot = str(tmp_path / "snapshot")
    model["record"].unlink()
    save(snapshot, paths(model), str(model["record"]), check_mode=False)
    model["record"].write_text("{}")
    result = restore(snapshot, str(model["record"]), check_mode=False)
    assert result["model"] is None and result["removed"] == [str(model["record"])]


def test_a_broken_manifest_or_record_is_an_error_naming_the_file(tmp_path: Path, model) -> None:
    snapshot = tmp_path / "snapshot"
    save(str(snapshot), paths(model), None, check_mode=False)
    (snapshot / "manifest.json").write_text("{not json")
    with pytest.raises(SnapshotError, match=r"manifest\.json cannot be read"):
        restore(str(snapshot), None, check_mode=False)
    model["record"].write_text("{not json")
    with pytest.raises(SnapshotError, match=r"model\.json is not JSON"):
        save(str(tmp_path / "other"), paths(model), str(model["record"]), check_mode=False)
    # Refused before anything is written: no snapshot holds the broken record.
    assert not (tmp_path / "other").exists()
    model["record"].write_text("[3000]")
    with pytest.raises(SnapshotError, match=r"model\.json is not a JSON object"):
        save(str(snapshot), paths(model), str(model["record"]), check_mode=False)
    # A save replaces the snapshot whose manifest broke: it is only the deploy's own copy.
    model["record"].write_text("{}")
    assert save(str(snapshot), paths(model), str(model["record"]), check_mode=False)["changed"]
    assert restore(str(snapshot), str(model["record"]), check_mode=False)["model"] == {}
    # And one of whose copies is gone.
    (snapshot / "0").unlink()
    assert save(str(snapshot), paths(model), None, check_mode=False)["saved"] == [str(model["web"])]
    assert (snapshot / "0").read_text() == model["web"].read_text()


def test_a_saved_record_that_was_broken_since_is_an_error_naming_it(tmp_path: Path, model) -> None:
    snapshot = tmp_path / "snapshot"
    save(str(snapshot), paths(model), str(model["record"]), check_mode=False)
    saved_record = next(path for path in snapshot.iterdir() if path.read_text().startswith('{"ports"'))
    saved_record.write_text("{not json")
    with pytest.raises(SnapshotError, match=r"saved from .*model\.json is not JSON"):
        restore(str(snapshot), str(model["record"]), check_mode=False)


def test_a_snapshot_directory_that_is_a_symlink_is_refused_and_left_alone(tmp_path: Path, model) -> None:
    """The directory of the snapshot is written and read as root: a symlink laid in its place (by a user
    who can write its parent) must not lead root to chmod, fill or empty the directory it points to."""
    target = tmp_path / "somewhere"
    target.mkdir(mode=0o755)
    (target / "keep").write_text("mine\n")
    snapshot = tmp_path / "snapshot"
    snapshot.symlink_to(target)
    with pytest.raises(SnapshotError, match=r"snapshot is not a directory of uid \d+ \(it is a symlink"):
        save(str(snapshot), paths(model), None, check_mode=False)
    with pytest.raises(SnapshotError, match=r"is not a directory of uid"):
        restore(str(snapshot), None, check_mode=False)
    assert sorted(os.listdir(target)) == ["keep"] and target.stat().st_mode & 0o777 == 0o755


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_snapshot_directory_of_another_user_is_refused(tmp_path: Path, model) -> None:
    snapshot = tmp_path / "snapshot"
    save(str(snapshot), paths(model), None, check_mode=False)
    os.chown(snapshot, 65534, 65534)
    with pytest.raises(SnapshotError, match=r"uid 65534's\)"):
        restore(str(snapshot), None, check_mode=False)


def test_restore_refuses_a_manifest_naming_a_file_outside_the_model(tmp_path: Path, model) -> None:
    """Given the model's files, restore writes back only those: a manifest changed to name another path
    (with the mode and owner it likes) is refused before anything is written."""
    snapshot = tmp_path / "snapshot"
    save(str(snapshot), paths(model), None, check_mode=False)
    model["web"].write_text("SECRET=new\n")
    manifest = json.loads((snapshot / "manifest.json").read_text())
    manifest["files"][1]["path"] = str(tmp_path / "elsewhere")
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match=r"not the app model's: .*elsewhere; nothing was put back"):
        restore(str(snapshot), None, check_mode=False, paths=paths(model))
    assert model["web"].read_text() == "SECRET=new\n" and not (tmp_path / "elsewhere").exists()
    # The files given are the ones saved: restored as before.
    save(str(snapshot), paths(model), None, check_mode=False)
    model["web"].write_text("SECRET=newer\n")
    restored = restore(str(snapshot), None, check_mode=False, paths=paths(model))
    assert restored["restored"] == [str(model["web"])]


def test_module_never_returns_contents_and_refuses_relative_paths(
    tmp_path: Path, model, run_module: RunModule
) -> None:
    snapshot = str(tmp_path / "snapshot")
    result = run_module(app_model_snapshot, {"state": "saved", "dir": snapshot, "files": paths(model)})
    assert result["changed"] and "SECRET" not in json.dumps(result)
    model["web"].write_text("SECRET=new\n")
    result = run_module(app_model_snapshot, {"state": "restored", "dir": snapshot})
    assert result["restored"] == [str(model["web"])] and "SECRET" not in json.dumps(result)
    refused = run_module(app_model_snapshot, {"state": "saved", "dir": snapshot, "files": ["env/web.env"]})
    assert refused["failed"] and "files must be absolute paths: env/web.env" in refused["msg"]


def test_the_model_files_are_where_the_supervisor_and_nginx_roles_render_them() -> None:
    """The app role names the programs file and the site by path; the roles that render them own those."""
    app = (PROJECT / "roles/app/vars/main.yml").read_text()
    supervisor = yaml.safe_load((PROJECT / "roles/supervisor/vars/main.yml").read_text())
    nginx = yaml.safe_load((PROJECT / "roles/nginx/vars/main.yml").read_text())
    assert (
        f'__app_model_programs_file: "{supervisor["__supervisor_programs_dir"]}/{{{{ app_name }}}}.conf"'
        in app
    )
    assert f'__app_model_site_file: "{nginx["__nginx_site_path"]}"' in app


def test_model_file_names_say_what_each_file_is() -> None:
    names = [
        model_file_name(path, "/etc/s/shop.conf", "/etc/n/shop.conf", "/srv/shop/shared/model.json")
        for path in [
            "/srv/shop/shared/env/web.env",
            "/etc/s/shop.conf",
            "/etc/n/shop.conf",
            "/srv/shop/shared/model.json",
        ]
    ]
    assert names == [
        "the env file of web",
        "the supervisor programs",
        "the nginx site",
        "the smoke tests' record of the model",
    ]


def test_a_deploy_saves_each_process_env_file_and_the_smoke_tests_record(tmp_path: Path) -> None:
    """model_save.yml, run by ansible-playbook on the controller with the role's own variables."""
    app_root = tmp_path / "srv/shop"
    (app_root / "shared/env").mkdir(parents=True)
    (app_root / "shared/env/web.env").write_text("SECRET=1\n")
    app = {
        "app_name": "shop",
        "app_root": str(app_root),
        "app_max_body_size": "20m",
        "app_processes": [
            {"name": "web", "command": "node server.js", "port": 3000, "health_path": "/api/health"},
            {
                "name": "socket",
                "command": "node socket.js",
                "port": 3001,
                "proxy_path": "/io/",
                "websocket": True,
            },
            {"name": "worker", "command": "node worker.js"},
        ],
    }
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": app,
            "tasks": [
                {"ansible.builtin.include_role": {"name": "app", "tasks_from": "model_save", "public": True}},
                {
                    "ansible.builtin.copy": {
                        "dest": str(tmp_path / "smoke_model.json"),
                        "content": "{{ __app_smoke_model_of_inventory | to_json }}",
                        "mode": "0644",
                    }
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    run = run_playbook(*ON_THE_CONTROLLER, tmp_path / "play.yml")
    assert run.returncode == 0, tail(run)
    manifest = json.loads((app_root / "shared/model-before-deploy/manifest.json").read_text())
    env = f"{app_root}/shared/env"
    assert [(entry["path"], entry["present"]) for entry in manifest["files"]] == [
        (f"{env}/web.env", True),
        (f"{env}/socket.env", False),
        (f"{env}/worker.env", False),
        ("/etc/supervisor/conf.d/shop.conf", os.path.exists("/etc/supervisor/conf.d/shop.conf")),
        ("/etc/nginx/sites-enabled/shop.conf", os.path.exists("/etc/nginx/sites-enabled/shop.conf")),
        (f"{app_root}/shared/model.json", False),
    ]
    assert json.loads((tmp_path / "smoke_model.json").read_text()) == {
        "ports": [3000, 3001],
        "programs": 3,
        "url": "http://127.0.0.1",
        "server_name": "",
        "health": [["web", "/api/health"]],
        "websocket": [["socket", "/io/"]],
        "max_body_size": "20m",
        "upload": {"path": "/api/health", "limit": 20 * 1024 * 1024, "strict": False},
        "canary_command": "",
        "canary_process": "worker",
    }
