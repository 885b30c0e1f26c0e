"""Static checks of the Debian packaging in debian/ (the package itself is built and
smoke-tested by .ci/deb-package).

Skipped where debian/ is absent, e.g. inside the package build's own test run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

import cliproxy

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = ROOT / "debian"
PACKAGED_CONFIG = "/etc/cliproxy/config.yaml"
AUTH_DIR = "/var/lib/cliproxy/auth"

pytestmark = pytest.mark.skipif(not DEBIAN.is_dir(), reason="no debian/ directory here")

# setup.py's install_requires -> the Debian package that provides it.
DEBIAN_NAMES = {
    "twisted": "python3-twisted",
    "treq": "python3-treq",
    "pyyaml": "python3-yaml",
    "service-identity": "python3-service-identity",
    "pyopenssl": "python3-openssl",
    "zstandard": "python3-zstandard",
    "bcrypt": "python3-bcrypt",
    "ruamel.yaml": "python3-ruamel.yaml",
    "prometheus_client": "python3-prometheus-client",
}


def unit() -> dict[str, list[str]]:
    """The [Service]/[Unit]/[Install] keys of debian/cliproxy.service, values in order."""
    keys: dict[str, list[str]] = {}
    section = None
    for raw in (DEBIAN / "cliproxy.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        keys.setdefault(f"{section}.{key}", []).append(value)
    return keys


def one(keys: dict[str, list[str]], name: str) -> str:
    assert name in keys, f"{name} missing from cliproxy.service"
    return keys[name][-1]


def install_requires() -> list[str]:
    text = (ROOT / "setup.py").read_text()
    block = re.search(r"install_requires=\[(.*?)\]", text, re.S)
    assert block, "install_requires not found in setup.py"
    names = re.findall(r'^\s*"([A-Za-z0-9_.-]+)', block.group(1), re.M)
    return [n.lower() for n in names]


def control_field(field: str) -> list[str]:
    text = (DEBIAN / "control").read_text()
    match = re.search(rf"^{field}:(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert match, f"{field} missing from debian/control"
    items = [i.strip() for i in match.group(1).split(",")]
    return [re.split(r"[\s(<\[]", i, maxsplit=1)[0] for i in items if i]


def gen_config(src: Path, dest: Path) -> str:
    subprocess.run(["sh", str(DEBIAN / "gen-config"), str(src), str(dest)], check=True)
    return dest.read_text()


def test_service_runs_twistd3_as_the_cliproxy_user_with_the_packaged_config():
    keys = unit()
    argv = shlex.split(one(keys, "Service.ExecStart"))
    assert argv == [
        "/usr/bin/twistd3",
        "--nodaemon",
        "--pidfile=",
        "--logger=cliproxy.journal.observer",
        "cliproxy",
        "--config",
        PACKAGED_CONFIG,
    ]
    assert one(keys, "Service.User") == "cliproxy"
    assert one(keys, "Service.Group") == "cliproxy"
    assert one(keys, "Service.StateDirectory") == "cliproxy"
    assert one(keys, "Service.WorkingDirectory") == "/var/lib/cliproxy"
    # "-": the environment file is optional.
    assert one(keys, "Service.EnvironmentFile") == "-/etc/default/cliproxy"
    assert one(keys, "Service.Environment") == "WRITABLE_PATH=/var/lib/cliproxy"
    check = f"/usr/bin/cliproxy check-config --config {PACKAGED_CONFIG}"
    assert keys["Service.ExecStartPre"] == [check]
    # systemctl reload runs these in order and stops at the first failure
    assert keys["Service.ExecReload"] == [check, "/bin/kill -HUP $MAINPID"]
    assert one(keys, "Service.Type") == "notify"
    assert one(keys, "Service.NotifyAccess") == "main"
    assert one(keys, "Service.Restart") == "on-failure"
    assert one(keys, "Unit.Documentation").startswith("man:cliproxy(1)")
    assert one(keys, "Install.WantedBy") == "multi-user.target"


def test_service_hardening():
    keys = unit()
    for name in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "LockPersonality",
    ):
        assert one(keys, f"Service.{name}") == "yes", name
    assert one(keys, "Service.ProtectSystem") == "strict"
    assert one(keys, "Service.CapabilityBoundingSet") == ""
    assert one(keys, "Service.SystemCallArchitectures") == "native"
    assert keys["Service.SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert one(keys, "Service.PrivateMounts") == "yes"
    assert int(one(keys, "Service.LimitNOFILE")) >= 4096
    # AF_UNIX: the sd_notify socket
    assert one(keys, "Service.RestrictAddressFamilies").split() == [
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
    ]


def test_service_allows_write_execute_memory_for_pyopenssl_callbacks():
    # Debian 12's cffi 1.15 needs W+X memory for pyOpenSSL's callbacks: with
    # MemoryDenyWriteExecute=yes every HTTPS upstream request fails with MemoryError
    # (reproduced with .ci/deb-smoke/unitrun.py, which applies systemd's seccomp rule).
    assert unit().get("Service.MemoryDenyWriteExecute", ["no"])[-1] not in ("yes", "true", "1")


def test_packaged_config_is_the_shipped_one_with_the_service_auth_dir(tmp_path):
    from cliproxy.config import load_config

    src = ROOT / "conf" / "config.yaml"
    dest = tmp_path / "config.yaml"
    text = gen_config(src, dest)
    assert re.findall(r"^auth-dir:.*$", text, re.M) == [f'auth-dir: "{AUTH_DIR}"']
    packaged = yaml.safe_load(text)
    shipped = yaml.safe_load(src.read_text())
    assert packaged.pop("auth-dir") == AUTH_DIR
    shipped.pop("auth-dir", None)
    assert packaged == shipped
    assert load_config(str(dest)).auth_dir == AUTH_DIR


def test_packaged_config_gets_an_auth_dir_when_the_source_has_none(tmp_path):
    src = tmp_path / "in.yaml"
    src.write_text('host: "127.0.0.1"\nport: 8317\n')
    packaged = yaml.safe_load(gen_config(src, tmp_path / "out.yaml"))
    assert packaged == {"host": "127.0.0.1", "port": 8317, "auth-dir": AUTH_DIR}


def test_config_is_installed_where_the_unit_reads_it():
    lines = (DEBIAN / "cliproxy.install").read_text().split("\n")
    src, dest_dir = next(line.split() for line in lines if "config.yaml" in line)
    assert f"/{dest_dir.strip('/')}/{Path(src).name}" == PACKAGED_CONFIG
    assert "gen-config conf/config.yaml " + src in (DEBIAN / "rules").read_text()


def test_every_runtime_dependency_is_a_build_dependency():
    build_depends = set(control_field("Build-Depends"))
    for name in install_requires():
        assert name in DEBIAN_NAMES, f"add {name} to DEBIAN_NAMES and debian/control"
        assert DEBIAN_NAMES[name] in build_depends, name


def test_twisted_dependency_is_satisfiable_on_debian_12():
    # setup.py's Twisted>=24.7 is for pip; Debian 12 has 22.4 with the fixes backported.
    overrides = (DEBIAN / "py3dist-overrides").read_text()
    line = next(
        ln for ln in overrides.splitlines() if ln.startswith("Twisted ") and not ln.startswith("#")
    )
    assert line == "Twisted python3-twisted (>= 22.4.0-4+deb12u1)"


def test_changelog_version_is_the_package_version():
    first = (DEBIAN / "changelog").read_text().splitlines()[0]
    assert re.match(r"cliproxy \(([^)]+)\)", first).group(1) == cliproxy.__version__


def test_plugin_cache_trigger():
    lines = [
        ln for ln in (DEBIAN / "cliproxy.triggers").read_text().splitlines() if ln[:1] not in "#"
    ]
    assert lines == ["activate-noawait twisted-plugins-cache"]


def test_maintainer_scripts_create_the_user_and_purge_the_state():
    postinst = (DEBIAN / "cliproxy.postinst").read_text()
    assert (
        "adduser --quiet --system --group --no-create-home --home /var/lib/cliproxy cliproxy"
        in postinst
    )
    assert "config=/etc/cliproxy/config.yaml" in postinst
    assert 'chown root:cliproxy "$config"' in postinst
    assert 'chmod 0640 "$config"' in postinst
    postrm = (DEBIAN / "cliproxy.postrm").read_text()
    purge = postrm.split('if [ "$1" = "purge" ]; then', 1)[1].split("\nfi\n", 1)[0]
    assert "rm -rf /var/lib/cliproxy" in purge
    assert "rm -rf /etc/cliproxy" in purge
    for script in ("cliproxy.postinst", "cliproxy.postrm"):
        assert "#DEBHELPER#" in (DEBIAN / script).read_text()


def test_the_unit_logger_is_a_twistd_observer_factory():
    from twisted.logger import ILogObserver
    from twisted.python.reflect import namedAny

    argv = shlex.split(one(unit(), "Service.ExecStart"))
    name = next(a.split("=", 1)[1] for a in argv if a.startswith("--logger="))
    assert ILogObserver.providedBy(namedAny(name)())


def test_postinst_keeps_what_the_administrator_set():
    postinst = (DEBIAN / "cliproxy.postinst").read_text()
    # only a config as dpkg wrote it (root:root 0644) is changed, and only if it exists
    assert '[ -f "$config" ]' in postinst
    assert '= "0:0 644" ]' in postinst
    # state directories are created when missing, never reset
    assert "[ ! -d /var/lib/cliproxy ]" in postinst
    assert "[ ! -d /var/lib/cliproxy/auth ]" in postinst


def test_license_and_copyright_credit_cliproxyapi():
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    assert "CLIProxyAPI" in license_text
    copyright_text = (DEBIAN / "copyright").read_text()
    assert copyright_text.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    )
    assert "router-for-me/CLIProxyAPI" in copyright_text
    assert "Router-For.ME" in copyright_text
    for files in re.findall(r"^Files: (.*(?:\n {7}.*)*)", copyright_text, re.M):
        for pattern in files.split():
            if "*" not in pattern:
                assert (ROOT / pattern).exists(), f"debian/copyright names {pattern}"


def test_pybuild_testfiles_exist():
    for line in (DEBIAN / "pybuild.testfiles").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert (ROOT / line.split()[0]).exists(), line


def test_clean_removes_the_egg_info_and_gitignore_covers_debhelper_outputs():
    assert "cliproxy.egg-info/" in (DEBIAN / "clean").read_text().split()
    assert "debian/*.debhelper" in (ROOT / ".gitignore").read_text().split()


def test_autopkgtest_declares_the_service_test():
    control = (DEBIAN / "tests" / "control").read_text()
    assert re.search(r"^Tests: service$", control, re.M)
    assert "needs-root" in control
    assert (DEBIAN / "tests" / "service").stat().st_mode & 0o111


def test_management_writes_can_save_the_config_and_the_environment_is_out_of_reach():
    keys = unit()
    # the daemon may write /etc/cliproxy (a missing directory does not stop the start) ...
    assert keys["Service.ReadWritePaths"] == ["-/etc/cliproxy"]
    # ... so what systemd reads there as root must not be there
    assert not any(
        f.lstrip("-").startswith("/etc/cliproxy/") for f in keys["Service.EnvironmentFile"]
    )
    postinst = (DEBIAN / "cliproxy.postinst").read_text()
    assert "chown root:cliproxy /etc/cliproxy" in postinst
    assert "chmod 0770 /etc/cliproxy" in postinst
    assert '"$(stat -c \'%u:%g %a\' /etc/cliproxy)" = "0:0 755"' in postinst
    assert "rm -f /etc/default/cliproxy" in (DEBIAN / "cliproxy.postrm").read_text()
