"""The Starlette application: routes, middleware and error handlers.

Every v3 route exists with and without the `{project_id}` segment
(`/v3/{project_id}/backups` and `/v3/backups`, CINDER-CONTRACT §1.0).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ashbox import errors
from ashbox.api import metrics, openapi, versions
from ashbox.api.auth import AuthMiddleware, authenticator_for
from ashbox.api.backups import BackupsController
from ashbox.api.errors import (
    ApiFault,
    handle_api_fault,
    handle_domain_error,
    handle_http_exception,
)
from ashbox.api.messages import MessagesController
from ashbox.api.middleware import ApiMiddleware
from ashbox.api.quotas import QuotasController
from ashbox.api.services import ServicesController
from ashbox.api.snapshots import SnapshotsController
from ashbox.api.volume_types import VolumeTypesController
from ashbox.api.volumes import VolumesController
from ashbox.backups.service import Service
from ashbox.changes import Changes
from ashbox.config import Settings
from ashbox.policy import Policy


def create_app(service: Service, settings: Settings, changes: Changes | None = None) -> Starlette:
    """The API application over `service`; InvalidInput if `settings` cannot be served
    safely. `changes`: what the worker of this process announces (a GET that waits
    for a status is answered at once); without it such a GET reads the database
    again every `changes.RECHECK_SECONDS`."""
    authenticator = authenticator_for(settings)
    policy = Policy(settings.policy_file)
    changes = changes if changes is not None else Changes()
    backups = BackupsController(service, changes)
    volumes = VolumesController(service, settings, changes)
    snapshots = SnapshotsController(service, changes)
    services = ServicesController(service)
    quotas = QuotasController(service)
    messages = MessagesController(service)
    types = VolumeTypesController(service)
    routes: list[BaseRoute] = [
        Route("/", versions.root, methods=["GET"]),
        Route("/v3", versions.v3, methods=["GET"]),
        Route("/v3/", versions.v3, methods=["GET"]),
        Route("/healthcheck", healthcheck, methods=["GET"]),
    ]
    for prefix in ("/v3", "/v3/{project_id}"):
        routes += [
            Route(f"{prefix}/backups", backups.create, methods=["POST"]),
            Route(f"{prefix}/backups", backups.index, methods=["GET"]),
            Route(f"{prefix}/backups/detail", backups.detail, methods=["GET"]),
            Route(f"{prefix}/backups/import_record", backups.import_record, methods=["POST"]),
            Route(f"{prefix}/backups/{{backup_id}}", backups.show, methods=["GET"]),
            Route(f"{prefix}/backups/{{backup_id}}", backups.update, methods=["PUT"]),
            Route(f"{prefix}/backups/{{backup_id}}", backups.delete, methods=["DELETE"]),
            Route(f"{prefix}/backups/{{backup_id}}/action", backups.action, methods=["POST"]),
            Route(f"{prefix}/backups/{{backup_id}}/restore", backups.restore, methods=["POST"]),
            Route(
                f"{prefix}/backups/{{backup_id}}/export_record",
                backups.export_record,
                methods=["GET"],
            ),
            Route(f"{prefix}/volumes", volumes.create, methods=["POST"]),
            Route(f"{prefix}/volumes", volumes.index, methods=["GET"]),
            Route(f"{prefix}/volumes/detail", volumes.detail, methods=["GET"]),
            Route(f"{prefix}/volumes/{{volume_id}}", volumes.show, methods=["GET"]),
            Route(f"{prefix}/volumes/{{volume_id}}", volumes.delete, methods=["DELETE"]),
            Route(f"{prefix}/volumes/{{volume_id}}/action", volumes.action, methods=["POST"]),
            Route(f"{prefix}/manageable_volumes", volumes.manage, methods=["POST"]),
            Route(f"{prefix}/os-services", services.index, methods=["GET"]),
            Route(f"{prefix}/os-services/enable", services.enable, methods=["PUT"]),
            Route(f"{prefix}/os-services/disable", services.disable, methods=["PUT"]),
            Route(
                f"{prefix}/os-services/disable-log-reason",
                services.disable_log_reason,
                methods=["PUT"],
            ),
            Route(f"{prefix}/os-services/freeze", services.freeze_or_thaw, methods=["PUT"]),
            Route(f"{prefix}/os-services/thaw", services.freeze_or_thaw, methods=["PUT"]),
            Route(f"{prefix}/os-services/failover_host", services.failover_host, methods=["PUT"]),
            Route(f"{prefix}/snapshots", snapshots.create, methods=["POST"]),
            Route(f"{prefix}/snapshots", snapshots.index, methods=["GET"]),
            Route(f"{prefix}/snapshots/detail", snapshots.detail, methods=["GET"]),
            Route(f"{prefix}/snapshots/{{snapshot_id}}", snapshots.show, methods=["GET"]),
            Route(f"{prefix}/snapshots/{{snapshot_id}}", snapshots.update, methods=["PUT"]),
            Route(f"{prefix}/snapshots/{{snapshot_id}}", snapshots.delete, methods=["DELETE"]),
            Route(f"{prefix}/snapshots/{{snapshot_id}}/action", snapshots.action, methods=["POST"]),
            Route(f"{prefix}/os-volume-manage", volumes.manage, methods=["POST"]),
            Route(f"{prefix}/os-quota-sets/{{target}}", quotas.show, methods=["GET"]),
            Route(f"{prefix}/os-quota-sets/{{target}}", quotas.update, methods=["PUT"]),
            Route(f"{prefix}/os-quota-sets/{{target}}", quotas.delete, methods=["DELETE"]),
            Route(f"{prefix}/os-quota-sets/{{target}}/defaults", quotas.defaults, methods=["GET"]),
            Route(
                f"{prefix}/os-quota-class-sets/{{class_name}}", quotas.show_class, methods=["GET"]
            ),
            Route(
                f"{prefix}/os-quota-class-sets/{{class_name}}",
                quotas.update_class,
                methods=["PUT"],
            ),
            Route(f"{prefix}/limits", quotas.limits, methods=["GET"]),
            Route(f"{prefix}/types", types.index, methods=["GET"]),
            Route(f"{prefix}/types", types.create, methods=["POST"]),
            Route(f"{prefix}/types/{{type_id}}", types.show, methods=["GET"]),
            Route(f"{prefix}/types/{{type_id}}", types.update, methods=["PUT"]),
            Route(f"{prefix}/types/{{type_id}}", types.delete, methods=["DELETE"]),
            Route(f"{prefix}/types/{{type_id}}/extra_specs", types.specs_index, methods=["GET"]),
            Route(f"{prefix}/types/{{type_id}}/extra_specs", types.specs_create, methods=["POST"]),
            Route(
                f"{prefix}/types/{{type_id}}/extra_specs/{{key}}", types.specs_show, methods=["GET"]
            ),
            Route(
                f"{prefix}/types/{{type_id}}/extra_specs/{{key}}",
                types.specs_update,
                methods=["PUT"],
            ),
            Route(
                f"{prefix}/types/{{type_id}}/extra_specs/{{key}}",
                types.specs_delete,
                methods=["DELETE"],
            ),
            Route(
                f"{prefix}/types/{{type_id}}/encryption", types.encryption_index, methods=["GET"]
            ),
            Route(
                f"{prefix}/types/{{type_id}}/encryption", types.encryption_create, methods=["POST"]
            ),
            Route(
                f"{prefix}/types/{{type_id}}/encryption/{{item}}",
                types.encryption_show,
                methods=["GET"],
            ),
            Route(
                f"{prefix}/types/{{type_id}}/encryption/{{item}}",
                types.encryption_update,
                methods=["PUT"],
            ),
            Route(
                f"{prefix}/types/{{type_id}}/encryption/{{item}}",
                types.encryption_delete,
                methods=["DELETE"],
            ),
            Route(f"{prefix}/messages", messages.index, methods=["GET"]),
            Route(f"{prefix}/messages/{{message_id}}", messages.show, methods=["GET"]),
            Route(f"{prefix}/messages/{{message_id}}", messages.delete, methods=["DELETE"]),
        ]
    described = openapi.document(routes)

    async def openapi_document(request: Request) -> Response:
        return JSONResponse(described)

    routes.append(Route(openapi.PATH, openapi_document, methods=["GET"]))
    if settings.metrics_enabled:
        routes.append(Route(metrics.PATH, metrics.serve_metrics, methods=["GET"]))
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(metrics.RequestMetricsMiddleware),
            Middleware(ApiMiddleware),
            Middleware(AuthMiddleware, authenticator=authenticator, policy=policy),
        ],
        exception_handlers={
            HTTPException: handle_http_exception,
            ApiFault: handle_api_fault,
            errors.AshboxError: handle_domain_error,
        },
    )


async def healthcheck(request: Request) -> Response:
    return PlainTextResponse("OK")
