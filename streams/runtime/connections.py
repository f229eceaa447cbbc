"""A process's connections at start: waiting, boundedly and loudly, for Kafka and Redis;
checking that the cluster has what the process needs; creating the topics it needs.

`check_kafka` is the one entry point for every command that talks to Kafka (worker, api,
produce, the dispatcher): within `timeout` seconds it either returns, with the cluster
reachable (every broker it advertises included), the protocol features the role needs
present, and each topic existing with the expected partition count and a usable
replication, or raises `KafkaUnavailable` whose message is one line for the user. It never
hangs: every client call in it has a timeout shorter than what is left.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

TOPIC_ALREADY_EXISTS: Final = 36

FEATURES: Final[Mapping[str, Mapping[int, str]]] = {
    "produce": {0: "Produce"},
    "idempotent producer": {22: "InitProducerId"},
    "read": {1: "Fetch", 2: "ListOffsets"},
    "consumer group": {
        8: "OffsetCommit",
        9: "OffsetFetch",
        10: "FindCoordinator",
        11: "JoinGroup",
        12: "Heartbeat",
        14: "SyncGroup",
    },
    "topic admin": {19: "CreateTopics", 32: "DescribeConfigs"},
}
"""Kafka protocol requests (API key: name) by what a process does with them."""
WORKER_FEATURES: Final = ("produce", "read", "consumer group", "topic admin")
API_FEATURES: Final = ("produce", "idempotent producer", "read", "topic admin")
PRODUCER_FEATURES: Final = ("produce", "idempotent producer")

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """The cluster did not answer within the allowed time, lacks something the process
    needs, or holds a topic that would not work; the message is one line for the user."""


def _admin(bootstrap: Sequence[str] | str, timeout: float) -> Any:
    from kafka import KafkaAdminClient  # slow to import: only where it is used

    timeout_ms = max(1000, int(timeout * 1000))
    # bootstrap_timeout_ms too: kafka-python's default (30 s) would outlast a shorter
    # STREAMS_CONNECT_TIMEOUT, silently.
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        client_id="streams-check",
    )


def _servers(bootstrap: Sequence[str] | str) -> list[str]:
    return bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)


def _describe(exc: BaseException) -> str:
    """`Type: message`, once: kafka-python's messages often start with their type."""
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def is_local(bootstrap: Sequence[str] | str) -> bool:
    """Whether every bootstrap server is on this machine (a development run)."""
    for server in _servers(bootstrap):
        host = server.strip().removeprefix("kafka://").rsplit(":", 1)[0].strip("[]")
        if host == "localhost":
            continue
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    return True


def _unreachable(brokers: Sequence[Mapping[str, Any]], timeout: float) -> list[str]:
    """The advertised brokers that refuse a TCP connection from here."""
    bad = []
    for broker in brokers:
        address = f"{broker['host']}:{broker['port']}"
        try:
            with socket.create_connection((broker["host"], broker["port"]), timeout=timeout):
                pass
        except OSError:
            bad.append(address)
    return bad


def _bootstrap_listens(bootstrap: Sequence[str] | str) -> bool:
    """Whether every bootstrap server accepts a TCP connection."""
    addresses = []
    for server in _servers(bootstrap):
        host, _, port = server.strip().removeprefix("kafka://").rpartition(":")
        addresses.append({"host": host.strip("[]"), "port": int(port) if port.isdigit() else 0})
    return not _unreachable(addresses, 1.0)


def missing_features(versions: Mapping[Any, Any], features: Collection[str]) -> list[str]:
    """Of `features` (keys of FEATURES), those whose requests the broker does not list in
    its ApiVersions answer (`versions`: API key -> version range), each with the requests
    it lacks."""
    keys = {int(key) for key in versions}
    found = []
    for feature in features:
        lacking = [name for key, name in FEATURES[feature].items() if key not in keys]
        if lacking:
            found.append(f"{feature} ({', '.join(lacking)})")
    return found


def wait_for_kafka(
    bootstrap: Sequence[str] | str,
    timeout: float,
    retry: float = 2.0,
    features: Collection[str] = (),
) -> None:
    """Return once the cluster answers a metadata request and every broker it advertises
    accepts a connection from here; one log line per failed try, KafkaUnavailable after
    `timeout` seconds (never a silent hang), or at once when the broker lacks one of
    `features` (that does not change by waiting)."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            with _admin(bootstrap, max(1.0, min(5.0, left))) as admin:
                cluster: dict[str, Any] = admin.describe_cluster()
                versions = admin.api_versions()
            missing = missing_features(versions, features)
            if missing:
                raise KafkaUnavailable(
                    f"Kafka at {','.join(_servers(bootstrap))} lacks what this process needs: "
                    f"{'; '.join(missing)}; use Apache Kafka 3.x (or a broker that supports "
                    "these requests)"
                )
            unreachable = _unreachable(cluster["brokers"], max(0.5, min(3.0, left)))
            if not unreachable:
                return
            problem = (
                f"it answered, but the brokers it advertises are not reachable from here: "
                f"{', '.join(unreachable)} (check the brokers' advertised.listeners)"
            )
        except KafkaUnavailable:
            raise
        except Exception as exc:  # kafka-python raises many types for "not there"
            problem = _describe(exc)
            if "ConnectionError" in type(exc).__name__ and _bootstrap_listens(bootstrap):
                # The bootstrap servers took the connection: the refusal came from an
                # address they advertise.
                problem = (
                    f"the bootstrap servers accept connections, but a broker they advertise "
                    f"refused one ({problem}): check the brokers' advertised.listeners"
                )
        left = deadline - time.monotonic()
        if left <= 0:
            raise KafkaUnavailable(
                f"Kafka at {','.join(_servers(bootstrap))} not usable within {timeout:.0f} s: "
                f"{problem}"
            ) from None
        log.warning(
            "Kafka at %s not usable (try %d: %s); retrying for %.0f s more",
            ",".join(_servers(bootstrap)),
            attempt,
            problem,
            left,
        )
        time.sleep(min(retry, left))


def ensure_topics(
    bootstrap: Sequence[str] | str,
    topics: Mapping[str, int],
    timeout: float = 30.0,
    replication_factor: int = -1,
) -> None:
    """Create each missing topic with its partition count (and the cluster's
    default.replication.factor, unless given) and wait until every partition has a leader;
    an existing topic is left as it is (`check_topics` says whether it will do)."""
    with _admin(bootstrap, timeout) as admin:
        result: dict[str, Any] = admin.create_topics(
            {
                name: {"num_partitions": n, "replication_factor": replication_factor}
                for name, n in topics.items()
            },
            raise_errors=False,
        )
        failed = [
            f"{t['name']}: {t.get('error_message') or t['error_code']}"
            for t in result["topics"]
            if t["error_code"] not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failed:
            raise KafkaUnavailable(f"cannot create topics: {'; '.join(failed)}")
        admin.wait_for_topics(list(topics), timeout_ms=int(timeout * 1000))


def topic_problems(
    described: Mapping[str, Any],
    configs: Mapping[str, str],
    partitions: int,
    local: bool,
) -> tuple[list[str], list[str]]:
    """(errors, warnings) about one topic, from DescribeTopics (`described`) and its
    configuration: a partition count other than `partitions` (the keys of one lead would
    move between partitions, and the settings would not say how the topic is laid out),
    fewer replicas than min.insync.replicas (every acks=all write fails), compaction (it
    keeps one record per lead id: events and activities would vanish); replication 1
    outside a local run only warns (a broker loss loses data and stops the partition)."""
    name = described["name"]
    errors: list[str] = []
    warnings: list[str] = []
    count = len(described["partitions"])
    if count != partitions:
        errors.append(
            f"topic {name} has {count} partitions, the settings say {partitions} "
            f"(STREAMS_PARTITIONS); set it to {count}, or move to a new topic"
        )
    replicas = min((len(p["replica_nodes"]) for p in described["partitions"]), default=0)
    min_isr = int(configs.get("min.insync.replicas", "1"))
    if replicas < min_isr:
        errors.append(
            f"topic {name} has {replicas} replica(s) but min.insync.replicas={min_isr}: "
            "every acks=all write to it would fail (NotEnoughReplicas)"
        )
    if "compact" in configs.get("cleanup.policy", "delete"):
        errors.append(
            f"topic {name} has cleanup.policy={configs['cleanup.policy']}: compaction keeps "
            "one record per lead id, so activities and events would vanish; use delete"
        )
    if replicas == 1 and not local:
        warnings.append(
            f"topic {name} has replication factor 1: losing its broker loses its data and "
            "stops it; production topics want 3 (README: Kafka topics)"
        )
    return errors, warnings


def check_topics(
    bootstrap: Sequence[str] | str, topics: Mapping[str, int], timeout: float = 30.0
) -> None:
    """KafkaUnavailable naming the first topic that would not work (`topic_problems`);
    warnings are logged."""
    from kafka.admin import ConfigResource, ConfigResourceType

    wanted = ["min.insync.replicas", "cleanup.policy"]
    with _admin(bootstrap, timeout) as admin:
        described = admin.describe_topics(list(topics))
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, wanted) for name in topics],
            config_filter="all",
        )
    by_topic = configs.get("topic", {})
    local = is_local(bootstrap)
    errors: list[str] = []
    for topic in described:
        if topic.get("error_code"):
            errors.append(f"topic {topic['name']}: error {topic['error_code']}")
            continue
        values = {k: str(v["value"]) for k, v in by_topic.get(topic["name"], {}).items()}
        found, warnings = topic_problems(topic, values, topics[topic["name"]], local)
        errors += found
        for warning in warnings:
            log.warning("%s", warning)
    if errors:
        raise KafkaUnavailable("; ".join(errors))


def check_kafka(
    bootstrap: Sequence[str] | str,
    timeout: float,
    *,
    features: Collection[str],
    topics: Mapping[str, int],
    create: bool = True,
) -> None:
    """Everything a process checks before it starts: the cluster is usable (`wait_for_kafka`,
    with the protocol `features` it needs), each of `topics` exists (created when `create`)
    and will work (`check_topics`). KafkaUnavailable with one line otherwise, within about
    `timeout` seconds."""
    started = time.monotonic()
    wait_for_kafka(bootstrap, timeout, features=features)
    left = max(5.0, timeout - (time.monotonic() - started))
    try:
        if create:
            ensure_topics(bootstrap, topics, left)
        check_topics(bootstrap, topics, left)
    except KafkaUnavailable:
        raise
    except Exception as exc:  # the cluster went away between the checks, a timeout
        raise KafkaUnavailable(
            f"Kafka at {','.join(_servers(bootstrap))}: checking topics "
            f"{', '.join(topics)} failed: {_describe(exc)}"
        ) from None
