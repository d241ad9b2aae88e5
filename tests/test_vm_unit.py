"""The VM layer without QEMU: the QEMU command line, the framed console channel (driven against the host's
own /bin/sh instead of a guest's), the guest-side wait loop (run by /bin/sh here, against the host's
/proc/uptime) and the choice of negative controls from their `Expect-Fail:` headers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from namespaces import can_mount_in_a_namespace

from buildtool.errors import HarnessError, UsageError
from buildtool.layout import Layout
from buildtool.vm.console import CHUNK, CommandTimeout, Console, GuestCrash, ShellChannel, VmProcess
from buildtool.vm.guest import ByteMatch, Guest, LinuxGuest
from buildtool.vm.image import BASE_CONTENTS, _Builder
from buildtool.vm.nat import NatTopology, Router, forward_layout, masquerade_layout
from buildtool.vm.netbsd import NetBSDGuest
from buildtool.vm.network import Lan, Network, Nic, Node, plan_node
from buildtool.vm.qemu import BootRequest, QemuTcg, SocketNic
from buildtool.vm.suite import control_keyword, control_patches, expected_failures
from buildtool.vm.topology import (
    DEBIAN,
    OURS,
    PptpClient,
    PptpServer,
    SingleGuest,
    TunnelConfig,
    TwoGuests,
    Userland,
    render_pptpd_conf,
    single_guest_network,
    two_guests_network,
)

REPO = Path(__file__).resolve().parent.parent
wait_until = LinuxGuest().wait_until


# --- the QEMU command line -----------------------------------------------------------------------------

def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    """Every two neighbouring arguments (a flag and its value among them)."""
    return list(zip(argv, argv[1:], strict=False))


def test_qemu_boots_kernel_and_initrd_with_socket_nics(tmp_path):
    req = BootRequest(kernel=tmp_path / "vmlinuz", initrd=tmp_path / "initrd",
                      cmdline="console=ttyS0 panic=-1", memory_mb=768, cpus=1,
                      nics=(SocketNic(40001, True, "52:54:00:00:00:01"),
                            SocketNic(40002, False, "52:54:00:00:00:02")))
    argv = QemuTcg(extra_args=["-snapshot"]).command(req)
    assert Path(argv[0]).name == "qemu-system-x86_64" and os.access(argv[0], os.X_OK)
    pairs = _pairs(argv)
    for pair in [("-accel", "tcg"), ("-m", "768"), ("-smp", "1"), ("-kernel", str(tmp_path / "vmlinuz")),
                 ("-initrd", str(tmp_path / "initrd")), ("-append", "console=ttyS0 panic=-1"),
                 ("-chardev", "stdio,id=console,signal=off"), ("-serial", "chardev:console"),
                 ("-netdev", "socket,id=net0,listen=127.0.0.1:40001"),
                 ("-device", "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01"),
                 ("-netdev", "socket,id=net1,connect=127.0.0.1:40002"),
                 ("-device", "virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02")]:
        assert pair in pairs, pair
    assert "-no-reboot" in argv and "-nodefaults" in argv and argv[-1] == "-snapshot"
    assert "-cdrom" not in argv


def test_qemu_boots_an_iso_instead_of_a_kernel(tmp_path):
    req = BootRequest(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline="x", iso=tmp_path / "boot.iso")
    argv = QemuTcg().command(req)
    assert ("-cdrom", str(tmp_path / "boot.iso")) in _pairs(argv) and ("-boot", "d") in _pairs(argv)
    assert "-kernel" not in argv and "-append" not in argv and "-netdev" not in argv


def test_a_missing_vmm_names_its_debian_package(tmp_path):
    vmm = QemuTcg(binary="qemu-system-x86_64-not-installed")
    with pytest.raises(HarnessError, match="qemu-system-x86_64-not-installed is not installed"):
        vmm.command(BootRequest(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline=""))


# --- the framed console channel, against the host's shell ------------------------------------------------

# The channel stages each command in /tmp/.bt-cmd (the guest's own /tmp); here the shell gets a private
# /tmp of its own (a mount namespace), so two of these tests running at once cannot run each other's
# commands.
PRIVATE_TMP_SHELL = ["unshare", "--map-root-user", "--mount", "/bin/sh", "-c",
                     "mount -t tmpfs tmpfs /tmp && exec /bin/sh -i"]


def _shell() -> list[str]:
    """The private-/tmp shell where user and mount namespaces are allowed; else (a chroot, say) a plain
    interactive shell, which is safe as long as these tests do not run in parallel with each other."""
    return PRIVATE_TMP_SHELL if can_mount_in_a_namespace() else ["/bin/sh", "-i"]


SHELL = _shell()


@pytest.fixture
def console(tmp_path):
    """A Console over an interactive /bin/sh on a pty: the same framing, prompt and crash watch as on a
    guest."""
    con = Console(SHELL, tmp_path / "console.log", LinuxGuest.crash_patterns, deadline=time.monotonic() + 120)
    con.set_prompt(timeout=20)
    yield con
    con.close()


def test_console_returns_output_and_exit_status(console):
    res = console.run("echo hello; echo 'it''s' \"$((6 * 7))\" >&2; exit 3", timeout=20)
    assert res.status == 3 and res.output == "hello\nits 42\n"
    assert console.run("true", timeout=20).status == 0


def test_console_prompt_cannot_be_matched_by_what_a_command_prints(console):
    """The prompt is set in two quoted halves; a command echoing `PS1` text does not end the frame early."""
    a, b = console.channel._halves
    res = console.run(f"echo '{a}' '{b}'; echo after; exit 0", timeout=20)
    assert res.status == 0 and res.output.endswith("after\n") and res.output.startswith(a)
    assert console.channel.prompt not in res.output


def test_console_sends_long_commands_in_chunks(console):
    """A command longer than one tty line (base64 in CHUNK pieces) arrives intact, quotes and all."""
    words = [f"w{i}'\"$x" for i in range(CHUNK)]
    script = "cat <<'EOF'\n" + "\n".join(words) + "\nEOF"
    assert len(script) > 3 * CHUNK
    res = console.run(script, timeout=30)
    assert res.status == 0 and res.output.splitlines() == words


def test_console_sees_a_crash_pattern(console):
    with pytest.raises(GuestCrash, match="Kernel panic - not syncing: Fatal exception"):
        console.run("echo 'Kernel panic - not syncing: Fatal exception'; sleep 5", timeout=20)


def test_console_timeout_interrupts_the_command(console):
    with pytest.raises(CommandTimeout, match="timed out after 1s while running: sleep 30"):
        console.run("sleep 30", timeout=1)
    assert console.run("echo back", timeout=20).output == "back\n"  # ^C returned the shell


def test_console_reports_the_process_exiting_as_the_harness(console):
    console.send_raw("exit 7\n")
    with pytest.raises(HarnessError, match=r"QEMU exited while running: true \(exit status 7\)"):
        console.run("true", timeout=20)


def test_console_watchdog(tmp_path):
    con = Console(SHELL, tmp_path / "console.log", (), deadline=time.monotonic() - 1)
    try:
        with pytest.raises(HarnessError, match="global watchdog expired"):
            con.set_prompt(timeout=20)
    finally:
        con.close()


# --- the process and the channel apart ----------------------------------------------------------------

def test_process_watchdog_kills_a_process_that_outlives_its_deadline(tmp_path):
    """Nobody reads from it, nobody waits on it: the watchdog alone ends it at the deadline."""
    proc = VmProcess(["/bin/sh", "-c", "echo started; sleep 600"], tmp_path / "p.log",
                     deadline=time.monotonic() + 1)
    try:
        assert proc.wait_exit(timeout=60), "the watchdog did not kill the process"
        assert proc.watchdog_fired and proc.exit_status() == -9
        assert "started" in proc.text()
    finally:
        proc.close()


def test_process_watchdog_leaves_a_process_alone_before_its_deadline(tmp_path):
    """Control: the same process with a far deadline runs until it exits by itself, status kept."""
    proc = VmProcess(["/bin/sh", "-c", "sleep 2; exit 5"], tmp_path / "p.log",
                     deadline=time.monotonic() + 600)
    try:
        assert proc.alive()
        assert proc.wait_exit(timeout=60)
        assert not proc.watchdog_fired and proc.exit_status() == 5
    finally:
        proc.close()


def test_close_stops_the_process_and_its_watchdog(tmp_path):
    proc = VmProcess(["/bin/sh", "-c", "sleep 600"], tmp_path / "p.log", deadline=time.monotonic() + 600)
    proc.close()
    assert not proc.alive() and not proc._watchdog.is_alive()


def test_channel_reports_a_watchdog_kill_as_the_harness(tmp_path):
    """A channel waiting on a process the watchdog killed says so (a HarnessError, not "QEMU exited")."""
    proc = VmProcess(SHELL, tmp_path / "console.log", deadline=time.monotonic() + 3)
    try:
        chan = ShellChannel(proc, LinuxGuest.crash_patterns)
        chan.set_prompt(timeout=20)
        with pytest.raises(HarnessError, match="global watchdog expired"):
            chan.run("sleep 600", timeout=600)
        assert proc.wait_exit(timeout=30) and proc.watchdog_fired
    finally:
        proc.close()


def test_a_vmm_that_cannot_start_is_a_harness_error(tmp_path):
    with pytest.raises(HarnessError, match="cannot start /nonexistent/qemu"):
        VmProcess(["/nonexistent/qemu"], tmp_path / "p.log", deadline=time.monotonic() + 60)


# --- the guest-side wait loop ------------------------------------------------------------------------------

def _sh(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_wait_until_returns_once_the_condition_holds(tmp_path):
    done = _sh(wait_until("[ -e flag ]", 20, each="n=$((${n:-0} + 1)); [ $n -lt 3 ] || touch flag"), tmp_path)
    assert done.returncode == 0 and (tmp_path / "flag").exists(), done.stderr
    assert _sh(wait_until("true", 20, on_timeout="echo never"), tmp_path).stdout == ""


def test_wait_until_gives_up_after_its_seconds(tmp_path):
    t0 = time.monotonic()
    done = _sh(wait_until("[ -e never ]", 1, on_timeout="echo gave up"), tmp_path)
    print(f"wait_until(1 s) gave up after {time.monotonic() - t0:.2f}s")
    assert (done.returncode, done.stdout, done.stderr) == (1, "gave up\n", "")


# --- the guest OS's shell idioms -------------------------------------------------------------------------

LINUX = LinuxGuest()


def test_linux_parses_what_its_commands_print():
    """The parsers read output in the form the guest's iproute2, tc and /proc/slabinfo print it."""
    addr = "7: ppp0    inet 192.168.100.2 peer 192.168.100.1/32 scope global ppp0\\       valid_lft forever\n"
    assert LINUX.parse_ptp_addresses(addr) == ("192.168.100.2", "192.168.100.1")
    assert LINUX.parse_ptp_addresses("7: vc    inet 10.0.0.2/24 brd 10.0.0.255 scope global vc\n") is None
    links = ("5: ppp0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1400 qdisc fq_codel state UNKNOWN\\\n"
             "6: ppp1: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1400 qdisc fq_codel state UNKNOWN\\\n")
    assert LINUX.parse_ppp_units(links) == ["ppp0", "ppp1"] and LINUX.parse_ppp_units("") == []
    slab = "ppp_mppe_state        3     16    496   16    2 : tunables    0    0    0\nrefcnt 1\n"
    assert LINUX.parse_slab_usage(slab, "ppp_mppe_state") == {"active_objs": 3, "num_objs": 16,
                                                               "objperslab": 16, "refcnt": 1}
    assert LINUX.parse_slab_usage("refcnt 0\n", "ppp_mppe_state") is None
    filters = (" action order 1:  pedit action pass keys 1\n Action statistics:\n"
               " Sent 2520 bytes 12 pkt (dropped 0, overlimits 0 requeues 0)\n"
               " Sent 420 bytes 2 pkt (dropped 0, overlimits 0 requeues 0)\n")
    assert LINUX.parse_corrupted_count(filters) == 14
    facts = LINUX.parse_facts("loaded=1\ntaint=OE\nmarker=1\n")
    assert facts == {"loaded": "1", "taint": "OE", "marker": "1"}


def test_linux_corruption_filter_is_one_u32_pedit_rule_per_layout():
    cmd = LINUX.corrupt_bytes("vc", 47, [((ByteMatch(20, 0x30), ByteMatch(31, 4, 0x07)), 38)])
    assert cmd.split(" && ")[-1] == ("/sbin/tc filter add dev vc parent 1: protocol ip prio 1 u32 "
                                     "match ip protocol 47 0xff match u8 0x30 0xff at 20 match u8 0x04 0x07 "
                                     "at 31 action pedit munge offset 38 u8 invert")


def test_linux_namespace_and_module_commands_run_in_a_shell(tmp_path):
    """The quoting survives a real shell: in_namespace hands sh -c the command unchanged, write_file
    replaces a file with exactly the text (quotes, dollars, newlines)."""
    cmd = LINUX.in_namespace("server", "echo 'a b' \"$x\"")
    assert cmd.startswith("/bin/ip netns exec server sh -c ")
    assert _sh(f"printf '%s\\n' {cmd.split(' sh -c ', 1)[1]}", tmp_path).stdout == "echo 'a b' \"$x\"\n"
    text = "require-mppe-128\n# it's $HOME `x`\n"
    target = tmp_path / "options"
    assert _sh(LINUX.write_file(str(target), text), tmp_path).returncode == 0
    assert target.read_text() == text and not (tmp_path / "options.new").exists()
    assert LINUX.set_sysctl("net.ipv4.ip_forward", 1) == "echo 1 > /proc/sys/net/ipv4/ip_forward"


def test_a_guest_without_a_shell_offers_no_idioms():
    with pytest.raises(NotImplementedError, match="netbsd guest has no shell idiom for network namespaces"):
        NetBSDGuest().in_namespace("server", "true")


# --- topologies as data ----------------------------------------------------------------------------------

def test_single_guest_is_one_node_with_both_roles_on_a_veth_pair():
    net = single_guest_network(TunnelConfig())
    (node,) = net.nodes
    assert [type(r) for r in node.roles] == [PptpServer, PptpClient]
    assert [r.netns for r in node.roles] == ["server", "client"] and node.modules() == "ours"
    assert net.local_lans(node) == [Lan("tunnel")] and net.shared_lans() == []
    assert plan_node(net, node, LINUX) == [
        "/bin/ip netns add server && /bin/ip netns add client",
        "/bin/ip link add vs netns server type veth peer name vc netns client",
        "/bin/ip -n server addr add 10.0.0.1/24 dev vs && /bin/ip -n server link set vs up",
        "/bin/ip -n client addr add 10.0.0.2/24 dev vc && /bin/ip -n client link set vc up",
        "/bin/ip -n server link set lo up", "/bin/ip -n client link set lo up"]


def test_two_guests_are_two_nodes_on_one_socket_network():
    net = two_guests_network()
    assert [n.name for n in net.nodes] == ["server", "client"] and net.shared_lans() == [Lan("tunnel")]
    # the first node listens, the second connects; MACs by node number (what the fixture always used)
    assert net.socket_nics("server", 20001) == (SocketNic(20001, True, "52:54:00:00:00:01"),)
    assert net.socket_nics("client", 20001) == (SocketNic(20001, False, "52:54:00:00:00:02"),)
    assert plan_node(net, net.nodes[1], LINUX) == [
        "/sbin/modprobe virtio_pci && /sbin/modprobe virtio_net && /bin/ip link set lo up && "
        "/bin/ip addr add 10.0.0.2/24 dev eth0 && /bin/ip link set eth0 up"]


def test_nat_layouts_are_declarations_with_a_router_role():
    masq = masquerade_layout(2)
    (node,) = masq.nodes
    roles = [(type(r).__name__, r.netns) for r in node.roles]
    assert roles == [("Router", "nat-router"), ("PptpServer", "nat-server"), ("PptpClient", "nat-c1"),
                     ("PptpClient", "nat-c2"), ("PptpClient", "nat-direct")]
    clients = masq.roles(PptpClient)
    assert [c.pty_command(TunnelConfig()) for c in clients] == [
        "/usr/pkg/sbin/pptp 10.0.0.1 --nolaunchpppd --localbind 172.16.1.2",
        "/usr/pkg/sbin/pptp 10.0.0.1 --nolaunchpppd --localbind 172.16.2.2",
        "/usr/pkg/sbin/pptp 10.0.0.1 --nolaunchpppd --localbind 10.0.1.2"]
    fwd = forward_layout()
    assert fwd.roles(PptpClient)[0].dial == "198.51.100.1"
    assert fwd.roles(Router)[0].rules.forward_to == "10.0.0.1"
    assert "/bin/ip -n nat-server route add default via 10.0.0.254" in plan_node(fwd, fwd.nodes[0], LINUX)


def _guest(name: str, tmp_path) -> Guest:
    return Guest(name=name, os=LinuxGuest(), vmm=QemuTcg(), kernel=tmp_path / "k", initrd=tmp_path / "i",
                 log_dir=tmp_path)


def test_roles_are_parameters_of_the_declaration(tmp_path):
    """Which modules a node runs is its roles' parameter: changing it changes the declaration (what a
    set-up after a reboot loads), for every role of that node (one kernel)."""
    single = SingleGuest(_guest("g", tmp_path))
    assert single.set_modules(single.server_role, "stock") is single.guest
    assert [r.modules for r in single.network.nodes[0].roles] == ["stock", "stock"]
    two = TwoGuests(_guest("s", tmp_path), _guest("c", tmp_path))
    two.set_modules(two.client_role, "stock")
    assert (two.server_role.modules, two.client_role.modules) == ("ours", "stock")
    with pytest.raises(ValueError, match="unknown MPPE implementation 'mine'"):
        two.set_modules(two.server_role, "mine")
    other = Userland("other", pppd="/opt/sbin/pppd", pptpd="/opt/sbin/pptpd", pptp="/opt/sbin/pptp")
    assert PptpClient(userland=other).pty_command(TunnelConfig()) == "/opt/sbin/pptp 10.0.0.1 --nolaunchpppd"
    assert PptpClient().pty_command(TunnelConfig()) == "/usr/pkg/sbin/pptp 10.0.0.1 --nolaunchpppd"
    nat = NatTopology(_guest("n", tmp_path), masquerade_layout(1))
    end = nat.ends(1)[0]
    assert (end.netns, end.address, end.dial_address()) == ("nat-c1", "172.16.1.2", "10.0.0.1")
    assert end.config.client_log == "/var/log/ppp-c1.log" and nat.direct().netns == "nat-direct"


def test_the_distribution_userland_is_a_role_parameter(tmp_path):
    """Which userland a role runs changes the declaration (what a set-up after a reboot starts); pptpd.conf
    names the server's userland's pppd, from the one template, with pptpd's wtmp plugin off."""
    single = SingleGuest(_guest("g", tmp_path))
    single.use_userland(single.server_role, DEBIAN)  # the guest is not booted: nothing to restart yet
    single.use_userland(single.client_role, DEBIAN)
    assert [r.userland.name for r in single.network.nodes[0].roles] == ["debian", "debian"]
    assert single.pty_command() == "/usr/sbin/pptp 10.0.0.1 --nolaunchpppd"
    stale = PptpServer(netns="server")
    with pytest.raises(HarnessError, match="is not a role of this topology"):
        single.use_userland(stale, OURS)
    for userland, pppd in ((OURS, "/usr/pkg/sbin/pppd"), (DEBIAN, "/usr/sbin/pppd")):
        lines = [ln for ln in render_pptpd_conf(TunnelConfig(), userland).splitlines()
                 if ln and not ln.startswith("#")]
        assert lines[0] == f"ppp {pppd}" and not any(ln.startswith("logwtmp") for ln in lines), lines
        assert "option /etc/ppp/options.pptpd" in lines


def test_the_distribution_userland_declares_what_the_image_needs():
    """Every program DEBIAN runs (and the pptpctrl its pptpd runs) comes from a declared Debian package at
    that path; our userland needs nothing beyond the stack image; adding the contents twice adds nothing."""
    programs = {f"/{p}": d.package for d in DEBIAN.contents.debs for p in d.programs}
    assert {DEBIAN.pppd, DEBIAN.pptpd, DEBIAN.pptp, "/usr/sbin/pptpctrl"} == set(programs), programs
    assert (programs[DEBIAN.pppd], programs[DEBIAN.pptpd], programs[DEBIAN.pptp]) == ("ppp", "pptpd",
                                                                                         "pptp-linux")
    assert OURS.contents.debs == () and OURS.contents.modules == ()
    both = BASE_CONTENTS + DEBIAN.contents
    assert both + DEBIAN.contents == both
    assert len({d.package for d in both.debs}) == len(both.debs)


def test_chap_secrets_go_where_each_pppd_reads_them(tmp_path):
    root = tmp_path / "root"
    builder = _Builder(None, root, [])
    assert builder.chap_secrets_paths() == ["/etc/ppp/chap-secrets"]  # no pppd (a harness-only image)
    for rel, compiled in (("usr/pkg/sbin/pppd", b"/usr/pkg/etc/ppp/chap-secrets"),
                          ("usr/sbin/pppd", b"/etc/ppp/chap-secrets")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\x7fELF..." + compiled + b"\x00more")
    assert builder.chap_secrets_paths() == ["/usr/pkg/etc/ppp/chap-secrets", "/etc/ppp/chap-secrets"]


def test_linux_lists_the_executables_of_processes_in_its_network_stack(tmp_path):
    """What the userland scenarios read to prove which pppd ran: the executable of each process of that
    name, from /proc, in the network namespace the command runs in."""
    probe = tmp_path / "btexe-probe"
    shutil.copy2("/bin/sleep", probe)
    proc = subprocess.Popen([str(probe), "30"])
    try:
        out = _sh(LINUX.executables("btexe-probe"), tmp_path)
        assert (out.returncode, out.stdout.split()) == (0, [str(probe)]), out.stderr
        assert _sh(LINUX.executables("btexe-no-such"), tmp_path).stdout == ""
        elsewhere = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
        if elsewhere.returncode == 0:  # can make a network namespace here: the probe is not in that one
            out = subprocess.run(["unshare", "-n", "/bin/sh", "-c", LINUX.executables("btexe-probe")],
                                 capture_output=True, text=True, timeout=30)
            assert (out.returncode, out.stdout) == (0, ""), out.stderr
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_declaration_that_cannot_be_built_is_refused():
    with pytest.raises(HarnessError, match="LAN lan: 1 NICs on it"):
        Network(lans=(Lan("lan"),), nodes=(Node("a", nics=(Nic("lan", "eth0", "10.0.0.1"),)),))
    with pytest.raises(HarnessError, match="on LAN 'nowhere', which the network does not declare"):
        Network(lans=(), nodes=(Node("a", nics=(Nic("nowhere", "eth0", "10.0.0.1"),)),))
    node = Node("a", roles=(PptpServer(netns="s"), PptpClient(netns="c", modules="stock")))
    with pytest.raises(HarnessError, match="node a: its roles want different PPP modules"):
        node.modules()


def test_a_dirty_guest_refuses_commands_instead_of_rebooting(tmp_path):
    """A guest never boots behind a command's back: unbooted or dirty, run() is a HarnessError, and the
    guest is the same one (same generation) until something reboots it explicitly."""
    g = _guest("g", tmp_path)
    with pytest.raises(HarnessError, match="guest g is not booted"):
        g.run("true")
    g._console = Console(SHELL, tmp_path / "console.log", LinuxGuest.crash_patterns,
                         deadline=time.monotonic() + 120)
    try:
        g._console.set_prompt(timeout=20)
        assert g.run("echo up").output == "up\n"
        with pytest.raises(CommandTimeout):
            g.run("sleep 30", timeout=1)
        assert g.dirty and "timed out after 1s" in g.dirty_reason
        with pytest.raises(HarnessError, match=r"guest g is dirty \(timed out after 1s.*refused: echo again"):
            g.run("echo again")
        assert g.generation == 0
    finally:
        g._console.close()


# --- negative controls: which scenarios each must break -------------------------------------------------

def test_expect_fail_lines_are_comma_separated_and_add_up(tmp_path):
    p = tmp_path / "patch-xz"
    p.write_text("Expect-Fail: test_a[x], test_b\nSome text\nExpect-Fail: test_a[y],\n--- a/f\n+++ b/f\n")
    assert expected_failures(p) == ["test_a[x]", "test_b", "test_a[y]"]
    assert control_keyword(expected_failures(p)) == "test_a or test_b"


def test_a_control_without_expect_fail_is_refused(tmp_path):
    p = tmp_path / "patch-xz"
    p.write_text("A broken variant.\n Expect-Fail: indented, not a header\n--- a/f\n+++ b/f\n")
    with pytest.raises(UsageError, match=rf"{re.escape(str(p))}: a negative control must name"):
        expected_failures(p)


def test_every_control_names_scenarios_that_exist():
    """Each control of patches/ppp-mppe/broken names scenario functions the VM suite has."""
    controls = control_patches(Layout.default(root=REPO))
    assert controls
    defined = set(re.findall(r"^def (test_\w+)", "\n".join(p.read_text() for p in (REPO / "tests" / "vm")
                                                           .glob("test_*.py")), re.M))
    for patch, expected in controls:
        assert expected and set(control_keyword(expected).split(" or ")) <= defined, patch


def test_guest_os_classes_implement_the_interface():
    from buildtool.vm.guest import GuestOS, LinuxGuest
    from buildtool.vm.netbsd import NetBSDGuest

    for cls in (LinuxGuest, NetBSDGuest):
        assert issubclass(cls, GuestOS) and not cls.__abstractmethods__, cls
    with pytest.raises(TypeError, match="abstract"):
        type("Half", (GuestOS,), {"kernel_cmdline": lambda self: ""})()


def test_the_image_takes_our_module_names_from_the_recipe(tmp_path):
    from buildtool.kernels.base import KernelTarget
    from buildtool.recipe import load_all
    from buildtool.vm.suite import GuestBuild

    target = KernelTarget(profile="linux-6.1", release="6.1.0-test", abi="6.1.0", package_version="",
                          vmlinuz=tmp_path / "vmlinuz", modules_root=tmp_path, build_dir=tmp_path,
                          source_dir=tmp_path, vermagic="")
    build = GuestBuild(list(load_all(REPO).values()), [], target)
    assert build.image_inputs().module_names == ("ppp_generic", "ppp_mppe")
