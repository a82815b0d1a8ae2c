"""Azure Blob Storage for the deploy tests: Microsoft's emulator Azurite (azurite-blob, the npm package
the session stores already use), behind a recording proxy.

Azurite takes Microsoft Entra bearer tokens only over HTTPS with `--oauth basic`
(https://github.com/Azure/Azurite#oauth-configuration): it checks a token's audience, issuer and
times, not its signature. So Azurite runs on HTTPS with a self-signed certificate, and the deployer
talks plain HTTP to this proxy, which records every request (as FakeAzure records ARM and Kudu) and
forwards it to Azurite over HTTPS. AZURITE_ACCOUNTS adds the test's storage account."""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from framework.local.http import upstream_port
from framework.local.process import Child
from framework.local.stores import ensure_azurite


def storage_token(tenant: str = "72f988bf-86f1-41af-91ab-2d7cd011db47") -> str:
    """An unsigned JWT with the Blob service's audience, as Azurite's basic OAuth check reads one."""
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return ".".join([part({"alg": "none", "typ": "JWT"}), part({
        "aud": "https://storage.azure.com", "iss": f"https://sts.windows.net/{tenant}/", "nbf": now - 60,
        "iat": now - 60, "exp": now + 24 * 3600}), "c2lnbmF0dXJl"])


class BlobService:
    """Azurite (HTTPS, OAuth) and the recording proxy in front of it; `url` has `{account}` in it."""

    def __init__(self, account: str):
        self.account = account
        self.folder = Path(tempfile.mkdtemp(prefix="azurite-blob-"))
        cert, key = self.folder / "cert.pem", self.folder / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        command = ensure_azurite().parent / "azurite-blob"
        self.port = upstream_port()
        env = {**os.environ, "AZURITE_ACCOUNTS": f"{account}:{base64.b64encode(b'test-key').decode()}"}
        self.child = Child([str(command), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                            "--inMemoryPersistence", "--skipApiVersionCheck", "--silent", "--oauth", "basic",
                            "--cert", str(cert), "--key", str(key)], self.port, env, command.parent, False,
                           "Azurite's blob service", startup=30)
        self.context = ssl.create_default_context(cafile=str(cert))
        self.token = storage_token()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{{account}}"

    @property
    def mutating(self) -> list[str]:
        """PUT/DELETE requests since the last clear(), as "PUT <container>/<blob>" (the account left out)."""
        return [f"{method} {path}" for method, path in self.requests if method in ("PUT", "DELETE")]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def forward(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        finally:
            connection.close()

    def blobs(self, container: str) -> list[str]:
        """The blob names in a container, as Azurite lists them (read directly, not recorded)."""
        import xml.etree.ElementTree as ElementTree

        status, _, data = self.forward("GET", f"/{self.account}/{container}?restype=container&comp=list", None, {
            "Authorization": f"Bearer {self.token}", "x-ms-version": "2021-12-02"})
        if status == 404:
            return []
        return [blob.findtext("Name") or "" for blob in ElementTree.fromstring(data).iter("Blob")]

    def reset(self, container: str) -> None:
        """Every blob of the container deleted (the container itself stays: Azure reserves a deleted name)."""
        for name in self.blobs(container):
            self.forward("DELETE", f"/{self.account}/{container}/{urllib.parse.quote(name)}", None, {
                "Authorization": f"Bearer {self.token}", "x-ms-version": "2021-12-02"})
        self.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.child.close()

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else (b"" if self.command in ("PUT", "POST") else None)
                path = urllib.parse.urlsplit(self.path).path
                with service._lock:
                    service.requests.append((self.command, path.removeprefix(f"/{service.account}/")))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                status, answer_headers, data = service.forward(self.command, self.path, body, headers)
                self.send_response(status)
                for name, value in answer_headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding", "keep-alive"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _any

        return Handler
