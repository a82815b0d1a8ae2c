"""The Python store module itself: what it imports, how it authenticates (the Google metadata server,
a given OAuth token, Azure's managed identity), and its refusals of bad configuration."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from framework.local.stores.firestore_fake import FakeFirestore
from framework.runtime import agent_sessions
from framework.runtime.agent_sessions import StoreError, open_store

MODULE = Path(agent_sessions.__file__)

PROBE = """
import importlib.util, json, sys
startup = sorted(sys.modules)  # what site-packages' .pth files import at start-up is not ours
spec = importlib.util.spec_from_file_location("agent_sessions", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["agent_sessions"] = module
spec.loader.exec_module(module)
env = {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:9", "AZURE_TABLE_ENDPOINT": "http://127.0.0.1:9/a",
       "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
module.open_store({"store": "firestore", "project": "p"}, "bot", env)
module.open_store({"store": "table", "table": "t"}, "bot", env)
before = sorted(sys.modules)
module.open_store({"store": "dynamodb", "table": "t"}, "bot", {"AWS_REGION": "eu-west-1"})
print(json.dumps([startup, before, sorted(sys.modules)]))
"""


def test_the_module_imports_only_the_standard_library():
    """The file as a platform ships it (alone, outside the framework package); boto3 only with DynamoDB."""
    result = subprocess.run([sys.executable, "-c", PROBE, str(MODULE)], capture_output=True, text=True, check=True)
    startup, before, after = json.loads(result.stdout)
    imported = {name.split(".")[0] for name in set(before) - set(startup)}
    outside = sorted(imported - set(sys.stdlib_module_names) - {"agent_sessions"})
    assert outside == [], outside
    assert "boto3" in after


class Recorder(ThreadingHTTPServer):
    """A tiny HTTP server answering from `routes` (path prefix -> (status, JSON body)), recording requests."""

    def __init__(self, routes: dict[str, tuple[int, object]]):
        self.routes, self.seen = routes, []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                recorder.seen.append((self.command, self.path, dict(self.headers)))
                status, body = next((v for k, v in recorder.routes.items() if self.path.startswith(k)),
                                    (404, {"error": "no route"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def firestore_with_token():
    with FakeFirestore(token="ya29.not-a-real-token") as fake:
        yield fake


def test_firestore_takes_the_metadata_servers_token_once(firestore_with_token):
    token = {"access_token": "ya29.not-a-real-token", "expires_in": 3599, "token_type": "Bearer"}
    metadata = Recorder({"/computeMetadata/v1/instance/service-accounts/default/token": (200, token)})
    try:
        env = {"FIRESTORE_ENDPOINT": f"http://127.0.0.1:{firestore_with_token.port}",
               "GCP_METADATA_HOST": metadata.origin}
        store = open_store({"store": "firestore", "project": "p", "collection": "c"}, "bot", env)
        version = store.save("s1", [{"role": "user", "content": "hi"}], 0)
        assert store.load("s1") == ([{"role": "user", "content": "hi"}], version)
        assert store.add_tokens("k", "2026-12-02", 3) == 3
        assert len(metadata.seen) == 1
        assert metadata.seen[0][2].get("Metadata-Flavor") == "Google"
    finally:
        metadata.close()


def test_firestore_takes_a_given_token_and_names_no_token_when_refused(firestore_with_token):
    base = f"http://127.0.0.1:{firestore_with_token.port}"
    good = open_store({"store": "firestore", "project": "p"}, "bot",
                      {"FIRESTORE_ENDPOINT": base, "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.not-a-real-token"})
    assert good.save("s2", [], 0) == 1
    bad = open_store({"store": "firestore", "project": "p"}, "bot",
                     {"FIRESTORE_ENDPOINT": base, "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.wrong-token-0123"})
    with pytest.raises(StoreError) as caught:
        bad.load("s2")
    assert "401" in str(caught.value) and "wrong-token" not in str(caught.value)


def test_a_missing_metadata_server_is_a_store_error(firestore_with_token):
    metadata = Recorder({})
    try:
        store = open_store({"store": "firestore", "project": "p"}, "bot",
                           {"FIRESTORE_ENDPOINT": f"http://127.0.0.1:{firestore_with_token.port}",
                            "GCP_METADATA_HOST": metadata.origin})
        with pytest.raises(StoreError, match="metadata server"):
            store.load("s3")
    finally:
        metadata.close()


def test_table_storage_takes_the_managed_identitys_token_once():
    identity = {"access_token": "eyJ.not-a-real-token", "expires_on": "4102444800",
                "resource": "https://storage.azure.com/", "token_type": "Bearer"}
    server = Recorder({"/msi/token": (200, identity), "/acct/t(": (404, {"odata.error": {"code": "ResourceNotFound"}})})
    try:
        env = {"IDENTITY_ENDPOINT": f"http://{server.origin}/msi/token", "IDENTITY_HEADER": "header-secret-value",
               "AZURE_TABLE_ENDPOINT": f"http://{server.origin}/acct"}
        store = open_store({"store": "table", "table": "t", "account": "acct"}, "bot", env)
        assert store.load("s1") == ([], 0)
        assert store.load("s2") == ([], 0)
        token_calls = [seen for seen in server.seen if seen[1].startswith("/msi/token")]
        assert len(token_calls) == 1
        assert "resource=https%3A%2F%2Fstorage.azure.com%2F" in token_calls[0][1]
        assert token_calls[0][2].get("X-IDENTITY-HEADER") == "header-secret-value"
        table_calls = [seen for seen in server.seen if seen[1].startswith("/acct/")]
        assert table_calls[0][2]["Authorization"] == "Bearer eyJ.not-a-real-token"
        assert table_calls[0][2]["x-ms-version"] >= "2019-02-02"
    finally:
        server.close()


@pytest.mark.parametrize("config, env, words", [
    ({"store": "nosql"}, {}, "unknown session store"),
    ({"store": "dynamodb"}, {}, "table name"),
    ({"store": "firestore"}, {}, "project"),
    ({"store": "table", "table": "t", "account": "a"}, {}, "account key"),
])
def test_bad_configuration_is_a_store_error(config, env, words):
    with pytest.raises(StoreError, match=words):
        open_store(config, "bot", env)


def test_bad_ids_are_store_errors():
    store = open_store({"store": "firestore", "project": "p"}, "bot", {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"})
    for bad in ("", "a/b", "x" * 129, "é"):
        with pytest.raises(StoreError):
            store.load(bad)
    with pytest.raises(StoreError):
        store.add_tokens("k", "2026-1-2", 1)


def test_utf16_chunks_never_split_a_character_and_hold_at_most_the_units():
    text = "a🤖" * 20_001
    chunks = agent_sessions.utf16_chunks(text, 30_000)
    assert "".join(chunks) == text
    assert all(len(chunk.encode("utf-16-le")) // 2 <= 30_000 for chunk in chunks)
