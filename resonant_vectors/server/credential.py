"""The credential: the folder's random root password, owner-only, never made anew once set.

Why its own module: who may log in to a folder's server, and the one clear message when its
credential is missing or refused (the memory is intact then; no retry helps).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from resonant_vectors.server.errors import EmbeddedMilvusError

CREDENTIAL_FILE = "credential.json"  # the folder's root password, readable by its owner only
PASSWORD_SET_FILE = "password-set"   # not secret: root's password was set, so credential.json is never made anew
USER = "root"                  # Milvus's superuser, the one user of an embedded server
DEFAULT_PASSWORD = "Milvus"    # root's password in a fresh Milvus, replaced at the folder's first start


class CredentialError(EmbeddedMilvusError):
    """The folder's credential is missing, damaged or refused by its server: no retry helps, and the
    memory itself is intact."""


def password_was_set(data_dir: Path) -> bool:
    """Whether root's password on this folder was changed from Milvus's default: the marker says so,
    or, for a folder of the version before the marker, credential.json's "applied"."""
    if (data_dir / PASSWORD_SET_FILE).exists():
        return True
    try:
        return json.loads((data_dir / CREDENTIAL_FILE).read_text()).get("applied") is True
    except (OSError, ValueError, AttributeError):
        return False


def note_password_set(data_dir: Path, credential: dict) -> None:
    with open(data_dir / PASSWORD_SET_FILE, "w", opener=owner_only) as marker:
        marker.write(f"root's password on this folder is set; {CREDENTIAL_FILE} holds it. Without that file, "
                     "or with another one, the server is not started (it is never made anew).\n")
    if not credential.get("applied"):
        write_credential(data_dir, dict(credential, applied=True))  # what the version before the marker reads


def read_credential(data_dir: Path) -> dict:
    path = data_dir / CREDENTIAL_FILE
    try:
        credential = json.loads(path.read_text())
        if isinstance(credential, dict) and isinstance(credential.get("password"), str):
            return credential
    except FileNotFoundError:
        if password_was_set(data_dir):
            raise CredentialError(missing_message(data_dir)) from None
        raise CredentialError(f"{path} is missing: it holds the password of the embedded server on "
                              f"{data_dir}, made at the folder's first start. Start the server first.") from None
    except (OSError, ValueError):
        pass
    raise CredentialError(f"{path} is damaged (expected JSON with the user and password of the embedded "
                          f"server on {data_dir}). {credential_advice(data_dir)}")


def missing_message(data_dir: Path) -> str:
    return (f"{data_dir / CREDENTIAL_FILE} is missing: it holds the password this memory was secured with, "
            f"and the embedded server is not started without it. {credential_advice(data_dir)}")


def refused_message(data_dir: Path) -> str:
    return (f"the embedded Milvus server on {data_dir} refuses the password in {data_dir / CREDENTIAL_FILE}: "
            f"it is not the one this memory was secured with. {credential_advice(data_dir)}")


def credential_advice(data_dir: Path) -> str:
    return (f"The memory itself is intact: put the original {CREDENTIAL_FILE} back into {data_dir}, "
            f"or, to start a new, empty memory, move {data_dir} aside.")


def refuses_login(error: BaseException) -> bool:
    """Whether a pymilvus error is the server refusing a user and password. Milvus 2.3's proxy answers
    gRPC UNAUTHENTICATED; pymilvus raises that as it is on a request, and at connect as a
    ``MilvusException`` of code 2 ("Fail connecting to server"), the same as for no server at all,
    caused by it. (pymilvus also raises errors as their own cause: each is looked at once.)"""
    import grpc

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return True
        seen.add(id(error))
        error = error.__cause__
    return False


def raise_if_credential_refused(error: BaseException, data_dir: str | os.PathLike) -> None:
    """Raise ``CredentialError``, naming credential.json, if ``error`` is the embedded server on
    ``data_dir`` refusing the folder's password: no retry helps."""
    if refuses_login(error):
        raise CredentialError(refused_message(Path(data_dir).resolve())) from None


def write_credential(data_dir: Path, credential: dict) -> None:
    """Owner-only from the moment it exists (0600), replaced atomically."""
    temporary = data_dir / f"{CREDENTIAL_FILE}.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(credential, file)
    os.replace(temporary, data_dir / CREDENTIAL_FILE)


def owner_only(path: str, flags: int) -> int:
    """An ``opener`` for ``open``: a file it creates is readable by its owner only."""
    return os.open(path, flags, 0o600)
