"""The NAT router's rules and the guest contents the router role declares (no VM needed).

docs/nat.md shows the rules the VM scenarios load; this keeps the page and the template in step, and
checks that the negative control's ruleset differs from the real one by exactly the helper assignment.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from buildtool.layout import find_root
from buildtool.vm import image
from buildtool.vm.image import BASE_CONTENTS, GuestContents, GuestDeb, ImageInputs
from buildtool.vm.nat import (
    ROUTER_CONTENTS,
    GreCall,
    forward_layout,
    gre_calls,
    masquerade_layout,
    render_router_rules,
    router_rules,
)

ROOT = find_root(Path(__file__).parent)
LAYOUTS = {"masquerade": masquerade_layout(1), "forward": forward_layout()}


def doc_block(name: str) -> str:
    text = (ROOT / "docs" / "nat.md").read_text()
    m = re.search(rf"<!-- router-rules: {name} -->\n```\n(.*?)```\n", text, re.S)
    assert m, f"docs/nat.md has no rules block marked '<!-- router-rules: {name} -->'"
    return m[1]


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_docs_show_the_rules_the_tests_load(name: str):
    rendered = render_router_rules(router_rules(LAYOUTS[name]))
    assert doc_block(name) == rendered, (
        f"docs/nat.md's {name} block differs from buildtool/templates/vm/router.nft.j2; paste this:\n"
        f"{rendered}")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_control_ruleset_lacks_only_the_helper_assignment(name: str):
    rules = router_rules(LAYOUTS[name])
    with_helper = render_router_rules(rules).splitlines()
    without = render_router_rules(replace(rules, helper=False)).splitlines()
    assert 'tcp dport 1723 ct helper set "pptp"' in "\n".join(with_helper)
    assert 'type "pptp" protocol tcp' in "\n".join(with_helper)
    assert "ct helper" not in "\n".join(without)
    removed = [line for line in with_helper if line not in without]
    assert all("helper" in line or line.strip() in ("", "{", "}", "chain helpers {")
               or line.lstrip().startswith(("#", "type ")) for line in removed), removed
    assert [line for line in without if line not in with_helper] == []


def test_forward_rules_forward_tcp_1723_and_gre():
    text = render_router_rules(router_rules(forward_layout()))
    server = router_rules(forward_layout()).forward_to
    assert f'tcp dport 1723 dnat to {server}' in text and f"ip protocol gre dnat to {server}" in text
    assert "dnat" not in render_router_rules(router_rules(masquerade_layout(1)))


def test_contents_add_without_duplicates():
    extra = GuestContents((GuestDeb("iproute2", ("bin/ip",)), GuestDeb("nftables")), ("veth", "nf_tables"))
    total = BASE_CONTENTS + extra
    assert [d.package for d in total.debs].count("iproute2") == 1
    assert total.debs[-1].package == "nftables" and total.modules[-1] == "nf_tables"
    assert total.modules.count("veth") == 1


def test_router_contents_are_part_of_the_image_key(tmp_path):
    vmlinuz = tmp_path / "vmlinuz-test"
    vmlinuz.write_bytes(b"kernel")
    base = ImageInputs(release="6.1.0-test", vmlinuz=vmlinuz, modules_root=tmp_path, packages=())
    with_router = replace(base, contents=BASE_CONTENTS + ROUTER_CONTENTS)
    assert image.image_key(base, []) != image.image_key(with_router, [])
    assert image.image_key(with_router, []) == image.image_key(replace(base, contents=BASE_CONTENTS
                                                                        + ROUTER_CONTENTS), [])


# Two calls through the masquerading router as `conntrack -L` printed them (a re-run of
# test_nat_clients_at_once[2]): the first entry opened by the client's GRE, the second by the server's.
TWO_CALLS = (
    "gre      47 177 src=172.16.1.2 dst=10.0.0.1 srckey=0xf5b4 dstkey=0x0 src=10.0.0.1 dst=10.0.0.254 "
    "srckey=0x0 dstkey=0x9b39 [ASSURED] mark=0 use=1\n"
    "gre      47 177 src=10.0.0.1 dst=10.0.0.254 srckey=0x80 dstkey=0xa837 src=172.16.2.2 dst=10.0.0.1 "
    "srckey=0x226d dstkey=0x80 [ASSURED] mark=0 use=1\n"
    "tcp      6 431999 ESTABLISHED src=172.16.1.2 dst=10.0.0.1 sport=40000 dport=1723 src=10.0.0.1 "
    "dst=10.0.0.254 sport=1723 dport=40000 [ASSURED] helper=pptp mark=0 use=1\n")


def test_gre_calls_are_read_from_the_clients_side_whoever_opened_the_entry():
    calls = gre_calls(TWO_CALLS, "10.0.0.1")
    assert calls == [GreCall("172.16.1.2", "0xf5b4", "0x9b39"), GreCall("172.16.2.2", "0x226d", "0xa837")]
    # read by position only, the second call's "public" Call ID would be the server's own (0x80)
    assert sorted(c.public_id for c in calls) == ["0x9b39", "0xa837"]
