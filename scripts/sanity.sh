#!/usr/bin/env bash
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Run `ansible-test sanity` on the working tree, offline apart from PyPI.
#
# ansible-test only runs inside ansible_collections/<namespace>/<name>, so the tracked files and the
# untracked files git does not ignore (a developer's new file is checked too) are copied into such a
# tree under a temporary directory.  Extra arguments go to ansible-test, e.g. `--test pylint`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PYTHON="${ROOT}/.venv/bin/python"
ANSIBLE_TEST="${ROOT}/.venv/bin/ansible-test"

if [[ ! -x "${ANSIBLE_TEST}" ]]; then
    echo "sanity: ${ANSIBLE_TEST} is missing; run 'make deps' first" >&2
    exit 1
fi

PYTHON_VERSION="$("${PYTHON}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# ansible-test bootstraps pip into each test's virtual environment with a get-pip script that it
# downloads from a host other than PyPI, unless ~/.ansible/test/cache/get_pip_<version>.py exists
# (ansible_test/_util/target/setup/requirements.py, bootstrap()).  Seed that cache with
# scripts/ansible_test_get_pip.py and the pip wheel it installs, fetched from PyPI.
seed_pip_bootstrap() {
    local pip_version cache script wheel_count
    pip_version="$("${PYTHON}" - "${PYTHON_VERSION}" <<'PY'
import sys
import types

from ansible_test._internal.python_requirements import get_venv_packages

print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
PY
)"
    cache="${HOME}/.ansible/test/cache"
    script="${cache}/get_pip_${pip_version//./_}.py"
    mkdir -p "${cache}"
    wheel_count="$(find "${cache}" -maxdepth 1 -name "pip-${pip_version}-*.whl" | wc -l)"
    if [[ "${wheel_count}" -eq 0 ]]; then
        "${PYTHON}" -m pip download --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: --dest "${cache}" "pip==${pip_version}"
    fi
    # A get-pip script already there (ansible-test's own, or ours) works offline as well.
    if [[ ! -e "${script}" ]]; then
        cp "${ROOT}/scripts/ansible_test_get_pip.py" "${script}.tmp"
        mv "${script}.tmp" "${script}"
    fi
}

copy_tree() {
    local dest="$1"
    mkdir -p "${dest}"
    (
        cd "${ROOT}"
        git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' path; do
                # a tracked file deleted in the working tree is not part of it any more
                if [[ -e "${path}" || -L "${path}" ]]; then
                    printf '%s\0' "${path}"
                fi
            done |
            tar --null --no-recursion --files-from=- --create --file=- |
            tar --extract --file=- --directory="${dest}"
    )
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ghostwarden-sanity.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
COLLECTION="${WORK}/ansible_collections/ghostwarden/core"

seed_pip_bootstrap
copy_tree "${COLLECTION}"

cd "${COLLECTION}"

# The collection's own checks (tests/sanity/extra); run ansible-test even when one fails, so that a
# single run shows every finding.
extra_failed=0
for check in tests/sanity/extra/*.py; do
    echo "Running extra sanity test \"$(basename "${check}" .py)\""
    "${PYTHON}" "${check}" || extra_failed=1
done

"${ANSIBLE_TEST}" sanity --local --python "${PYTHON_VERSION}" "$@"
if [[ "${extra_failed}" -ne 0 ]]; then
    echo "sanity: an extra sanity test (tests/sanity/extra) failed; see its output above" >&2
    exit 1
fi
