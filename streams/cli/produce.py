"""`produce FILE.jsonl`: send a file of activities to the activities topic."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from kafka.errors import KafkaError

from streams.cli.common import EXIT_FAILED, EXIT_OK, CommandError, error, load_rules_or_exit
from streams.client import ActivityProducer, InvalidActivity
from streams.runtime.connections import PRODUCER_FEATURES, KafkaUnavailable, check_kafka
from streams.runtime.kafka_logs import quiet_client_logs
from streams.settings import WorkerSettings

MAX_LISTED = 20
"""Rejected lines listed one by one; the rest are only counted."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    produce = commands.add_parser(
        "produce",
        help="validate and send a file of activities (JSON lines) to the activities topic",
        description="Validate every line against the rules' catalog (as the workers would), "
        "send the valid ones keyed by lead id with an idempotent, acks=all producer, and "
        "list the invalid ones with their line number and rejection code. Exits 0 when "
        "every line was sent, 1 when some were invalid or could not be sent, or when Kafka "
        "stays unusable for STREAMS_CONNECT_TIMEOUT seconds (one line says why).",
    )
    produce.add_argument("file", type=Path, metavar="FILE.jsonl")
    produce.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="RULES_DIR",
        help="rules directory (default: STREAMS_RULES_DIR)",
    )
    produce.add_argument(
        "--broker", default=None, help="bootstrap servers (default: STREAMS_BROKER)"
    )
    produce.add_argument("--topic", default=None, help="topic (default: STREAMS_TOPIC_ACTIVITIES)")
    produce.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the broker's acknowledgements (default 60)",
    )
    produce.set_defaults(run=run_produce)


def run_produce(args: argparse.Namespace) -> int:
    overrides = {
        k: v
        for k, v in {
            "broker": args.broker,
            "topic_activities": args.topic,
            "rules_dir": args.rules,
        }.items()
        if v is not None
    }
    settings = WorkerSettings(**overrides)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_client_logs()
    if not args.file.is_file():
        raise CommandError(f"{args.file}: no such file")
    plan = load_rules_or_exit(settings.rules_dir, settings)
    try:
        check_kafka(
            settings.bootstrap_servers,
            settings.connect_timeout,
            features=PRODUCER_FEATURES,
            topics={settings.topic_activities: settings.partitions},
        )
    except KafkaUnavailable as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    try:
        producer = ActivityProducer(
            settings.bootstrap_servers,
            plan.catalog,
            settings.topic_activities,
            settings.limits.future_horizon_us,
        )
    except KafkaError as exc:
        raise CommandError(f"{settings.broker}: cannot reach Kafka: {exc}", EXIT_FAILED) from None
    sent = invalid = 0
    futures = []
    started = time.monotonic()
    with producer, args.file.open("rb") as lines:
        for number, line in enumerate(lines):
            value = line.rstrip(b"\r\n")
            if not value.strip():
                continue
            try:
                futures.append((number, producer.send(value)))
            except InvalidActivity as exc:
                invalid += 1
                if invalid <= MAX_LISTED:
                    error(f"{args.file}:{number + 1}: {exc}")
        producer.flush(timeout=args.timeout)
        failed = 0
        for number, future in futures:
            try:
                future.get(timeout=max(0.1, args.timeout - (time.monotonic() - started)))
                sent += 1
            except KafkaError as exc:
                failed += 1
                if failed <= MAX_LISTED:
                    error(f"{args.file}:{number + 1}: not sent: {exc}")
    if invalid > MAX_LISTED:
        error(f"... {invalid - MAX_LISTED} more invalid lines")
    error(
        f"produce: {sent} sent to {settings.topic_activities}, {invalid} invalid, "
        f"{failed} not sent, in {time.monotonic() - started:.1f} s"
    )
    sys.stderr.flush()
    return EXIT_OK if invalid == 0 and failed == 0 else EXIT_FAILED
