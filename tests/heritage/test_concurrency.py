"""Optimistic concurrency of catalogue edits: ETags carry a version, If-Match is honoured (412
when stale), a write touches only the fields sent, and the admin refuses a stale save.

The racing tests send real simultaneous HTTP requests to the live server (one thread each)."""

from __future__ import annotations

import html
import re
import threading

import pytest
import requests
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from heritage import services
from heritage.models import Collection, HeritageItem
from tests.conftest import make_user
from tests.heritage.conftest import image_bytes

ETAG = re.compile(r'^"v(\d+)-[0-9a-f]{32}"$')


def make_item(accession: str = "RACE-1") -> HeritageItem:
    collection = Collection.objects.filter(slug="race").first() or services.collection_create(
        slug="race", title={"en": "Race"}, published=True
    )
    return services.item_create(
        collection=collection,
        accession_number=accession,
        title={"en": "Original title"},
        period="original period",
        place="original place",
        published=True,
    )


@pytest.fixture
def curator_api(curator) -> APIClient:
    client = APIClient()
    client.force_authenticate(curator)
    return client


def version_of(response) -> int:
    match = ETAG.match(response["ETag"])
    assert match, response["ETag"]
    return int(match.group(1))


# --- ETag and If-Match, one client at a time --------------------------------------------------


@pytest.mark.django_db
def test_etag_carries_the_version_and_a_stale_if_match_gets_412(curator_api):
    item = make_item()
    url = f"/api/v1/items/{item.pk}/"
    first = curator_api.get(url)
    assert first.status_code == 200 and version_of(first) == 1
    etag = first["ETag"]

    ok = curator_api.patch(url, {"period": "Qing"}, format="json", HTTP_IF_MATCH=etag)
    assert ok.status_code == 200, ok.content
    assert version_of(ok) == 2 and ok["ETag"] != etag
    assert ok.json()["period"] == "Qing"
    assert curator_api.get(url)["ETag"] == ok["ETag"]  # the write answered the current ETag

    stale = curator_api.patch(url, {"place": "Khotan"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    body = stale.json()
    assert "changed by someone else" in body["detail"]
    assert body["current_version"] == 2 and body["your_version"] == 1
    item.refresh_from_db()
    assert item.place == "original place" and item.version == 2  # nothing written

    # The current ETag (also in its weak form, as some proxies send it) goes through.
    again = curator_api.patch(
        url, {"place": "Khotan"}, format="json", HTTP_IF_MATCH=f"W/{ok['ETag']}"
    )
    assert again.status_code == 200 and version_of(again) == 3
    assert curator_api.patch(url, {"place": "Kashgar"}, HTTP_IF_MATCH="*").status_code == 200


@pytest.mark.django_db
def test_if_match_that_names_no_version_is_refused_and_invalid_fields_are_400(curator_api):
    item = make_item()
    url = f"/api/v1/items/{item.pk}/"
    etag = curator_api.get(url)["ETag"]
    bogus = curator_api.patch(url, {"period": "X"}, format="json", HTTP_IF_MATCH='"abc123"')
    assert bogus.status_code == 412
    assert "If-Match must be an ETag" in bogus.json()["detail"]
    bad = curator_api.patch(url, {"rights": "not a uri"}, format="json", HTTP_IF_MATCH=etag)
    assert bad.status_code == 400
    item.refresh_from_db()
    assert item.period == "original period" and item.version == 1
    # Anonymous users cannot write whatever they send.
    anon = APIClient().patch(url, {"period": "X"}, format="json", HTTP_IF_MATCH=etag)
    assert anon.status_code in (401, 403)


@pytest.mark.django_db
def test_collections_and_passages_honour_if_match_too(curator_api):
    collection = services.collection_create(slug="c1", title={"en": "C"}, published=True)
    passage = services.passage_create(source_work="Gazetteer", original_text="山", published=True)
    for url, field, value in (
        (f"/api/v1/collections/{collection.slug}/", "position", 4),
        (f"/api/v1/passages/{passage.pk}/", "section", "Rivers"),
    ):
        etag = curator_api.get(url)["ETag"]
        assert version_of(curator_api.get(url)) == 1
        ok = curator_api.patch(url, {field: value}, format="json", HTTP_IF_MATCH=etag)
        assert ok.status_code == 200, ok.content
        assert version_of(ok) == 2
        stale = curator_api.patch(url, {field: value}, format="json", HTTP_IF_MATCH=etag)
        assert stale.status_code == 412, url
    collection.refresh_from_db()
    passage.refresh_from_db()
    assert (collection.position, collection.version) == (4, 2)
    assert (passage.section, passage.version) == ("Rivers", 2)


@pytest.mark.django_db
def test_get_304_stays_honest_for_anonymous_and_signed_in_readers(curator_api):
    item = make_item()
    url = f"/api/v1/items/{item.pk}/"
    anon = APIClient()
    etag = anon.get(url)["ETag"]
    assert ETAG.match(etag)
    assert anon.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304  # cached path
    mine = curator_api.get(url)["ETag"]
    assert curator_api.get(url, HTTP_IF_NONE_MATCH=mine).status_code == 304
    # A new image changes the item's body but not its fields: no stale 304, same version.
    services.item_image_create(item=item, content=image_bytes(), filename="a.png")
    fresh = anon.get(url, HTTP_IF_NONE_MATCH=etag)
    assert fresh.status_code == 200 and len(fresh.json()["images"]) == 1
    assert version_of(fresh) == 1 and fresh["ETag"] != etag
    # ... and an If-Match of the older body still names the current version: not a conflict.
    ok = curator_api.patch(url, {"period": "Tang"}, format="json", HTTP_IF_MATCH=mine)
    assert ok.status_code == 200


@pytest.mark.django_db
def test_services_write_only_the_fields_given():
    item = make_item()
    other_copy = HeritageItem.objects.get(pk=item.pk)
    services.item_update(item=item, period="Ming")
    services.item_update(item=other_copy, place="Hotan")  # an old copy, one field
    item.refresh_from_db()
    assert (item.period, item.place, item.version) == ("Ming", "Hotan", 3)
    with pytest.raises(services.VersionConflict):
        services.item_update(item=item, expected_version=1, period="Yuan")
    item.refresh_from_db()
    assert item.period == "Ming"


# --- real simultaneous requests ----------------------------------------------------------------


def race(live_server, token: str, url: str, bodies: list[dict], headers: dict) -> list:
    """Send the PATCHes at the same moment (one thread each); their responses, in order."""
    barrier = threading.Barrier(len(bodies))
    out: list = [None] * len(bodies)

    def send(index: int) -> None:
        with requests.Session() as session:
            session.headers.update({"Authorization": f"Token {token}", **headers})
            barrier.wait()
            out[index] = session.patch(live_server.url + url, json=bodies[index], timeout=60)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_patches_with_one_etag_give_one_200_and_one_412(live_server):
    curator = make_user("race-cur", "curator")
    token = Token.objects.create(user=curator).key
    for round_ in range(8):
        item = make_item(f"RACE-{round_}")
        url = f"/api/v1/items/{item.pk}/"
        etag = requests.get(live_server.url + url, timeout=30).headers["ETag"]
        a, b = race(
            live_server,
            token,
            url,
            [{"period": f"period {round_}"}, {"place": f"place {round_}"}],
            {"If-Match": etag},
        )
        assert sorted([a.status_code, b.status_code]) == [200, 412], (a.text, b.text)
        winner, loser = (a, b) if a.status_code == 200 else (b, a)
        assert "changed by someone else" in loser.json()["detail"]
        item.refresh_from_db()
        assert item.version == 2
        if winner is a:
            assert (item.period, item.place) == (f"period {round_}", "original place")
        else:
            assert (item.period, item.place) == ("original period", f"place {round_}")
        assert item.title == {"en": "Original title"}  # nothing else moved
        assert winner.headers["ETag"] == requests.get(live_server.url + url, timeout=30).headers[
            "ETag"
        ].replace("W/", "")


@pytest.mark.django_db(transaction=True)
def test_simultaneous_patches_without_if_match_never_revert_each_other(live_server):
    curator = make_user("race-cur2", "curator")
    token = Token.objects.create(user=curator).key
    for round_ in range(10):
        item = make_item(f"FREE-{round_}")
        url = f"/api/v1/items/{item.pk}/"
        responses = race(
            live_server,
            token,
            url,
            [{"period": f"period {round_}"}, {"place": f"place {round_}"}],
            {},
        )
        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        item.refresh_from_db()
        assert (item.period, item.place) == (f"period {round_}", f"place {round_}"), round_
        assert item.version == 3


# --- the admin ---------------------------------------------------------------------------------


def admin_form(client: Client, url: str) -> dict:
    """The change form's fields as the browser would post them back."""
    page = client.get(url).content.decode()
    data = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or 'type="submit"' in tag:
            continue
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        default = "on" if 'type="checkbox"' in tag else ""
        data[name.group(1)] = html.unescape(value.group(1)) if value else default
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        data[name] = html.unescape(body.strip())
    for tag, name, options in re.findall(
        r'(<select[^>]*name="([^"]+)"[^>]*>)(.*?)</select>', page, re.S
    ):
        chosen = re.findall(r'<option value="([^"]*)"[^>]*selected', options)
        if "multiple" in tag:
            data[name] = chosen
        else:
            data[name] = chosen[0] if chosen else ""
    return data


@pytest.mark.django_db
def test_admin_refuses_a_stale_save_with_a_clear_message():
    admin = make_user("admin-c", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    item = make_item()
    url = f"/admin/heritage/heritageitem/{item.pk}/change/"
    form = admin_form(client, url)
    assert form["opened_version"] == "1"
    services.item_update(item=item, place="changed meanwhile")  # another curator, elsewhere

    form["period"] = "from the stale form"
    page = client.post(url, form)
    assert page.status_code == 200  # the form again, with the error
    text = page.content.decode()
    assert "changed by someone else" in text and "reload" in text.lower()
    item.refresh_from_db()
    assert (item.period, item.place) == ("original period", "changed meanwhile")

    fresh = admin_form(client, url)
    fresh["period"] = "from a fresh form"
    assert client.post(url, fresh).status_code == 302
    item.refresh_from_db()
    assert (item.period, item.place, item.version) == ("from a fresh form", "changed meanwhile", 3)


@pytest.mark.django_db
def test_admin_checks_collections_passages_and_images():
    admin = make_user("admin-d", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    item = make_item()
    image = services.item_image_create(
        item=item, content=image_bytes(), filename="x.png", derivatives="none"
    )
    passage = services.passage_create(source_work="G", original_text="水")
    cases = [
        (item.collection, "collection", "position", "7", "position"),
        (passage, "gazetteerpassage", "section", "Mountains", "section"),
        (image, "itemimage", "position", "3", "position"),
    ]
    for obj, model, field, value, attr in cases:
        url = f"/admin/heritage/{model}/{obj.pk}/change/"
        form = admin_form(client, url)
        assert form["opened_version"] == str(obj.version), model
        type(obj).objects.filter(pk=obj.pk).update(version=obj.version + 1)  # someone saved
        form[field] = value
        page = client.post(url, form)
        assert page.status_code == 200, model
        assert "changed by someone else" in page.content.decode(), model
        obj.refresh_from_db()
        assert str(getattr(obj, attr)) != value, model
        fresh = admin_form(client, url)
        fresh[field] = value
        assert client.post(url, fresh).status_code == 302, model
        obj.refresh_from_db()
        assert str(getattr(obj, attr)) == value, model


# --- the schema --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_schema_documents_if_match_and_412():
    schema = APIClient().get("/api/schema/?format=json").json()
    for path in ("/api/v1/items/{id}/", "/api/v1/collections/{slug}/", "/api/v1/passages/{id}/"):
        patch = schema["paths"][path]["patch"]
        headers = [p for p in patch["parameters"] if p["in"] == "header"]
        assert [h["name"] for h in headers] == ["If-Match"], path
        assert "412" in patch["responses"], path
