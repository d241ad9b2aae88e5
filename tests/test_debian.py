"""Debian's archive as a mirror: sources generation (fast) and the private apt configuration (integration)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from httpserver import refused_url

from buildtool import debian
from buildtool.debian import AptArchive, HostApt, SourceEntry, host_entries, parse_deb822, parse_one_line
from buildtool.distinfo import read_distinfo
from buildtool.errors import FetchError
from buildtool.fetch import FetchOptions, fetch_distfile
from buildtool.layout import default_cache, find_root
from buildtool.recipe import DebianMirror, Distfile, load_recipe

DEB822 = """\
Types: deb
# a comment inside the stanza, as Debian's images write them
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib
Architectures: amd64

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
Enabled: no
"""

EMBEDDED_KEY = """\
Types: deb
URIs: https://vendor.example/apt
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBFake
 -----END PGP PUBLIC KEY BLOCK-----
"""

ONE_LINE = """\
# the classic format
deb http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main contrib
deb [arch=amd64,i386 signed-by=/usr/share/keyrings/vendor.gpg] https://vendor.example/apt stable main  # note
deb http://flat.example/repo ./
"""


def test_deb822_stanzas_become_entries_and_disabled_ones_are_dropped():
    entries = parse_deb822(DEB822)
    assert [e.uris for e in entries] == [["http://mirror.example/debian"], ["http://mirror.example/debian-security"]]
    assert entries[0].suites == ["bookworm", "bookworm-updates"]
    assert entries[0].options == [("Signed-By", "/usr/share/keyrings/debian-archive-keyring.gpg")]
    assert entries[1].components == ["main", "contrib"]
    assert entries[1].options == [("Architectures", "amd64")]


def test_deb822_multiline_signed_by_is_kept_as_a_folded_field():
    entry = parse_deb822(EMBEDDED_KEY)[0]
    key, value = entry.options[0]
    assert key == "Signed-By"
    assert value.splitlines() == ["", " -----BEGIN PGP PUBLIC KEY BLOCK-----", " .", " mQINBFake",
                                  " -----END PGP PUBLIC KEY BLOCK-----"]


def test_deb822_stanza_without_uris_is_an_error_naming_the_file():
    with pytest.raises(FetchError, match="x.sources: a stanza has no URIs"):
        parse_deb822("Types: deb\nSuites: bookworm\n", "x.sources")


def test_one_line_entries_with_options():
    entries = parse_one_line(ONE_LINE)
    assert entries[0] == SourceEntry(["http://mirror.example/debian"], ["bookworm"], ["main", "contrib"], [])
    assert entries[2].options == [("Architectures", "amd64 i386"),
                                  ("Signed-By", "/usr/share/keyrings/vendor.gpg")]
    assert entries[2].components == ["main"]
    assert entries[3].suites == ["./"] and entries[3].components == []


def test_one_line_errors_name_file_and_line():
    with pytest.raises(FetchError, match=r"list:2: not a sources.list line"):
        parse_one_line("deb http://a.example/ x main\nbogus line\n", "list")
    with pytest.raises(FetchError, match=r"list:1: unknown option 'frobnicate'"):
        parse_one_line("deb [frobnicate=1] http://a.example/ x main\n", "list")


def host_tree(tmp_path: Path) -> HostApt:
    parts = tmp_path / "sources.list.d"
    parts.mkdir(parents=True)
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (parts / "debian.sources").write_text(DEB822)
    (parts / "vendor.list.disabled-by-farm").write_text("deb http://disabled.example/ x main\n")
    (parts / "other.sources.disabled").write_text("Types: deb\nURIs: http://disabled.example/\nSuites: x\n")
    (parts / "old.list.save").write_text("deb http://disabled.example/ x main\n")
    (parts / "dup.list").write_text("deb http://mirror.example/debian bookworm main contrib\n")
    return HostApt(sourcelist=tmp_path / "sources.list", sourceparts=parts,
                   trusted=tmp_path / "trusted.gpg", trustedparts=tmp_path / "trusted.gpg.d",
                   status=tmp_path / "status", carried=[("Acquire::http::Proxy", "http://proxy.example:3128")])


def test_host_entries_read_only_what_apt_reads_and_drop_duplicates(tmp_path):
    entries = host_entries(host_tree(tmp_path))
    uris = [e.uris[0] for e in entries]
    assert "http://disabled.example/" not in uris
    # bookworm (one-line, listed twice: deb-src twin and dup.list) and bookworm+updates (deb822)
    assert uris.count("http://mirror.example/debian") == 2
    assert len(entries) == 5


def test_rendered_sources_carry_deb_src_for_every_entry(tmp_path):
    entries = host_entries(host_tree(tmp_path))
    text = debian.render_sources(entries)
    stanzas = [s for s in text.split("\n\n") if "URIs:" in s]
    assert len(stanzas) == 5
    assert all("Types: deb deb-src\n" in s for s in stanzas)
    assert "Suites: ./\n" in text and "Architectures: amd64 i386\n" in text
    assert parse_deb822(text) == entries  # what apt will read is what the host listed


def test_embedded_key_survives_rendering():
    entries = parse_deb822(EMBEDDED_KEY)
    assert parse_deb822(debian.render_sources(entries)) == entries


def test_configure_writes_a_private_config_and_never_the_hosts(tmp_path):
    host = host_tree(tmp_path / "host")
    before = {p: p.read_bytes() for p in (tmp_path / "host").rglob("*") if p.is_file()}
    archive = AptArchive(tmp_path / "apt", host=host)
    assert archive.configure() is True
    assert archive.configure() is False  # unchanged sources: no update needed on their account
    conf = archive.config_file.read_text()
    assert f'Dir::Etc::sourceparts "{tmp_path}/apt/sources.list.d";' in conf
    assert 'Dir::Etc::sourcelist "/dev/null";' in conf
    assert f'Dir::State::status "{host.status}";' in conf
    assert 'Acquire::http::Proxy "http://proxy.example:3128";' in conf
    assert "deb-src" in archive.sources_file.read_text()
    assert (tmp_path / "apt" / "apt.conf.d").is_dir() and not any((tmp_path / "apt" / "apt.conf.d").iterdir())
    assert before == {p: p.read_bytes() for p in (tmp_path / "host").rglob("*") if p.is_file()}


def test_configure_with_no_host_sources_explains(tmp_path):
    empty = HostApt(sourcelist=tmp_path / "none", sourceparts=tmp_path / "none.d")
    with pytest.raises(FetchError, match="lists no repositories"):
        AptArchive(tmp_path / "apt", host=empty).configure()


def test_carried_settings_keep_only_proxies():
    dump = ("Acquire::http::Proxy=http://p.example:3128\nAcquire::Retries=3\n"
            "Acquire::https::Proxy::vendor.example=DIRECT\nAcquire::ftp::Proxy=\n")
    assert debian.carried_settings(dump) == [("Acquire::http::Proxy", "http://p.example:3128"),
                                            ("Acquire::https::Proxy::vendor.example", "DIRECT")]


def test_parse_depends_takes_first_alternative_and_strips_versions():
    assert debian.parse_depends("kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | "
                                "linux-initramfs-tool, libc6:any") == [
        "kmod", "linux-base", "initramfs-tools", "libc6"]
    assert debian.parse_depends("") == []


# --- integration: the real archive through the private configuration ------------------------------

PPTP_SHA256 = "82492db8e487ce73b182ee7f444251d20c44f5c26d6e96c553ec7093aefb5af4"


@pytest.fixture(scope="session")
def archive() -> AptArchive:
    a = AptArchive(default_cache() / "apt")
    a.ensure_updated()
    return a


@pytest.fixture
def pptp_distfile() -> Distfile:
    return load_recipe(find_root(Path(__file__).parent) / "deps" / "pptp").distfiles[0]


@pytest.mark.integration
def test_source_versions_of_ppp(archive):
    versions = archive.source_versions("ppp")
    assert versions and all(v[0].isdigit() for v in versions)
    assert "2.4.9-1+1.1" in versions


@pytest.mark.integration
def test_source_files_list_the_orig_tarball(archive):
    files = {f.name: f for f in archive.source_files("pptp-linux", "1.10.0-1")}
    orig = files["pptp-linux_1.10.0.orig.tar.gz"]
    assert orig.size == 87007 and orig.sha256 == PPTP_SHA256
    assert orig.url.endswith("/pptp-linux_1.10.0.orig.tar.gz")


@pytest.mark.integration
def test_pptp_comes_from_debian_when_upstream_is_unreachable(archive, pptp_distfile, tmp_path, capsys):
    expected = read_distinfo(find_root(Path(__file__).parent) / "deps" / "pptp" / "distinfo").distfile(
        "pptp-1.10.0.tar.gz")
    refused = refused_url()
    distfile = Distfile(pptp_distfile.name, [refused], pptp_distfile.debian)
    opts = FetchOptions(progress=False, apt_dir=archive.root)
    path = fetch_distfile(distfile, expected, tmp_path, opts, tmp_path / "fetch.log")
    assert path == tmp_path / "pptp-1.10.0.tar.gz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PPTP_SHA256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fetch.log", "pptp-1.10.0.tar.gz"]
    err = capsys.readouterr().err
    assert f"{refused}pptp-1.10.0.tar.gz: connection refused" in err
    assert "from Debian's archive (pptp-linux 1.10.0-1: pptp-linux_1.10.0.orig.tar.gz)" in err
    assert "fetched pptp-1.10.0.tar.gz: 85.0 KiB" in err


@pytest.mark.integration
def test_debian_file_failing_our_distinfo_is_not_kept(archive, pptp_distfile, tmp_path):
    expected = read_distinfo(find_root(Path(__file__).parent) / "deps" / "pptp" / "distinfo").distfile(
        "pptp-1.10.0.tar.gz")
    expected.hashes = {**expected.hashes, "BLAKE2s": "0" * 64}
    opts = FetchOptions(progress=False, apt_dir=archive.root)
    with pytest.raises(FetchError) as e:
        fetch_distfile(Distfile(pptp_distfile.name, [], pptp_distfile.debian), expected, tmp_path / "d", opts,
                       tmp_path / "fetch.log")
    assert "BLAKE2s mismatch" in str(e.value) and "0" * 64 in str(e.value)
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.integration
def test_missing_pinned_version_lists_available_ones(archive, tmp_path):
    with pytest.raises(FetchError) as e:
        archive.source_files("pptp-linux", "0.0-0")
    assert "pptp-linux version 0.0-0 is not in the archive" in str(e.value)
    assert "1.10.0-1" in str(e.value)

    opts = FetchOptions(progress=False, apt_dir=archive.root)
    expected = read_distinfo(find_root(Path(__file__).parent) / "deps" / "pptp" / "distinfo").distfile(
        "pptp-1.10.0.tar.gz")
    missing = Distfile("pptp-1.10.0.tar.gz", [], DebianMirror("pptp-linux", "0.0-0", "x.orig.tar.gz"))
    with pytest.raises(FetchError) as e:
        fetch_distfile(missing, expected, tmp_path, opts, tmp_path / "fetch.log")
    assert "available: 1.10.0-1" in str(e.value)


@pytest.mark.integration
def test_binary_package_candidate_depends_and_download(archive, tmp_path):
    version = archive.candidate_version("hello")
    assert version
    assert "libc6" in archive.depends("hello", version)
    assert archive.candidate_version("no-such-package-buildtool") is None
    deb = archive.download_binary("hello", version, tmp_path)
    assert deb.parent == tmp_path and deb.name.startswith("hello_") and deb.suffix == ".deb"
    assert deb.read_bytes()[:8] == b"!<arch>\n"
    assert [p.name for p in tmp_path.iterdir()] == [deb.name]
    mtime = deb.stat().st_mtime_ns
    assert archive.download_binary("hello", version, tmp_path) == deb  # reused when intact
    assert deb.stat().st_mtime_ns == mtime


@pytest.mark.integration
def test_queries_are_memoised_until_the_lists_change(archive):
    """A no-op build asks apt nothing twice; an `apt-get update` (new lists) invalidates the answers."""
    def policy_runs() -> int:
        return archive.log.read_text().count("apt-cache policy hello\n") if archive.log.exists() else 0

    first = archive.candidate_version("hello")
    runs = policy_runs()
    assert archive.candidate_version("hello") == first
    assert policy_runs() == runs  # answered from the memo
    archive._updated_stamp.touch()  # what ensure_updated does after a real update
    assert archive.candidate_version("hello") == first
    assert policy_runs() == runs + 1
