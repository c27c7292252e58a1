"""private_address: the address a host's services listen on and its peers connect to."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from private_address import private_address, private_address_problem, public_service_address_problem

# A cloud host: the default route leaves by the public interface, the peers are on 10.0.1.0/24.
FACTS = {
    "default_ipv4": {"address": "203.0.113.20", "interface": "eth0"},
    "all_ipv4_addresses": ["203.0.113.20", "10.0.1.20"],
    "all_ipv6_addresses": ["2001:db8::20", "fe80::1"],
}


def host(**hostvars):
    return {"inventory_hostname": "db1", **hostvars}


@pytest.mark.parametrize(
    ("hostvars", "address"),
    [
        # The override, when it is one of the host's addresses.
        ({"shipshape_private_address": "10.0.1.20", "ansible_facts": FACTS}, "10.0.1.20"),
        ({"shipshape_private_address": "2001:DB8:0::20", "ansible_facts": FACTS}, "2001:db8::20"),
        # Facts not gathered: the override cannot be checked against them and is taken as it is.
        ({"shipshape_private_address": "10.0.1.20", "ansible_host": "203.0.113.20"}, "10.0.1.20"),
        # Unset or empty: the default route's address, as before the variable existed.
        ({"ansible_facts": FACTS, "ansible_host": "db1.example.com"}, "203.0.113.20"),
        ({"shipshape_private_address": "", "ansible_facts": FACTS}, "203.0.113.20"),
        # No facts, or facts without a default route: ansible_host.
        ({"ansible_host": "203.0.113.20"}, "203.0.113.20"),
        ({"ansible_facts": {"all_ipv4_addresses": ["10.0.1.20"]}, "ansible_host": "10.0.1.20"}, "10.0.1.20"),
        # Nothing known: '' (the roles' checks refuse it, naming the host).
        ({}, ""),
    ],
)
def test_the_address_is_the_override_then_the_default_route_then_ansible_host(hostvars, address):
    assert private_address_problem(host(**hostvars)) == ""
    assert private_address(host(**hostvars)) == address


@pytest.mark.parametrize(
    ("value", "facts", "reason"),
    [
        ("db1.internal", FACTS, "is not an IP address"),
        ("10.0.1.300", FACTS, "is not an IP address"),
        ("10.0.1.0/24", FACTS, "is not an IP address"),
        ("127.0.0.1", FACTS, "not an address other hosts can connect to"),
        ("0.0.0.0", FACTS, "not an address other hosts can connect to"),
        ("fe80::1", FACTS, "not an address other hosts can connect to"),
        # A valid address, but another host's (a copy-paste slip in host_vars).
        ("10.0.1.21", FACTS, r"10\.0\.1\.21 is not an address of this host \(its interfaces have 203\."),
        ("10.0.1.21", {"all_ipv4_addresses": [], "all_ipv6_addresses": []}, r"interfaces have no address"),
    ],
)
def test_an_invalid_override_is_refused_naming_the_variable_and_the_host(value, facts, reason):
    hostvars = host(shipshape_private_address=value, ansible_facts=facts)
    problem = private_address_problem(hostvars)
    assert problem.startswith("shipshape_private_address of db1: ")
    assert "Set shipshape_private_address to the address of db1" in problem
    with pytest.raises(AnsibleFilterError, match=reason):
        private_address(hostvars)


# A cloud host whose default route's address is routed on the internet (FACTS' 203.0.113.0/24 is
# a documentation range, which ipaddress counts as not global).
PUBLIC_FACTS = {
    "default_ipv4": {"address": "95.216.10.20"},
    "all_ipv4_addresses": ["95.216.10.20", "10.0.1.20"],
}
FLEET = {"web": ["web1", "web2"], "db": ["db1"], "redis": ["db1"]}


@pytest.mark.parametrize(
    ("hostvars", "groups", "refused"),
    [
        # The default route's public address, web hosts elsewhere: refused.
        ({"ansible_facts": PUBLIC_FACTS}, FLEET, True),
        # Its private address set: allowed.
        ({"ansible_facts": PUBLIC_FACTS, "shipshape_private_address": "10.0.1.20"}, FLEET, False),
        # Accepted by the inventory, from YAML or from -e (a string).
        ({"ansible_facts": PUBLIC_FACTS, "shipshape_allow_public_service_address": True}, FLEET, False),
        ({"ansible_facts": PUBLIC_FACTS, "shipshape_allow_public_service_address": "true"}, FLEET, False),
        ({"ansible_facts": PUBLIC_FACTS, "shipshape_allow_public_service_address": "false"}, FLEET, True),
        # One host for everything: PostgreSQL and Redis serve loopback only.
        ({"ansible_facts": PUBLIC_FACTS}, {"web": ["db1"], "db": ["db1"], "redis": ["db1"]}, False),
        # Not a db or redis host.
        ({"ansible_facts": PUBLIC_FACTS}, {"web": ["web1", "web2"], "db": ["db2"]}, False),
        # A private default route, as on a LAN or a podman network.
        ({"ansible_facts": {"default_ipv4": {"address": "10.89.0.5"}}}, FLEET, False),
    ],
)
def test_a_db_or_redis_host_is_refused_when_web_hosts_elsewhere_reach_it_at_a_public_address(
    hostvars, groups, refused
):
    problem = public_service_address_problem(host(**hostvars), groups)
    assert bool(problem) is refused, problem
    if refused:
        assert problem.startswith("db1 serves PostgreSQL and Redis to web hosts elsewhere (web1, web2)")
        assert "at 95.216.10.20, a public address" in problem
        assert "shipshape_private_address" in problem and "shipshape_allow_public_service_address" in problem
