"""The two processes a rump-lane scenario talks to, each one command per line with replies starting '@':

- `RumpPPP`: the rumpppp program (buildtool/rump/tools/rumpppp.c): a rump kernel with NetBSD's if_ppp on
  a pty pair; the test is both pppd (the slave side) and the peer on the line (the master side).
- `CorePeer`: mppe_peer, our MPPE core built for Linux user space: the Linux side of the link.

Every reply is awaited with a timeout; a process that dies or stops answering raises `RumpDied` with its
last output, and `close()` ends it (terminate, then kill) so no child outlives the test.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from pathlib import Path

from . import wire

REPLY_TIMEOUT = 60.0  # seconds; replies take milliseconds, a loaded machine may stall for seconds
SYNC_TIMEOUT = 30.0

SC_CCP_OPEN, SC_CCP_UP = 0x40, 0x80
SC_COMP_RUN, SC_DECOMP_RUN, SC_DC_ERROR, SC_DC_FERROR = 0x1000, 0x2000, 0x4000, 0x8000

# NetBSD errno values (sys/errno.h), as the rump kernel reports them
NB_ERRNO = {0: "0", 16: "EBUSY", 17: "EEXIST", 2: "ENOENT", 22: "EINVAL", 55: "ENOBUFS", 35: "EAGAIN",
            1: "EPERM", 25: "ENOTTY", 78: "ENOSYS"}


class RumpDied(Exception):
    """The program under test exited, crashed (a panic or KASSERT aborts it) or stopped answering."""


class _LineProcess:
    def __init__(self, argv: list[str], log: Path):
        self.argv = argv
        self.log = log
        self.console: list[str] = []  # lines not meant for us: the rump kernel's console
        self._lines: queue.Queue[str | None] = queue.Queue()
        log.parent.mkdir(parents=True, exist_ok=True)
        self._logf = log.open("a")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self._logf.write(("< " if line.startswith("@") else "console: ") + line[:400] + "\n")
            if line.startswith("@"):
                self._lines.put(line[1:])
            else:
                self.console.append(line)
        self._lines.put(None)

    def send(self, command: str) -> None:
        self._logf.write("> " + command[:400] + "\n")
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(f"{command.split()[0]}: the process is gone") from None

    def reply(self, timeout: float = REPLY_TIMEOUT) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise self._died(f"no reply within {timeout:.0f}s") from None
        if line is None:
            raise self._died("the process exited")
        if line.startswith(("error", "fatal")):
            raise RumpDied(f"{Path(self.argv[0]).name}: {line}")
        return line

    def _died(self, what: str) -> RumpDied:
        time.sleep(0.2)
        rc = self.proc.poll()
        tail = "\n".join(self.console[-15:])
        return RumpDied(f"{Path(self.argv[0]).name}: {what} (exit status {rc}); last console lines:\n{tail}\n"
                        f"log: {self.log}")

    def call(self, command: str) -> str:
        self.send(command)
        return self.reply()

    def close(self) -> int | None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=10)
            except (RumpDied, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._reader.join(timeout=5)
        self._logf.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rc(reply: str) -> int:
    kind, _, value = reply.partition(" ")
    if kind != "rc":
        raise RumpDied(f"expected '@rc N', got '@{reply}'")
    return int(value)


def _hex(reply: str, kind: str) -> bytes:
    got, _, value = reply.partition(" ")
    if got != kind:
        raise RumpDied(f"expected '@{kind} ...', got '@{reply[:80]}'")
    return b"" if value == "-" else bytes.fromhex(value)


class RumpPPP(_LineProcess):
    """One ppp unit of NetBSD's if_ppp inside a rump kernel, on a pty pair."""

    def __init__(self, program: Path, log: Path):
        super().__init__([str(program)], log)
        ready = self.reply()
        if not ready.startswith("ready "):
            raise RumpDied(f"{program}: expected '@ready pppN', got '@{ready}'")
        self.ifname = ready.split()[1]
        self._pending: list[bytes] = []
        self._fences = 0

    # pppd's side: ioctls, and packets written/read on the tty
    def set_compress(self, option: bytes, transmit: bool, length: int | None = None) -> int:
        n = len(option) if length is None else length
        return _rc(self.call(f"compress {int(transmit)} {n} {option.hex() or '-'}"))

    def flags(self) -> int:
        return int(_hex_word(self.call("getflags"), "flags"), 16)

    def set_flags(self, flags: int) -> int:
        return _rc(self.call(f"setflags {flags:x}"))

    def ppp_write(self, packet: bytes) -> int:
        return _rc(self.call(f"pppwrite {packet.hex()}"))

    def ppp_read(self) -> list[bytes]:
        """Every packet queued for pppd (including those a sync() read on the way)."""
        packets, self._pending = self._pending, []
        self.send("pppread")
        while (line := self.reply()) != "end":
            packets.append(_hex(line, "pkt"))
        return packets

    def sync(self, timeout: float = SYNC_TIMEOUT) -> None:
        """Wait until if_ppp has processed everything written on the line so far.

        ppp_tty's input queues frames for a soft interrupt, so their effect (SC_DC_ERROR, a packet for
        pppd, a datagram) comes a moment after the write. The fence is an LCP Echo-Request, which if_ppp
        hands to pppd in arrival order: once it is readable, every earlier frame has been through
        ppp_inproc."""
        self._fences += 1
        marker = wire.ppp(0xC021, bytes([9, self._fences & 0xFF, 0, 8]) + self._fences.to_bytes(4, "big"))
        self.deliver(marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.send("pppread")
            seen = False
            while (line := self.reply()) != "end":
                packet = _hex(line, "pkt")
                if packet == marker:
                    seen = True
                else:
                    self._pending.append(packet)
            if seen:
                return
            time.sleep(0.005)
        raise RumpDied(f"if_ppp did not process the line's input within {timeout:.0f}s")

    # the line
    def wire_write(self, data: bytes) -> int:
        return _rc(self.call(f"wire {data.hex()}"))

    def wire_read(self, quiet_ms: int = 60) -> list[bytes]:
        """The packets NetBSD sent on the line since the last read (unframed, FCS checked)."""
        packets, bad = wire.unframe(_hex(self.call(f"wireread {quiet_ms}"), "data"))
        if bad:
            raise RumpDied(f"{bad} frame(s) from NetBSD's ppp_tty failed the FCS check")
        return packets

    def deliver(self, packet: bytes) -> int:
        """Send one PPP packet to NetBSD as the peer on the line would."""
        return self.wire_write(wire.frame(packet))

    # the network and the kernel
    def ifup(self, local: str, peer: str, mtu: int) -> int:
        return _rc(self.call(f"ifup {local} {peer} {mtu}"))

    def udp_bind(self, port: int) -> int:
        return _rc(self.call(f"udpbind {port}"))

    def udp_send(self, dst: str, port: int, length: int, seed: int) -> int:
        return _rc(self.call(f"udpsend {dst} {port} {length} {seed}"))

    def udp_recv(self, timeout_ms: int = 2000) -> bytes | None:
        reply = self.call(f"udprecv {timeout_ms}")
        return None if reply == "dgram none" else _hex(reply, "dgram")

    def mod_unload(self, name: str) -> int:
        return _rc(self.call(f"modunload {name}"))

    def reregister(self, name: str) -> int:
        return _rc(self.call(f"reregister {name}"))

    def mbufs(self) -> int:
        return int(_hex_word(self.call("mbufs"), "mbufs"))

    def diagnostics(self) -> list[str]:
        """Console lines that mean the kernel complained (a panic or KASSERT kills the process instead)."""
        words = ("panic", "diagnostic", "assertion", "kassert", "lock error", "mbuf", "leak")
        return [line for line in self.console if any(w in line.lower() for w in words)]


def _hex_word(reply: str, kind: str) -> str:
    got, _, value = reply.partition(" ")
    if got != kind:
        raise RumpDied(f"expected '@{kind} N', got '@{reply}'")
    return value


class CorePeer(_LineProcess):
    """Our MPPE core as built for Linux user space: one compressor, one decompressor."""

    def init(self, direction: str, option: bytes) -> int:
        return _rc(self.call(f"init {direction} {option.hex()}"))

    def compress(self, data: bytes) -> bytes:
        reply = self.call(f"comp {data.hex()}")
        if reply.startswith("rc "):
            raise RumpDied(f"mppe_peer: compress failed with {reply}")
        return _hex(reply, "out")

    def decompress(self, data: bytes) -> tuple[int, bytes]:
        reply = self.call(f"decomp {data.hex()}")
        return (_rc(reply), b"") if reply.startswith("rc ") else (0, _hex(reply, "out"))

    def comp_reset(self) -> None:
        _rc(self.call("compreset"))

    def decomp_reset(self) -> None:
        _rc(self.call("decompreset"))
