# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A faithful, stateful Proxmox VE API test server (tests only, never shipped).

- :mod:`.schema`: request validation against the official schema (``apidata-v8/v9.json``), PVE's
  property-string parser/printer and format checks, with PVE's exact error texts.
- :mod:`.state`: the cluster the server emulates (guests with pending changes, node networks,
  SDN, firewall, tasks) and the PVE behaviour on top of it.
- :mod:`.server`: :class:`~.server.PveServer`, the HTTPS server on ``/api2/json``.
- :mod:`.fixtures`: ``pve_lab()`` and the ``pve_server`` pytest fixture (the namespace helpers, ``inside_netns()``
  among them, are in :mod:`..netns`).
"""
