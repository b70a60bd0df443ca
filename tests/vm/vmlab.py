# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM lab: Debian guests under qemu, networked only inside one lab network namespace.

Layout of a lab named ``N`` (namespace ``gwvm-N``, nothing in the root namespace):

* bridge ``mgmt`` (192.0.2.1/24): every guest's ``eth0`` (192.0.2.11, .12, ...), the controller
  side (ansible-playbook and ssh run inside the namespace) and the lab's package repository
  (a static HTTP server on 192.0.2.1:8080 serving the image's ``repo/``);
* one bridge ``seg-<name>`` per segment: a guest's ``eth1``, ``eth2``, ... join the segments its
  spec lists, in order, so two guests on one segment share a wire (a trunk for VLAN tests);
* one tap per NIC (``t<guest>n<k>``), created in the namespace; qemu itself runs in it.

The namespace has no route anywhere and no link to the root namespace, so no guest packet can
leave the lab. Guests boot the cached image (image.py) from their own qcow2 overlay, with their
own machine id on the kernel command line, and are powered off through the guest (then ACPI,
then qemu's monitor) by :meth:`VmLab.down`. ``python -m`` this file gives a small command line
(``up``, ``down``, ``exec``) for molecule and for looking at a guest by hand (docs/vm-lab.md).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:  # run as a script (python tests/vm/vmlab.py) or imported as part of the collection's tests
    from image import REPO_ADDRESS, REPO_PORT, Image, current_image, ensure_image  # type: ignore[no-redef]
except ImportError:
    from ansible_collections.ghostwarden.core.tests.vm.image import (
        REPO_ADDRESS, REPO_PORT, Image, current_image, ensure_image,
    )

NAMESPACE_PREFIX = "gwvm-"
MGMT_BRIDGE = "mgmt"
MGMT_PREFIX = "192.0.2"  # TEST-NET-1, inside the lab namespace only
LAB_ADDRESS = REPO_ADDRESS  # the controller's side of mgmt, where the repository is served
GUEST_MEMORY_MB = 768
GUEST_CPUS = 2
BOOT_TIMEOUT = float(os.environ.get("GHOSTWARDEN_VMLAB_BOOT_TIMEOUT", "300"))
SSH_OPTIONS = (
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5",
    "-o", "ServerAliveCountMax=3",
)


class VmLabError(RuntimeError):
    pass


@dataclass(frozen=True)
class GuestSpec:
    """A guest: its name and the segments its eth1, eth2, ... join."""

    name: str
    segments: tuple[str, ...] = ()


@dataclass
class Guest:
    spec: GuestSpec
    index: int
    lab: VmLab = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> str:
        return f"{MGMT_PREFIX}.{10 + self.index}"

    def mac(self, nic: int) -> str:
        return f"52:54:00:47:{self.index:02x}:{nic:02x}"

    def tap(self, nic: int) -> str:
        return f"t{self.name}n{nic}"[:15]

    def nic_taps(self) -> dict[str, str]:
        """Guest NIC name -> the tap that is its other end in the lab namespace."""
        return {f"eth{nic}": self.tap(nic) for nic in range(1 + len(self.spec.segments))}

    @property
    def machine_id(self) -> str:
        return f"{self.lab.run_id:0>8}{self.index:0>24x}"[:32]

    def path(self, suffix: str) -> Path:
        return self.lab.workdir / f"{self.name}.{suffix}"

    @property
    def console(self) -> Path:
        return self.path("console.log")

    def pid(self) -> int | None:
        try:
            pid = int(self.path("pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def ssh_argv(self, command: str) -> list[str]:
        """``ssh`` running ``command`` on the guest as root (to be run inside the lab namespace)."""
        return ["ssh", *SSH_OPTIONS, "-i", str(self.lab.image.key), f"root@{self.address}", command]

    def ssh(self, command: str, *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``command`` (a shell line) on the guest as root, from inside the lab namespace."""
        try:
            completed = self.lab.run(*self.ssh_argv(command), check=False, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise VmLabError(f"{self.name}: {command!r} did not end within {timeout:g}s") from error
        if check and completed.returncode != 0:
            raise VmLabError(f"{self.name}: {command!r} exited {completed.returncode}:\n"
                             f"{completed.stdout}{completed.stderr}")
        return completed

    def push(self, data: bytes, command: str, *, timeout: float = 120) -> None:
        """Run ``command`` on the guest with ``data`` on its standard input (a tar stream, say)."""
        argv = ["ip", "netns", "exec", self.lab.namespace, *self.ssh_argv(command)]
        completed = subprocess.run(argv, input=data, capture_output=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise VmLabError(f"{self.name}: {command!r} exited {completed.returncode}: "
                             f"{completed.stderr.decode(errors='replace').strip()}")

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    def qmp(self, command: str, **arguments: object) -> object:
        from qemu.qmp.legacy import QEMUMonitorProtocol

        monitor = QEMUMonitorProtocol(str(self.path("qmp")))
        try:
            monitor.connect()
            return monitor.cmd(command, **arguments)
        finally:
            monitor.close()

    def hmp(self, command_line: str) -> str:
        """A human monitor command through QMP; its text output (empty on success for most)."""
        reply = self.qmp("human-monitor-command", **{"command-line": command_line})
        return str(reply.get("return", "")) if isinstance(reply, dict) else str(reply)


class VmLab:
    """A set of guests in one lab namespace. Use as a context manager, or call up()/down()."""

    def __init__(self, guests: Sequence[GuestSpec], *, name: str | None = None,
                 workdir: Path | None = None, log=print) -> None:
        self.run_id = secrets.token_hex(4)
        self.name = name or self.run_id[:6]
        self.namespace = f"{NAMESPACE_PREFIX}{self.name}"
        self.workdir = workdir or Path(f"/var/tmp/ghostwarden-vmlab-{self.name}")
        self.guests = {spec.name: Guest(spec, index + 1, self) for index, spec in enumerate(guests)}
        self.segments = sorted({segment for spec in guests for segment in spec.segments})
        self.log = log
        self.image: Image | None = None
        self.repo_server: subprocess.Popen | None = None
        self.accel = os.environ.get("GHOSTWARDEN_VMLAB_ACCEL", "tcg")

    def __getitem__(self, name: str) -> Guest:
        return self.guests[name]

    def __enter__(self) -> VmLab:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- commands in the lab namespace ----------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 60, input: str | None = None
            ) -> subprocess.CompletedProcess:
        completed = subprocess.run(["ip", "netns", "exec", self.namespace, *argv], capture_output=True,
                                   text=True, timeout=timeout, input=input, check=False)
        if check and completed.returncode != 0:
            raise VmLabError(f"{self.namespace}: {shlex.join(argv)} exited {completed.returncode}: "
                             f"{completed.stderr.strip()}")
        return completed

    def spawn(self, *argv: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, *argv], **kwargs)

    def ip(self, *argv: str) -> None:
        completed = subprocess.run(["ip", "-n", self.namespace, *argv], capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise VmLabError(f"ip -n {self.namespace} {shlex.join(argv)}: {completed.stderr.strip()}")

    # -- up ------------------------------------------------------------------------------------
    def up(self) -> None:
        self.image = ensure_image(log=self.log)
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        self._network()
        self._repo()
        started = time.monotonic()
        for guest in self.guests.values():
            self._start(guest)
        for guest in self.guests.values():
            self.wait_for_ssh(guest, BOOT_TIMEOUT - (time.monotonic() - started))
        self.log(f"vmlab {self.name}: {len(self.guests)} guest(s) up in {time.monotonic() - started:.0f}s")

    def _network(self) -> None:
        # The namespace may exist already: "exec" makes it for a controller that runs inside it.
        make_namespace(self.namespace)
        self.ip("link", "add", MGMT_BRIDGE, "type", "bridge")
        self.ip("addr", "add", f"{LAB_ADDRESS}/24", "dev", MGMT_BRIDGE)
        self.ip("link", "set", MGMT_BRIDGE, "up")
        for segment in self.segments:
            self.ip("link", "add", f"seg-{segment}"[:15], "type", "bridge")
            self.ip("link", "set", f"seg-{segment}"[:15], "up")
        for guest in self.guests.values():
            bridges = [MGMT_BRIDGE, *(f"seg-{segment}"[:15] for segment in guest.spec.segments)]
            for nic, bridge in enumerate(bridges):
                self.ip("tuntap", "add", "dev", guest.tap(nic), "mode", "tap")
                self.ip("link", "set", guest.tap(nic), "master", bridge, "up")

    def _repo(self) -> None:
        assert self.image is not None
        log = open(self.workdir / "repo.log", "w")
        self.repo_server = self.spawn(sys.executable, "-m", "http.server", str(REPO_PORT), "--bind", LAB_ADDRESS,
                                      "--directory", str(self.image.repo), stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

    def _start(self, guest: Guest) -> None:
        assert self.image is not None
        overlay = guest.path("qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(self.image.rootfs),
                        str(overlay)], check=True, capture_output=True)
        append = " ".join([
            "root=LABEL=gwlab-root", "rw", "console=ttyS0,115200", "net.ifnames=0",
            f"systemd.machine_id={guest.machine_id}", f"systemd.hostname={guest.name}",
            f"gwlab.ip={guest.address}/24",
        ])
        argv = [
            "qemu-system-x86_64", "-name", guest.name, "-machine", "q35", "-m", str(GUEST_MEMORY_MB),
            "-smp", str(GUEST_CPUS), "-cpu", "max" if self.accel == "tcg" else "host",
            "-accel", "tcg,thread=multi,tb-size=256" if self.accel == "tcg" else self.accel,
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd), "-append", append,
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-device", "virtio-rng-pci", "-display", "none", "-vga", "none",
            "-serial", f"file:{guest.console}", "-qmp", f"unix:{guest.path('qmp')},server=on,wait=off",
            "-pidfile", str(guest.path("pid")), "-daemonize",
        ]
        for nic in range(1 + len(guest.spec.segments)):
            argv += ["-netdev", f"tap,id=n{nic},ifname={guest.tap(nic)},script=no,downscript=no",
                     "-device", f"virtio-net-pci,netdev=n{nic},mac={guest.mac(nic)}"]
        completed = self.run(*argv, check=False)
        if completed.returncode != 0:
            raise VmLabError(f"{guest.name}: qemu did not start: {completed.stderr.strip()}")

    def wait_for_ssh(self, guest: Guest, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 10)
        while time.monotonic() < deadline:
            if guest.pid() is None:
                raise VmLabError(f"{guest.name}: qemu exited while booting; console:\n{guest.console_tail()}")
            try:
                if guest.ssh("true", check=False, timeout=15).returncode == 0:
                    return
            except VmLabError:
                pass
            time.sleep(2)
        raise VmLabError(f"{guest.name}: no SSH on {guest.address} within {timeout:.0f}s; console:\n"
                         f"{guest.console_tail()}")

    # -- snapshots and reboots -------------------------------------------------------------------
    def snapshot(self, tag: str = "clean") -> None:
        """Save every guest's memory and disk (qemu savevm) under ``tag``."""
        for guest in self.guests.values():
            output = guest.hmp(f"savevm {tag}")
            if output.strip():
                raise VmLabError(f"{guest.name}: savevm {tag}: {output.strip()}")

    def revert(self, tag: str = "clean", guests: Sequence[str] | None = None) -> None:
        """Every guest (or the named ones) back to ``tag``: its clock is set again afterwards, and
        the controller's SSH connections to it (which the guest no longer knows) are closed."""
        self.close_ssh_masters()
        for name in guests or list(self.guests):
            guest = self.guests[name]
            output = guest.hmp(f"loadvm {tag}")
            if output.strip():
                raise VmLabError(f"{guest.name}: loadvm {tag}: {output.strip()}")
        for name in guests or list(self.guests):
            self.guests[name].ssh(f"date -s @{time.time():.3f} >/dev/null", timeout=60)

    def close_ssh_masters(self) -> None:
        for pid in self.pids():
            if _comm(pid) == "ssh":
                _signal(pid, signal.SIGTERM)

    def reboot(self, name: str, timeout: float = BOOT_TIMEOUT) -> float:
        """``systemctl reboot`` in the guest and wait until SSH answers again; the seconds it took."""
        guest = self.guests[name]
        started = time.monotonic()
        boot_id = guest.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
        self.close_ssh_masters()
        guest.ssh("systemctl reboot", check=False, timeout=30)
        deadline = started + timeout
        while time.monotonic() < deadline:
            time.sleep(3)
            if guest.pid() is None:
                raise VmLabError(f"{name}: qemu exited during the reboot; console:\n{guest.console_tail()}")
            try:
                now = guest.ssh("cat /proc/sys/kernel/random/boot_id", check=False, timeout=15)
            except VmLabError:
                continue
            if now.returncode == 0 and now.stdout.strip() != boot_id:
                return time.monotonic() - started
        raise VmLabError(f"{name}: not back within {timeout:.0f}s of the reboot; console:\n{guest.console_tail()}")

    # -- what the tests hand to Ansible ----------------------------------------------------------
    def inventory(self) -> dict:
        assert self.image is not None
        hosts = {
            guest.name: {
                "ansible_host": guest.address,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.image.key),
                "ansible_ssh_common_args": " ".join(SSH_OPTIONS),
                "ansible_python_interpreter": "/usr/bin/python3",
                "ghostwarden_vmlab_nics": guest.nic_taps(),
            }
            for guest in self.guests.values()
        }
        return {"all": {"children": {"ghostwarden_vmlab_guests": {"hosts": hosts}}}}

    def write_inventory(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.inventory(), indent=1, sort_keys=True) + "\n")

    # -- down ----------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        return namespace_pids(self.namespace)

    def _inside(self) -> bool:
        """Whether this process runs in the lab's namespace."""
        try:
            lab, own = os.stat(f"/run/netns/{self.namespace}"), os.stat("/proc/self/ns/net")
        except OSError:
            return False
        return (lab.st_dev, lab.st_ino) == (own.st_dev, own.st_ino)

    def down(self, timeout: float = 40) -> None:
        """Power every guest off (through the guest, then ACPI, then the monitor's quit), stop
        every process left in the namespace, and remove the namespace and the overlays."""
        if self.image is None:
            self.image = current_image()
        guests = [guest for guest in self.guests.values() if guest.pid() is not None]
        for guest in guests:
            try:
                guest.ssh("systemctl --no-block poweroff", check=False, timeout=15)
            except (VmLabError, subprocess.SubprocessError):
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(guest.pid() is not None for guest in guests):
            time.sleep(1)
        for guest in guests:
            if guest.pid() is not None:
                self.log(f"vmlab {self.name}: {guest.name} did not power off within {timeout:g}s; ACPI power button, "
                         f"then quit. Its console:\n{guest.console_tail(15)}")
                try:
                    guest.qmp("system_powerdown")
                    end = time.monotonic() + 20
                    while time.monotonic() < end and guest.pid() is not None:
                        time.sleep(1)
                    if guest.pid() is not None:
                        guest.qmp("quit")
                except Exception:  # the monitor may already be gone with the process
                    pass
        if self.repo_server is not None and self.repo_server.poll() is None:
            self.repo_server.terminate()
            self.repo_server.wait(10)
        _stop_processes(self.pids())
        if self._inside():
            # The controller runs in the namespace (``exec``, molecule): keep it, remove the links;
            # ``exec`` deletes the namespace when its command ends.
            for guest in self.guests.values():
                for nic in range(1 + len(guest.spec.segments)):
                    subprocess.run(["ip", "-n", self.namespace, "link", "delete", guest.tap(nic)], check=False,
                                   capture_output=True)
            for bridge in [MGMT_BRIDGE, *(f"seg-{segment}"[:15] for segment in self.segments)]:
                subprocess.run(["ip", "-n", self.namespace, "link", "delete", bridge], check=False,
                               capture_output=True)
        elif Path(f"/run/netns/{self.namespace}").exists():
            subprocess.run(["ip", "netns", "delete", self.namespace], check=False, capture_output=True)
        for guest in self.guests.values():
            guest.path("qcow2").unlink(missing_ok=True)


def make_namespace(namespace: str) -> bool:
    """Make a lab namespace (loopback up, with the mark that says "a VM lab namespace") unless it
    exists; whether it was made."""
    if Path(f"/run/netns/{namespace}").exists():
        return False
    subprocess.run(["ip", "netns", "add", namespace], check=True, capture_output=True)
    subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "alias", "ghostwarden-vmlab", "up"], check=True,
                   capture_output=True)
    return True


def namespace_pids(namespace: str) -> list[int]:
    completed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    return [int(pid) for pid in completed.stdout.split()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _ancestors() -> set[int]:
    """This process and its ancestors: a controller running inside the lab namespace (molecule
    under "exec") must survive the clean-up it asked for."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            break
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    return found


def _stop_processes(pids: list[int]) -> None:
    pids = [pid for pid in pids if pid not in _ancestors()]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        _signal(pid, signal.SIGKILL)


def parse_guests(words: Sequence[str]) -> list[GuestSpec]:
    """``vm1`` or ``vm1:trunk,access``: a guest and the segments of its eth1, eth2, ..."""
    specs = []
    for word in words:
        name, _separator, segments = word.partition(":")
        specs.append(GuestSpec(name, tuple(segment for segment in segments.split(",") if segment)))
    return specs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The ghostwarden.core VM lab (docs/vm-lab.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="boot guests and write their inventory; leaves them running")
    up.add_argument("--lab", required=True, help="lab name (namespace gwvm-NAME)")
    up.add_argument("--inventory", type=Path, required=True)
    up.add_argument("guests", nargs="+", help="NAME or NAME:SEGMENT,SEGMENT")
    down = commands.add_parser("down", help="power off a lab's guests and remove it")
    down.add_argument("--lab", required=True)
    down.add_argument("guests", nargs="*", help="the guest names it was started with (as for up)")
    commands.add_parser("image", help="build the guest image when missing; print its directory")
    exec_ = commands.add_parser("exec", help="run a command inside a lab namespace, making the namespace first")
    exec_.add_argument("--lab", required=True)
    exec_.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.command == "image":
        print(ensure_image(log=log).directory)
        return 0
    if args.command == "exec":
        # The image is built (downloaded from the Debian mirror) here, before the command runs in
        # the namespace, which has no route out.
        ensure_image(log=log)
        namespace = f"{NAMESPACE_PREFIX}{args.lab}"
        made = make_namespace(namespace)
        try:
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            return subprocess.run(["ip", "netns", "exec", namespace, *command], check=False).returncode
        finally:
            if made and Path(f"/run/netns/{namespace}").exists():
                _stop_processes(namespace_pids(namespace))
                subprocess.run(["ip", "netns", "delete", namespace], check=False)
    lab = VmLab(parse_guests(args.guests), name=args.lab, log=log)
    if args.command == "up":
        try:
            lab.up()
        except BaseException:
            lab.down()
            raise
        lab.write_inventory(args.inventory)
        return 0
    lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
