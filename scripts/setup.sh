#!/usr/bin/env bash
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Developer and CI set-up on Debian/Ubuntu (`make deps`): the system packages the tests and the
# demo need, the Python virtual environment .venv with requirements-dev.txt, and the collection
# path .cache/collections that makes the working tree importable as ghostwarden.core.
# Every step is skipped when already done, so a warm run takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="${ROOT}/.venv"
REQUIREMENTS="${ROOT}/requirements-dev.txt"
STAMP="${VENV}/.requirements-dev.sha256"
SYSTEM_PYTHON="${SYSTEM_PYTHON:-/usr/bin/python3}"

# nftables, iproute2, dnsmasq-base, procps (sysctl): what the modules drive; busybox, iperf3,
# openssh-server: the lab's hosts, traffic and the controller's SSH target; shellcheck: a sanity
# test; python3-venv: .venv and ansible-test's per-test environments; git: the sanity script lists
# the tracked files with it; qemu-system-x86, qemu-utils, debootstrap, debian-archive-keyring,
# e2fsprogs, dpkg-dev: the VM lab (tests/vm) builds its Debian guest image and boots it.
APT_PACKAGES=(nftables iproute2 dnsmasq-base procps busybox iperf3 openssh-server shellcheck python3-venv git
              qemu-system-x86 qemu-utils debootstrap debian-archive-keyring e2fsprogs dpkg-dev)

missing_packages() {
    local package status
    for package in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query --show --showformat='${db:Status-Status}' "${package}" 2>/dev/null || true)"
        if [[ "${status}" != "installed" ]]; then
            printf '%s\n' "${package}"
        fi
    done
}

install_system_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    if [[ ${#missing[@]} -eq 0 ]]; then
        return
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "deps: missing system packages: ${missing[*]}; run 'make deps' as root to install them" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The stamp records requirements-dev.txt and the interpreter it was installed for.
requirements_digest() {
    { sha256sum <"${REQUIREMENTS}"; "${VENV}/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1
}

install_python_packages() {
    if ! "${VENV}/bin/python" -c '' 2>/dev/null; then
        # missing, or left broken (e.g. its interpreter was removed): start again
        rm -rf "${VENV}"
        # ansible-core 2.19, pinned in requirements-dev.txt, runs on Python 3.11 or newer
        if ! "${SYSTEM_PYTHON}" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "deps: ${SYSTEM_PYTHON} is older than 3.11; set SYSTEM_PYTHON to a Python 3.11+ interpreter" >&2
            exit 1
        fi
        echo "deps: creating ${VENV} with ${SYSTEM_PYTHON}"
        "${SYSTEM_PYTHON}" -m venv "${VENV}"
    fi
    local digest
    digest="$(requirements_digest)"
    if [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${digest}" ]]; then
        return
    fi
    echo "deps: installing requirements-dev.txt into ${VENV}"
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${REQUIREMENTS}"
    printf '%s\n' "${digest}" >"${STAMP}"
}

# tests/conftest.py makes the same link; ansible-playbook needs it before any test has run.
link_collection() {
    local link="${ROOT}/.cache/collections/ansible_collections/ghostwarden/core"
    if [[ "$(readlink "${link}" 2>/dev/null)" != "${ROOT}" ]]; then
        mkdir -p "$(dirname "${link}")"
        ln -sfn "${ROOT}" "${link}"
    fi
}

install_system_packages
install_python_packages
link_collection
