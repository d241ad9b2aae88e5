"""The portable MPPE core (kmod/mppe/core) built for userspace: the tests, the fuzzer and the benchmarks.

A build is a compiler command over the core's sources plus one userspace `mppe_os.h`; its result lives in
`~/.cache/buildtool/mppe-core/<key>/`, keyed by the sources' contents, the command line and the compiler's
version, and is put in place by a directory rename (a half-built result is never seen). `Core` wraps the
shared library with ctypes.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from buildtool import hosttools
from buildtool.errors import HostToolError, PhaseError
from buildtool.fsutil import text_digest
from buildtool.layout import default_cache

CORE = Path("kmod/mppe/core")
USERSPACE = Path("kmod/mppe/userspace")
FUZZ = Path("kmod/mppe/fuzz")
STRICT = ("-pedantic", "-Werror", "-Wall", "-Wextra")
COMPILE_TIMEOUT = 300

MPPE_OK, MPPE_E_RESET, MPPE_E_DROP, MPPE_E_BADPKT, MPPE_E_FATAL, MPPE_E_NOSPACE, MPPE_E_BADOPT, \
    MPPE_E_INVAL = 0, -1, -2, -3, -4, -5, -6, -7
RC_NAMES = {MPPE_OK: "MPPE_OK", MPPE_E_RESET: "MPPE_E_RESET", MPPE_E_DROP: "MPPE_E_DROP",
            MPPE_E_BADPKT: "MPPE_E_BADPKT", MPPE_E_FATAL: "MPPE_E_FATAL", MPPE_E_NOSPACE: "MPPE_E_NOSPACE",
            MPPE_E_BADOPT: "MPPE_E_BADOPT", MPPE_E_INVAL: "MPPE_E_INVAL"}
DIR_COMP, DIR_DECOMP = 1, 2
STATS_FIELDS = ("unc_bytes", "unc_packets", "comp_bytes", "comp_packets", "inc_bytes", "inc_packets",
                "errors", "rekeys", "resets")


@dataclass(frozen=True)
class NativeBuild:
    """One compiler invocation over the core: what to build and how."""

    name: str                      # output file name, e.g. libmppe.so
    cc: str = "gcc"
    std: str = "c99"
    flags: tuple[str, ...] = ("-O2",)
    defines: tuple[str, ...] = ()  # "NAME" or "NAME=VALUE", passed as -D
    extra_sources: tuple[Path, ...] = ()  # relative to the repository, e.g. the fuzz harness
    shared: bool = True
    strict: bool = True
    link: tuple[str, ...] = field(default=())

    def sources(self, root: Path) -> list[Path]:
        core = sorted((root / CORE).glob("*.c"))
        user = [root / USERSPACE / "mppe_os.c", root / USERSPACE / "mppe_user.c"]
        return core + user + [root / p for p in self.extra_sources]

    def command(self, root: Path, output: Path) -> list[str]:
        argv = [self.cc, f"-std={self.std}", *(STRICT if self.strict else ()), *self.flags]
        argv += [f"-D{d}" for d in self.defines]
        argv += [f"-I{root / CORE}", f"-I{root / USERSPACE}"]
        if self.shared:
            argv += ["-fPIC", "-shared"]
        argv += [str(p) for p in self.sources(root)]
        argv += ["-o", str(output), *self.link]
        return argv


def _compiler_version(cc: str) -> str:
    if shutil.which(cc) is None:
        raise HostToolError(f"compiler {cc!r} not found; install it with: sudo apt-get install "
                            f"{'clang libclang-rt-14-dev' if 'clang' in cc else 'gcc'} (or run make setup)")
    return hosttools.version_line(cc, timeout=30) or cc


def build_key(root: Path, spec: NativeBuild) -> str:
    """Hash of everything that decides the output: sources and headers, command line, compiler version."""
    parts = [_compiler_version(spec.cc), repr(spec.command(Path("/ROOT"), Path("/OUT")))]
    headers = sorted((root / CORE).glob("*.h")) + sorted((root / USERSPACE).glob("*.h"))
    for p in [*headers, *spec.sources(root)]:
        parts.append(f"{p.relative_to(root)}\0{text_digest(p.read_bytes())}")
    return text_digest("\n".join(parts))[:24]


def build(spec: NativeBuild, root: Path, cache: Path | None = None) -> Path:
    """Compile `spec` (or reuse the cached result) and return the path of the output file."""
    cache = cache or default_cache()
    final = cache / "mppe-core" / build_key(root, spec)
    out = final / spec.name
    if out.exists():
        return out
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        argv = spec.command(root, scratch / spec.name)
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as e:
            raise PhaseError(f"compiling the MPPE core took over {COMPILE_TIMEOUT} s", command=argv) from e
        (scratch / "build.log").write_text(" ".join(argv) + "\n" + res.stdout + res.stderr)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-30:])
            raise PhaseError(f"compiling the MPPE core ({spec.name}, -std={spec.std}) failed with exit "
                             f"status {res.returncode}; fix the C source and rerun the same test",
                             command=argv, tail=tail)
        try:
            os.rename(scratch, final)
        except OSError:
            if not out.exists():  # not a concurrent builder that won the race
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return out


def compile_check(spec: NativeBuild, root: Path, workdir: Path) -> subprocess.CompletedProcess:
    """Run the compiler into `workdir` without caching (for tests that want to see the diagnostics)."""
    argv = spec.command(root, workdir / spec.name)
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False)


class CoreError(Exception):
    """A core entry point returned an unexpected code."""


class Core:
    """ctypes binding of one built libmppe.so."""

    def __init__(self, path: Path):
        self.lib = ctypes.CDLL(str(path))
        lib = self.lib
        sz = ctypes.c_size_t
        for name in ("state", "opts", "stats", "rc4", "sha1"):
            fn = getattr(lib, f"mppe_user_sizeof_{name}")
            fn.restype = sz
            setattr(self, f"sizeof_{name}", fn())
        buf = ctypes.c_char_p
        lib.mppe_parse_opts.argtypes = [buf, sz, ctypes.c_void_p]
        lib.mppe_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        for fn in (lib.mppe_compress, lib.mppe_decompress):
            fn.argtypes = [ctypes.c_void_p, buf, sz, ctypes.c_void_p, sz, ctypes.POINTER(sz)]
        lib.mppe_comp_reset.argtypes = [ctypes.c_void_p]
        lib.mppe_decomp_reset.argtypes = [ctypes.c_void_p]
        lib.mppe_incomp.argtypes = [ctypes.c_void_p, buf, sz]
        lib.mppe_stats.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.mppe_wipe.argtypes = [ctypes.c_void_p]
        lib.mppe_rc4_setkey.argtypes = [ctypes.c_void_p, buf, sz]
        lib.mppe_rc4_crypt.argtypes = [ctypes.c_void_p, buf, ctypes.c_void_p, sz]
        lib.mppe_sha1_init.argtypes = [ctypes.c_void_p]
        lib.mppe_sha1_update.argtypes = [ctypes.c_void_p, buf, sz]
        lib.mppe_sha1_final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.mppe_get_new_key_from_sha.argtypes = [buf, buf, sz, ctypes.c_void_p]
        lib.mppe_start_to_session_key.argtypes = [buf, ctypes.c_int, ctypes.c_void_p]
        lib.mppe_change_key.argtypes = [buf, ctypes.c_int, ctypes.c_void_p]

    # primitives
    def rc4(self, key: bytes, data: bytes) -> bytes:
        st = ctypes.create_string_buffer(self.sizeof_rc4)
        self.lib.mppe_rc4_setkey(st, key, len(key))
        out = ctypes.create_string_buffer(max(len(data), 1))
        self.lib.mppe_rc4_crypt(st, data, out, len(data))
        return out.raw[:len(data)]

    def sha1(self, chunks: list[bytes]) -> bytes:
        ctx = ctypes.create_string_buffer(self.sizeof_sha1)
        self.lib.mppe_sha1_init(ctx)
        for c in chunks:
            self.lib.mppe_sha1_update(ctx, c, len(c))
        out = ctypes.create_string_buffer(20)
        self.lib.mppe_sha1_final(ctx, out)
        return out.raw

    def get_new_key_from_sha(self, start: bytes, session: bytes, keylen: int) -> bytes:
        out = ctypes.create_string_buffer(16)
        self.lib.mppe_get_new_key_from_sha(start, session, keylen, out)
        return out.raw[:keylen]

    def start_to_session_key(self, start: bytes, keybits: int) -> bytes:
        out = ctypes.create_string_buffer(16)
        rc = self.lib.mppe_start_to_session_key(start, keybits, out)
        if rc != MPPE_OK:
            raise CoreError(f"mppe_start_to_session_key({keybits}) returned {RC_NAMES.get(rc, rc)}")
        return out.raw[:16 if keybits == 128 else 8]

    def change_key(self, start: bytes, keybits: int, session: bytes) -> bytes:
        buf = ctypes.create_string_buffer(session.ljust(16, b"\0"), 16)
        rc = self.lib.mppe_change_key(start, keybits, buf)
        if rc != MPPE_OK:
            raise CoreError(f"mppe_change_key({keybits}) returned {RC_NAMES.get(rc, rc)}")
        return buf.raw[:len(session)]

    def parse_opts(self, option: bytes) -> tuple[int, ctypes.Array | None]:
        opts = ctypes.create_string_buffer(self.sizeof_opts)
        rc = self.lib.mppe_parse_opts(option, len(option), opts)
        return rc, (opts if rc == MPPE_OK else None)

    def endpoint(self, option: bytes, direction: int, unit: int = 0, debug: int = 0) -> Endpoint:
        rc, opts = self.parse_opts(option)
        if rc != MPPE_OK:
            raise CoreError(f"mppe_parse_opts returned {RC_NAMES.get(rc, rc)}")
        st = ctypes.create_string_buffer(self.sizeof_state)
        rc = self.lib.mppe_init(st, opts, direction, unit, debug)
        if rc != MPPE_OK:
            raise CoreError(f"mppe_init returned {RC_NAMES.get(rc, rc)}")
        return Endpoint(self, st)


def mppe_option(start_key: bytes, keybits: int = 128, stateless: bool = True) -> bytes:
    """The 22 bytes pppd hands the kernel: CCP option 18 (6 bytes) + the 16-byte start key."""
    bit = {40: 0x20, 56: 0x80, 128: 0x40}[keybits]
    return bytes([18, 6, 0x01 if stateless else 0x00, 0, 0, bit]) + start_key


class Endpoint:
    """One initialised struct mppe_state (one direction of a link)."""

    def __init__(self, core: Core, state: ctypes.Array):
        self.core = core
        self.state = state
        self._olen = ctypes.c_size_t()

    def compress(self, packet: bytes, osize: int | None = None) -> tuple[int, bytes]:
        osize = len(packet) + 2 if osize is None else osize
        out = ctypes.create_string_buffer(max(osize, 1))
        rc = self.core.lib.mppe_compress(self.state, packet, len(packet), out, osize,
                                         ctypes.byref(self._olen))
        return rc, (out.raw[:self._olen.value] if rc == MPPE_OK else b"")

    def decompress(self, frame: bytes, osize: int | None = None) -> tuple[int, bytes]:
        osize = max(len(frame) - 1, 0) if osize is None else osize
        out = ctypes.create_string_buffer(max(osize, 1))
        rc = self.core.lib.mppe_decompress(self.state, frame, len(frame), out, osize,
                                           ctypes.byref(self._olen))
        return rc, (out.raw[:self._olen.value] if rc == MPPE_OK else b"")

    def comp_reset(self) -> None:
        self.core.lib.mppe_comp_reset(self.state)

    def decomp_reset(self) -> None:
        self.core.lib.mppe_decomp_reset(self.state)

    def incomp(self, packet: bytes) -> None:
        self.core.lib.mppe_incomp(self.state, packet, len(packet))

    def stats(self) -> dict[str, int]:
        raw = ctypes.create_string_buffer(self.core.sizeof_stats)
        self.core.lib.mppe_stats(self.state, raw)
        words = (ctypes.c_uint32 * len(STATS_FIELDS)).from_buffer_copy(raw.raw[:4 * len(STATS_FIELDS)])
        return dict(zip(STATS_FIELDS, words, strict=True))

    def wipe(self) -> None:
        self.core.lib.mppe_wipe(self.state)


# --- fuzzing (libFuzzer + ASan + UBSan, Debian's clang) -----------------------------------------------

SANITIZE = ("-g", "-O1", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all")


def fuzzer_build(defines: tuple[str, ...] = ()) -> NativeBuild:
    """The libFuzzer binary over the decompress path; `defines` e.g. a negative control."""
    return NativeBuild(name="mppe-fuzz", cc="clang", std="c99", shared=False, defines=defines,
                       flags=(*SANITIZE, "-fsanitize=fuzzer,address,undefined"),
                       extra_sources=(FUZZ / "fuzz_decompress.c",))


def sweep_build(defines: tuple[str, ...] = ()) -> NativeBuild:
    """The same harness driven over every length 0..65535 once, without libFuzzer."""
    return NativeBuild(name="mppe-sweep", cc="clang", std="c99", shared=False, defines=defines,
                       flags=(*SANITIZE, "-fsanitize=address,undefined"),
                       extra_sources=(FUZZ / "fuzz_decompress.c", FUZZ / "sweep_main.c"))


@dataclass
class FuzzRun:
    """What one bounded libFuzzer run reported."""

    returncode: int
    execs: int
    execs_per_s: int
    coverage: int
    features: int
    corpus_units: int
    seconds: float
    output: str

    @property
    def found_bug(self) -> bool:
        return self.returncode != 0

    def report(self) -> str:
        """The sanitizer's or libFuzzer's own report, for an assertion message."""
        lines = self.output.splitlines()
        start = next((i for i, ln in enumerate(lines) if "ERROR:" in ln or "runtime error" in ln), 0)
        return "\n".join(lines[start:start + 40])


def _last_int(text: str, key: str) -> int:
    found = re.findall(rf"{re.escape(key)}\s*(\d+)", text)
    return int(found[-1]) if found else 0


def run_fuzzer(binary: Path, corpus: Path, artifacts: Path, *, runs: int, max_total_time: int,
               max_len: int = 65535, timeout: int | None = None, extra: tuple[str, ...] = ()) -> FuzzRun:
    """Run libFuzzer once, bounded by runs and time; crash files go to `artifacts`, never the tree."""
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), f"-runs={runs}", f"-max_total_time={max_total_time}", f"-max_len={max_len}",
            "-print_final_stats=1", "-detect_leaks=1", f"-artifact_prefix={artifacts}/", *extra, str(corpus)]
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    t0 = time.monotonic()
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout or max_total_time + 120,
                             check=False, env=env, cwd=artifacts)
    except subprocess.TimeoutExpired as e:
        raise PhaseError(f"libFuzzer overran its {max_total_time} s budget by more than 120 s",
                         command=argv) from e
    out = res.stdout + res.stderr
    return FuzzRun(returncode=res.returncode, execs=_last_int(out, "stat::number_of_executed_units:"),
                   execs_per_s=_last_int(out, "stat::average_exec_per_sec:"), coverage=_last_int(out, "cov:"),
                   features=_last_int(out, "ft:"), corpus_units=_last_int(out, "corp:"),
                   seconds=time.monotonic() - t0, output=out)


def run_sweep(binary: Path, last: int = 65535, timeout: int = 900) -> subprocess.CompletedProcess:
    """Every length 0..last once through the sanitized harness."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    try:
        return subprocess.run([str(binary), str(last)], capture_output=True, text=True, timeout=timeout,
                              check=False, env=env)
    except subprocess.TimeoutExpired as e:
        raise PhaseError(f"the length sweep took over {timeout} s", command=[str(binary), str(last)]) from e
