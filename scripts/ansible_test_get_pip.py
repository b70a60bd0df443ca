# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the get-pip script that ansible-test bootstraps its virtual environments with.

ansible-test creates every sanity-test virtual environment without pip and then runs
``~/.ansible/test/cache/get_pip_<version>.py`` (downloading it first from a host outside PyPI
when the file is missing).  scripts/sanity.sh installs this file under that name next to the
matching pip wheel, fetched from PyPI, so the bootstrap needs no network at all.  Like the
original it is run as ``get_pip_<version>.py [--no-setuptools] [--no-wheel] [pip options]
pip==<version>`` and installs pip into the running interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The original's own switches; pip install does not know them.
GET_PIP_SWITCHES = ("--no-setuptools", "--no-wheel")


def main() -> int:
    """Install the pip wheel that lies next to this file into the running interpreter."""
    here = Path(__file__).resolve().parent
    version = Path(__file__).stem[len("get_pip_"):].replace("_", ".")
    wheels = sorted(here.glob(f"pip-{version}-*.whl"))
    if not wheels:
        print(f"pip {version} wheel not found in {here}; run scripts/sanity.sh to fetch it", file=sys.stderr)
        return 1

    # A wheel is a zip archive that Python can import from: pip installs itself from its own wheel.
    sys.path.insert(0, str(wheels[0]))
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_SWITCHES]
    return pip_main(["install", "--upgrade", "--force-reinstall", "--no-index", "--find-links", str(here)] + pip_args)


if __name__ == "__main__":
    sys.exit(main())
