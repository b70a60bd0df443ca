# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is private to ghostwarden.core and may change without notice.
# Other collections and standalone modules must not use it.

from __future__ import annotations


class ModuleDocFragment:
    # The connection options of every module that talks to the Proxmox VE API (named as in community.proxmox).
    DOCUMENTATION = r"""
options:
  api_host:
    description:
      - Host name or address of a Proxmox VE node to send the API requests to (not a URL).
      - Uses the E(PROXMOX_HOST) environment variable if not specified.
    type: str
    required: true
  api_port:
    description:
      - TCP port of the API; V(8006) when not given.
      - Uses the E(PROXMOX_PORT) environment variable if not specified.
    type: int
  api_user:
    description:
      - The user, as C(user@realm) (for example V(root@pam)), for a password login, or the owner of the API
        token when O(api_token_id) is only the token's name.
      - Uses the E(PROXMOX_USER) environment variable if not specified.
    type: str
  api_password:
    description:
      - The password of O(api_user); the module logs in for a ticket. Not used when O(api_token_id) is given.
      - Uses the E(PROXMOX_PASSWORD) environment variable if not specified.
    type: str
  api_token_id:
    description:
      - The API token, as C(user@realm!tokenid), or just C(tokenid) together with O(api_user) as community.proxmox takes it.
      - An API token is preferred to a password - it needs no login request and can be limited by its own permissions.
      - Uses the E(PROXMOX_TOKEN_ID) environment variable if not specified.
    type: str
  api_token_secret:
    description:
      - The secret (a UUID) of the API token O(api_token_id).
      - Uses the E(PROXMOX_TOKEN_SECRET) environment variable if not specified.
    type: str
  api_timeout:
    description:
      - Seconds to wait for an answer to each API request.
    type: int
    default: 30
  validate_certs:
    description:
      - Verify the TLS certificate of the API. Leave this on and give O(ca_path) for the self-signed cluster
        CA of a fresh installation; V(false) is for throwaway labs only.
      - Uses the E(PROXMOX_VALIDATE_CERTS) environment variable if not specified.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of the certificate authorities to verify the API's certificate with, for example a copy of
        C(/etc/pve/pve-root-ca.pem) from a node. The system's CA store is used when not given.
      - Uses the E(PROXMOX_CA_PATH) environment variable if not specified.
    type: path
requirements:
  - proxmoxer >= 2.0
  - requests
notes:
  - Secrets (O(api_password), O(api_token_secret)) are never returned or logged.
"""
