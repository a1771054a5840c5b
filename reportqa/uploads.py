"""Who may use Gradio's upload route: a logged-in staff session's page, by an HttpOnly cookie.

The staff session's token lives in a server-side Gradio ``State`` that the HTTP upload route
cannot see. So the login event also hands the page a one-time ticket (``ui.auth.StaffSessions``);
the page's script posts it at once to ``POST /staff/upload-session``, which answers with a
separate random upload token in a cookie the page's scripts cannot read (HttpOnly) and other
sites cannot make the browser send (SameSite=Strict). ``reportqa.server.SecurityMiddleware`` lets
``/gradio_api/upload`` through only with a cookie whose token belongs to a live staff session;
everyone else still gets 403. Logging out, or the session expiring, ends the upload token too.
"""
from http.cookies import CookieError, SimpleCookie

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ui.auth import TICKET_HEADER, UPLOAD_SESSION_ROUTE

UPLOAD_COOKIE = "rqa_upload"
COOKIE_MAX_AGE_S = 8 * 3600  # the longest a staff session lives; the server checks the session anyway


def cookie_value(scope: dict, name: str = UPLOAD_COOKIE) -> str | None:
    """The value of cookie ``name`` in an ASGI request's headers, or None."""
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            try:
                jar = SimpleCookie(value.decode("latin-1"))
            except CookieError:
                continue
            if name in jar:
                return jar[name].value
    return None


def install_upload_session_route(app, sessions) -> None:
    """``POST /staff/upload-session`` on the FastAPI ``app`` (before Gradio is mounted at "/"): a valid
    ticket from a staff login (``sessions``: ui.auth.StaffSessions) becomes the upload cookie."""
    @app.post(UPLOAD_SESSION_ROUTE, include_in_schema=False)
    async def upload_session(request: Request):
        upload_token = sessions.redeem_ticket(request.headers.get(TICKET_HEADER))
        if upload_token is None:
            return JSONResponse({"error": "请先登录工作人员页面。Log in as staff first."}, status_code=403)
        response = Response(status_code=204)
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        response.set_cookie(UPLOAD_COOKIE, upload_token, max_age=COOKIE_MAX_AGE_S, path="/", httponly=True,
                            samesite="strict", secure=secure)
        return response

