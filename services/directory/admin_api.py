"""The directory's admin routes: the county's decisions about agencies over HTTP, for the web
app's administrators. Each route decodes, calls one `Administration` method and maps a refusal
to its status with its stable code.

Only holders of an admin token get in (401 otherwise), and never from a browser page (any
`Origin` is refused): the web app calls these from its server, naming the signed-in
administrator in `X-Wegweiser-Acting-User` for the log.
"""

# no `from __future__ import annotations`: FastAPI must see `Actor`, local to `router`
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.directory.access import AdminTokens
from services.directory.admin import Administration
from services.directory.admin_models import (
    AgencyStanding,
    Decided,
    Invited,
    PendingEnrolment,
    Revoked,
)
from wegweiser.platform.problems import documented, known_query

bearer = HTTPBearer(auto_error=False, scheme_name="admin token")
ACTOR = r"^[a-z0-9][a-z0-9._@-]{0,63}$"


class InvitationCreate(BaseModel):
    valid_for: timedelta = Field(
        default=timedelta(days=7), description="how long the code works (ISO 8601, e.g. P7D)"
    )


def router(admin: Administration, tokens: AdminTokens) -> APIRouter:
    def caller(
        request: Request,
        given: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        acting_user: Annotated[str, Header(alias="X-Wegweiser-Acting-User", pattern=ACTOR)] = "api",
    ) -> str:
        """The acting user, once the call carries an admin token and comes from no page."""
        if request.headers.get("origin") is not None:
            raise HTTPException(403, "the admin routes are not for browser pages")
        if not tokens.admits(given.credentials if given else None):
            raise HTTPException(
                401, "an admin token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return acting_user

    Actor = Annotated[str, Depends(caller)]
    api = APIRouter(
        prefix="/admin",
        tags=["admin"],
        responses=documented(400, 401, 403, 404, 409, 410, 422),
        # the caller first: who may not come in learns nothing of the routes' parameters
        dependencies=[Depends(caller), Depends(known_query)],
    )

    @api.get("/agencies")
    async def agencies(_by: Actor) -> list[AgencyStanding]:
        """Every agency with its keys' custody and its open enrolments."""
        return await admin.agencies()

    @api.get("/enrolments")
    async def pending(_by: Actor) -> list[PendingEnrolment]:
        """Enrolments not yet decided, oldest first."""
        return await admin.pending()

    @api.post("/agencies/{agency_id}/invitations", status_code=201)
    async def invite(
        agency_id: str, body: InvitationCreate, by: Actor, response: Response
    ) -> Invited:
        """A one-time enrolment code for the agency, in this answer only."""
        response.headers["Cache-Control"] = "no-store"
        return await admin.invite(agency_id, body.valid_for, by)

    @api.post("/enrolments/{enrolment_id}/approve")
    async def approve(enrolment_id: str, by: Actor) -> Decided:
        return await admin.approve(enrolment_id, by)

    @api.post("/enrolments/{enrolment_id}/refuse")
    async def refuse(enrolment_id: str, by: Actor) -> Decided:
        return await admin.refuse(enrolment_id, by)

    @api.post("/agencies/{agency_id}/revoke")
    async def revoke(agency_id: str, by: Actor) -> Revoked:
        return await admin.revoke(agency_id, by)

    return api
