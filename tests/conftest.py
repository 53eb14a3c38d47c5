"""Test-wide isolation: offscreen Qt, private user directories, an in-memory keyring."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before anything imports Qt or platformdirs resolves a path.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_HOME = Path(tempfile.mkdtemp(prefix="churndesk-tests-home-"))
for _var, _sub in (
    ("XDG_DATA_HOME", "data"),
    ("XDG_CONFIG_HOME", "config"),
    ("XDG_CACHE_HOME", "cache"),
    ("XDG_STATE_HOME", "state"),
    ("XDG_RUNTIME_DIR", "runtime"),
):
    os.environ[_var] = str(_HOME / _sub)
    (_HOME / _sub).mkdir(mode=0o700, parents=True, exist_ok=True)
os.environ.pop("CHURNDESK_DATABASE_URL", None)

import keyring  # noqa: E402
from keyring.backend import KeyringBackend  # noqa: E402
from keyring.errors import PasswordDeleteError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TELCO_CSV = REPO.parent / "shared" / "data" / "telco_customer_churn.csv"


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in a dict: tests never touch (or need) an OS keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture(autouse=True)
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture
def telco_csv() -> Path:
    if not TELCO_CSV.exists():
        pytest.fail(f"the shared Telco data set is missing: {TELCO_CSV}")
    return TELCO_CSV
