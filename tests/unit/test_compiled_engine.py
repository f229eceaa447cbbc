"""The compiled engine (mypyc, `streams.engine_build`) and the native core (Rust,
`streams.native_build`) against the pure-Python reference.

Child processes (`tests/engine_child.py`), one with `STREAMS_ENGINE=pure` and one with
`STREAMS_ENGINE=compiled` or `native` (the engine is chosen once per process; every test
runs for both pairs), get the same generated rules and streams and must return the same
events, dead letters and counters for every batch and the same final states (as stored:
encoded, or replayed from a journal). The native core runs over a `MemoryStore` or a
`RedisStore` (`streams.engine.native`; beneath the latter it is held to the Python engine
by tests/integration/test_native_worker.py): a request with the test stores of
test_history_index runs its child's Python engine, and the tests that use a
`MemoryStore` check that the core did run. The
streams are those of the indexed-evaluator test (late dates, duplicates, redeliveries,
Delete Lead, field changes, pruning, reloads, trimming), mutated into hostile records
(keys dropped, values of any JSON type, bytes cut or replaced: the decoder's paths), the
sample stream over the sample rules, and the benchmark's generated catalogs and streams.

Skipped, with the reason, only when there is no fresh compiled (native) build (no C
compiler, no cargo: `scripts/bootstrap` said so); under `CI=true` that fails instead, since
CI builds both.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.engine import generate, write_rules
from streams import native_build
from streams.engine.datatypes import datetime_to_us
from streams.engine_build import NO_COMPILER, build, compiler_missing, install
from streams.engine_select import (
    CHOICES,
    COMPILED_MODULES,
    ROOT,
    check_build,
    check_native,
    extension_suffix,
    select,
)
from streams.samples import sample_activities
from streams.settings import EngineSettings
from tests.engine_child import receive, send
from tests.unit.test_history_index import CAMPAIGNS, NOW_US, TYPE, ops, record

KEYS = [
    "leadId",
    "activityDate",
    "activityTypeId",
    "primaryAttributeValue",
    "attributes",
    "fields",
    "marketoGUID",
]
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
mutations = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(KEYS)),
    st.tuples(st.just("set"), st.sampled_from(KEYS), json_values),
    st.tuples(st.just("attribute"), st.sampled_from(["qty", "at", "item", "nope"]), json_values),
    st.tuples(st.just("field"), st.sampled_from(["country", "x" * 300]), json_values),
    st.tuples(st.just("cut"), st.integers(0, 300)),
    st.tuples(st.just("bytes"), st.binary(max_size=40)),
)


def mutate(value: bytes, mutation: tuple[Any, ...]) -> bytes:
    kind = mutation[0]
    if kind == "cut":
        return value[: mutation[1]]
    if kind == "bytes":
        return bytes(mutation[1])
    try:
        activity = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value  # already cut or replaced by an earlier mutation
    if type(activity) is not dict:
        return value
    if kind == "drop":
        activity.pop(mutation[1], None)
    elif kind == "set":
        activity[mutation[1]] = mutation[2]
    elif kind == "attribute":
        activity["attributes"] = [{"apiName": mutation[1], "value": mutation[2]}]
    else:
        activity["fields"] = [{"name": mutation[1], "newValue": mutation[2]}]
    return orjson.dumps(activity, option=orjson.OPT_NON_STR_KEYS)


class Child:
    def __init__(self, engine: str) -> None:
        env = {**os.environ, "STREAMS_ENGINE": engine, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.engine_child"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        self.hello = receive(self.stdout)
        assert self.hello is not None, f"the {engine} child did not start"

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        send(self.stdin, request)
        answer = receive(self.stdout)
        assert answer is not None, "the child died (its stderr is in the test's output)"
        return answer  # type: ignore[no-any-return]  # what run() sent

    def close(self) -> None:
        self.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module", params=["compiled", "native"])
def engines(request: pytest.FixtureRequest) -> Iterator[tuple[Child, Child]]:
    kind: str = request.param
    built, reason, _ = check_build() if kind == "compiled" else check_native()
    if built is None:
        message = f"no {kind} engine to compare: {reason}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    pure, other = Child("pure"), Child(kind)
    try:
        # Both sides must be what they claim, or the comparison proves nothing.
        assert pure.hello["compiled"] is False and pure.hello["native"] is False, pure.hello
        if kind == "compiled":
            assert other.hello["compiled"] is True and other.hello["native"] is False
        else:
            assert other.hello["native"] is True, other.hello
        yield pure, other
    finally:
        pure.close()
        other.close()


def same(engines: tuple[Child, Child], **request: Any) -> dict[str, Any]:
    pure, other = engines
    want = pure.run(request)
    got = other.run(request)
    assert len(got["outcomes"]) == len(want["outcomes"])
    for n, (g, w) in enumerate(zip(got["outcomes"], want["outcomes"], strict=True)):
        assert g == w, f"batch {n}"
    assert got["states"] == want["states"]
    assert want["native"] is False
    if other.hello["native"] and request["store"] == "memory":
        assert got["native"], "the native core did not run the request"
    return want


@pytest.fixture(scope="module")
def index_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rules")
    (root / "activity-types").mkdir()
    (root / "campaigns").mkdir()
    (root / "activity-types" / "buy.yaml").write_text(TYPE)
    for name, body in CAMPAIGNS.items():
        (root / "campaigns" / f"{name}.yaml").write_text(body)
    return root


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(ops, min_size=1, max_size=120),
    hostile=st.lists(st.tuples(st.integers(0, 119), mutations), max_size=12),
    batch=st.integers(1, 30),
    drift=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    redeliver=st.integers(0, 5),
    index_from=st.sampled_from(["default", None, 0, 3]),
    max_history=st.sampled_from([20_000, 4]),
    store=st.sampled_from(["memory", "json", "journal"]),
    reload_every=st.sampled_from([0, 3]),
)
def test_compiled_engine_matches_the_pure_engine(
    engines: tuple[Child, Child],
    index_rules: Path,
    stream: list[Any],
    hostile: list[tuple[int, tuple[Any, ...]]],
    batch: int,
    drift: list[int],
    redeliver: int,
    index_from: Any,
    max_history: int,
    store: str,
    reload_every: int,
) -> None:
    minutes = 0
    values = []
    for i, (kind, lead, late, item, qty, guid) in enumerate(stream):
        minutes += drift[i % len(drift)] * 7
        values.append(record((kind, lead, minutes - (late if late < 300 else 0), item, qty, guid)))
    for i, mutation in hostile:
        if i < len(values):
            values[i] = mutate(values[i], mutation)
    records = [(v, "t", 0, i) for i, v in enumerate(values)]
    batches = [records[i : i + batch] for i in range(0, len(records), batch)]
    if redeliver and batches:
        batches.insert(min(redeliver, len(batches)), batches[min(redeliver, len(batches)) - 1])
    same(
        engines,
        rules=str(index_rules),
        retention_us=3 * 3_600_000_000,
        max_history=max_history,
        index_from=index_from,
        store=store,
        reload_every=reload_every,
        now_us=NOW_US,
        batches=batches,
    )


def sample_request(seed: int, batch: int, store: str) -> dict[str, Any]:
    values = [orjson.dumps(a) for a in sample_activities(600, leads=40, seed=seed)]
    values += [b"not json", b'{"leadId": 1, "activityTypeId": 999999}']  # dead letters
    records = [(v, "activities", 0, i) for i, v in enumerate(values)]
    return {
        "rules": str(ROOT / "rules"),
        "retention_us": None,
        "max_history": 20_000,
        "index_from": "default",
        "store": store,
        "reload_every": 0,
        "now_us": datetime_to_us(datetime(2026, 9, 1, tzinfo=UTC)),
        "batches": [records[i : i + batch] for i in range(0, len(records), batch)],
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    batch=st.integers(1, 400),
    store=st.sampled_from(["memory", "json", "journal"]),
)
def test_compiled_engine_matches_on_the_sample_rules_and_stream(
    engines: tuple[Child, Child], seed: int, batch: int, store: str
) -> None:
    same(engines, **sample_request(seed, batch, store))


def test_the_sample_comparison_sees_memberships_and_dead_letters(
    engines: tuple[Child, Child],
) -> None:
    """The demo's stream (seed 1): the comparison above is not between empty outputs."""
    want = same(engines, **sample_request(1, 100, "memory"))
    assert sum(len(o[0]) for o in want["outcomes"]) >= 20
    assert sum(len(o[1]) for o in want["outcomes"]) >= 2


_catalogs: dict[int, Path] = {}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), index_from=st.sampled_from(["default", None, 0]))
def test_compiled_engine_matches_on_generated_catalogs(
    engines: tuple[Child, Child], seed: int, index_from: Any
) -> None:
    """The benchmark's generator: 10 custom types, 50 campaigns of every kind."""
    rng = random.Random(seed)
    if seed not in _catalogs:
        _catalogs[seed] = Path(tempfile.mkdtemp(prefix="catalog-")) / "rules"
        write_rules(_catalogs[seed], rng)
    values = generate(1500, 60, rng)
    records = [(v, "bench", 0, i) for i, v in enumerate(values)]
    want = same(
        engines,
        rules=str(_catalogs[seed]),
        retention_us=None,
        max_history=20_000,
        index_from=index_from,
        store="memory",
        reload_every=0,
        now_us=datetime_to_us(datetime(2026, 12, 1, tzinfo=UTC)),
        batches=[records[i : i + 250] for i in range(0, len(records), 250)],
    )
    assert any(o[0] for o in want["outcomes"])


def test_a_build_whose_sources_changed_is_not_used(tmp_path: Path) -> None:
    """An edited source makes the build stale: `auto` runs pure, `compiled` refuses."""
    stale = tmp_path / "engine"
    stale.mkdir()
    manifest = {
        "build": "x",
        "suffix": extension_suffix(),
        "sources": {"streams/engine/evaluator.py": "0" * 64},
        "modules": {},
    }
    (stale / "manifest.json").write_text(orjson.dumps(manifest).decode())
    modules, reason, _ = check_build(stale)
    assert modules is None
    assert "stale (streams/engine/evaluator.py changed)" in reason
    no_native = tmp_path / "no-native"
    chosen = select({"STREAMS_ENGINE": "auto"}, stale, no_native)
    assert not chosen.compiled
    assert chosen.describe().startswith("engine: pure Python (the compiled build is stale")
    with pytest.raises(SystemExit) as refused:
        select({"STREAMS_ENGINE": "compiled"}, stale, no_native)
    assert refused.value.code == 2
    absent = select({"STREAMS_ENGINE": "auto"}, tmp_path / "none", no_native)
    assert absent.describe() == (
        "engine: pure Python (no compiled build: scripts/build-engine makes one); native "
        "core not used: no native build: scripts/build-native makes one (needs cargo)"
    )
    with pytest.raises(SystemExit):
        select({"STREAMS_ENGINE": "fast"}, stale)


def test_a_native_build_whose_sources_changed_is_not_used(tmp_path: Path) -> None:
    """An edited crate file makes the native build stale: `auto` runs without it (and says
    why in its one line), `native` refuses; `pure` and `compiled` never use it."""
    stale = tmp_path / "native"
    stale.mkdir()
    (stale / "streams_native.so").write_bytes(b"")
    manifest = {
        "build": "x",
        "suffix": extension_suffix(),
        "module": "streams_native.so",
        "sources": {"native/src/lib.rs": "0" * 64},
    }
    (stale / "manifest.json").write_text(orjson.dumps(manifest).decode())
    module, reason, _ = check_native(stale)
    assert module is None
    assert "stale" in reason
    no_build = tmp_path / "engine"
    chosen = select({"STREAMS_ENGINE": "auto"}, no_build, stale)
    assert chosen.native is None
    assert "native core not used: the native build is stale" in chosen.describe()
    with pytest.raises(SystemExit) as refused:
        select({"STREAMS_ENGINE": "native"}, no_build, stale)
    assert refused.value.code == 2
    fresh, _, _ = check_native()
    if fresh is not None:  # the real build: picked by auto and native, not by pure
        assert select({"STREAMS_ENGINE": "auto"}, no_build).native == fresh
        assert select({"STREAMS_ENGINE": "native"}, no_build).native == fresh
        assert select({"STREAMS_ENGINE": "pure"}, no_build).native is None


def test_without_cargo_the_native_build_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no cargo on it
    assert native_build.build(force=True) == native_build.NO_CARGO
    assert capsys.readouterr().err == (
        "build-native: no cargo found: the native core is not built "
        "(the compiled or pure-Python engine runs)\n"
    )


def test_without_a_compiler_the_build_says_so_and_the_pure_path_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CC", "no-such-cc")
    assert compiler_missing() == "no C compiler (no-such-cc) found"
    assert build(force=True) == NO_COMPILER
    assert capsys.readouterr().err == (
        "build-engine: no C compiler (no-such-cc) found: the engine runs as pure Python\n"
    )


def test_the_setting_offers_the_choices_the_selection_reads() -> None:
    field = EngineSettings.model_fields["engine"]
    assert get_args(field.annotation) == CHOICES
    assert field.default == "auto"


def fake_build(root: Path, name: str) -> Path:
    """A build directory `check_build` accepts: every compiled module a (dummy) file."""
    lib = root / name
    lib.mkdir()
    modules = {}
    for module in COMPILED_MODULES:
        (lib / f"{module}.so").write_text(name)
        modules[module] = f"{module}.so"
    manifest = {"build": name, "suffix": extension_suffix(), "sources": {}, "modules": modules}
    (lib / "manifest.json").write_text(orjson.dumps(manifest).decode())
    return lib


def test_a_rebuild_swaps_a_link_and_keeps_the_build_before(tmp_path: Path) -> None:
    """`install` (the last step of `scripts/build-engine`): `build/engine` is a symlink
    renamed over in one step, the build before stays (a process may be loading it), older
    ones go; a directory left by a build made before versioning is replaced."""
    link = tmp_path / "engine"
    fake_build(tmp_path, "legacy").rename(link)  # a real directory, as builds used to be
    install(fake_build(tmp_path, "new-a"), "a", link)
    assert link.is_symlink() and link.resolve() == tmp_path / "engine-a"
    assert (link / "manifest.json").is_file()
    install(fake_build(tmp_path, "new-b"), "b", link)
    assert link.resolve() == tmp_path / "engine-b"
    assert (tmp_path / "engine-a").is_dir(), "the build before is kept"
    install(fake_build(tmp_path, "new-c"), "c", link)
    assert link.resolve() == tmp_path / "engine-c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine", "engine-b", "engine-c"]


def test_a_rebuild_of_the_native_core_keeps_cargos_target_directory(tmp_path: Path) -> None:
    """`scripts/build-native` installs through the same `install`: its older builds go,
    but `native-target` (cargo's working files, beside the builds) is not a build."""
    link = tmp_path / "native"
    (tmp_path / "native-target" / "release").mkdir(parents=True)
    for build_id in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"):
        install(fake_build(tmp_path, f"new-{build_id}"), build_id, link)
    assert link.resolve() == tmp_path / "native-cccccccccccc"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "native",
        "native-bbbbbbbbbbbb",
        "native-cccccccccccc",
        "native-target",
    ]


def test_a_build_is_read_whole_through_the_link_while_it_is_swapped(tmp_path: Path) -> None:
    """The manifest and the modules come from the build the link named when it was read:
    a swap afterwards does not mix two builds."""
    link = tmp_path / "engine"
    install(fake_build(tmp_path, "new-a"), "a", link)
    modules, _, build_id = check_build(link)
    install(fake_build(tmp_path, "new-b"), "b", link)
    assert modules is not None and build_id == "new-a"
    assert {p.parent for p in modules.values()} == {tmp_path / "engine-a"}
    assert all(p.read_text() == "new-a" for p in modules.values())
    again, _, build_id = check_build(link)
    assert again is not None and build_id == "new-b"
    assert {p.parent for p in again.values()} == {tmp_path / "engine-b"}
