"""The Reviews pages: contested decisions with their age and due date; one review with
the decision, its explanation by the version that decided and that version's model
card beside it; the decision form (separation of duties is enforced by the service)."""

from __future__ import annotations

from flask import g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from governance.errors import CofreError
from governance.subjects.caller import Caller
from governance.subjects.reviews import OUTCOMES, STATUSES
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_reviews", "/reviews")
NOTICES = {"decided": "The review was decided and recorded."}


@blueprint.get("/")
@requires("subject:manage")
def list_reviews() -> ResponseReturnValue:
    status = request.args.get("status") or None
    cofre = services()
    with cofre.read() as session:
        found = cofre.reviews.listing(
            session, current_actor(), status if status in STATUSES else None
        )
        return render("admin/reviews/list.html", reviews=found, shown=status, statuses=STATUSES)


@blueprint.get("/<int:review_id>")
@requires("subject:manage")
def review(review_id: int) -> ResponseReturnValue:
    cofre, actor = services(), current_actor()
    with cofre.write() as session:
        view = cofre.reviews.show(session, _caller(), review_id)
        decision = cofre.decisions.locate(session, actor, view.review.request_id, view.review.row)
        explained, problem = None, None
        try:
            explained = cofre.decisions.explain(session, decision, actor, "admin", g.request_id)
        except CofreError as exc:  # an erased row: the page still shows the review
            problem = exc.detail
        return render(
            "admin/reviews/review.html",
            view=view,
            decision=decision,
            explained=explained.explanation if explained else None,
            problem=problem,
            version=decision.version,
            outcomes=OUTCOMES,
            notice=NOTICES.get(request.args.get("done", "")),
        )


@blueprint.post("/<int:review_id>/decision")
@requires("subject:manage")
def decide(review_id: int) -> ResponseReturnValue:
    corrected = request.form.get("corrected_output", "").strip() or None
    services().reviews.decide(
        _caller(),
        review_id,
        request.form.get("outcome", ""),
        request.form.get("reason", ""),
        corrected,
    )
    return redirect(url_for("admin_reviews.review", review_id=review_id, done="decided"), 303)


def _caller() -> Caller:
    return Caller(current_actor(), "admin", g.request_id)
