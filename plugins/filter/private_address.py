"""The address a host is reached at by the other hosts of the inventory.

PostgreSQL and Redis listen on it, pg_hba and the firewall let a web host in by it, and the app's
DATABASE_URL and REDIS_URL connect to it. By default it is the host's default IPv4 address (the
source of its default route). On clouds whose default route leaves by the public interface while the
hosts talk over a private network (Hetzner, DigitalOcean, OVH), the inventory sets
``shipshape_private_address`` per host to its address on that network.

Filters (each takes a host's hostvars entry, ``hostvars[name]``):
  private_address(host) -> shipshape_private_address, else the default IPv4 address from the host's
                           facts, else its ansible_host, else ''; an invalid override is an error
  private_address_problem(host) -> why the host's shipshape_private_address is refused, '' when it
                           is unset or valid (playbooks/addresses.yml asserts it before any change)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

VARIABLE = "shipshape_private_address"


def _facts(host: Mapping[str, Any]) -> Mapping[str, Any]:
    return host.get("ansible_facts") or {}


def _own_addresses(facts: Mapping[str, Any]) -> list[str] | None:
    """Every address on the host's interfaces; None when its network facts were not gathered."""
    if "all_ipv4_addresses" not in facts and "all_ipv6_addresses" not in facts:
        return None
    return [*facts.get("all_ipv4_addresses", []), *facts.get("all_ipv6_addresses", [])]


def _normal(text: Any) -> str:
    """An address in its canonical form (IPv6 compressed, lower case); other text as it is."""
    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        return str(text)


def private_address_problem(host: Mapping[str, Any]) -> str:
    """Why the host's shipshape_private_address cannot be used ('' when it is unset or valid)."""
    value = host.get(VARIABLE)
    if value is None or value == "":
        return ""
    name = host.get("inventory_hostname", "this host")
    fix = f"Set {VARIABLE} to the address of {name} on the network its peers reach it by, or remove it"
    fix += " to use the default route's address."
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return f"{VARIABLE} of {name}: {str(value)!r} is not an IP address. {fix}"
    if address.is_loopback or address.is_unspecified or address.is_multicast or address.is_link_local:
        return f"{VARIABLE} of {name}: {address} is not an address other hosts can connect to. {fix}"
    own = _own_addresses(_facts(host))
    if own is not None and str(address) not in {_normal(a) for a in own}:
        return (
            f"{VARIABLE} of {name}: {address} is not an address of this host"
            f" (its interfaces have {', '.join(own) or 'no address'}). {fix}"
        )
    return ""


def private_address(host: Mapping[str, Any]) -> str:
    """The override, else the default IPv4 address, else ansible_host, else ''."""
    problem = private_address_problem(host)
    if problem:
        raise AnsibleFilterError(problem)
    value = host.get(VARIABLE)
    if value is not None and value != "":
        return _normal(value)
    default = (_facts(host).get("default_ipv4") or {}).get("address")
    return str(default or host.get("ansible_host") or "")


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"private_address": private_address, "private_address_problem": private_address_problem}
