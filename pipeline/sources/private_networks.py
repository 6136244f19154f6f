"""A company's private-network rule as an operator gives it, and what it stores (the CLI imports it)."""

from __future__ import annotations

from typing import Literal

__all__ = ["PRIVATE_NETWORK_RULES", "PrivateNetworks"]

#: Allowed, denied, or the deployment's CSV_ALLOW_PRIVATE_NETWORKS.
PrivateNetworks = Literal["allow", "deny", "default"]

#: What each rule stores in ``company.allow_private_networks``; ``None`` follows the global setting.
PRIVATE_NETWORK_RULES: dict[PrivateNetworks, bool | None] = {"allow": True, "deny": False, "default": None}
