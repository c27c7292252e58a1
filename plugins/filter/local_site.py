"""Where the app host reaches its own nginx site: the URL and the name to ask for.

The deploy's smoke tests and diagnose's health checks go through nginx on 127.0.0.1, the way a
visitor's request does. With a certificate the site's plain-HTTP server only redirects, so they
must use HTTPS; with named servers they must send one of the names (Host, and TLS SNI).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def local_site_url(certificate: Any, certificate_key: Any, http_port: Any = 80, tls_port: Any = 443) -> str:
    """http://127.0.0.1[:PORT], or https://127.0.0.1:PORT when the site has a certificate and its key."""
    try:
        http, tls = int(http_port), int(tls_port)
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError(
            f"local_site_url: nginx_listen_port and nginx_tls_listen_port must be numbers: {error}"
        ) from error
    if certificate and certificate_key:
        return f"https://127.0.0.1:{tls}"
    return "http://127.0.0.1" + ("" if http == 80 else f":{http}")


def local_site_name(server_names: Any) -> str:
    """The site's first server name; "" when it answers any name (`_`, the default server)."""
    if isinstance(server_names, str):
        server_names = [server_names]
    names = [str(name) for name in server_names or [] if str(name) not in ("", "_")]
    return names[0] if names else ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"local_site_url": local_site_url, "local_site_name": local_site_name}
