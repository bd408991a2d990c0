"""A minimal Kubernetes REST client: JSON over HTTPS with the cluster's CA and a bearer token.

Just what the hyperpod backend needs (create, get, delete one custom object), on the standard
library, so the Lambda package carries no ``kubernetes`` client.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 20.0


class KubeApiError(Exception):
    """An API call answered with an HTTP error status (0: no answer; -1: untrusted server)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}" if status > 0 else f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def ssl_context_for(ca_data: str | None) -> ssl.SSLContext:
    """Verify the server against the cluster's CA (EKS gives it base64-encoded PEM)."""
    if not ca_data:
        return ssl.create_default_context()
    pem = ca_data if "BEGIN CERTIFICATE" in ca_data else base64.b64decode(ca_data).decode()
    return ssl.create_default_context(cadata=pem)


class KubeClient:
    def __init__(
        self,
        endpoint: str,
        token_provider: Callable[[], str],
        ca_data: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"Kubernetes endpoint must be an http(s):// URL, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._parts = parts
        self._token_provider = token_provider
        self._ssl = ssl_context_for(ca_data) if parts.scheme == "https" else None
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request; the decoded JSON answer, or KubeApiError for any status >= 400."""
        headers = {
            "Authorization": f"Bearer {self._token_provider()}",
            "Accept": "application/json",
            "User-Agent": "mixtune",
        }
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        host, port = self._parts.hostname or "", self._parts.port
        if self._ssl is not None:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout_s, context=self._ssl
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        try:
            connection.request(method, self._parts.path.rstrip("/") + path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except ssl.SSLCertVerificationError as error:
            # Not worth retrying: the server is not the cluster whose CA we were given.
            raise KubeApiError(-1, "TLS verification failed", f"{method} {path}: {error}") from error
        except (OSError, http.client.HTTPException) as error:
            raise KubeApiError(0, "connection failed", f"{method} {path}: {error}") from error
        finally:
            connection.close()
        data = _decode(raw)
        if response.status >= 400:
            # Kubernetes answers errors with a Status object: {"reason": ..., "message": ...}.
            reason = str(data.get("reason") or response.reason)
            message = str(data.get("message") or raw[:300].decode(errors="replace"))
            raise KubeApiError(response.status, reason, message)
        return data

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body)

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def delete(self, path: str) -> dict[str, Any]:
        # Foreground: the job's pods go with it.
        return self.request(
            "DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        )


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
