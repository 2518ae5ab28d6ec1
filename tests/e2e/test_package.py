"""The Debian package (issue #16): `make deb` builds hrsync_VERSION_ARCH.deb with
dpkg-buildpackage from debian/, lintian reports no error, and the package holds what an
administrator expects: the binary, the units (installed, not enabled, not started), the
sysusers file applied in postinst, the man pages, bash completion, the example configuration
and mappings as documentation, nothing in /etc (no conffiles: /etc/hrsync is the
administrator's), and Depends computed from the binary's libraries (${shlibs:Depends}).

One build for the module (about 45 s on two cores); no database, no sandbox."""
import os
import re
import subprocess

import pytest

from harness import ROOT

# One worker builds the package and runs every test of this module (make e2e: --dist loadgroup):
# two workers building into build/deb at once would remove each other's files.
pytestmark = pytest.mark.xdist_group("deb")

UNITS = ["hrsync.service", "hrsync.timer", "hrsyncd.service", "hrsync@.service", "hrsync@.timer",
         "hrsync-reconcile.service", "hrsync-reconcile.timer"]


def makefile_version():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return re.search(r"^VERSION\s*=\s*(\S+)", f.read(), re.M).group(1)


def dpkg_deb(*args):
    r = subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


@pytest.fixture(scope="module")
def deb():
    r = subprocess.run(["make", "-s", "deb"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    path = os.path.join(ROOT, "build", "deb", f"hrsync_{makefile_version()}_{arch}.deb")
    assert os.path.isfile(path), (path, r.stdout[-2000:])
    return path


@pytest.fixture(scope="module")
def contents(deb):
    """{path without the leading '.': (mode string, size)}"""
    out = {}
    for line in dpkg_deb("--contents", deb).splitlines():
        f = line.split()
        out[f[5].lstrip(".").rstrip("/") or "/"] = (f[0], int(f[2]))
    return out


@pytest.fixture(scope="module")
def tree(deb, tmp_path_factory):
    d = tmp_path_factory.mktemp("deb")
    dpkg_deb("-x", deb, str(d / "root"))
    dpkg_deb("-e", deb, str(d / "control"))
    return d


def test_metadata(deb):
    info = dpkg_deb("--info", deb)
    fields = dict(re.findall(r"^ ([A-Za-z-]+): (.*)$", info, re.M))
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert fields["Package"] == "hrsync"
    assert fields["Version"] == makefile_version()
    assert fields["Architecture"] == arch
    assert fields["Section"] == "admin"
    assert fields["Description"].startswith("keep HR platforms in step")
    # Computed by dpkg-shlibdeps from the binary: each library hrsync links, with a version.
    depends = fields["Depends"]
    for lib in ("libc6 (>= ", "libcurl4 (>= ", "libpq5 (>= ", "libssl3 (>= ", "libyajl2 (>= ", "libyaml-0-2"):
        assert lib in depends, (lib, depends)
    assert "systemd-sysusers" in depends      # dh_installsysusers: the postinst needs it
    assert "${" not in depends
    # No conffiles: the package leaves /etc/hrsync to the administrator.
    members = re.findall(r"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+(\S+)", info, re.M)
    assert "postinst" in members and "conffiles" not in members, members


def test_lintian_reports_no_error(deb):
    with open(os.path.join(ROOT, "build", "deb", "lintian.txt")) as f:
        report = f.read()
    errors = [ln for ln in report.splitlines() if ln.startswith("E: ")]
    assert not errors, report


def test_contents(contents):
    mode, size = contents["/usr/bin/hrsync"]
    assert mode == "-rwxr-xr-x" and size > 100_000
    for u in UNITS:
        assert contents[f"/lib/systemd/system/{u}"][0] == "-rw-r--r--", u
    assert "/usr/lib/sysusers.d/hrsync.conf" in contents
    assert "/usr/share/man/man1/hrsync.1.gz" in contents
    assert "/usr/share/man/man5/hrsync.yaml.5.gz" in contents
    assert "/usr/share/bash-completion/completions/hrsync" in contents
    ex = "/usr/share/doc/hrsync/examples"
    for f in ("hrsync.example.yaml", "README.md", "peopleforce/employees.yaml", "peopleforce/kinds.csv",
              "personio/employees.yaml"):
        assert f"{ex}/{f}" in contents, f
    assert "/usr/share/doc/hrsync/copyright" in contents
    assert "/usr/share/doc/hrsync/operations.md.gz" in contents
    # /etc is the administrator's; nothing of the build tree or the tests leaks in.
    assert not [p for p in contents if p.startswith("/etc")]
    assert not [p for p in contents if "/tests/" in p or "/build" in p or p.endswith(".o")]


def test_installed_files_are_the_repository_s(tree):
    root = tree / "root"
    for u in UNITS:
        with open(root / "lib/systemd/system" / u) as f, open(os.path.join(ROOT, "systemd", u)) as g:
            text = f.read()
            assert text == g.read(), u
        assert re.search(r"^ExecStart=/usr/bin/hrsync ", text, re.M) or u.endswith(".timer"), u
    for pkg_path, repo_path in (("usr/lib/sysusers.d/hrsync.conf", "systemd/hrsync.sysusers"),
                                ("usr/share/bash-completion/completions/hrsync", "completion/hrsync"),
                                ("usr/share/doc/hrsync/examples/hrsync.example.yaml", "config/hrsync.example.yaml")):
        with open(root / pkg_path) as f, open(os.path.join(ROOT, repo_path)) as g:
            assert f.read() == g.read(), pkg_path


def test_maintainer_scripts_create_the_user_and_enable_nothing(tree):
    with open(tree / "control" / "postinst") as f:
        postinst = f.read()
    assert re.search(r"^\s*systemd-sysusers .*hrsync\.conf\s*$", postinst, re.M), postinst
    # dh_installsystemd --no-enable --no-start: units are enabled again only if the admin had
    # enabled them before an upgrade, and nothing is started.
    assert "deb-systemd-invoke" not in postinst
    assert not re.search(r"^\s*deb-systemd-helper enable", postinst, re.M) or "was-enabled" in postinst
    assert "systemctl start" not in postinst


def test_packaged_binary_runs(tree):
    hrsync = str(tree / "root" / "usr" / "bin" / "hrsync")
    r = subprocess.run([hrsync, "version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(f"hrsync {makefile_version()} "), r
    r = subprocess.run([hrsync, "status", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("usage: hrsync status"), r
    # Built with Debian's hardening flags (dpkg-buildflags): full RELRO, stack protector.
    r = subprocess.run(["readelf", "-d", "-W", hrsync], capture_output=True, text=True)
    assert "BIND_NOW" in r.stdout or "FLAGS_1" in r.stdout and "NOW" in r.stdout
    r = subprocess.run(["readelf", "-s", "-W", hrsync], capture_output=True, text=True)
    assert "__stack_chk_fail" in r.stdout
