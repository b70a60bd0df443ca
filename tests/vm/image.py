# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM lab's guest image: Debian from Debian's packages, built once and cached.

The recipe is this file. Its hash names the cache entry (``<cache>/<hash>/``), so a change to
the package list or to any step below builds a new image on the next run and leaves the old
entry to be removed by hand (``docs/vm-lab.md``). An entry holds:

* ``rootfs.qcow2``: an ext4 root filesystem (no partition table) made with ``mkfs.ext4 -d``;
  guests boot from copy-on-write overlays of it, so it is never written after the build;
* ``vmlinuz`` and ``initrd.img``: the distribution's cloud kernel, booted directly by qemu;
* ``id_ed25519`` (+ ``.pub``): the SSH key made for the lab, authorised for root in the guest;
* ``repo/``: every .deb the build downloaded, with a ``Packages`` index, served inside the lab
  as the guests' only apt source (the guests cannot reach a registry; the host role's apt path
  installs from it for real);
* ``recipe.json``: what was built and how long it took.

The build runs as root (debootstrap) and needs debootstrap, e2fsprogs, qemu-utils, dpkg-dev and
openssh-client. It only downloads from the Debian mirror (``GHOSTWARDEN_VMLAB_MIRROR``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("GHOSTWARDEN_VMLAB_CACHE", "/var/cache/ghostwarden-vmlab"))
MIRROR = os.environ.get("GHOSTWARDEN_VMLAB_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# Debian's archive keys (package debian-archive-keyring, on Ubuntu too): debootstrap checks the
# Release file it downloads against them.
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# What the guests need: systemd as PID 1, the collection's tools and Python libraries (the host
# role's test removes some of them again), SSH, and the tools the tests look with.
PACKAGES = (
    "systemd-sysv", "udev", "dbus", "kmod", "procps", "netbase", "iproute2", "nftables", "dnsmasq-base",
    "python3", "python3-apt", "python3-pyroute2", "python3-netaddr", "python3-yaml", "python3-pytest",
    "openssh-server", "linux-image-cloud-amd64", "tcpdump", "iputils-ping", "busybox", "apt",
)
# Where the lab serves the package repository: its address on the management bridge (vmlab.py).
REPO_ADDRESS = "192.0.2.1"
REPO_PORT = 8080
REPO_URL = f"http://{REPO_ADDRESS}:{REPO_PORT}/"
ROOTFS_SIZE = "3G"

# Brings the guest's NICs up and gives eth0 the address on the kernel command line
# (gwlab.ip=ADDRESS/PREFIX); the NICs are named ethN (net.ifnames=0) in the order qemu has them.
NETWORK_SCRIPT = r"""#!/bin/sh
set -eu
address=""
for word in $(cat /proc/cmdline); do
    case "$word" in gwlab.ip=*) address="${word#gwlab.ip=}" ;; esac
done
for path in /sys/class/net/eth*; do
    ip link set "${path##*/}" up
done
[ -n "$address" ] && ip addr replace "$address" dev eth0
exit 0
"""

# The guest's network service, ordered as Debian's networking.service (ifupdown) is: after
# network-pre.target, before network.target, which it pulls in.
NETWORK_UNIT = """[Unit]
Description=VM lab: management address from the kernel command line
DefaultDependencies=no
After=systemd-udevd.service network-pre.target
Wants=network-pre.target network.target
Before=network.target ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/gwlab-net

[Install]
WantedBy=multi-user.target
"""

SSHD_CONFIG = """# VM lab: root logs in with the lab's key only; no DNS lookups of clients (there is no DNS).
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""


def recipe_hash() -> str:
    """The cache key: this file's bytes plus the settings that change what it builds."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{SUITE} {MIRROR}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    directory: Path

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs.qcow2"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def repo(self) -> Path:
        return self.directory / "repo"

    def complete(self) -> bool:
        return all(path.exists() for path in (self.rootfs, self.kernel, self.initrd, self.key,
                                              self.repo / "Packages", self.directory / "recipe.json"))


def current_image() -> Image:
    """This recipe's cache entry, built or not."""
    return Image(CACHE_ROOT / recipe_hash())


def ensure_image(log=print) -> Image:
    """The cached image of this recipe, built first when it is missing (one build at a time)."""
    image = current_image()
    if image.complete():
        return image
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.complete():
            return image
        started = time.monotonic()
        log(f"vmlab: building the guest image {image.directory} (debootstrap {SUITE}; a few minutes)")
        staging = Path(tempfile.mkdtemp(prefix=f".build-{image.directory.name}-", dir=CACHE_ROOT))
        try:
            _build(staging)
            (staging / "recipe.json").write_text(json.dumps({
                "suite": SUITE, "mirror": MIRROR, "packages": list(PACKAGES),
                "seconds": round(time.monotonic() - started, 1),
            }, indent=1) + "\n")
            if image.directory.exists():
                shutil.rmtree(image.directory)
            staging.rename(image.directory)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        log(f"vmlab: image built in {time.monotonic() - started:.0f}s")
    return image


def _run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if completed.returncode != 0:
        raise RuntimeError(f"vmlab image: {' '.join(argv[:4])}... exited {completed.returncode}:\n"
                           f"{completed.stdout[-3000:]}{completed.stderr[-3000:]}")
    return completed


def _build(staging: Path) -> None:
    rootfs = staging / "rootfs"
    _run("debootstrap", "--variant=minbase", f"--keyring={KEYRING}", f"--include={','.join(PACKAGES)}", SUITE,
         str(rootfs), MIRROR)

    # The downloaded packages become the lab's repository and leave the image.
    repo = staging / "repo"
    repo.mkdir()
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        shutil.move(str(deb), repo / deb.name)
    packages = _run("dpkg-scanpackages", "--multiversion", ".", cwd=repo).stdout
    (repo / "Packages").write_text(packages)
    # A Release file naming the index by its hash, as apt expects of any repository.
    index = (repo / "Packages").read_bytes()
    (repo / "Release").write_text(
        "Origin: ghostwarden-vmlab\nLabel: ghostwarden-vmlab\nSuite: vmlab\nCodename: vmlab\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\n"
        f"SHA256:\n {hashlib.sha256(index).hexdigest()} {len(index)} Packages\n")
    for path in (rootfs / "var/lib/apt/lists").glob("*_Packages"):
        path.unlink()

    _configure(rootfs)

    boot = rootfs / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    initrds = sorted(boot.glob("initrd.img-*"))
    if len(kernels) != 1 or len(initrds) != 1:
        raise RuntimeError(f"vmlab image: expected one kernel and one initrd in /boot, found {kernels} {initrds}")
    shutil.copyfile(kernels[0], staging / "vmlinuz")
    shutil.copyfile(initrds[0], staging / "initrd.img")

    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ghostwarden-vmlab", "-f", str(staging / "id_ed25519"))
    authorized = rootfs / "root/.ssh/authorized_keys"
    authorized.parent.mkdir(mode=0o700, exist_ok=True)
    authorized.write_text((staging / "id_ed25519.pub").read_text())
    authorized.chmod(0o600)

    raw = staging / "rootfs.raw"
    _run("mkfs.ext4", "-q", "-F", "-L", "gwlab-root", "-d", str(rootfs), str(raw), ROOTFS_SIZE)
    _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(staging / "rootfs.qcow2"))
    raw.unlink()
    shutil.rmtree(rootfs)


def _write(path: Path, content: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(mode)


def _configure(rootfs: Path) -> None:
    _write(rootfs / "etc/fstab", "LABEL=gwlab-root / ext4 defaults,errors=remount-ro 0 1\n")
    # Each guest gets its own id on the kernel command line (systemd.machine_id=): guests cloned
    # from one image would otherwise share it, and with it the MACs systemd derives for bridges.
    _write(rootfs / "etc/machine-id", "")
    _write(rootfs / "etc/hostname", "gwlab\n")
    _write(rootfs / "etc/hosts", "127.0.0.1 localhost\n")
    _write(rootfs / "etc/resolv.conf", "")
    _write(rootfs / "usr/local/sbin/gwlab-net", NETWORK_SCRIPT, 0o755)
    _write(rootfs / "etc/systemd/system/gwlab-net.service", NETWORK_UNIT)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "gwlab-net.service").symlink_to("/etc/systemd/system/gwlab-net.service")
    _write(rootfs / "etc/ssh/sshd_config.d/gwlab.conf", SSHD_CONFIG)
    _write(rootfs / "etc/apt/sources.list", f"deb [trusted=yes] {REPO_URL} ./\n")
    _write(rootfs / "etc/apt/apt.conf.d/90gwlab", 'Acquire::Languages "none";\nAPT::Install-Recommends "false";\n')
    # No waiting for a network that the lab configures by itself, no serial getty login prompt
    # noise beyond the console, and nothing periodic that would change a guest under a test.
    for unit in ("systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                 "e2scrub_all.timer", "fstrim.timer", "man-db.timer", "dpkg-db-backup.timer"):
        mask = rootfs / "etc/systemd/system" / unit
        if not mask.exists():
            mask.symlink_to("/dev/null")


if __name__ == "__main__":
    built = ensure_image(log=lambda line: print(line, file=sys.stderr))
    print(built.directory)
