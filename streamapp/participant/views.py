"""What the participants' listing views share: an entity lives in its key's partition
(stock in its sku's, an account in its customer's), so a request for one is forwarded to
the worker that owns it, and the list is gathered: each worker answers for the entities
it actively owns (``local=1``), like GET /sagas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from faust.web import Request

from streamapp.web.client import gather_local
from streamapp.web.views import ServiceView

if TYPE_CHECKING:
    from streamapp.participant.service import ParticipantService

PEER_TIMEOUT_S = 5.0


class Unassigned(Exception):
    """Some entity's partition has no known owner yet (a rebalance)."""


def local_entities(
    service: ParticipantService, ids: Iterable[str], key: Callable[[str], bytes]
) -> list[Any]:
    """The entities among `ids` (seeded: only those exist) whose partition this worker
    actively owns; a standby copy of another worker's partitions is not shown."""
    app, table = service.app, service.table
    owners = {entity: app.key_owner(table.name, entity) for entity in ids}
    if None in owners.values():
        raise Unassigned(f"the {service.name} partitions are not all assigned yet")
    mine = sorted(entity for entity, owner in owners.items() if owner == app.own_url)
    return list(service.entities(key(entity) for entity in mine))


async def gathered(
    view: ServiceView,
    request: Request,
    path: str,
    service: ParticipantService,
    ids: Iterable[str],
    key: Callable[[str], bytes],
    field: str,
    sort_by: str,
) -> Any:
    """The answer of the listing route `path`: ``{field: [...]}`` from this worker alone with
    ``local=1``, else from every worker of the service's table, sorted by `sort_by`;
    503 while a partition has no owner or a peer does not answer."""
    try:
        found = local_entities(service, ids, key)
    except Unassigned as exc:
        return view.json_error(503, "NotReady", str(exc))
    if request.query.get("local") == "1":
        return view.json({field: found})
    peers = service.app.peer_urls(service.table.name)
    theirs, missing = await gather_local(peers, path, field, PEER_TIMEOUT_S, {})
    if missing:
        return view.json_error(503, "PeerUnavailable", f"no answer from {missing}")
    found.extend(theirs)
    found.sort(key=lambda entity: str(entity[sort_by]))
    return view.json({field: found})
