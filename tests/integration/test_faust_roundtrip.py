"""A Faust worker round-trips messages through an agent and a RocksDB table, and the
table survives a restart with its local state wiped (recovered from the changelog)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.project import REPO

pytestmark = pytest.mark.broker


def start_worker(bootstrap: str, prefix: str, datadir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FAUST_TEST_BROKER": bootstrap,
        "FAUST_TEST_PREFIX": prefix,
        "FAUST_TEST_DATADIR": str(datadir),
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "faust", "-A", "tests.support.faust_roundtrip_app", "worker",
         "-l", "info"],
        cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


async def send_and_expect(
    bootstrap: str, prefix: str, key: bytes, expected: bytes, log: Path
) -> None:
    consumer = AIOKafkaConsumer(
        f"{prefix}ft.out", bootstrap_servers=bootstrap, auto_offset_reset="latest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    await consumer.seek_to_end()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(f"{prefix}ft.in", b"tick", key=key)
        async with asyncio.timeout(90):  # a cold worker joins its group in ~10-20 s here
            while True:
                record = await consumer.getone()
                if record.key == key:
                    assert record.value == expected, tail(log)
                    return
    finally:
        await producer.stop()
        await consumer.stop()


async def test_agent_and_table_round_trip_and_survive_a_restart(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{topic_prefix}ft.{n}", 1, 1) for n in ("in", "out")])
    finally:
        await admin.close()
    datadir, log = tmp_path / "state", tmp_path / "worker.log"

    worker = start_worker(kafka_bootstrap, topic_prefix, datadir, log)
    try:
        await send_and_expect(kafka_bootstrap, topic_prefix, b"acme", b"acme=1", log)
        await send_and_expect(kafka_bootstrap, topic_prefix, b"acme", b"acme=2", log)
    finally:
        stop_worker(worker)
    assert worker.returncode == 0, tail(log)

    # Wipe the local RocksDB state: the count can only come back from the changelog.
    shutil.rmtree(datadir)
    worker = start_worker(kafka_bootstrap, topic_prefix, datadir, log)
    try:
        await send_and_expect(kafka_bootstrap, topic_prefix, b"acme", b"acme=3", log)
    finally:
        stop_worker(worker)
    assert "Restore complete" in log.read_text()
