"""API Gateway for the local cloud: a REST proxy integration on a local HTTP port.

Each HTTP request becomes the event API Gateway's Lambda proxy integration sends (REST
API, payload format 1.0), the api function is invoked through the Lambda API of the local
cloud, and its ``{statusCode, headers, body, isBase64Encoded}`` reply becomes the response.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STAGE = "local"


def proxy_event(
    method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str, account: str
) -> dict[str, Any]:
    """The API Gateway REST proxy event (format 1.0) for one request."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    path = parts.path or "/"
    now = datetime.now(UTC)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {key: [value] for key, value in headers.items()} or None,
        "queryStringParameters": {key: values[-1] for key, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "accountId": account,
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


class ApiProxy:
    """Serves ``http://127.0.0.1:<port>/`` by invoking ``function_name`` per request."""

    def __init__(self, lambda_client: Any, function_name: str, account: str, port: int = 0) -> None:
        self.lambda_client = lambda_client
        self.function_name = function_name
        self.account = account
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        reply = self.lambda_client.invoke(FunctionName=self.function_name, Payload=json.dumps(event))
        payload = json.loads(reply["Payload"].read() or b"null")
        if reply.get("FunctionError") or not isinstance(payload, dict) or "statusCode" not in payload:
            # What API Gateway answers when the integration fails.
            return 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
        headers = {key: str(value) for key, value in (payload.get("headers") or {}).items()}
        for key, values in (payload.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(str(value) for value in values)
        body = payload.get("body") or ""
        data = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode("utf-8")
        return int(payload["statusCode"]), headers, data

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                event = proxy_event(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    body,
                    self.client_address[0],
                    proxy.account,
                )
                status, headers, data = proxy.invoke(event)
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet, like the real service
                return

        return Handler

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-proxy", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
