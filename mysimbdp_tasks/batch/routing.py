"""Which tenant a staged file is for, and whether whoever put it there may ingest as that tenant.

Two ways to name the tenant: the file's name prefix (``tenant1-anything.json`` in ``staging/``) or
its subfolder (``staging/tenant1/anything.json``). Anyone who can write to staging could use either
to ingest as any tenant; as an option (``MYSIMBDP_STAGING_OWNERS``) a tenant's files must belong to
the Unix user configured for it, and ``MYSIMBDP_FLAT_STAGING=0`` turns the name prefixes off so
each tenant writes only in its own folder (which the operator gives to that user alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.settings import Settings


@dataclass(frozen=True)
class Refusal:
    reason: str
    limit: str
    usage: str


def tenant_of(name: str) -> str:
    """The tenant named by a staged file: the prefix before the first '-' or '_'."""
    cut = min((i for i in (name.find("-"), name.find("_")) if i > 0), default=-1)
    return name[:cut] if cut > 0 else ""


def owner_refusal(settings: Settings, tenant: str, folder_tenant: str, uid: int) -> Refusal | None:
    """Why a file owned by ``uid`` may not be ingested as ``tenant``, or None if it may."""
    if not folder_tenant and not settings.flat_staging:
        return Refusal("flat_staging_disabled", "staging/<tenant>/", "staging/")
    if not settings.staging_owners:
        return None
    owner = settings.staging_owner(tenant)
    if owner is None:
        return Refusal("owner_not_configured", "MYSIMBDP_STAGING_OWNERS", f"uid {uid}")
    if uid != owner:
        return Refusal("wrong_owner", f"uid {owner}", f"uid {uid}")
    return None
