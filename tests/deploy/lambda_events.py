"""Synthetic API Gateway events (REST API v1 and HTTP API v2 payloads) and a driver.

The driver runs as its own process, as Lambda does: `python -m tests.deploy.lambda_events`
reads a JSON list of events on stdin, calls the real module-level handler for each and
prints the responses as JSON on stdout.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

Event = dict[str, Any]


def rest_api_event(method: str, path: str, body: bytes | None = None, **headers: str) -> Event:
    """An API Gateway REST API (payload v1.0) proxy event."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "abc123.execute-api.eu-west-1.amazonaws.com", **headers},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "lambda-test"},
        },
        "body": base64.b64encode(body).decode() if body is not None else None,
        "isBase64Encoded": body is not None,
    }


def http_api_event(method: str, path: str, body: bytes | None = None, **headers: str) -> Event:
    """An API Gateway HTTP API (payload v2.0) event."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.eu-west-1.amazonaws.com", **headers},
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "lambda-test",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": body.decode() if body is not None else None,
        "isBase64Encoded": False,
    }


def main() -> None:
    from backends.fastapi_service.lambda_handler import handler

    events: list[Event] = json.load(sys.stdin)
    responses = [handler(event, None) for event in events]
    json.dump(responses, sys.stdout)


if __name__ == "__main__":
    main()
