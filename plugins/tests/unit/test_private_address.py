"""private_address: the address a host's services listen on and its peers connect to."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from private_address import private_address, private_address_problem

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
