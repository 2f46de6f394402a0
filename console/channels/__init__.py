"""Channel adapters: one module per account kind, each speaking one service's protocol.

The account kind's catalog entry (console.channels.catalog) names its module, which exposes
`configure(account: AccountConfig, workspace: WorkspaceConfig) -> Channel`: it validates its keys
(raising `account.error(...)`) and returns an adapter. Adding a channel is one module here, its
catalog entry, and its fake under tests/fakes/; nothing else changes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from console.channels.base import Channel

if TYPE_CHECKING:
    from console.config import AccountConfig, WorkspaceConfig

__all__ = ["Channel", "open_channel"]


def open_channel(account: "AccountConfig", workspace: "WorkspaceConfig") -> Channel:
    """Build the adapter for one configured account. Raises ConfigError for bad settings."""
    from console.channels import catalog

    module = importlib.import_module(catalog.account_kind(account.kind).module)
    channel = module.configure(account, workspace)
    unknown = account.unknown_keys()
    if unknown:
        raise account.error(unknown[0], f"unknown key for a {account.kind} account")
    return channel
