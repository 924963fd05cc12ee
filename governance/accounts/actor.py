"""Who is acting: the identity every service call and audit record carries."""

from __future__ import annotations

from dataclasses import dataclass

from governance.errors import PermissionDenied


@dataclass(frozen=True)
class Actor:
    """An authenticated caller (a user, an API key) or the appliance itself."""

    type: str  # "user" | "key" | "system" | "anonymous"
    id: str
    role: str
    name: str
    models: tuple[str, ...] | None = None  # None: no restriction by model
    labels_only: bool = False
    # An API key's budget (governance/accounts/budgets.py); None: no limit.
    rate: int | None = None
    rows_per_day: int | None = None
    precision: int | None = None

    def may_use_model(self, model_name: str) -> bool:
        return self.models is None or model_name in self.models

    def check_model(self, model_name: str) -> None:
        """PermissionDenied unless this actor may act on `model_name`. Services call it,
        so the scope holds on every door (API, pages, CLI, scheduler)."""
        if not self.may_use_model(model_name):
            raise PermissionDenied("this API key is limited to other models")


SYSTEM = Actor(type="system", id="system", role="admin", name="cofre")
ANONYMOUS = Actor(type="anonymous", id="-", role="-", name="anonymous")


def cli_operator(name: str) -> Actor:
    """The operator at the terminal: the CLI acts with the host's authority."""
    return Actor(type="system", id=f"cli:{name}", role="admin", name=name)
