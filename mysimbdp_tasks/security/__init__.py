"""Identities, secrets and authorization of the platform's services (secure mode)."""
