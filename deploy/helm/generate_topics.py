"""Write the chart's topic list (clientify-odoo/files/topics.yaml) from schemas/topics.py.

The chart's Strimzi KafkaTopic resources are made from that file, and Helm cannot run
Python, so the list is generated rather than copied by hand; tests/deploy checks that the
file and the rendered KafkaTopics match `schemas.topics.ALL_TOPICS`. After changing a
topic declaration:

    .venv/bin/python deploy/helm/generate_topics.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.topics import ALL_TOPICS, TopicSpec

TOPICS_FILE = Path(__file__).parent / "clientify-odoo" / "files" / "topics.yaml"
HEADER = (
    "# Generated from schemas/topics.py by deploy/helm/generate_topics.py: do not edit.\n"
    "# Every topic the product declares, with the partitions and configs that\n"
    "# `clientify-odoo kafka topics` creates it with (replication comes from the values).\n"
)


def topic_entry(spec: TopicSpec) -> dict[str, object]:
    return {"name": spec.name, "partitions": spec.partitions, "config": spec.configs()}


def render() -> str:
    body = yaml.safe_dump([topic_entry(spec) for spec in ALL_TOPICS], sort_keys=False)
    return HEADER + body


if __name__ == "__main__":
    TOPICS_FILE.write_text(render())
    print(f"wrote {len(ALL_TOPICS)} topics to {TOPICS_FILE}")
