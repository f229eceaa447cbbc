"""bench/broker_requests.py's and bench/stream.py's readings of request counts: JmxTool's
CSV (as Kafka 3.9's `org.apache.kafka.tools.JmxTool --one-time` prints it) and
librdkafka's statistics."""

from __future__ import annotations

import orjson
import pytest

from bench.broker_requests import Delta, parse_jmxtool
from bench.stream import rdkafka_requests

REQ = "kafka.network:type=RequestMetrics,name=RequestsPerSec"
TOPIC = "kafka.server:type=BrokerTopicMetrics"
OUT = (
    "Trying to connect to JMX url: service:jmx:rmi://127.0.0.1/stub/rO0AB\n"
    f'"time","{REQ},request=Fetch,version=11:Count","{REQ},request=Fetch,version=16:Count",'
    f'"{REQ},request=Produce,version=9:Count","{TOPIC},name=MessagesInPerSec,topic=a.b:Count",'
    f'"{TOPIC},name=TotalFetchRequestsPerSec,topic=a.b:Count"\n'
    "1796028248511,4,10,7,1000,30\n"
)


def test_a_reading_sums_each_request_kind_over_its_versions_and_keeps_topics() -> None:
    reading = parse_jmxtool(OUT)
    assert reading.at == pytest.approx(1796028248.511)
    assert reading.requests == {"Fetch": 14.0, "Produce": 7.0}
    assert reading.topics == {
        ("MessagesInPerSec", "a.b"): 1000.0,
        ("TotalFetchRequestsPerSec", "a.b"): 30.0,
    }


def test_a_delta_is_per_second_between_two_readings_and_counts_new_kinds_from_zero() -> None:
    before = parse_jmxtool(OUT)
    after = parse_jmxtool(
        OUT.replace("1796028248511,4,10,7,1000,30", "1796028258511,4,30,17,3000,50")
        .replace('"time",', f'"time","{REQ},request=Heartbeat,version=4:Count",')
        .replace("1796028258511,", "1796028258511,10,")
    )
    delta = Delta.between(before, after)
    assert delta.seconds == pytest.approx(10.0)
    assert delta.requests == {"Heartbeat": 10.0, "Fetch": 20.0, "Produce": 10.0}
    assert delta.per_second(delta.requests["Fetch"]) == pytest.approx(2.0)
    assert delta.topic("MessagesInPerSec", "a.b") == 2000.0
    assert delta.topic("MessagesInPerSec", "other") == 0.0


def test_output_without_a_reading_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no reading"):
        parse_jmxtool("Could not connect to JMX url\n")


def test_librdkafka_statistics_are_summed_over_brokers_without_the_zero_kinds() -> None:
    stats = {
        "brokers": {
            "127.0.0.1:9092/1": {"req": {"Produce": 40, "Fetch": 0, "Metadata": 2}},
            "GroupCoordinator": {"req": {"FindCoordinator": 3, "Metadata": 1}},
        }
    }
    assert rdkafka_requests(orjson.dumps(stats).decode()) == {
        "Produce": 40,
        "Metadata": 3,
        "FindCoordinator": 3,
    }
