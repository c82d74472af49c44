"""The last administrator stays: no change may leave nobody who can sign in as an admin.

An administrator who can sign in is a member of the role ``admin`` (in the
config or by API), not disabled, with a token that is neither revoked nor
expired. Removing the last one (its membership, its last token, or the config
entry that made it an admin) would leave the server with nobody who can grant
anything again. Each such change is checked and made under a lock
(``tx.lock_admins()``), so two made at once cannot both pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from interlock.errors import Conflict
from interlock.storage.tx import Tx

ADMIN = "admin"
WHAT_TO_DO = (
    "first make another admin (`interlock role add admin NAME`) and give them a "
    "token (`interlock token create --user NAME`)"
)


class NamesAdmins(Protocol):
    """What knows the admins the active config names (the engine's `Configs`)."""

    def admins(self) -> set[str]:
        """The members of role ``admin`` named by the active config."""
        ...


def admins_who_can_sign_in(
    tx: Tx,
    from_config: Iterable[str],
    now: datetime,
    *,
    without_member: str | None = None,
    without_token: int | None = None,
) -> set[str]:
    """Who can sign in as an admin now, or after removing a membership or a token."""
    stored = tx.members("role", ADMIN) - ({without_member} if without_member else set())
    able = set()
    for name in sorted(set(from_config) | stored):
        user = tx.get_user(name)
        if user is None or user.disabled:
            continue
        if any(
            t.revoked_at is None
            and (t.expires_at is None or t.expires_at > now)
            and t.id != without_token
            for t in tx.tokens_of(user.id)
        ):
            able.add(name)
    return able


def keep_an_admin(
    tx: Tx,
    configs: NamesAdmins,
    now: datetime,
    *,
    without_member: str | None = None,
    without_token: int | None = None,
) -> None:
    """Raise :class:`Conflict` (409) if the change would leave no admin who can sign in."""
    tx.lock_admins()
    named = configs.admins()  # read under the lock: a config loaded meanwhile counts
    before = admins_who_can_sign_in(tx, named, now)
    after = admins_who_can_sign_in(
        tx, named, now, without_member=without_member, without_token=without_token
    )
    if before and not after:
        who = ", ".join(sorted(before))
        what = (
            f"removing {without_member} from role admin"
            if without_member
            else f"revoking token {without_token}"
        )
        raise Conflict(
            f"{what} would leave no administrator who can sign in ({who} is the last); "
            + WHAT_TO_DO
        )


def keep_an_admin_in_config(
    tx: Tx, before: Iterable[str], after: Iterable[str], now: datetime, *, version: int
) -> None:
    """Raise :class:`Conflict` if a new config's ``roles: admin:`` leaves no admin who can sign in.

    ``before`` and ``after`` are the admins the active config (``version``) and
    the new one name.
    """
    tx.lock_admins()
    was = admins_who_can_sign_in(tx, before, now)
    if not was or admins_who_can_sign_in(tx, after, now):
        return
    who = ", ".join(sorted(was))
    raise Conflict(
        f"this config leaves no administrator who can sign in: `roles: admin:` no longer "
        f"names {who} (the last); keep them there, or {WHAT_TO_DO} and load it again. "
        f"The active config (version {version}) stays"
    )
