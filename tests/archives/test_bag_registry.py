"""Bag scopes come from the apps (their bag.py): a scope's records are what its registered
relations reach, and extending a scope (scope_extend) grows both the export and what an import
accepts, nothing else. Real exports and imports on the real database."""

from __future__ import annotations

import json
import tarfile

import pytest

from archives import bag_registry
from archives.bag_registry import BagScope, bag_scope, scope_extend
from archives.bagit_export import bag_export_file
from archives.bagit_import import bag_import
from archives.bagit_validate import BagRefused
from heritage.bag import CATALOGUE, COLLECTION_ITEMS, IMAGE_ANNOTATIONS, ITEM_IMAGES, ITEM_PASSAGES
from heritage.models import GazetteerPassage, SemioticAnnotation
from tests.archives.bagtools import flush_catalogue, small_catalogue

KIND = "catalogue_only"


@pytest.fixture
def narrow_scope(monkeypatch):
    """A scope like heritage's collection, without its items' passages (removed afterwards)."""
    monkeypatch.setattr(bag_registry, "_scopes", dict(bag_registry._scopes))
    bag_registry.register_scope(
        BagScope(
            kind=KIND,
            root="heritage.collection",
            relations=(COLLECTION_ITEMS, ITEM_IMAGES, IMAGE_ANNOTATIONS),
            importable=CATALOGUE - {"heritage.gazetteerpassage"},
            natural_key="slug",
        )
    )
    return KIND


def _records(path) -> dict[str, int]:
    with tarfile.open(path) as archive:
        name = next(n for n in archive.getnames() if n.endswith("/data/atelier.json"))
        document = json.loads(archive.extractfile(name).read())
    counts: dict[str, int] = {}
    for record in document["records"]:
        counts[record["model"]] = counts.get(record["model"], 0) + 1
    return counts


@pytest.mark.django_db
def test_a_scope_holds_what_its_relations_reach_and_grows_when_extended(tmp_path, narrow_scope):
    small_catalogue()
    narrow = tmp_path / "narrow.tar"
    bag_export_file(scope=narrow_scope, target_id="atlas", archive_format="tar", target=narrow)
    counts = _records(narrow)
    assert counts["heritage.heritageitem"] == 3 and counts["heritage.semioticannotation"] == 3
    assert "heritage.gazetteerpassage" not in counts

    extended = scope_extend(narrow_scope, relations=[ITEM_PASSAGES])
    assert ITEM_PASSAGES in extended.relations
    assert "heritage.gazetteerpassage" in bag_scope(narrow_scope).importable
    wider = tmp_path / "wider.tar"
    bag_export_file(scope=narrow_scope, target_id="atlas", archive_format="tar", target=wider)
    assert _records(wider)["heritage.gazetteerpassage"] == 1

    flush_catalogue()
    done = bag_import(path=wider)
    assert done.scope == narrow_scope
    assert GazetteerPassage.objects.count() == 1 and SemioticAnnotation.objects.count() == 3


@pytest.mark.django_db
def test_an_import_of_a_scope_takes_only_its_allow_list(tmp_path, narrow_scope):
    small_catalogue()
    bag = tmp_path / "narrow.tar"
    bag_export_file(scope=narrow_scope, target_id="atlas", archive_format="tar", target=bag)
    flush_catalogue()
    # Same scope, but the allow-list shrinks to the collection alone: the bag is refused whole.
    bag_registry.register_scope(
        BagScope(
            kind=narrow_scope,
            root="heritage.collection",
            relations=(),
            importable=frozenset({"heritage.collection"}),
        )
    )
    with pytest.raises(BagRefused) as refused:
        bag_import(path=bag)
    assert any("'heritage.heritageitem' is not part of a" in p for p in refused.value.problems)
    assert not SemioticAnnotation.objects.exists()


def test_a_scope_must_accept_its_own_root_and_fit_the_export_rows():
    with pytest.raises(ValueError, match="root"):
        BagScope(kind="x", root="heritage.collection", relations=(), importable=frozenset())
    with pytest.raises(ValueError, match="1 to 20 characters"):
        BagScope(kind="x" * 21, root="a.b", relations=(), importable=frozenset({"a.b"}))
