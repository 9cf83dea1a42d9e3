"""Security, on the real processes: the webhook secret, the body limit, the bound address.

- A webhook without the secret or with a wrong one is refused, counted on `/metrics`
  and never reaches Kafka; only the right one is accepted.
- A body over the limit is refused with 413, with or without a Content-Length, and
  nothing is published; the sandboxes have limits too.
- Every server listens on 127.0.0.1 unless told otherwise: the defaults of the command
  line, and the address the running receiver and sandboxes are bound to.
- No secret in any log or error output: `tests/support/secret_scan.py` checks that over the
  whole suite; here it is shown to catch a leak in a test's output and in a log file.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from clientify_odoo.cli import build_parser
from producers.receiver import DEFAULT_MAX_BODY
from schemas.topics import CLIENTIFY_PRODUCT, Topics
from tests.support.cli_tree import commands
from tests.support.clientify_fixtures import read_facts
from tests.support.project import REPO
from tests.support.secret_scan import SecretScan

URL_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


@dataclass
class Service:
    """A `clientify-odoo` command running as a process, its output in a log file."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], log: Path, ready: str) -> Service:
        process = subprocess.Popen(
            [sys.executable, "-m", "clientify_odoo", *argv], cwd=log.parent, env=env,
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            found = re.search(ready, log.read_text(errors="replace"))
            if found:
                return cls(process, log, found.group(1))
            time.sleep(0.1)
        process.kill()
        raise AssertionError(f"{argv} did not start:\n{log.read_text(errors='replace')}")

    def stop(self) -> None:
        self.process.terminate()
        assert self.process.wait(30) == 0, self.log.read_text(errors="replace")

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port


def post(url: str, body: bytes | Iterable[bytes], headers: dict[str, str] | None = None) -> int:
    """POST `body` (an iterable is sent chunked, without a Content-Length): the status."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        chunked = not isinstance(body, bytes)
        connection.request("POST", parts.path or "/", body=body, headers=headers or {},
                           encode_chunked=chunked)  # fmt: skip
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def metric(service: Service, line: str) -> float:
    """The value of one sample of the receiver's /metrics, 0 when absent."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def webhook(n: int, size: int = 0) -> bytes:
    """A valid product webhook; `size` pads it to exactly that many bytes."""
    body = {"hook": {"id": 1, "event": "product.saved", "target": "t"},
            "data": {"id": n, "sku": f"SEC-{n}", "name": "", "price": "1"}}  # fmt: skip
    text = json.dumps(body).encode()
    return text.replace(b'"name": ""', b'"name": "' + b"x" * (size - len(text)) + b'"')


@dataclass
class Receiver:
    service: Service
    prefix: str
    secret: str

    @property
    def hook(self) -> str:
        return f"{self.service.url}/hooks/{self.secret}"

    def published(self, bootstrap: str) -> list[str]:
        """The SKUs of the product facts on its topic."""
        topic = Topics(self.prefix)[CLIENTIFY_PRODUCT]
        return [str(f.business_key) for f in asyncio.run(read_facts(bootstrap, topic))]


@pytest.fixture(scope="module")
def receiver(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """`webhooks serve` with its defaults (but a free port), on topics of its own."""
    prefix, secret = f"sec{secrets.token_hex(4)}.", secrets.token_urlsafe(32)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
           "WEBHOOK_SECRET": secret}  # fmt: skip
    log = tmp_path_factory.mktemp("receiver") / "webhook-receiver.log"
    ready = r"webhooks on (http://\S+?)/hooks/"
    service = Service.start(["webhooks", "serve", "--port", "0"], env, log, ready)
    yield Receiver(service, prefix, secret)
    service.stop()


def near_misses(secret: str) -> list[str]:
    """Wrong secrets one slip away from the right one."""
    swapped = secret.swapcase()
    changed = secret[:-1] + ("a" if secret[-1] != "a" else "b")
    return [secret[:-1], secret + "x", "x" + secret, changed, secret[1:], swapped]


@settings(max_examples=60)
@given(wrong=st.text(URL_SAFE, min_size=1, max_size=60))
def check_wrong_secret(receiver: Receiver, wrong: str) -> None:
    if wrong != receiver.secret:
        assert post(f"{receiver.service.url}/hooks/{wrong}", webhook(1)) == 404


def test_webhooks_without_or_with_a_wrong_secret_are_refused_and_counted(
    receiver: Receiver, kafka_bootstrap: str
) -> None:
    service, rejected = receiver.service, "clientify_webhooks_rejected_total"
    before = {reason: metric(service, f'{rejected}{{reason="{reason}"}}')
              for reason in ("bad_secret", "unknown_path")}  # fmt: skip
    received = metric(service, "clientify_webhooks_received_total")
    wrong = near_misses(receiver.secret)
    for secret in wrong:
        assert post(f"{service.url}/hooks/{secret}", webhook(2)) == 404
    check_wrong_secret(receiver)  # and 60 random ones
    # Without a secret: no path, or the secret anywhere but the path.
    without = [
        (f"{service.url}/hooks/", {}),
        (f"{service.url}/hooks", {}),
        (f"{service.url}/", {}),
        (f"{service.url}/hooks/?secret={receiver.secret}", {}),
        (f"{service.url}/hooks/", {"Authorization": f"Token {receiver.secret}"}),
    ]
    for url, headers in without:
        assert post(url, webhook(3), headers) == 404
    assert post(receiver.hook, webhook(4)) == 200  # the right secret still works
    after = {reason: metric(service, f'{rejected}{{reason="{reason}"}}') for reason in before}
    # Each refusal counted once, under its reason (the Hypothesis examples included).
    assert after["unknown_path"] - before["unknown_path"] == len(without)
    refused = after["bad_secret"] - before["bad_secret"]
    assert len(wrong) < refused <= len(wrong) + 60
    total = metric(service, "clientify_webhooks_received_total") - received
    assert total == refused + len(without) + 1
    assert receiver.published(kafka_bootstrap).count("SEC-4") == 1
    assert not {"SEC-1", "SEC-2", "SEC-3"} & set(receiver.published(kafka_bootstrap))


def test_a_body_over_the_limit_is_refused_and_nothing_is_published(
    receiver: Receiver, kafka_bootstrap: str
) -> None:
    service, too_large = receiver.service, 'clientify_webhooks_rejected_total{reason="too_large"}'
    before = metric(service, too_large)
    limit = DEFAULT_MAX_BODY
    assert post(receiver.hook, webhook(10, size=limit)) == 200  # exactly at the limit
    assert post(receiver.hook, webhook(11, size=limit + 1)) == 413
    over = webhook(12, size=limit + 1)
    chunks = (over[i : i + 4096] for i in range(0, len(over), 4096))
    assert post(receiver.hook, chunks) == 413  # no Content-Length: counted as it comes
    lying = {"Content-Length": str(10 * limit)}  # refused on the header alone
    assert post(receiver.hook, webhook(13), lying) == 413
    assert metric(service, too_large) - before >= 2
    published = receiver.published(kafka_bootstrap)
    assert "SEC-10" in published and not {"SEC-11", "SEC-12", "SEC-13"} & set(published)


# ------------------------------------------------------------------ bound addresses


def test_every_server_listens_on_localhost_unless_told_otherwise() -> None:
    servers = {}
    for path, parser in commands():
        hosts = [a for a in parser._actions if a.dest == "host" or a.dest.endswith("_host")]
        for action in hosts:
            servers[(*path, action.option_strings[0])] = action.default
    # The sandboxes, the receiver, and the metrics of every long-running service.
    for must in [("sandbox", "odoo", "--host"), ("sandbox", "clientify", "--host"),
                 ("webhooks", "serve", "--host"), ("poll", "odoo", "--metrics-host"),
                 ("worker", "--metrics-host"), ("write", "odoo", "--metrics-host")]:  # fmt: skip
        assert must in servers
    assert set(servers.values()) == {"127.0.0.1"}, servers
    told = build_parser().parse_args(["sandbox", "odoo", "--host", "0.0.0.0"])
    assert told.host == "0.0.0.0"


def listening(port: int) -> set[str]:
    """The local addresses a socket listens on at `port` (Linux's /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOCALHOST = "0100007F"  # 127.0.0.1, as /proc/net/tcp writes it


def test_the_running_receiver_and_sandboxes_are_bound_to_localhost_and_limit_bodies(
    receiver: Receiver, tmp_path: Path
) -> None:
    key = secrets.token_hex(16)
    env = {**os.environ, "COLUMNS": "200"}
    odoo = Service.start(
        ["sandbox", "odoo", "--port", "0", "--data-dir", str(tmp_path / "odoo")], env,
        tmp_path / "odoo-sandbox.log", r"listening at (http://\S+)",
    )  # fmt: skip
    clientify = Service.start(
        ["sandbox", "clientify", "--port", "0", "--data-dir", str(tmp_path / "clientify"),
         "--api-key", key], env,
        tmp_path / "clientify-sandbox.log", r"listening at (http://\S+?)/v1/",
    )  # fmt: skip
    try:
        for service in (receiver.service, odoo, clientify):
            assert listening(service.port) == {LOCALHOST}, service.url
        # aiohttp's request size limit: 1 MiB by default, 64 MiB for Odoo's batches.
        big, token = b"{" + b" " * 2 * 1024**2 + b"}", {"Authorization": f"Token {key}"}
        assert post(f"{clientify.url}/v1/contacts/", big, token) == 413
        assert post(f"{odoo.url}/xmlrpc/2/object", b"<" + b" " * 65 * 1024**2) == 413
    finally:
        odoo.stop()
        clientify.stop()


# ------------------------------------------------------------------ the secret scan

BROKEN_STDERR = r"""
import io, logging, sys
from clientify_odoo.logs import setup_logging

real, sys.stderr = sys.stderr, io.StringIO()  # the stream the log handler takes
setup_logging("INFO", ["sk-0123456789abcdef"])
sys.stderr.close()  # gone: a closed pipe, or a test's captured output
sys.stderr = real
try:
    raise RuntimeError("auth failed for sk-0123456789abcdef")
except RuntimeError:
    logging.getLogger("client").exception("request failed")
"""


def test_a_failing_log_handler_prints_nothing_of_the_error_being_handled() -> None:
    # Python's logging reports its own failure with the exception being handled, past
    # the redaction filter; found by the scan after in-process commands closed stderr.
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_STDERR], cwd=REPO, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_scan_learns_secrets_where_they_enter_and_finds_them_masked(tmp_path: Path) -> None:
    scan = SecretScan()
    key = secrets.token_hex(20)
    scan.learn_environment({"CLIENTIFY_API_KEY": key, "ODOO_URL": "http://odoo.example"})
    scan.learn_arguments(["sandbox", "odoo", "--api-key", "odoo-key-0123456789"])
    scan.learn(SecretStr("hook-secret-0123456789"))
    scan.learn("short")  # too short to tell from ordinary text
    assert scan.secrets == {key, "odoo-key-0123456789", "hook-secret-0123456789"}
    [leak] = scan.leaks("out", f"starting\nusing key={key} now\n")
    assert (leak.line, leak.text) == (2, "using key=*** now")
    (tmp_path / "svc.log").write_text("ok\nok\nfailed: odoo-key-0123456789\n")
    segments = tmp_path / "kraft" / "t-0"
    segments.mkdir(parents=True)
    (segments / "00000000000000000000.log").write_text(key)  # Kafka's data, not a log
    [leak] = scan.leaks_in_logs(tmp_path)
    assert str(leak) == f"{tmp_path / 'svc.log'}:3: failed: ***"


INNER_TEST = r"""
import logging, os, secrets, subprocess, sys

def test_leaks(tmp_path):
    key = secrets.token_hex(16)
    with open(os.environ["KEY_FILE"], "w") as out:  # for the outer test to look for
        out.write(key)
    # Handed to a process the way tests start services: the scan learns it there.
    subprocess.run([sys.executable, "-c", "pass"], env={**os.environ, "ODOO_API_KEY": key})
    print("connecting with", key)
    logging.getLogger("x").warning("retrying, key %s", key)
    (tmp_path / "service.log").write_text("started\nauth failed for " + key + "\n")
"""


def test_a_secret_in_output_or_a_log_file_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.secret_scan",
         "-p", "no:cacheprovider", "-p", "no:asyncio",
         "--basetemp", str(tmp_path / "inner"), "--rootdir", str(tmp_path), "-q",
         str(tmp_path / "test_inner.py")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "KEY_FILE": str(tmp_path / "key.txt")},
    )  # fmt: skip
    output = done.stdout + done.stderr
    key = (tmp_path / "key.txt").read_text()
    assert done.returncode == 1, output
    assert "1 passed, 1 error" in output, output  # the test ran; its output and logs fail it
    assert key not in output  # the failure report itself is masked
    assert "(Captured stdout call):1: connecting with ***" in output
    assert "(Captured log call):1: " in output and "retrying, key ***" in output
    assert re.search(r"service\.log:2: auth failed for \*\*\*", output), output
