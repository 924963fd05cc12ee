"""The record of processing activities page (GDPR Art. 30, LGPD Art. 37)."""

from __future__ import annotations

from flask import Response
from flask.typing import ResponseReturnValue

from server.admin.pages import admin_blueprint, render
from server.compliance import ropa
from server.exports import ropa_file
from server.extension import services
from server.security.access import requires

blueprint = admin_blueprint("admin_compliance", "/compliance")


@blueprint.get("/ropa")
@requires("compliance:read")
def record_of_processing() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        return render("admin/compliance/ropa.html", ropa=ropa(cofre, session))


@blueprint.get("/ropa.md")
@requires("compliance:read")
def download() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        exported = ropa_file(ropa(cofre, session), "md")
    response = Response(exported.body, mimetype=exported.mimetype)
    response.headers["Content-Disposition"] = exported.disposition()
    return response
