"""``/docs`` (Swagger UI) and ``/redoc`` served from packaged assets, so that they work on an
intranet with no way out: the JavaScript, CSS and favicon come from the ``fastapi-offline``
package's ``static/`` folder (Swagger UI and ReDoc as their projects publish them), mounted
at ``/docs-assets``; neither page names an outside address (ReDoc without Google Fonts, and
its bundle served with the one outside image it names — Redocly's logo, from their CDN —
replaced by the packaged favicon).

Like FastAPI's own ``/docs`` these pages and ``/openapi.json`` are public: they describe the
API, not its data (every data route is still checked by :func:`access.authorize`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

#: where the assets are served
ASSETS: Final = "/docs-assets"
#: the one outside address in ReDoc's bundle: the logo under its side menu
REDOC_LOGO: Final = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def redoc_bundle() -> bytes:
    """ReDoc's script with its outside logo replaced by the packaged favicon."""
    js = (assets_dir() / "redoc.standalone.js").read_bytes()
    return js.replace(REDOC_LOGO.encode(), f"{ASSETS}/favicon.png".encode())


def assets_dir() -> Path:
    """The folder of Swagger UI's and ReDoc's files (the ``fastapi-offline`` package's)."""
    return Path(str(files("fastapi_offline").joinpath("static")))


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` on ``app`` from the packaged
    assets (``app`` must be created with ``docs_url=None, redoc_url=None``)."""
    redoc_js = redoc_bundle()

    # before the mount, so that this route answers for this one file
    @app.get(f"{ASSETS}/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(redoc_js, media_type="text/javascript; charset=utf-8")

    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} · API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} · ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
