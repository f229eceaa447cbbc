"""`worker`: the streaming worker of the runtime contract."""

from __future__ import annotations

import argparse
import logging

from streams.cli.common import EXIT_FAILED, CommandError, faust_datadir, load_rules_or_exit
from streams.gc_tuning import tune_gc
from streams.runtime.connections import WORKER_FEATURES, KafkaUnavailable, check_kafka
from streams.runtime.kafka_logs import quiet_client_logs
from streams.settings import WorkerSettings
from streams.state.redis_client import RedisUnavailable, wait_for_redis

FLAGS = {
    "broker": "Kafka bootstrap servers (STREAMS_BROKER)",
    "redis_url": "Redis URL (STREAMS_REDIS_URL)",
    "rules_dir": "rules directory (STREAMS_RULES_DIR)",
    "app_id": "consumer group and Redis key prefix (STREAMS_APP_ID)",
    "web_port": "port of /metrics, /health, /ready (STREAMS_WEB_PORT)",
    "partitions": "partitions of topics created at start (STREAMS_PARTITIONS)",
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker",
        help="run a streaming worker: activities in, memberships out",
        description="A Faust worker: consumes the activities topic, evaluates the campaigns "
        "of the rules directory with per-lead state in Redis, and writes membership events "
        "and dead letters. Settings come from STREAMS_* variables; these flags win. It "
        "refuses to start on invalid rules (exit 2) and exits 1 when Kafka or Redis stay "
        "unreachable for STREAMS_CONNECT_TIMEOUT seconds. Stop it with SIGTERM or Ctrl-C.",
    )
    for name, text in FLAGS.items():
        kind = int if name in ("web_port", "partitions") else str
        worker.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=text)
    worker.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning"],
        help="log level (default info)",
    )
    worker.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    settings = WorkerSettings(**overrides)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_client_logs()
    plan = load_rules_or_exit(settings.rules_dir, settings)
    try:
        topics = (settings.topic_activities, settings.topic_memberships, settings.topic_dlq)
        check_kafka(
            settings.bootstrap_servers,
            settings.connect_timeout,
            features=WORKER_FEATURES,
            topics=dict.fromkeys(topics, settings.partitions),
        )
        wait_for_redis(settings.redis_url, settings.connect_timeout, cluster=settings.redis_cluster)
    except (KafkaUnavailable, RedisUnavailable) as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None

    # Imported after the checks: importing Faust takes a second.
    from streams.runtime.faust_app import run_worker
    from streams.runtime.worker import build_app

    app = build_app(settings, plan, faust_datadir())
    tune_gc()
    run_worker(app, loglevel=args.log_level.upper())  # until SIGTERM/SIGINT; exits the process
