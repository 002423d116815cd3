"""The pseudonymous patient key: HMAC-SHA256 of the patient id with a secret.

The same patient gets the same key across calls, workers and restarts (so governance can count
patients and follow one patient's cards), but the key cannot be turned back into the id without
the secret, and the raw id is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_FILE = "patient-key.secret"  # noqa: S105 (a file name, not a secret)


class PatientKeyer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __call__(self, patient_id: str) -> str:
        return hmac.new(self._secret, patient_id.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "PatientKeyer(<secret>)"


def load_or_create_secret(
    data_dir: Path,
    file_name: str = SECRET_FILE,
    setting: str = "CYTOKINE_CDS_PATIENT_KEY_SECRET",
    purpose: str = "the patient key",
) -> bytes:
    """The generated secret under `data_dir`, made once (mode 0600) and shared by every process.

    Also used for other generated secrets (the profile-link secret): `file_name` names the file,
    `setting` the variable that replaces it, `purpose` what it is for (in the warning).

    The file is written under a temporary name and linked into place, so two processes starting
    together cannot each keep their own secret: the second link fails and both read the first.
    """
    path = data_dir / file_name
    if not path.exists():
        temporary = data_dir / f".{file_name}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race: use its secret
        finally:
            temporary.unlink()
    log.warning(
        "%s uses the generated secret in %s; in production set %s (the same on every replica)",
        purpose,
        path,
        setting,
    )
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise ValueError(f"{path} holds no usable secret; delete it to generate a new one")
    return secret.encode()
