"""Approve from a link: GET shows a confirmation page only; POST applies the API's rules.

A link names one stored row (random id) and carries an HMAC over everything the
row binds: the release, environment, gate, approver, the release's content
hash, the gate's planned spec and the expiry. Mail scanners open links, so
opening one changes nothing; the confirmation (a POST from that page) marks
the link used and records the decision through
:func:`interlock.engine.approvals.give` in one transaction: four-eyes, roles,
expiry and the gate's state are checked exactly as for an API call, and the
audit says ``via: link``. A rejection needs a comment.
"""

from __future__ import annotations

import hmac
import html
from dataclasses import dataclass
from typing import Any

from interlock.domain.states import TERMINAL_DEPLOYMENT
from interlock.engine.approvals import content_hash, give
from interlock.engine.core import Engine
from interlock.engine.identity import principal_of
from interlock.errors import Conflict, Forbidden, InterlockError, InvalidInput, NotFound
from interlock.notifications.gates import gate_digest, link_key, link_signature
from interlock.storage.notifications import ApprovalLink
from interlock.storage.tx import Tx

GONE = "this link is not valid (mistyped, or not from this server)"


@dataclass(frozen=True)
class LinkState:
    """A verified link, what it is about, and whether it can still be used."""

    link: ApprovalLink
    items: list[str]
    reason: str
    problem: str | None  # why it cannot be used (used, expired, changed), or None


def _verified(tx: Tx, token: str) -> ApprovalLink:
    link_id, _, signature = token.partition(".")
    link = tx.get_approval_link(link_id) if len(link_id) == 32 else None
    if link is None or not hmac.compare_digest(link_signature(link_key(tx), link), signature):
        raise NotFound(GONE)
    found: ApprovalLink = link
    return found


def _problem(tx: Tx, engine: Engine, link: ApprovalLink) -> str | None:
    now = engine.clock.now()
    if link.used_at is not None:
        return f"this link was used already ({link.used_decision}, {link.used_at.isoformat()})"
    if now >= link.expires_at:
        return f"this link expired at {link.expires_at.isoformat()}; act in Interlock instead"
    release = tx.get_release(link.release_id)
    if release is None or content_hash(release) != link.content_hash:
        return "the release changed since this link was sent; look at it in Interlock"
    for deployment in tx.list_deployments(release_id=release.id):
        if deployment.environment != link.environment or deployment.kind != "deploy":
            continue
        if deployment.state in TERMINAL_DEPLOYMENT:
            return f"the deployment to {link.environment} is already {deployment.state.value}"
        for node in tx.nodes_of(deployment.id):
            if node.key == f"gate/{link.gate}":
                if gate_digest(node, link.environment) != link.gate_digest:
                    return "the gate changed since this link was sent"
                return None
    return "the gate this link is for does not exist"


def look(engine: Engine, token: str) -> LinkState:
    """What a link is about (GET): nothing is changed."""
    with engine.db.read() as tx:
        link = _verified(tx, token)
        release = tx.get_release(link.release_id)
        items = [f"{i.service}@{i.version}" for i in release.items] if release else []
        return LinkState(link, items, release.reason if release else "", _problem(tx, engine, link))


def act(
    engine: Engine, access: Any, token: str, decision: str, comment: str | None
) -> dict[str, Any]:
    """Use the link (POST): mark it used and record the decision, in one transaction."""
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision is `approve` or `reject`", field="decision")
    if decision == "reject" and not (comment or "").strip():
        raise InvalidInput("a rejection needs a comment that says why", field="comment")
    config = engine.configs.active().config

    def work(tx: Tx) -> dict[str, Any]:
        link = _verified(tx, token)
        problem = _problem(tx, engine, link)
        if problem is not None:
            raise Conflict(problem)
        user = tx.get_user(link.approver)
        if user is None or user.disabled:
            raise Forbidden(f"{link.approver} can no longer sign in, so cannot approve")
        who = principal_of(tx, user, config.roles, config.teams)
        if not tx.use_approval_link(link.id, decision, engine.clock.now()):
            raise Conflict("this link was used already")
        return give(
            engine,
            access,
            who,
            release_id=link.release_id,
            environment=link.environment,
            gate=link.gate,
            decision=decision,
            comment=comment,
            via="link",
        )

    result: dict[str, Any] = engine.db.run(work)
    return result


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
textarea{{width:100%;min-height:4rem}} button{{font-size:1rem;padding:.4rem 1rem}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def confirm_page(state: LinkState, decision: str) -> str:
    """The page a link opens: what it is about, and a form that confirms (POST)."""
    link = state.link
    facts = (
        f"<p>Release <b>#{link.release_id}</b>: {html.escape(state.reason)}</p>"
        f"<p>Services: {html.escape(', '.join(state.items))}</p>"
        f"<p>Environment: <b>{html.escape(link.environment)}</b>, gate "
        f"<b>{html.escape(link.gate)}</b>; you act as <b>{html.escape(link.approver)}</b>.</p>"
    )
    if state.problem is not None:
        return PAGE.format(
            title="This link cannot be used",
            body=facts + f'<p role="alert">{html.escape(state.problem)}</p>',
        )
    reject = decision == "reject"
    verb = "Reject" if reject else "Approve"
    form = (
        '<form method="post">'
        f'<input type="hidden" name="decision" value="{"reject" if reject else "approve"}">'
        f'<p><label for="comment">Comment{" (required: say why)" if reject else ""}</label>'
        f'<textarea id="comment" name="comment"{" required" if reject else ""}></textarea></p>'
        f'<p><button type="submit" id="confirm">{verb} release #{link.release_id}</button></p>'
        "</form>"
    )
    return PAGE.format(title=f"{verb} release #{link.release_id}?", body=facts + form)


def result_page(result: dict[str, Any] | None, error: InterlockError | None) -> str:
    if error is not None:
        return PAGE.format(
            title="Not recorded", body=f'<p role="alert">{html.escape(error.detail)}</p>'
        )
    assert result is not None
    done = "Approved" if result["decision"] == "approve" else "Rejected"
    return PAGE.format(
        title=f"{done}: release #{result['release']}",
        body=f'<p id="outcome">{done} {html.escape(result["environment"])}/'
        f"{html.escape(result['gate'])}; the gate is now "
        f"<b>{html.escape(result['gate_state'])}</b>.</p>",
    )
