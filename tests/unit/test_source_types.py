"""Every source type is complete: rules, a collector, a report reader and merge priorities.

Adding a source type to the domain enum makes each of these fail until its piece exists.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

from quipu.collectors.base import SourceUnavailable
from quipu.collectors.registry import COLLECTORS, collector
from quipu.domain.source_types import SOURCE_TYPES, Auth
from quipu.domain.states import SourceType, TaskKind
from quipu.reports import merge
from quipu.reports.fields import FIELDS
from quipu.reports.fingerprint import READERS

TYPES = list(SourceType)


def test_every_source_type_has_its_rules() -> None:
    assert set(SOURCE_TYPES) == set(SourceType)
    for rules in SOURCE_TYPES.values():
        assert 1 <= rules.default_port <= 65535
        # One server: one credential, nothing to exclude.
        if not rules.many_hosts:
            assert not rules.exclude_hosts and not rules.many_credentials
        if rules.auth == Auth.SSH:
            assert rules.many_hosts


@pytest.mark.parametrize("source_type", TYPES)
def test_every_source_type_has_a_collector_for_both_phases(source_type: SourceType) -> None:
    module = importlib.import_module(COLLECTORS[source_type])
    for kind in TaskKind:
        run = collector(source_type.value, kind.value)
        assert run is getattr(module, kind.value)
        assert inspect.iscoroutinefunction(run)
        positional = [
            name
            for name, p in inspect.signature(run).parameters.items()
            if p.kind is not inspect.Parameter.KEYWORD_ONLY
        ]
        assert positional == ["job", "emit", "stop"]


def test_an_unknown_source_type_or_phase_is_refused_in_words() -> None:
    with pytest.raises(SourceUnavailable, match="does not know 'ldap' sources"):
        collector("ldap", "connect")
    with pytest.raises(SourceUnavailable, match="'probe' jobs"):
        collector("network", "probe")


def test_every_source_type_has_a_report_reader() -> None:
    assert set(READERS) == set(SourceType)


def test_every_merge_priority_ranks_every_source_type() -> None:
    for field, order in merge.FIELD_PRIORITY.items():
        assert sorted(order) == sorted(SourceType), field
    assert set(merge.FIELD_PRIORITY) == set(FIELDS)


def test_every_source_type_takes_part_in_the_merge() -> None:
    assert set(merge.IDENTITY_KEYS) == set(SourceType)
    joined = [merge.BASE_TYPE, *(kind for kind, _ in merge.JOINS)]
    assert sorted(joined) == sorted(SourceType)
