"""Accounts, capital tiers and deterministic position sizing (pure code)."""
