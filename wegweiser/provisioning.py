"""What the administrator sets up on the broker: users, accounts, the stream and consumers.

`wegweiser up` runs it before it starts the services, and keeps the broker watch (the healer)
running beside them; `wegweiser broker watch` does the same for an installation whose
services systemd runs. Nothing else may create, change or delete the stream or a consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from nats.aio.client import Client
from sqlalchemy import inspect
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay

from schemas import subjects
from wegweiser.platform import grants, nats_auth, topology
from wegweiser.platform.connect import NotAuthorized, connect
from wegweiser.platform.files import write_private
from wegweiser.platform.healer import UNAVAILABLE, Healer
from wegweiser.platform.keys import KeyRing
from wegweiser.registry import ON_THE_BROKER, SERVICES
from wegweiser.settings import Settings

log = structlog.get_logger()


def seeds(settings: Settings) -> nats_auth.Seeds:
    return nats_auth.Seeds(settings.keys_path / "nats")


def ensure_broker_users(settings: Settings) -> None:
    """An nkey for the administrator and for every service on the broker."""
    found = seeds(settings)
    for principal in (grants.ADMIN, *ON_THE_BROKER):
        found.ensure(found.path(principal))


def ensure_demo_keys(settings: Settings) -> None:
    """The embedded setup plays every sample agency: give each a key pair, and each office
    its signing and sealing keys, unless they exist. Real agencies make their own and publish
    the public half."""
    from services.audit import keys as audit_keys
    from services.directory.sample import sample_agency_ids

    ring = KeyRing(settings.keys_path)
    for office_id in settings.all_offices:
        ring.office_signing(office_id)
        ring.office_sealing(office_id)
    audit_keys.signing(ring)
    ensure_broker_users(settings)
    for agency_id in sample_agency_ids():
        ring.ensure_agency(agency_id)
    for agency_id in sample_agency_ids("nats"):
        seeds(settings).ensure(seeds(settings).agency_path(agency_id))


def ensure_web_token(settings: Settings) -> None:
    """The web app's token for the directory's admin routes (its administrators' pages); the
    directory keeps only its digest. Made once, by the administrator who runs `up`."""
    from services.directory.access import AdminTokens, ensure_holder_token

    tokens = AdminTokens(settings.directory_admin_tokens_path)
    ensure_holder_token(tokens, settings.web_directory_token_path, "web")


@dataclass(frozen=True)
class Registry:
    """What the directory knows of agencies: channels, enrolled broker users, revocations."""

    channels: dict[str, str]
    users: dict[str, str]  # agency id -> public nkey it enrolled with
    revoked: frozenset[str]


def broker_agencies(settings: Settings, registry: Registry | None) -> list[grants.Agency]:
    """The agencies the broker serves: every NATS agency with a broker user (enrolled, or a
    seed file the county holds for it), and the webhook and e-mail agencies of the directory
    (its `registry`, or the sample before the directory first started), whom the gateway
    serves. A revoked agency is none of them."""
    from services.directory.sample import sample_agency_ids

    listed = registry.channels if registry else {}
    if not listed:
        listed = {a: c for c in ("webhook", "email") for a in sample_agency_ids(c)}
    users = {*seeds(settings).agencies(), *(registry.users if registry else ())}
    found = {a: grants.Agency(a, "nats") for a in users}
    for agency_id, channel in listed.items():
        if channel in grants.GATEWAY_CHANNELS:
            found[agency_id] = grants.Agency(agency_id, channel)
    revoked = registry.revoked if registry else frozenset()
    return sorted((a for a in found.values() if a.id not in revoked), key=lambda a: a.id)


_registries: dict[str, tuple[int, Registry]] = {}
"""The registry last read from each directory database, with its generation: the broker watch
asks every second, and a national directory's agencies are many."""


def directory_registry(settings: Settings, strict: bool = False) -> Registry | None:
    """The directory's view of agencies; None before the directory has a database, or (unless
    `strict`, which raises instead) while it cannot be read."""
    url = settings.db_url("directory")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    from services.directory import identities, store
    from wegweiser import registry

    database = registry.service("directory").database(settings)

    def read(session: Any) -> Registry | None:
        if not inspect(session.connection()).has_table(store.StateRow.__tablename__):
            return None  # the directory is making its tables: as if it had none yet
        generation = store.generation(session)  # raised by every change to agencies or keys
        known = _registries.get(url)
        if known is not None and known[0] == generation:
            return known[1]
        channels = {a.id: a.channel for a in store.all_agencies(session)}
        found = Registry(
            channels,
            identities.broker_users(session),
            frozenset(identities.revoked_agencies(session) & channels.keys()),
        )
        _registries[url] = (generation, found)
        return found

    try:
        return database.read_sync(read)
    except Exception as exc:
        if strict:
            raise
        log.info("provisioning.directory_not_ready", error=repr(exc), using="the sample")
        return None
    finally:
        database.dispose()


def declared_consumers(agencies: list[grants.Agency]) -> list[topology.ConsumerSpec]:
    """Every durable the broker must have: the services' and one per agency."""
    return [*topology.consumers(), *(topology.agency_consumer(a.id) for a in agencies)]


def accounts(
    settings: Settings, agencies: list[grants.Agency] | None = None, strict: bool = False
) -> str:
    """The accounts block for the embedded server, from the grants (for `agencies`, by
    default `broker_agencies`); also written to `<data_dir>/nats/auth.conf` (for an operator's
    own nats-server) with the agencies it covers (`agencies.json`, read by the broker watch).
    `strict`: raise when the directory cannot be read, rather than fall back to the sample."""
    ensure_broker_users(settings)
    found = seeds(settings)
    registry = directory_registry(settings, strict)
    agencies = broker_agencies(settings, registry) if agencies is None else agencies
    enrolled = {
        f"agency-{subjects.token(a)}": user
        for a, user in (registry.users if registry else {}).items()
    }

    def user(principal: str) -> str:
        """An agency's enrolled user, else the seed file the county holds for the principal."""
        return enrolled.get(principal) or nats_auth.public_key(found.path(principal))

    principals = [
        nats_auth.Principal(grant, user(grant.principal))
        for grant in grants.every_grant(SERVICES, agencies)
    ]
    block = nats_auth.render(nats_auth.public_key(found.path(grants.ADMIN)), principals)
    folder = settings.data_dir / "nats"
    _write_if_changed(folder / "auth.conf", block)
    listed = [{"id": a.id, "channel": a.channel} for a in agencies]
    _write_if_changed(folder / "agencies.json", json.dumps(listed, indent=1))
    return block


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    write_private(path, text)
    return True


def known_agencies(settings: Settings) -> list[grants.Agency]:
    """The agencies of the accounts last rendered (what the running broker knows)."""
    path = settings.data_dir / "nats" / "agencies.json"
    if not path.exists():
        return []
    return [grants.Agency(a["id"], a["channel"]) for a in json.loads(path.read_text())]


def reload_accounts(settings: Settings, strict: bool = False) -> bool:
    """Give the running embedded nats-servers the accounts as the directory has them now (a
    server whose accounts are already these is left alone); False when none runs here.

    The broker watch runs this every round (`strict`: a directory it cannot read changes
    nothing), so that an agency approved or revoked, from the web app too, gains or loses
    its broker user within about a second; the commands that change agencies run it too."""
    from wegweiser.supervisor import runtime_info

    block = accounts(settings, strict=strict)
    nodes = runtime_info(settings.data_dir).get("nats_nodes") or []
    running = 0
    for node in nodes:  # type: ignore[attr-defined]
        conf = Path(node["config"])
        if not conf.exists():
            continue
        text = conf.read_text()
        head = text[: text.index("accounts {")] if "accounts {" in text else text
        try:
            if _write_if_changed(conf, head + block):
                os.kill(int(node["pid"]), signal.SIGHUP)
                log.info("broker.accounts_reloaded", node=str(conf.parent.name))
        except ProcessLookupError:
            continue
        running += 1
    return running > 0


async def connect_as(
    url: str, seed: Path | None, name: str, within: float = 10.0, attempts: int | None = None
) -> Client:
    """Connect with `seed`, retrying while a server reload that adds the user completes;
    `attempts` as for `connect` (a command's: give up on a broker that is not there)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(NotAuthorized),
        wait=topology.retry("broker").wait(),
        stop=stop_after_delay(within),
        reraise=True,
    ):
        with attempt:
            return await connect(url, name, seed, attempts=attempts)
    raise AssertionError("unreachable: tenacity reraises the last NotAuthorized")


async def provision(settings: Settings, url: str, agencies: list[grants.Agency]) -> None:
    """Create or update the stream and every declared consumer, as the administrator."""
    nc = await connect_as(url, _admin_seed(settings), "wegweiser-provisioning")
    try:
        js = nc.jetstream()
        await topology.ensure_stream(js, settings.stream_replicas)
        await topology.ensure_consumers(js, declared_consumers(agencies), settings.max_deliver)
    finally:
        await nc.drain()


async def provision_agency(
    settings: Settings, url: str, agency_id: str, attempts: int | None = None
) -> None:
    """The agency's durable consumer, made now rather than at the broker watch's next round;
    `attempts` as for `connect`."""
    nc = await connect(url, "wegweiser-admin", _admin_seed(settings), attempts=attempts)
    try:
        spec = topology.agency_consumer(agency_id)
        await topology.ensure_consumers(nc.jetstream(), [spec], settings.max_deliver)
    finally:
        await nc.drain()


class AccountsSync:
    """Keeps the broker's accounts in step with the directory: an agency approved or revoked
    (from the web app too) gains or loses its broker user at the watch's next round. The
    accounts are rendered anew only when what they derive from changed: the directory's
    registry (read by its generation) or the seed files the county holds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._last: tuple[Registry | None, list[tuple[str, int]]] | None = None

    def once(self) -> bool:
        """True when the accounts changed and the running servers were given them; raises,
        changing nothing, when the directory cannot be read."""
        folder = seeds(self.settings).folder
        held = sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.nk"))
        found = (directory_registry(self.settings, strict=True), held)
        if found == self._last:
            return False
        reload_accounts(self.settings, strict=True)
        self._last = found
        return True


async def watch(settings: Settings, url: str, stop: asyncio.Event, every: float = 1.0) -> None:
    """Heal the stream and the consumers until `stop` is set."""
    nc = await connect_as(url, _admin_seed(settings), "wegweiser-broker-watch")
    healer = Healer(
        nc.jetstream(timeout=5),
        lambda: declared_consumers(known_agencies(settings)),
        settings.max_deliver,
        settings.stream_replicas,
        state=settings.data_dir / "nats" / "positions.json",
    )
    sync = AccountsSync(settings)
    unread: str | None = None  # why the directory could not be read, said once
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(sync.once)
                unread = None
            except Exception as exc:  # noqa: BLE001 - the accounts stay as they were
                if unread != repr(exc):
                    log.warning("broker.directory_unread", error=repr(exc), accounts="unchanged")
                unread = repr(exc)
            try:
                await healer.check_once()
            except UNAVAILABLE as exc:
                log.warning("broker.watch_unanswered", error=repr(exc))
            except Exception as exc:
                log.exception("broker.watch_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        with contextlib.suppress(Exception):  # a connection lost for good has nothing to drain
            await nc.drain()


def _admin_seed(settings: Settings) -> Path | None:
    """The administrator's nkey; None on a broker without accounts (then anyone is admin)."""
    return settings.nats_seed_path
