"""How long sealing and unsealing one offer's personal data takes (JWE + JWS, jwcrypto), and
the intake vault's per-person encryption. Run: .venv/bin/python bench/sealing.py"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

from services.intake.vault import PersonKey, Vault
from wegweiser.platform import keys, sealing
from wegweiser.platform.db import Database

CASE = {
    "client_name": "Amira Beispiel",
    "needs": ["legal-aid", "language-course"],
    "languages": ["ar", "de"],
    "municipality": "13076090",
    "age": 34,
    "note": "Termin beim Ausländeramt am 3. Dezember; braucht Hilfe beim Antrag." * 3,
    "released_categories": ["name", "needs", "languages", "area", "age", "case-note"],
}


def per_op(fn: Callable[[], object], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000


def main(n: int = 500) -> None:
    agency, office = keys.generate_encryption_key(), keys.generate_signing_key()
    public = keys.public_dict(agency)

    def seal() -> str:
        return sealing.seal(
            CASE,
            recipient=keys.from_dict(public),
            recipient_kid="agency-a",
            signer=office,
            signer_kid="office-1",
        )

    token = seal()
    db = Database("sqlite://", [PersonKey])
    db.migrate()
    vault = Vault(os.urandom(32))
    blob = db.run_sync(lambda s: vault.seal(s, "client-1", "req-1", CASE))
    print(
        f"== sealing benchmark ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {n} ops each) =="
    )
    print(f"seal offer (JWS EdDSA + JWE ECDH-ES/X25519 A256GCM)   {per_op(seal, n):.3f} ms")
    signers = {"office-1": office}
    unseal_ms = per_op(
        lambda: sealing.unseal(token, key=agency, kid="agency-a", signers=signers), n
    )
    open_ms = per_op(lambda: db.run_sync(lambda s: vault.open(s, "client-1", "req-1", blob)), n)
    print(f"unseal offer (decrypt + verify)                     {unseal_ms:.3f} ms")
    print(f"vault open (per-person AES-256-GCM, key unwrap, SQLite) {open_ms:.3f} ms")
    print(
        f"sealed offer size                                   {len(token)} bytes "
        f"({len(str(CASE))} bytes of case)"
    )


if __name__ == "__main__":
    main()
