"""Where the app host reaches its own nginx site: the URL and the name to ask for; and the site's public URL.

The deploy's smoke tests and diagnose's health checks go through nginx on 127.0.0.1, the way a
visitor's request does. With a certificate the site's plain-HTTP server only redirects, so they
must use HTTPS; with named servers they must send one of the names (Host, and TLS SNI).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def _ports(http_port: Any, tls_port: Any) -> tuple[int, int]:
    try:
        return int(http_port), int(tls_port)
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError(
            f"the site's ports: nginx_listen_port and nginx_tls_listen_port must be numbers: {error}"
        ) from error


def local_site_url(certificate: Any, certificate_key: Any, http_port: Any = 80, tls_port: Any = 443) -> str:
    """http://127.0.0.1[:PORT], or https://127.0.0.1:PORT when the site has a certificate and its key."""
    http, tls = _ports(http_port, tls_port)
    if certificate and certificate_key:
        return f"https://127.0.0.1:{tls}"
    return "http://127.0.0.1" + ("" if http == 80 else f":{http}")


def local_site_name(server_names: Any) -> str:
    """The site's first server name; "" when it answers any name (`_`, the default server)."""
    if isinstance(server_names, str):
        server_names = [server_names]
    names = [str(name) for name in server_names or [] if str(name) not in ("", "_")]
    return names[0] if names else ""


def public_site_url(
    server_names: Any, certificate: Any, certificate_key: Any, http_port: Any = 80, tls_port: Any = 443
) -> str:
    """The address people use: the site's first plain server name, https when it has a certificate.

    "" when no name is plain: `_` (any name), a wildcard (`*.example.com`, `.example.com`) or a
    regular expression (`~...`) names no single address.
    """
    if isinstance(server_names, str):
        server_names = [server_names]
    names = [str(name) for name in server_names or []]
    plain = [name for name in names if name and name != "_" and name[0] not in "~*." and "*" not in name]
    if not plain:
        return ""
    http, tls = _ports(http_port, tls_port)
    if certificate and certificate_key:
        return f"https://{plain[0]}" + ("" if tls == 443 else f":{tls}")
    return f"http://{plain[0]}" + ("" if http == 80 else f":{http}")


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "local_site_url": local_site_url,
            "local_site_name": local_site_name,
            "public_site_url": public_site_url,
        }
