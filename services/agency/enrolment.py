"""The agency's side of enrolment, on the agency's own machine: make its keys, send only
their public halves with proofs of possession, collect the answer once the county approved.

Its key folder (mode 700) holds, each mode 600:
- `sealing.jwk`: the X25519 key its cases are sealed to;
- `signing.jwk`: the Ed25519 key that proves its enrolment;
- `broker.nk`: the seed of its broker user;
- `enrolment.json`: the enrolment's id and the directory's address;
- `connection.json`: once approved, the names its NATS adapter needs (stream, durable,
  subjects, inbox prefix);
- `webhook.secret`: once approved, a webhook agency's signing secret;
- `offices.json`: the offices' public signing keys, by key id (every case is signed by one);
- `office-sealing.json`: the offices' public sealing keys, by office id (a comment to an
  office is sealed to its key).
No private half ever leaves the folder.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nkeys
from jwcrypto import jwe, jwk, jws

from schemas.enrolment import rotation_statement, statement
from wegweiser.platform.files import write_private

SEALING, SIGNING, BROKER = "sealing.jwk", "signing.jwk", "broker.nk"
ENROLMENT, CONNECTION, WEBHOOK_SECRET = "enrolment.json", "connection.json", "webhook.secret"
OFFICES = "offices.json"
OFFICE_SEALING = "office-sealing.json"


class EnrolmentFailed(Exception):
    """The directory refused the enrolment, or could not be reached; says why."""


@dataclass(frozen=True)
class AgencyKeys:
    """The agency's own keys, made once in its folder."""

    folder: Path

    def ensure(self) -> AgencyKeys:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        makers: list[tuple[str, Callable[[], str]]] = [
            (SEALING, lambda: jwk.JWK.generate(kty="OKP", crv="X25519").export_private()),
            (SIGNING, lambda: jwk.JWK.generate(kty="OKP", crv="Ed25519").export_private()),
            (BROKER, lambda: nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()),
        ]
        for name, make in makers:
            if not (self.folder / name).exists():
                write_private(self.folder / name, make())
        return self

    @property
    def sealing(self) -> jwk.JWK:
        """The current sealing key."""
        return jwk.JWK.from_json((self.folder / SEALING).read_text())

    @property
    def sealing_keys(self) -> list[jwk.JWK]:
        """Every sealing key it still holds, the current first: a case sealed before a
        rotation took effect opens with the key it replaced."""
        kept = sorted(self.folder.glob("sealing.*.jwk"), key=lambda p: p.stat().st_mtime)
        return [self.sealing, *(jwk.JWK.from_json(p.read_text()) for p in reversed(kept))]

    @property
    def signing(self) -> jwk.JWK:
        return jwk.JWK.from_json((self.folder / SIGNING).read_text())

    @property
    def offices(self) -> dict[str, jwk.JWK]:
        """The offices whose signatures it trusts (saved when the enrolment was approved)."""
        found = json.loads((self.folder / OFFICES).read_text())
        return {kid: jwk.JWK(**key) for kid, key in found.items()}

    @property
    def office_sealing(self) -> dict[str, jwk.JWK]:
        """The offices' sealing keys, by office id (saved when the enrolment was approved)."""
        path = self.folder / OFFICE_SEALING
        found = json.loads(path.read_text()) if path.exists() else {}
        return {office: jwk.JWK(**key) for office, key in found.items()}

    @property
    def broker_seed(self) -> Path:
        return self.folder / BROKER

    @property
    def broker_user(self) -> str:
        pair = nkeys.from_seed(bytearray(self.broker_seed.read_bytes().strip()))
        return bytes(pair.public_key).decode()


def enrolment_request(keys: AgencyKeys, code: str) -> dict[str, Any]:
    """The body for `POST /enrolments`: public halves, and both proofs over one statement."""
    sealing, signing, user = keys.sealing, keys.signing, keys.broker_user
    said = statement(code, sealing.thumbprint(), signing.thumbprint(), user)
    proof = jws.JWS(said)
    proof.add_signature(signing, alg="EdDSA", protected={"alg": "EdDSA"})
    pair = nkeys.from_seed(bytearray(keys.broker_seed.read_bytes().strip()))
    return {
        "code": code,
        "sealing_key": sealing.export_public(as_dict=True),
        "signing_key": signing.export_public(as_dict=True),
        "nats_user": user,
        "proof": proof.serialize(compact=True),
        "nats_proof": base64.urlsafe_b64encode(pair.sign(said)).decode().rstrip("="),
    }


def rotate(folder: Path, agency_id: str, valid_from: datetime) -> dict[str, Any]:
    """New sealing and signing keys, published by the directory from `valid_from` (signed
    by the current signing key and the new one). The new keys are written aside first
    (`*.next.jwk`), so a rotation interrupted at any point is completed by running it again;
    the replaced sealing key is kept for the cases sealed to it during the overlap."""
    keys = AgencyKeys(folder)
    saved = json.loads((folder / ENROLMENT).read_text())
    fresh = {}
    for name, crv in ((SEALING, "X25519"), (SIGNING, "Ed25519")):
        aside = folder / name.replace(".jwk", ".next.jwk")
        if not aside.exists():
            write_private(aside, jwk.JWK.generate(kty="OKP", crv=crv).export_private())
        fresh[name] = jwk.JWK.from_json(aside.read_text())
    sealing, signing = fresh[SEALING], fresh[SIGNING]
    when = valid_from.isoformat()
    said = rotation_statement(agency_id, sealing.thumbprint(), signing.thumbprint(), when)

    def signed(key: jwk.JWK) -> str:
        token = jws.JWS(said)
        token.add_signature(key, alg="EdDSA", protected={"alg": "EdDSA"})
        return str(token.serialize(compact=True))

    body = {
        "sealing_key": sealing.export_public(as_dict=True),
        "signing_key": signing.export_public(as_dict=True),
        "valid_from": when,
        "proof": signed(keys.signing),
        "new_proof": signed(signing),
    }
    url = f"{saved['directory_url'].rstrip('/')}/agencies/{agency_id}/keys"
    try:
        answer = _answer(httpx.post(url, json=body, timeout=15))
    except httpx.HTTPError as exc:
        raise EnrolmentFailed(f"the directory is not reachable: {exc}") from None
    old = keys.sealing
    write_private(folder / f"sealing.{old.thumbprint()}.jwk", old.export_private())
    for name in (SEALING, SIGNING):
        os.replace(folder / name.replace(".jwk", ".next.jwk"), folder / name)
    return answer


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"detail": response.text[:300]}
    if response.status_code >= 400:
        code = body.get("code", f"HTTP {response.status_code}")
        raise EnrolmentFailed(f"{code}: {body.get('detail', body)}")
    return body


def enrol(directory_url: str, code: str, folder: Path) -> dict[str, Any]:
    """Make the keys (unless they exist) and ask to enrol; the directory's answer."""
    keys = AgencyKeys(folder).ensure()
    try:
        response = httpx.post(
            f"{directory_url.rstrip('/')}/enrolments",
            json=enrolment_request(keys, code),
            timeout=15,
        )
    except httpx.HTTPError as exc:
        raise EnrolmentFailed(f"the directory at {directory_url} is not reachable: {exc}") from None
    answer = _answer(response)
    write_private(
        folder / ENROLMENT,
        json.dumps({"directory_url": directory_url, **answer}, indent=2) + "\n",
    )
    return answer


def collect(folder: Path) -> dict[str, Any]:
    """Look at the enrolment; once approved, save what the agency needs to take part."""
    saved = json.loads((folder / ENROLMENT).read_text())
    url = f"{saved['directory_url'].rstrip('/')}/enrolments/{saved['enrolment_id']}"
    try:
        state = _answer(httpx.get(url, timeout=15))
    except httpx.HTTPError as exc:
        raise EnrolmentFailed(f"the directory is not reachable: {exc}") from None
    if state["status"] != "approved":
        return state
    write_private(folder / OFFICES, json.dumps(state.get("office_keys", {}), indent=2) + "\n")
    sealing_keys = state.get("office_sealing_keys", {})
    write_private(folder / OFFICE_SEALING, json.dumps(sealing_keys, indent=2) + "\n")
    if state.get("nats"):
        write_private(folder / CONNECTION, json.dumps(state["nats"], indent=2) + "\n")
    if state.get("sealed_delivery"):
        sealed = jwe.JWE()
        sealed.deserialize(state["sealed_delivery"], key=AgencyKeys(folder).sealing)
        secret = json.loads(sealed.payload)["webhook_secret"]
        write_private(folder / WEBHOOK_SECRET, secret + "\n")
    return state
