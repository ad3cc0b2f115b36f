"""Which database a plan belongs to: names, identifiers and addresses compared."""

from __future__ import annotations

from migrate.store.identity import compare
from tests.support.plans import IDENTITY


def test_identity_names_what_differs() -> None:
    same = compare(IDENTITY, dict(IDENTITY))
    assert same.refusals == [] and same.notes == []
    other = compare(IDENTITY, {**IDENTITY, "system_identifier": "999"})
    assert "system identifier" in other.refusals[0]
    assert "database name" in compare(IDENTITY, {**IDENTITY, "database": "x"}).refusals[0]
    unknown = {**IDENTITY, "system_identifier": None, "port": 6543}
    assert compare(IDENTITY, unknown).refusals == [
        "server address: plan 10.0.0.5:5432, here 10.0.0.5:6543"
    ]


def test_a_physical_clone_is_refused_unless_the_operator_says_failover() -> None:
    # A clone (restored backup, promoted replica) has the same name and cluster identifier.
    clone = {**IDENTITY, "host": "10.9.9.9"}
    check = compare(IDENTITY, clone)
    assert len(check.refusals) == 1 and "--allow-other-address" in check.refusals[0]
    assert "plan 10.0.0.5:5432, here 10.9.9.9:5432" in check.refusals[0]
    assert check.notes == [
        "server address: the plan saw 10.0.0.5:5432, this connection reaches 10.9.9.9:5432"
    ]
    assert compare(IDENTITY, {**IDENTITY, "port": 6432}).refusals  # port alone differs
    failover = compare(IDENTITY, clone, allow_other_address=True)
    assert failover.refusals == []
    assert "the plan saw 10.0.0.5:5432" in failover.notes[0]
    assert "--allow-other-address" in failover.notes[1]
    # One side without an address (a local socket): nothing to compare, but it is said.
    local = compare(IDENTITY, {**IDENTITY, "host": None, "port": None})
    assert local.refusals == [] and "a local socket" in local.notes[0]
    # Without the identifier the address is the only evidence: the flag cannot waive it.
    blind = {**IDENTITY, "system_identifier": None}
    refused = compare(blind, {**blind, "host": "10.9.9.9"}, allow_other_address=True)
    assert "cannot read it" in refused.refusals[0]


# stage selection and pacing ------------------------------------------------------
