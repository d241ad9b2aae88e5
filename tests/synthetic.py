"""A small synthetic repository for the driver's own tests: two packages, hello and greet, each with a
distfile in a private cache (BUILDTOOL_CACHE), one patch and a PLIST. Real tar, real patch, real cc."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from buildtool.cli import main
from buildtool.distinfo import distfile_sum, patch_sha1, write_distinfo

HELLO_C = '#include <stdio.h>\nint main(void)\n{\n\tputs("{word}");\n\treturn 0;\n}\n'
MAKEFILE = ("all: {name}\n{name}: {name}.o\n\t$(CC) -o {name} {name}.o\n"
            "{name}.o: {name}.c\n\t$(CC) $(CFLAGS) -c {name}.c\n"
            "install:\n\tmkdir -p $(DESTDIR)$(PREFIX)/bin\n\tcp {name} $(DESTDIR)$(PREFIX)/bin/{name}\n")

RECIPE = """
[package]
name = "{name}"
version = "1.0"
comment = "{name} test package"
description = "A tiny package for the driver's own tests."
homepage = "https://example.invalid/"
license = "mit"

[[distfile]]
name = "{name}-1.0.tar.gz"
sites = ["http://127.0.0.1:9/"]

[build]
wrksrc = "{name}-1.0"
build = [
  ["sh", "-c", "if [ -n \\"$BT_SLOW\\" ]; then touch \\"$BT_SLOW\\"; sleep 60; fi"],
  ["make", "CC=cc", "CFLAGS=-g {{{{ prefix_map }}}}"],
]
install = [["make", "install", "DESTDIR={{{{ destdir }}}}", "PREFIX={{{{ prefix }}}}"]]
smoke = [["{{{{ stage_prefix }}}}/bin/{name}"]]
"""

PATCH = """$NetBSD$

Make the greeting say where it was patched (test fixture).

--- {name}.c.orig
+++ {name}.c
@@ -1,6 +1,6 @@
 #include <stdio.h>
 int main(void)
 {{
-\tputs("{word}");
+\tputs("{word}, patched");
 \treturn 0;
 }}
"""


def make_tarball(path: Path, name: str, word: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for member, text in ((f"{name}-1.0/{name}.c", HELLO_C.replace("{word}", word)),
                             (f"{name}-1.0/Makefile", MAKEFILE.format(name=name))):
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), 1_000_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


def make_repo(tmp_path: Path, monkeypatch) -> Path:
    """Two packages (hello, greet) with their distfiles in a private cache; cwd is the repository."""
    root = tmp_path / "repo"
    cache = tmp_path / "cache"
    distdir = cache / "distfiles"
    distdir.mkdir(parents=True)
    for name, word in (("hello", "hello"), ("greet", "greetings")):
        (root / name).mkdir(parents=True)
        (root / name / "recipe.toml").write_text(RECIPE.format(name=name))
        (root / name / "PLIST").write_text(f"@comment $NetBSD$\nbin/{name}\n")
        pdir = root / "patches" / name
        pdir.mkdir(parents=True)
        (pdir / "patch-aa").write_text(PATCH.format(name=name, word=word))
        make_tarball(distdir / f"{name}-1.0.tar.gz", name, word)
        write_distinfo(root / name / "distinfo", [distfile_sum(distdir / f"{name}-1.0.tar.gz")],
                       {"patch-aa": patch_sha1(pdir / "patch-aa")})
    monkeypatch.chdir(root)
    monkeypatch.setenv("BUILDTOOL_CACHE", str(cache))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    monkeypatch.delenv("BT_SLOW", raising=False)
    return root


def bt(*args: str) -> int:
    return main([*args, "--kernel", "none", "-j", "2", "--no-progress"])
