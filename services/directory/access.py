"""Who may use the directory's admin routes: the holders of an admin token.

The directory keeps only each token's SHA-256, one per line in a private file
(`keys_dir/directory/admin-tokens`); the token itself is handed to its holder once (the web app
keeps its own in `keys_dir/web/directory-admin.token`). The file is read on every check, so a
line deleted from it revokes that token at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from wegweiser.platform.files import write_private

PREFIX = "wwa_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AdminTokens:
    """The digests of the tokens that may call the directory's admin routes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _digests(self) -> list[str]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]

    def issue(self, holder: str) -> str:
        """A new token for `holder` (named in the file beside its digest), shown this once."""
        token = PREFIX + secrets.token_urlsafe(32)
        kept = self.path.read_text() if self.path.exists() else "# sha256 holder\n"
        write_private(self.path, f"{kept}{_digest(token)} {holder}\n")
        return token

    def admits(self, token: str | None) -> bool:
        """True when `token` is one of the issued ones (compared in constant time)."""
        if not token or not token.startswith(PREFIX):
            return False
        given = _digest(token)
        return any(hmac.compare_digest(given, kept) for kept in self._digests())


def ensure_holder_token(tokens: AdminTokens, holder_file: Path, holder: str) -> str:
    """The token in `holder_file`, issued and written there (owner-only) if it has none."""
    if holder_file.exists():
        token = holder_file.read_text().strip()
        if tokens.admits(token):
            return token
    token = tokens.issue(holder)
    write_private(holder_file, token + "\n")
    return token
