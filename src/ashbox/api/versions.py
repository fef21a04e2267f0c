"""Version discovery documents (CINDER-CONTRACT §1.1, REAL-PARTS Part 3.2).

`GET /` answers 300 and `GET /v3` / `GET /v3/` 200 with the same
`{"versions": [...]}` document; neither needs a token (keystoneauth's discovery
sends none). The self link is built from the request's host.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ashbox.api import microversion as mv
from ashbox.api.links import host_url


def versions_document(request: Request) -> dict[str, object]:
    return {
        "versions": [
            {
                "id": "v3.0",
                "status": "CURRENT",
                "version": str(mv.MAX_VERSION),
                "min_version": str(mv.MIN_VERSION),
                "updated": mv.UPDATED,
                "links": [
                    {
                        "rel": "describedby",
                        "type": "text/html",
                        "href": "https://docs.openstack.org/",
                    },
                    {"rel": "self", "href": f"{host_url(request)}/v3/"},
                ],
                "media-types": [
                    {
                        "base": "application/json",
                        "type": "application/vnd.openstack.volume+json;version=3",
                    }
                ],
            }
        ]
    }


async def root(request: Request) -> Response:
    return JSONResponse(versions_document(request), status_code=300)


async def v3(request: Request) -> Response:
    return JSONResponse(versions_document(request))
