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
  public_service_address_problem(host, groups) -> why a db or redis host may not serve web hosts
                           elsewhere at its address, '' when it may: the address is routed on the
                           internet, and PostgreSQL's and Redis's traffic is in clear (addresses.yml)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

VARIABLE = "shipshape_private_address"
ALLOW_PUBLIC = "shipshape_allow_public_service_address"


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


def public_service_address_problem(host: Mapping[str, Any], groups: Mapping[str, Any]) -> str:
    """Why this host may not serve PostgreSQL or Redis to the web hosts at its address ('' if it may).

    Neither is set up with TLS: every query, and Redis's AUTH password, cross the network in clear.
    Web hosts on other hosts reach a db or redis host at its private address; one routed on the
    internet (the default route's, on a cloud whose hosts also share a private network) is refused
    unless the inventory accepts that network for this traffic.
    """
    name = host.get("inventory_hostname", "this host")
    serves = [group for group in ("db", "redis") if name in (groups.get(group) or [])]
    elsewhere = [web for web in groups.get("web") or [] if web != name]
    if not serves or not elsewhere or _truthy(host.get(ALLOW_PUBLIC)):
        return ""
    address = private_address(host)
    try:
        routed = ipaddress.ip_address(address).is_global
    except ValueError:
        return ""
    if not routed:
        return ""
    return (
        f"{name} serves {' and '.join('PostgreSQL' if g == 'db' else 'Redis' for g in serves)} to web hosts"
        f" elsewhere ({', '.join(elsewhere)}) at {address}, a public address: that traffic, Redis's password"
        f" among it, would cross the internet in clear. Set {VARIABLE} on every host to its address on a"
        f" private network the hosts share (or a VPN such as WireGuard); or, where you trust this network,"
        f" set {ALLOW_PUBLIC}=true for {name}. Nothing was changed."
    )


def _truthy(value: Any) -> bool:
    """A bool from YAML, or the string -e and INI inventories give."""
    return str(value).strip().lower() in ("true", "yes", "on", "1") if value is not None else False


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
        return {
            "private_address": private_address,
            "private_address_problem": private_address_problem,
            "public_service_address_problem": public_service_address_problem,
        }
