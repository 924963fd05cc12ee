"""JSON endpoint of the record of processing activities (GDPR Art. 30, LGPD Art. 37)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from server.compliance import ropa
from server.extension import services
from server.security.access import requires

blueprint = Blueprint("api_compliance", __name__, url_prefix="/api/v1/compliance")


@blueprint.get("/ropa")
@requires("compliance:read")
def record_of_processing() -> ResponseReturnValue:
    """The record of processing, generated from the model cards and the config."""
    cofre = services()
    with cofre.read() as session:
        return jsonify(ropa(cofre, session).document())
