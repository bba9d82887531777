"""Key files made on first start by instances that start together."""

from __future__ import annotations

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jwcrypto import jwk

from wegweiser.platform import keys


def test_instances_that_make_a_key_at_once_all_keep_the_first_written(tmp_path: Path) -> None:
    path = tmp_path / "intake" / "token-signing.jwk"
    racers = 8
    all_made = threading.Barrier(racers)

    def make() -> jwk.JWK:
        all_made.wait()  # every instance has found no file and made its own key
        return keys.generate_signing_key()

    with ThreadPoolExecutor(racers) as pool:
        loaded = list(pool.map(lambda _: keys.load_or_create(path, make), range(racers)))

    on_file = keys.load(path)
    assert {key.thumbprint() for key in loaded} == {on_file.thumbprint()}
    assert keys.load(keys.public_path(path)).thumbprint() == on_file.thumbprint()
    assert on_file.has_private and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "token-signing.jwk",
        "token-signing.pub.jwk",
    ]  # nothing left aside


def test_a_key_made_anew_gets_its_own_public_half_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "office" / "lup-integration-office.jwk"
    first = keys.load_or_create(path, keys.generate_signing_key)
    path.unlink()  # the administrator removes the private key to have a new one made
    second = keys.load_or_create(path, keys.generate_signing_key)
    assert second.thumbprint() != first.thumbprint()
    assert keys.load(keys.public_path(path)).thumbprint() == second.thumbprint()
