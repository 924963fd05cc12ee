"""Subjects, Reviews and Processing record pages: no subject id in a URL, every action
confirmed by the id, the explanation beside the review, separation of duties."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from governance.accounts.records import User
from governance.accounts.service import user_actor
from governance.subjects.caller import Caller
from server.container import Container
from tests.support.publishing import publish
from tests.support.scoring import score


def test_find_hold_and_erase_a_subject(
    client: FlaskClient, cofre: Container, signed_in: Callable[[str], str]
) -> None:
    publish(cofre, "iris", aliases=["production"])
    score(cofre, ["ana-42"])
    csrf = signed_in("auditor")
    found = client.post("/admin/subjects/lookup", data={"subject_id": "ana-42", "csrf_token": csrf})
    assert found.status_code == 303
    page_url = found.headers["Location"]
    assert "ana-42" not in page_url and cofre.audit.pseudonym("ana-42") in page_url
    page = client.get(page_url).text
    assert 'id="live-keys">1<' in page and "ana-42" not in page
    form = {"subject_id": "ana-42", "reason": "case 1", "csrf_token": csrf}
    assert client.post(page_url + "/hold", data=form).status_code == 303
    refused = client.post(page_url + "/erasure", data=form)
    assert refused.status_code == 409 and "legal hold" in refused.text
    wrong = client.post(page_url + "/release", data=form | {"subject_id": "someone-else"})
    assert wrong.status_code == 422
    assert client.post(page_url + "/release", data=form).status_code == 303
    erased = client.post(page_url + "/erasure", data=form)
    assert erased.status_code == 303 and "done=erased" in erased.headers["Location"]
    page = client.get(erased.headers["Location"]).text
    assert 'id="destroyed-keys">1<' in page and "subject.erased" in page
    export = client.post(page_url + "/export", data=form | {"format": "json"})
    assert export.status_code == 200 and export.json["decisions"][0]["erased"]


def test_a_review_page_shows_the_explanation_and_refuses_the_opener(
    client: FlaskClient, cofre: Container, signed_in: Callable[[str], str]
) -> None:
    publish(cofre, "iris", aliases=["production"])
    request_id = score(cofre, ["ana-42"])
    csrf = signed_in("auditor")
    with cofre.read() as session:
        auditor = session.scalars(select(User).where(User.username == "auditor-user")).one()
    opened = cofre.reviews.open(Caller(user_actor(auditor), "api"), request_id, 0, "wrong!")
    url = f"/admin/reviews/{opened.review.id}"
    page = client.get(url).text
    assert 'id="explanation-method">linear' in page and "wrong!" in page
    assert "legitimate interest (test)" in page  # the model card beside it
    listing = client.get("/admin/reviews/?status=open").text
    assert url in listing
    refused = client.post(
        url + "/decision", data={"outcome": "upheld", "reason": "ok", "csrf_token": csrf}
    )
    assert refused.status_code == 403 and "separation of duties" in refused.text


def test_the_record_of_processing_page(
    client: FlaskClient, cofre: Container, signed_in: Callable[[str], str]
) -> None:
    publish(cofre, "iris", aliases=["production"])
    signed_in("auditor")
    page = client.get("/admin/compliance/ropa").text
    assert "Record of processing activities" in page and "sepal length (cm)" in page
    download = client.get("/admin/compliance/ropa.md")
    assert download.mimetype == "text/markdown" and download.text.startswith("# Record")
