"""Environment files: URLs with awkward passwords, shell-safe lines, required names."""

from __future__ import annotations

import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from app_env import env_file_line, missing_env, service_url


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("postgresql", "127.0.0.1", 5432, "p@ss/w:rd", "shop", "shop"),
            "postgresql://shop:p%40ss%2Fw%3Ard@127.0.0.1:5432/shop",
        ),
        (("redis", "10.0.0.5", "6379", "secret", "", "0"), "redis://:secret@10.0.0.5:6379/0"),
        (("redis", "::1", 6379, None), "redis://[::1]:6379"),
    ],
)
def test_service_url(args, expected):
    assert service_url(*args) == expected


def test_service_url_without_host_names_the_inventory():
    with pytest.raises(AnsibleFilterError, match="inventory"):
        service_url("redis", "", 6379)


@pytest.mark.parametrize(
    "value",
    # \r and the other characters Python counts as line ends are one line for sh, inside the quotes.
    ["plain", "it's", 'a b $HOME `id` \\ " ;', "", "x'y'z", True, 10, "a\rb\x0bc\x0cd\x85e\u2028f"],
)
def test_env_file_line_survives_sh(value):
    line = env_file_line("SOME_VAR", value)
    # Bytes, not text=True: universal newlines would turn a \r in the value into \n.
    out = subprocess.run(
        ["sh", "-c", f'{line}\nprintf %s "$SOME_VAR"'], capture_output=True, check=True
    ).stdout
    assert out.decode() == (str(value).lower() if isinstance(value, bool) else str(value))


@pytest.mark.parametrize(("name", "value"), [("1BAD", "x"), ("BAD-NAME", "x"), ("OK", "a\nb"), ("OK", None)])
def test_env_file_line_refuses(name, value):
    with pytest.raises(AnsibleFilterError):
        env_file_line(name, value)


def test_missing_env_names_only():
    envs = {"web": {"DATABASE_URL": "postgresql://x", "SESSION_SECRET": ""}, "worker": {"REDIS_URL": "r"}}
    assert missing_env(["DATABASE_URL", "REDIS_URL", "SESSION_SECRET", "SMTP_URL"], envs) == [
        "SESSION_SECRET",
        "SMTP_URL",
    ]
