# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection plugin: run tasks inside a named network namespace of the controller's machine."""

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a named network namespace on the controller's machine
version_added: 0.1.0
description:
  - Runs each task's commands on the machine that runs Ansible, inside a named network namespace
    (one listed by C(ip netns list), that is with a name under C(/run/netns)), so that an inventory
    host can be a namespace; for example a router kept in a namespace, or a host of a lab of namespaces.
  - Commands run through C(ip netns exec <name> /bin/sh -c <command>). Unlike C(nsenter --net), C(ip netns exec)
    also mounts a C(/sys) of the namespace and the files of C(/etc/netns/<name>/) over their C(/etc) counterparts,
    so tools that read C(/sys/class/net) or C(/etc/resolv.conf) see the namespace.
  - Files are copied on the shared filesystem, as P(ansible.builtin.local#connection) does; the namespace has no
    filesystem of its own. Like P(ansible.builtin.local#connection), copying a file to the namespace does not create missing parent
    directories.
  - Must run as root (C(ip netns exec) needs C(CAP_SYS_ADMIN)); the connection fails with one line when the
    controller does not run as root, when C(ip) is missing, or when the namespace does not exist.
author:
  - ghostwarden.core maintainers (@ghostwarden)
options:
  remote_addr:
    description:
      - The name of the namespace when O(netns_name) is not set; by default the inventory name of the host.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  netns_name:
    description:
      - The network namespace to run in, a name as C(ip netns add) takes it (no C(/), not C(.) or C(..)).
      - When not set, O(remote_addr) names the namespace.
    type: str
    vars:
      - name: ansible_netns_name
    env:
      - name: GHOSTWARDEN_NETNS
extends_documentation_fragment:
  - ansible.builtin.connection_pipelining
requirements:
  - C(ip) from iproute2 on the controller
  - the controller runs as root
notes:
  - The remote user is ignored; commands run as the user that runs Ansible, which must be root.
  - Commands get the controller's environment without C(SSH_CONNECTION), C(SSH_CLIENT) and C(SSH_TTY); an SSH
    session to the controller does not reach the namespace, so modules must not act as if they ran over it
    (for example P(ghostwarden.core.ghostwarden_apply#module)'s confirm window, on by default over SSH).
  - Privilege escalation is not needed; a C(become) method that waits for a password is not supported.
  - Files are written through the controller's view of the filesystem, so a file under C(/etc/netns/<name>/)
    that C(ip netns exec) mounts over its C(/etc) counterpart is read and written under C(/etc/netns/<name>/).
seealso:
  - name: ip-netns(8)
    description: The C(ip netns) command.
    link: https://man7.org/linux/man-pages/man8/ip-netns.8.html
"""

EXAMPLES = r"""
# An inventory whose hosts are network namespaces of the controller (create them first: ip netns add router1)
# all:
#   hosts:
#     router1:
#       ansible_connection: ghostwarden.core.netns
#     edge:
#       ansible_connection: ghostwarden.core.netns
#       ansible_netns_name: gw-edge
#       ansible_python_interpreter: /usr/bin/python3

- name: Show the links of each namespace
  hosts: all
  gather_facts: false
  tasks:
    - name: List the links
      ansible.builtin.command: ip -o link
      changed_when: false
"""

import os
import pwd
import shutil
import subprocess
from typing import Any

import ansible.constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display
from ansible.utils.path import unfrackpath

display = Display()

# Where `ip netns add` keeps its namespaces (bind mounts of /proc/<pid>/ns/net).
NETNS_RUN_DIR = "/run/netns"
# The operator's SSH session to the controller does not reach the namespace; modules that look for
# an SSH connection (ghostwarden_apply's confirm window and management guard) must not see it.
SSH_SESSION_VARIABLES = frozenset({"SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"})
# `ip` lives in an sbin directory, which a user's PATH does not always contain.
IP_SEARCH_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"))


class Connection(ConnectionBase):
    """Commands through ``ip netns exec`` in one namespace; files on the shared filesystem."""

    transport = "ghostwarden.core.netns"
    has_pipelining = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ip: str | None = None

    @property
    def netns_name(self) -> str:
        """The namespace this connection runs in: ``netns_name``, else ``remote_addr``."""
        return to_text(self.get_option("netns_name") or self.get_option("remote_addr") or "")

    def _connect(self) -> Connection:
        if not self._connected:
            self._ip = _find_ip()
            self._check_namespace()
            self._play_context.remote_user = _current_user()
            display.vvv(f"ESTABLISH NETNS CONNECTION TO {self.netns_name}", host=self.netns_name)
            self._connected = True
        return self

    def _check_namespace(self) -> None:
        """Fail with one line unless the controller is root and the namespace exists."""
        name = self.netns_name
        if not name or "/" in name or name in (".", ".."):
            raise AnsibleConnectionFailure(f"netns connection: {name!r} is not a network namespace name "
                                           "(set ansible_netns_name or the host's ansible_host)")
        if os.geteuid() != 0:
            raise AnsibleConnectionFailure(f"netns connection: entering network namespace {name!r} needs root; "
                                           f"ansible runs as uid {os.geteuid()}")
        if not os.path.exists(os.path.join(NETNS_RUN_DIR, name)):
            raise AnsibleConnectionFailure(f"netns connection: network namespace {name!r} does not exist "
                                           f"(no {NETNS_RUN_DIR}/{name}; create it with: ip netns add {name})")

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        """Run ``cmd`` with the configured shell inside the namespace; ``in_data`` is its stdin (pipelining)."""
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        # A namespace deleted since the connection was made would otherwise show as `ip`'s exit status 255.
        self._check_namespace()
        shell = C.DEFAULT_EXECUTABLE.split()[0] if C.DEFAULT_EXECUTABLE else "/bin/sh"
        if not os.path.exists(to_bytes(shell, errors="surrogate_or_strict")):
            raise AnsibleError(f"netns connection: the shell {shell!r} (the executable setting) does not exist")
        argv = [self._ip or _find_ip(), "netns", "exec", self.netns_name, shell, "-c", to_text(cmd)]
        display.vvv(f"EXEC {to_text(cmd)}", host=self.netns_name)
        # Without data, stdin is closed at once so that a command reading it does not wait forever.
        environment = {key: value for key, value in os.environ.items() if key not in SSH_SESSION_VARIABLES}
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                                   stderr=subprocess.PIPE, env=environment)
        stdout, stderr = process.communicate(in_data)
        return process.returncode, stdout, stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        """Copy ``in_path`` to ``out_path`` (both on the shared filesystem); parents of ``out_path`` must exist."""
        super().put_file(in_path, out_path)
        self._transfer("PUT", in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        """Copy ``in_path`` to ``out_path``: fetching is copying on the shared filesystem."""
        super().fetch_file(in_path, out_path)
        self._transfer("FETCH", in_path, out_path)

    def _transfer(self, verb: str, in_path: str, out_path: str) -> None:
        source = unfrackpath(in_path)
        destination = unfrackpath(out_path)
        display.vvv(f"{verb} {source} TO {destination}", host=self.netns_name)
        self._copy(source, destination)

    @staticmethod
    def _copy(source: str, destination: str) -> None:
        if not os.path.exists(to_bytes(source, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound(f"netns connection: file or module does not exist: {source}")
        try:
            shutil.copyfile(to_bytes(source, errors="surrogate_or_strict"),
                            to_bytes(destination, errors="surrogate_or_strict"))
        except shutil.SameFileError as error:
            raise AnsibleError(f"netns connection: failed to copy: {source} and {destination} are the same file") from error
        except OSError as error:
            raise AnsibleError(f"netns connection: failed to copy {source} to {destination}: {error}") from error

    def reset(self) -> None:
        """Nothing persists between commands; the next command checks the namespace again."""
        self.close()

    def close(self) -> None:
        """No process or socket stays open between commands."""
        self._connected = False


def _find_ip() -> str:
    ip = shutil.which("ip", path=IP_SEARCH_PATH)
    if ip is None:
        raise AnsibleConnectionFailure("netns connection: the ip command (iproute2) is not installed on the controller")
    return ip


def _current_user() -> str:
    # The remote user is meaningless here: commands run as the user running Ansible.
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return ""
