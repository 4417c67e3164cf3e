"""What goes in a bag, registered by the apps that own the records (archives knows none of them).

Each app says in its own ``bag.py`` (found by ``autodiscover_modules("bag")`` in
``ArchivesConfig.ready``, as job kinds are found in ``jobs.py``):

* ``register_scope(BagScope(...))``: a kind of bag (``collection``, ``training_run``, ``study``)
  with its root model, the reverse ``Relation``s followed from the root to gather its records,
  and its import allow-list (``importable``: every model label such a bag may hold);
* ``register_records(RecordRules(...))``: facts about an app's models wherever they appear:
  vocabularies pulled in through many-to-many links and matched on import by a natural key
  (``reuse_by``), fields reset on import (``import_overrides``), operational rows that never
  leave (``exported=False``: a reference to one is written as null);
* ``register_readable(fn)``: ``fn(graph) -> {payload-relative path: text}``, the readable
  extras (CSV, JSON) an app writes for the records of its models in a bag;
* ``register_provenance(fn)``: ``fn(builder)``, the PREMIS events an app's records contribute
  (``archives.provenance.ProvenanceBuilder``);
* ``register_check(fn)``: ``fn(document, payload) -> [problem, ...]``, an app's test that a
  bag's records are complete (``document``: data/atelier.json, ``payload``: the data/ folder),
  run by ``bagit_validate`` after the generic check that every reference is in the bag.

A scope's graph is the closure of its root under its relations and every forward foreign key
(``archives.bag_graph.collect``); another app may add relations and labels to a scope it does
not own with ``scope_extend`` (its allow-list grows with them, so import keeps accepting what
export writes, and nothing else).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

SCOPE_MAX_LENGTH = 20


@dataclass(frozen=True)
class Relation:
    """Follow a reverse relation: every ``child`` whose ``field`` points at a ``parent`` record
    in the bag joins the bag (a foreign key, or a many-to-many field on the child)."""

    parent: str
    child: str
    field: str


@dataclass(frozen=True)
class BagScope:
    """A kind of bag: its root model, how its records are gathered, what an import accepts."""

    kind: str
    root: str  # model label of the root record
    relations: tuple[Relation, ...]
    importable: frozenset[str]  # every model label a bag of this kind may hold
    # Targets given as text (not digits) are looked up by this field, e.g. a collection's slug.
    natural_key: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not 0 < len(self.kind) <= SCOPE_MAX_LENGTH:  # BagExport.scope, BagImport.scope
            raise ValueError(f"scope kind {self.kind!r}: 1 to {SCOPE_MAX_LENGTH} characters")
        if self.root not in self.importable:
            raise ValueError(f"scope {self.kind}: its root {self.root} must be importable")


@dataclass(frozen=True)
class RecordRules:
    """Facts about one model, wherever it is in a bag (registered by the model's own app)."""

    label: str
    exported: bool = True  # False: operational rows; references to them are exported as null
    vocabulary: bool = False  # pulled in through many-to-many links (motif terms)
    reuse_by: tuple[str, ...] = ()  # on import, an existing row with these values is reused
    import_overrides: dict[str, Any] = field(default_factory=dict)  # values set on import
    # The row reads its state from its ``job`` (a jobs.Job, never in a bag): export writes the
    # job's outcome beside the fields, import gives the row a finished job with that outcome.
    job_outcome: bool = False


# fn(archives.bag_graph.RecordGraph) and fn(archives.provenance.ProvenanceBuilder): named in
# words, not imported, so that this module imports nothing of the project.
Readable = Callable[[Any], dict[str, str]]
Provenance = Callable[[Any], None]
Check = Callable[[dict[str, Any], Any], list[str]]

_scopes: dict[str, BagScope] = {}
_records: dict[str, RecordRules] = {}
_readables: list[Readable] = []
_provenances: list[Provenance] = []
_checks: list[Check] = []


def register_scope(scope: BagScope) -> BagScope:
    """Add (or replace, when the app registers again) a kind of bag."""
    _scopes[scope.kind] = scope
    return scope


def scope_extend(
    kind: str, *, relations: Iterable[Relation] = (), importable: Iterable[str] = ()
) -> BagScope:
    """Let a scope follow more relations (and accept their records); no duplicates."""
    scope = bag_scope(kind)
    added = tuple(r for r in relations if r not in scope.relations)
    labels = {r.child for r in added} | set(importable)
    _scopes[kind] = replace(
        scope, relations=scope.relations + added, importable=scope.importable | labels
    )
    return _scopes[kind]


def register_records(*rules: RecordRules) -> None:
    for rule in rules:
        _records[rule.label] = rule


def register_readable(fn: Readable) -> Readable:
    if fn not in _readables:
        _readables.append(fn)
    return fn


def register_provenance(fn: Provenance) -> Provenance:
    if fn not in _provenances:
        _provenances.append(fn)
    return fn


def register_check(fn: Check) -> Check:
    if fn not in _checks:
        _checks.append(fn)
    return fn


def bag_checks() -> list[Check]:
    return list(_checks)


def bag_scopes() -> dict[str, BagScope]:
    """Every registered scope by kind (a copy)."""
    return dict(_scopes)


def bag_scope(kind: str) -> BagScope:
    """The scope named ``kind``; KeyError when no app registered it."""
    return _scopes[kind]


def record_rules(label: str) -> RecordRules:
    return _records.get(label) or RecordRules(label=label)


def not_exported() -> frozenset[str]:
    """Labels of operational rows: never in a bag, references to them exported as null."""
    return frozenset(label for label, rule in _records.items() if not rule.exported)


def vocabularies() -> frozenset[str]:
    return frozenset(label for label, rule in _records.items() if rule.vocabulary)


def readables() -> list[Readable]:
    return list(_readables)


def provenances() -> list[Provenance]:
    return list(_provenances)
