"""local_site filters: the URL and name the app host uses to reach its own nginx site."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from local_site import local_site_name, local_site_url, public_site_url


@pytest.mark.parametrize(
    ("certificate", "key", "http_port", "tls_port", "url"),
    [
        ("", "", 80, 443, "http://127.0.0.1"),
        ("", "", "8080", 443, "http://127.0.0.1:8080"),
        ("/etc/ssl/shop.pem", "/etc/ssl/shop.key", 80, 443, "https://127.0.0.1:443"),
        ("/etc/ssl/shop.pem", "/etc/ssl/shop.key", 80, "8443", "https://127.0.0.1:8443"),
        # nginx serves TLS only with both files (the nginx role refuses one without the other).
        ("/etc/ssl/shop.pem", "", 80, 443, "http://127.0.0.1"),
    ],
)
def test_the_url_follows_the_site_tls_and_ports(certificate, key, http_port, tls_port, url):
    assert local_site_url(certificate, key, http_port, tls_port) == url


def test_a_port_that_is_not_a_number_is_refused_naming_the_variables():
    with pytest.raises(AnsibleFilterError, match="nginx_listen_port and nginx_tls_listen_port"):
        local_site_url("", "", "eighty")


@pytest.mark.parametrize(
    ("names", "name"),
    [
        (["_"], ""),
        (None, ""),
        (["shop.example.com", "www.shop.example.com"], "shop.example.com"),
        (["_", "shop.example.com"], "shop.example.com"),
        ("shop.example.com", "shop.example.com"),
    ],
)
def test_the_name_is_the_first_real_server_name(names, name):
    assert local_site_name(names) == name


@pytest.mark.parametrize(
    ("names", "certificate", "http_port", "tls_port", "url"),
    [
        (["shop.example.com", "www.shop.example.com"], "", 80, 443, "http://shop.example.com"),
        (["shop.example.com"], "/etc/ssl/shop.pem", 80, 443, "https://shop.example.com"),
        (["shop.example.com"], "/etc/ssl/shop.pem", 80, 8443, "https://shop.example.com:8443"),
        ("shop.example.com", "", 8080, 443, "http://shop.example.com:8080"),
        # The first name that is one address: not any name, a wildcard or a regular expression.
        (
            ["_", "*.example.com", ".example.org", "~^www\\d+\\.", "shop.test"],
            "",
            80,
            443,
            "http://shop.test",
        ),
        (["_"], "/etc/ssl/shop.pem", 80, 443, ""),
        ([], "", 80, 443, ""),
    ],
)
def test_the_public_url_is_the_first_plain_name_with_the_site_scheme_and_port(
    names, certificate, http_port, tls_port, url
):
    key = "/etc/ssl/shop.key" if certificate else ""
    assert public_site_url(names, certificate, key, http_port, tls_port) == url
