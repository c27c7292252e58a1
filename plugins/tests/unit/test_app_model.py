"""The app model rules every role asserts before it changes a host."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from app_model import (
    SMOKE_BODY_MARGIN,
    app_drain_problems,
    app_model_problems,
    app_nginx_routes,
    app_program_instances,
    app_source_problems,
    git_version_commit,
    nginx_site_problems,
    process_ports,
    release_path_problems,
    service_port_problems,
    size_to_bytes,
)

WEB = {"name": "web", "command": "node server.js", "port": 3000, "health_path": "/api/health", "db_pool": 10}
SOCKET = {
    "name": "socket",
    "command": "node socket-server.js",
    "port": 3001,
    "proxy_path": "/socket.io/",
    "websocket": True,
}
WORKER = {"name": "worker", "command": "node worker.js", "db_pool": 5}


def problems(**overrides):
    model = {
        "app_name": "shop",
        "app_user": "shop",
        "app_root": "/srv/shop",
        "app_processes": [WEB, SOCKET, WORKER],
        "app_max_body_size": "20m",
    }
    model.update(overrides)
    return app_model_problems(**model)


def test_the_demo_model_is_valid():
    assert problems() == []


@pytest.mark.parametrize("bad", ["my shop", "../etc", "Shop", "", "a/b", "shop.", "1shop", "x" * 33, None, 7])
def test_bad_app_name_is_refused_naming_the_variable(bad):
    found = problems(app_name=bad)
    assert len(found) == 1 and found[0].startswith("app_name")


@pytest.mark.parametrize("bad", ["root", "sh op", "../x"])
def test_bad_app_user_is_refused(bad):
    assert any(p.startswith("app_user") for p in problems(app_user=bad))


@pytest.mark.parametrize("bad", ["srv/shop", "/srv/../etc", "/", "/etc", "/srv/my shop", 3])
def test_bad_app_root_is_refused(bad):
    assert any(p.startswith("app_root") for p in problems(app_root=bad))


@pytest.mark.parametrize(
    ("size", "expected"), [("512k", 524288), ("20m", 20971520), ("1G", 1073741824), ("100", 100)]
)
def test_sizes_nginx_understands(size, expected):
    assert size_to_bytes(size) == expected


@pytest.mark.parametrize("bad", ["20 mb", "20mb", "-1m", "1.5m", "", "m"])
def test_sizes_nginx_refuses(bad):
    with pytest.raises(AnsibleFilterError):
        size_to_bytes(bad)
    assert any(p.startswith("app_max_body_size") for p in problems(app_max_body_size=bad))


@pytest.mark.parametrize("size", ["0", "0m", "64k", "127k", "131071"])
def test_a_body_limit_the_smoke_tests_cannot_prove_is_refused(size):
    assert problems(app_max_body_size=size) == [
        f"app_max_body_size: {size!r} is under 128k. 0 would turn nginx's limit off, and the smoke tests "
        "send a body 64 KiB under the limit and one 64 KiB over it (I4). "
        "Uploads need a real limit, such as 20m."
    ]


@pytest.mark.parametrize("size", ["128k", "131072", "1m"])
def test_the_smallest_body_limits_pass(size):
    assert problems(app_max_body_size=size) == []


def test_smoke_margin_is_the_smoke_tests_own():
    smoke = (Path(__file__).resolve().parents[3] / "roles/app/files/smoke_http.py").read_text()
    assert f"MARGIN = {SMOKE_BODY_MARGIN}\n" in smoke


def test_derived_env_names_are_refused_with_their_source():
    assert problems(
        app_env={"UPLOAD_MAX_BYTES": "1"}, derived_env={"UPLOAD_MAX_BYTES": "app_max_body_size"}
    ) == [
        "app_env sets UPLOAD_MAX_BYTES, which shipshape derives from app_max_body_size; the value set "
        "here would replace it in every env file. Remove UPLOAD_MAX_BYTES from app_env."
    ]


def test_localhost_upstream_is_refused():
    found = problems(app_processes=[{**WEB, "host": "localhost"}, SOCKET])
    assert found and "app_processes[0].host" in found[0] and "127.0.0.1" in found[0]


def test_duplicate_ports_including_instances_are_refused():
    found = problems(app_processes=[{**WEB, "instances": 2}, SOCKET])
    assert found == [p for p in found if "port 3001" in p] and len(found) == 1


@pytest.mark.parametrize(
    ("command", "launcher"),
    [
        ("npm start", "npm"),
        ("/usr/bin/npm start", "npm"),
        ("env npm start", "npm"),
        ("/usr/bin/env -i NODE_OPTIONS=--max-old-space-size=512 npm start", "npm"),
        ('sh -c "npm start"', "npm"),
        ("/bin/bash -c 'exec yarn start'", "yarn"),
        ("bun run start", "bun"),
        ("bunx next start", "bunx"),
        ("corepack pnpm start", "corepack"),
        ("npx next start", "npx"),
    ],
)
def test_node_through_a_launcher_is_refused_naming_it(command, launcher):
    found = problems(app_processes=[{**WEB, "command": command}])
    assert found == [
        f"app_processes[0].command={command!r} runs node through the package manager {launcher}: "
        f"supervisor would signal {launcher}, not node, and leave node orphaned (seed 000, I1). "
        "Run node directly, e.g. 'node server.js'."
    ]


@pytest.mark.parametrize(
    "command",
    ["node server.js", "/usr/bin/node server.js", "env NODE_OPTIONS=--x node w.js", "sh -c 'exec node a.js'"],
)
def test_node_run_directly_is_accepted(command):
    assert problems(app_processes=[{**WEB, "command": command}]) == []


def test_a_command_with_unbalanced_quotes_is_refused():
    found = problems(app_processes=[{**WEB, "command": "node 'server.js"}])
    assert (
        len(found) == 1
        and found[0].startswith("app_processes[0].command=")
        and "check its quotes" in found[0]
    )


@pytest.mark.parametrize("account", ["postgres", "www-data", "nobody", "redis", "daemon", "sshd"])
def test_a_system_account_as_app_user_is_refused(account):
    assert problems(app_user=account) == [
        f"app_user={account!r} is a system account: the base role would change its shell, home and groups, "
        "and give it app_root. Use a user of the app's own, such as its app_name."
    ]


@pytest.mark.parametrize(
    ("root", "tree"),
    [
        ("/usr/local", "/usr"),
        ("/etc/shop", "/etc"),
        ("/var/lib/postgresql", "/var/lib"),
        ("/var/lib/redis/shop", "/var/lib"),
        ("/home/alice/shop", "/home"),
        ("/var/log/shop", "/var/log"),
        ("/run/shop", "/run"),
    ],
)
def test_an_app_root_inside_a_system_tree_is_refused_naming_it(root, tree):
    assert problems(app_root=root) == [
        f"app_root={root!r} is inside {tree}, which belongs to the system or to other services: the base "
        "role would give it to the app user (mode 0750). Use a directory of its own such as /srv/shop."
    ]


@pytest.mark.parametrize(
    "root", ["/srv/shop", "/opt/shop", "/var/www/shop", "/var/lib/shop", "/home/shop/app"]
)
def test_an_app_root_of_its_own_is_accepted(root):
    assert problems(app_root=root) == []


@pytest.mark.parametrize("name", ["PORT", "HOSTNAME", "NODE_ENV"])
@pytest.mark.parametrize("variable", ["app_env", "app_secret_env"])
def test_env_that_overrides_supervisor_is_refused_naming_both(name, variable):
    assert problems(**{variable: {name: "x", "OTHER": "y"}}) == [
        f"{variable} sets {name}, which supervisor sets for each program (PORT from app_processes, "
        "HOSTNAME=127.0.0.1, NODE_ENV=production); the env file would override it. "
        f"Remove {name} from {variable}; set a port in app_processes."
    ]


@pytest.mark.parametrize("variable", ["app_env", "app_secret_env"])
def test_env_that_sets_the_release_is_refused(variable):
    assert problems(**{variable: {"APP_RELEASE": "v1"}}) == [
        f"{variable} sets APP_RELEASE, which each program gets from the release it starts in "
        "(the id of the release current points to); a value in the env file is ignored. "
        f"Remove APP_RELEASE from {variable}."
    ]


def test_other_env_names_are_accepted():
    assert problems(app_env={"LOG_LEVEL": "info"}, app_secret_env={"SESSION_SECRET": "s"}) == []


def test_instances_past_the_last_port_are_refused():
    assert problems(app_processes=[{**WEB, "port": 65535, "instances": 2}]) == [
        "app_processes[0].port=65535 with instances=2 needs ports up to 65536, past 65535 "
        "(instances take consecutive ports). Lower the port or the instances."
    ]


def test_instances_up_to_the_last_port_are_accepted():
    assert problems(app_processes=[{**WEB, "port": 65534, "instances": 2}]) == []


@pytest.mark.parametrize(
    ("variable", "port", "process"),
    [
        ("postgresql_port", 5432, "web"),
        ("postgresql_pgbouncer_port", 6432, "web"),
        ("redis_port", 6379, "web"),
    ],
)
def test_an_app_port_a_service_on_the_host_uses_is_refused(variable, port, process):
    processes = [{**WEB, "port": port - 1, "instances": 2}, SOCKET]
    assert service_port_problems(processes, {variable: port, "other_port": 9999}) == [
        f"app_processes[0] ({process!r}) takes port {port}, which is {variable} on this host: one of them "
        "would fail with EADDRINUSE (seed 002, I6). Give the process another port."
    ]


@pytest.mark.parametrize("port", ["6379", " 6379 "])
def test_a_service_port_given_as_a_string_is_compared_as_a_number(port):
    # -e redis_port=6379 on the command line gives the string "6379".
    assert service_port_problems([{**WEB, "port": 6379}], {"redis_port": port}) == [
        "app_processes[0] ('web') takes port 6379, which is redis_port on this host: one of them "
        "would fail with EADDRINUSE (seed 002, I6). Give the process another port."
    ]


def test_service_ports_apart_from_the_app_are_accepted():
    assert service_port_problems([WEB, SOCKET, WORKER], {"postgresql_port": 5432, "redis_port": 6379}) == []


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"port": 80}, "app_processes[0].port"),
        ({"port": "3000"}, "app_processes[0].port"),
        ({"instances": 0}, "app_processes[0].instances"),
        ({"db_pool": -1}, "app_processes[0].db_pool"),
        ({"health_path": "api/health"}, "app_processes[0].health_path"),
        ({"websocket": True}, "app_processes[0].websocket"),
        ({"colour": "blue"}, "app_processes[0] has unknown keys"),
    ],
)
def test_process_fields_are_checked(change, variable):
    found = problems(app_processes=[{**WEB, **change}])
    assert any(p.startswith(variable) for p in found), found


def test_a_process_env_is_refused_rather_than_dropped():
    # Nothing renders a per-process env: each process gets app_env and app_secret_env, and its pool.
    found = problems(app_processes=[WEB, SOCKET, {**WORKER, "env": {"CONCURRENCY": "5"}}])
    unknown = [p for p in found if "unknown keys" in p]
    assert len(unknown) == 1
    assert unknown[0].startswith("app_processes[2] has unknown keys ['env']; allowed keys are")


def test_duplicate_names_are_refused():
    found = problems(app_processes=[WEB, {**WEB, "port": 4000}])
    assert found and "names ['web']" in found[0]


def test_program_instances_get_consecutive_ports_and_suffixes():
    programs = app_program_instances("shop", [{**WEB, "instances": 2}, WORKER])
    assert [(p["program"], p["port"]) for p in programs] == [
        ("shop-web-0", 3000),
        ("shop-web-1", 3001),
        ("shop-worker", None),
    ]
    assert process_ports({**WEB, "instances": 3}) == [3000, 3001, 3002]


LISTEN = {"nginx_listen_port": 80, "nginx_tls_listen_port": 443}


def site_problems(processes, listen=None, certificate="", key=""):
    return nginx_site_problems(processes, LISTEN if listen is None else listen, certificate, key)


def test_the_demo_model_makes_a_valid_site():
    assert site_problems([WEB, SOCKET, WORKER]) == []


def test_routes_are_upstreams_on_ipv4_loopback_with_every_instance():
    routes = app_nginx_routes("shop", [{**WEB, "instances": 2}, {**SOCKET, "port": 3005}, WORKER])
    assert routes == [
        {
            "process": "web",
            "upstream": "shop_web",
            "servers": ["127.0.0.1:3000", "127.0.0.1:3001"],
            "location": "/",
            "websocket": False,
        },
        {
            "process": "socket",
            "upstream": "shop_socket",
            "servers": ["127.0.0.1:3005"],
            "location": "/socket.io/",
            "websocket": True,
        },
    ]


def test_two_processes_serving_root_are_refused_naming_the_second():
    found = site_problems([WEB, {**WEB, "name": "api", "port": 4000}])
    assert len(found) == 1 and found[0].startswith("app_processes[1].proxy_path is missing")


def test_an_explicit_root_proxy_path_counts_as_serving_root():
    found = site_problems([WEB, {**SOCKET, "proxy_path": "/"}])
    assert len(found) == 1 and found[0].startswith("app_processes[1].proxy_path='/'")


def test_a_shared_proxy_path_is_refused():
    found = site_problems([WEB, SOCKET, {**SOCKET, "name": "socket2", "port": 3002}])
    assert len(found) == 1 and found[0].startswith("app_processes[2].proxy_path='/socket.io/'")


@pytest.mark.parametrize("bad", ["/a b/", "/x;return 200", "/{x}", "/#", "/'q'"])
def test_a_proxy_path_nginx_would_parse_as_syntax_is_refused(bad):
    found = site_problems([WEB, {**SOCKET, "proxy_path": bad}])
    assert len(found) == 1 and found[0].startswith("app_processes[1].proxy_path=")


def test_no_process_serving_root_is_allowed():
    # An API-only app: every routed process has its own path and '/' answers 404.
    assert site_problems([SOCKET, WORKER]) == []


@pytest.mark.parametrize(
    ("listen", "variable"),
    [
        ({"nginx_listen_port": 3000, "nginx_tls_listen_port": 443}, "nginx_listen_port=3000 is the port"),
        ({"nginx_listen_port": 80, "nginx_tls_listen_port": 3001}, "nginx_tls_listen_port=3001 is the port"),
        ({"nginx_listen_port": 80, "nginx_tls_listen_port": 80}, "nginx_tls_listen_port=80 is also"),
        ({"nginx_listen_port": "80", "nginx_tls_listen_port": 443}, "nginx_listen_port='80' must be"),
        ({"nginx_listen_port": 0, "nginx_tls_listen_port": 443}, "nginx_listen_port=0 must be"),
    ],
)
def test_nginx_ports_are_valid_distinct_and_not_app_ports(listen, variable):
    found = site_problems([WEB, SOCKET], listen=listen)
    assert len(found) == 1 and found[0].startswith(variable), found


def test_a_port_taken_by_a_second_instance_is_refused():
    found = site_problems([{**WEB, "instances": 3}], listen={"nginx_listen_port": 3002})
    assert found and found[0].startswith("nginx_listen_port=3002 is the port of app process 'web'")


@pytest.mark.parametrize(
    ("certificate", "key", "variable"),
    [
        ("/etc/ssl/shop.pem", "", "nginx_tls_certificate is set"),
        ("", "/k", "nginx_tls_certificate_key is set"),
    ],
)
def test_tls_needs_certificate_and_key_together(certificate, key, variable):
    found = site_problems([WEB], certificate=certificate, key=key)
    assert len(found) == 1 and found[0].startswith(variable)
    assert site_problems([WEB], certificate="/c", key="/k") == []


def test_site_checks_tolerate_a_model_app_model_problems_refuses():
    # app_model_problems reports these; the site checks must not crash on them.
    assert site_problems("not a list") == []
    assert site_problems([None, {"name": "x", "port": "3000"}, WEB]) == []


@pytest.mark.parametrize(
    ("processes", "stopwaitsecs", "timeout"),
    [
        ([WEB, SOCKET, WORKER], 30, 120),
        ([{**WORKER, "stopwaitsecs": 110}], 30, 120),
        ([{**WEB, "stopwaitsecs": 5, "short_drain": True}, WORKER], 30, 40),
        # Every process has its own drain: the default is not used, so not checked against the timeout.
        ([{**WEB, "stopwaitsecs": 30}], 300, 40),
    ],
)
def test_drain_times_that_fit_the_service_stop_timeout(processes, stopwaitsecs, timeout):
    assert app_drain_problems(processes, stopwaitsecs, timeout) == []


def test_a_drain_longer_than_the_service_stop_timeout_is_refused_naming_both():
    found = app_drain_problems([WEB, {**WORKER, "stopwaitsecs": 115}], 30, 120)
    assert len(found) == 1
    assert found[0].startswith("app_processes[1].stopwaitsecs=115")
    assert "supervisor_service_stop_timeout=120" in found[0] and "125" in found[0]


def test_the_default_drain_is_checked_once_however_many_processes_use_it():
    found = app_drain_problems([WEB, SOCKET, WORKER], 115, 120)
    assert len(found) == 1 and found[0].startswith("supervisor_stopwaitsecs=115")


@pytest.mark.parametrize("bad", [0, -5, "30", True, None, 2.5])
def test_a_bad_process_drain_is_refused(bad):
    found = app_drain_problems([{**WEB, "stopwaitsecs": bad}], 30, 120)
    assert len(found) == 1 and found[0].startswith("app_processes[0].stopwaitsecs=")


@pytest.mark.parametrize(
    ("stopwaitsecs", "timeout", "variable"),
    [(0, 120, "supervisor_stopwaitsecs"), (30, 0, "supervisor_service_stop_timeout")],
)
def test_bad_drain_settings_are_refused_naming_the_variable(stopwaitsecs, timeout, variable):
    found = app_drain_problems([WEB], stopwaitsecs, timeout)
    assert len(found) == 1 and found[0].startswith(variable)


def test_drain_problems_leave_a_malformed_model_to_app_model_problems():
    assert app_drain_problems("not a list", 30, 120) == []
    assert app_drain_problems([None, "web"], 30, 120) == []


def test_a_process_drain_under_30_s_is_refused_naming_the_opt_out():
    assert app_drain_problems([WEB, {**WORKER, "stopwaitsecs": 29}], 30, 120) == [
        "app_processes[1].stopwaitsecs=29 is under the 30 s drain a program needs to finish its requests "
        "and jobs before SIGKILL (seed 002, I9). Raise it to 30 or more, or set "
        "app_processes[1].short_drain: true for a process that has nothing to drain."
    ]


def test_a_default_drain_under_30_s_is_refused():
    assert app_drain_problems([WEB], 10, 120) == [
        "supervisor_stopwaitsecs=10 is under the 30 s drain every program needs to finish its requests "
        "and jobs before SIGKILL (seed 002, I9). Raise it to 30 or more; a process with nothing to drain "
        "can set its own stopwaitsecs with short_drain: true."
    ]


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_a_short_drain_that_is_not_a_boolean_is_refused(bad):
    assert app_drain_problems([{**WEB, "stopwaitsecs": 5, "short_drain": bad}], 30, 120) == [
        f"app_processes[0].short_drain={bad!r} must be true or false."
    ]


def test_short_drain_is_a_known_process_key():
    assert problems(app_processes=[{**WEB, "stopwaitsecs": 5, "short_drain": True}]) == []


@pytest.mark.parametrize(
    "source",
    [
        {"type": "archive", "path": "/home/me/src/shop"},
        {"type": "archive", "path": "shop.tar.gz"},
        {"type": "git", "repo": "https://git.example.com/shop/shop.git"},
        {"type": "git", "repo": "ssh://git@git.example.com:2222/shop.git", "version": "v1.2.0"},
        {"type": "git", "repo": "git@git.example.com:shop/shop.git", "version": "0123abc"},
        {"type": "git", "repo": "/srv/git/shop.git", "version": "main"},
    ],
)
def test_good_sources_are_accepted(source):
    assert app_source_problems(source) == []


@pytest.mark.parametrize(
    "repo",
    [
        "https://user:s3cret-token@git.example.com/shop.git",
        "https://s3cret-token@github.example.com/shop.git",
        "HTTP://x-access-token:s3cret-token@git.example.com/shop.git",
        "ssh://git:s3cret-token@git.example.com/shop.git",
    ],
)
def test_a_repo_url_with_credentials_is_refused_without_repeating_them(repo):
    [problem] = app_source_problems({"type": "git", "repo": repo})
    assert problem.startswith("app_source.repo carries credentials")
    assert "s3cret-token" not in problem and "example.com" not in problem


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("git", "app_source must be {type: archive"),
        ({"type": "svn", "repo": "x"}, "app_source.type must be archive or git"),
        ({"type": "git", "repo": "x", "ref": "v1"}, "app_source has ref, which a git source does not take"),
        ({"type": "archive", "path": "x", "repo": "y"}, "app_source has repo, which an archive source"),
        ({"type": "archive"}, "app_source.path must name"),
        ({"type": "git", "repo": ""}, "app_source.repo must be the URL"),
        ({"type": "git", "repo": "x", "version": 1.2}, "app_source.version must be a branch, tag or commit"),
        ({"type": "git", "repo": "x", "version": "--upload-pack=x"}, "app_source.version must be"),
    ],
)
def test_a_bad_source_is_refused_naming_the_key(source, expected):
    [problem] = app_source_problems(source)
    assert problem.startswith(expected), problem


# `git ls-remote REPO VERSION VERSION^{}` lists every ref whose tail matches, sorted by name.
LS_REMOTE = [
    "1111111111111111111111111111111111111111\tHEAD",
    "2222222222222222222222222222222222222222\trefs/heads/feature/main",
    "3333333333333333333333333333333333333333\trefs/heads/main",
    "4444444444444444444444444444444444444444\trefs/tags/archive/v2",
    "5555555555555555555555555555555555555555\trefs/tags/archive/v2^{}",
    "6666666666666666666666666666666666666666\trefs/tags/v2",
    "7777777777777777777777777777777777777777\trefs/tags/v2^{}",
    "8888888888888888888888888888888888888888\trefs/tags/v3",
]


@pytest.mark.parametrize(
    ("version", "commit", "ref"),
    [
        # A branch whose name is the tail of another branch's: the exact one, not the first listed.
        ("main", "3" * 40, "refs/heads/main"),
        ("feature/main", "2" * 40, "refs/heads/feature/main"),
        ("refs/heads/main", "3" * 40, "refs/heads/main"),
        # An annotated tag: the commit it points to, not the tag object, nor archive/v2's.
        ("v2", "7" * 40, "refs/tags/v2"),
        ("tags/v2", "7" * 40, "refs/tags/v2"),
        # A lightweight tag points at its commit itself.
        ("v3", "8" * 40, "refs/tags/v3"),
        ("HEAD", "1" * 40, "HEAD"),
        # No ref has this name: a commit id, as given (lower case, as git prints commits).
        ("0123ABC", "0123abc", ""),
        ("0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567", ""),
    ],
)
def test_a_git_version_resolves_to_the_commit_it_names_exactly(version, commit, ref):
    lines = [line for line in LS_REMOTE if line.split("\t")[1].removesuffix("^{}").endswith(version)]
    assert git_version_commit(lines, version) == {"commit": commit, "ref": ref, "problem": ""}


def test_a_branch_and_a_tag_of_one_name_resolve_to_the_tag_as_git_does():
    lines = ["a" * 40 + "\trefs/heads/v2", "b" * 40 + "\trefs/tags/v2", "c" * 40 + "\trefs/tags/v2^{}"]
    assert git_version_commit(lines, "v2")["commit"] == "c" * 40


@pytest.mark.parametrize(
    ("version", "lines", "hint"),
    [
        ("mian", [], "'mian' is no branch or tag of the repository, nor a commit id (7 to 40 hex digits)."),
        # Only a longer ref ends in it: named, so the operator can write it in full.
        ("main", LS_REMOTE[1:2], "refs ending in it: refs/heads/feature/main: name one of them in full."),
        ("abc", [], "'abc' is no branch or tag"),
    ],
)
def test_a_git_version_the_repository_does_not_have_is_a_problem_naming_the_variable(version, lines, hint):
    result = git_version_commit(lines, version)
    assert result["commit"] == "" and result["problem"].startswith("app_source.version ")
    assert hint in result["problem"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("/etc", "diagnose_prisma_client_dir='/etc' is an absolute path"),
        ("node_modules/../..", "diagnose_prisma_client_dir='node_modules/../..' has a '..' component"),
        (" ", "diagnose_prisma_client_dir must name a path relative to the release"),
    ],
)
def test_a_release_path_problem_names_the_variable_and_a_path_it_could_be(value, said):
    [problem] = release_path_problems(value, "diagnose_prisma_client_dir", "node_modules/.prisma/client")
    assert problem.startswith(said) and "such as node_modules/.prisma/client" in problem
    assert release_path_problems("node_modules/.prisma/client", "diagnose_prisma_client_dir") == []
