# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A throwaway OpenSSH server's files: host and client keys made for it, and its configuration.

The SSH tests and the end-to-end benchmark start sshd inside a lab namespace with these; the
caller starts the process (``sshd -D -e -f <config>``) and waits for its banner.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def prepare_sshd(directory: Path, address: str, *, log_level: str = "VERBOSE") -> tuple[Path, Path]:
    """Keys and ``sshd_config`` under ``directory`` for an sshd on ``address``:22; (config, client private key)."""
    directory.mkdir(parents=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True)
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress {address}",
        "Port 22",
        f"HostKey {directory / 'host_key'}",
        f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # The key files live under /tmp, which is world-writable: StrictModes would refuse them.
        "StrictModes no",
        "Subsystem sftp internal-sftp",
        f"LogLevel {log_level}",
    ]) + "\n")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    return config, directory / "client_key"
