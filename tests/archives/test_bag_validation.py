"""Bad bags are refused with a clear message, before bagit sees them, and nothing is written."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import bagit
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from archives.bagit_export import bag_export_file
from archives.bagit_import import bag_import
from archives.bagit_validate import BagLimits, BagRefused, bag_validate
from archives.models import BagImport, StoredFile
from heritage.models import Collection, HeritageItem
from tests.archives.bagtools import make_archivist, small_catalogue, storage_names
from tests.conftest import make_user


def make_bag_folder(tmp_path: Path, name: str = "bag1") -> Path:
    folder = tmp_path / name
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.txt").write_text("alpha\n")
    (folder / "b.txt").write_text("bravo\n")
    bagit.make_bag(str(folder), {"Source-Organization": "Test"}, checksums=["sha256", "sha512"])
    return folder


def tar_of(folder: Path, target: Path, extra=()) -> Path:
    """Pack ``folder`` (top folder = its name) and add crafted members (TarInfo, bytes|None)."""
    with tarfile.open(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=f"{folder.name}/{path.relative_to(folder).as_posix()}")
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return target


def zip_of(folder: Path, target: Path, extra=()) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, arcname=f"{folder.name}/{path.relative_to(folder).as_posix()}")
        for info, data in extra:
            archive.writestr(info, data)
    return target


def tar_info(name: str, data: bytes | None = b"x", kind=tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if data is not None and kind == tarfile.REGTYPE else 0
    return info


def refused(path: Path, limits: BagLimits | None = None) -> str:
    report = bag_validate(path, limits)
    assert not report.valid
    assert report.problems
    return "\n".join(report.problems)


def test_a_plain_valid_bag_passes(tmp_path):
    folder = make_bag_folder(tmp_path)
    for packed in (tar_of(folder, tmp_path / "ok.tar"), zip_of(folder, tmp_path / "ok.zip")):
        report = bag_validate(packed)
        assert report.valid, report.problems
        assert report.payload_files == 2
        assert report.version == "0.97" or report.version == "1.0"


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("../x", "path traversal"),
        ("bag1/../../x", "path traversal"),
        ("/etc/x", "absolute paths"),
        ("C:/x", "absolute paths"),
        ("bag1\\..\\x", "backslashes"),
    ],
)
def test_unsafe_names_are_refused_in_tar_and_zip(tmp_path, member, expected):
    folder = make_bag_folder(tmp_path)
    assert expected in refused(tar_of(folder, tmp_path / "t.tar", [(tar_info(member), b"x")]))
    assert expected in refused(zip_of(folder, tmp_path / "z.zip", [(member, b"x")]))
    # Nothing was written next to the temporary folders either.
    assert not (tmp_path.parent / "x").exists()


def test_links_and_devices_are_refused(tmp_path):
    folder = make_bag_folder(tmp_path)
    symlink = tar_info("bag1/data/evil", None, tarfile.SYMTYPE, "/etc/passwd")
    assert "symbolic links are not allowed" in refused(
        tar_of(folder, tmp_path / "s.tar", [(symlink, None)])
    )
    hardlink = tar_info("bag1/data/hard", None, tarfile.LNKTYPE, "bag1/bagit.txt")
    assert "hard links are not allowed" in refused(
        tar_of(folder, tmp_path / "h.tar", [(hardlink, None)])
    )
    device = tar_info("bag1/data/dev", None, tarfile.CHRTYPE)
    assert "special files" in refused(tar_of(folder, tmp_path / "d.tar", [(device, None)]))
    fifo = tar_info("bag1/data/fifo", None, tarfile.FIFOTYPE)
    assert "special files" in refused(tar_of(folder, tmp_path / "f.tar", [(fifo, None)]))

    zinfo = zipfile.ZipInfo("bag1/data/evil")
    zinfo.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert "symbolic links are not allowed" in refused(
        zip_of(folder, tmp_path / "s.zip", [(zinfo, "/etc/passwd")])
    )


def test_oversized_archives_are_refused(tmp_path):
    folder = make_bag_folder(tmp_path)
    (folder / "data" / "big.bin").write_bytes(b"0" * 5000)
    packed = tar_of(folder, tmp_path / "big.tar")
    assert "over the limit" in refused(packed, BagLimits(max_total_bytes=4000))
    assert "per file" in refused(packed, BagLimits(max_file_bytes=1000))
    assert "more than 3 members" in refused(packed, BagLimits(max_members=3))
    zipped = zip_of(folder, tmp_path / "big.zip")
    assert "per file" in refused(zipped, BagLimits(max_file_bytes=1000))
    assert "more than 3 members" in refused(zipped, BagLimits(max_members=3))


def test_tampered_extra_and_missing_files_are_refused(tmp_path):
    folder = make_bag_folder(tmp_path)
    (folder / "data" / "b.txt").write_text("bravo, changed\n")
    problems = refused(tar_of(folder, tmp_path / "tampered.tar"))
    assert "data/b.txt" in problems and "checksum mismatch" in problems

    folder = make_bag_folder(tmp_path, "bag2")
    (folder / "data" / "sneaked-in.txt").write_text("extra\n")
    assert "data/sneaked-in.txt: in the payload but not listed" in refused(
        zip_of(folder, tmp_path / "extra.zip")
    )

    folder = make_bag_folder(tmp_path, "bag3")
    (folder / "data" / "images" / "a.txt").unlink()
    assert "data/images/a.txt: listed in a manifest but missing" in refused(
        tar_of(folder, tmp_path / "missing.tar")
    )


def test_unsupported_version_and_non_bags_are_refused(tmp_path):
    folder = make_bag_folder(tmp_path)
    (folder / "bagit.txt").write_text("BagIt-Version: 2.0\nTag-File-Character-Encoding: UTF-8\n")
    assert "BagIt version 2.0 is not supported" in refused(tar_of(folder, tmp_path / "v.tar"))

    (tmp_path / "notes.txt").write_text("hello")
    assert "neither a tar nor a zip" in refused(tmp_path / "notes.txt")

    other = tmp_path / "loose"
    other.mkdir()
    (other / "readme.txt").write_text("no bag here")
    assert "No bag found" in refused(zip_of(other, tmp_path / "nobag.zip"))


def test_md5_only_bags_are_refused(tmp_path):
    folder = tmp_path / "weak"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    bagit.make_bag(str(folder), checksums=["md5"])
    assert "no sha256 or sha512" in refused(tar_of(folder, tmp_path / "weak.tar"))


@pytest.mark.django_db
def test_refused_bags_write_nothing(tmp_path):
    """A tampered Atelier bag, then a valid one that conflicts here: no rows, no files."""
    small_catalogue()
    good = tmp_path / "good.tar"
    bag_export_file(scope="collection", target_id="atlas", archive_format="tar", target=good)

    # A tampered copy of a real export: refused before anything is written.
    extract = tmp_path / "x"
    with tarfile.open(good) as archive:
        archive.extractall(extract, filter="data")
    (bag_root,) = list(extract.iterdir())
    image = next((bag_root / "data" / "files" / "heritage" / "originals").rglob("*.png"))
    image.write_bytes(image.read_bytes() + b"tampered")
    tampered = tar_of(bag_root, tmp_path / "tampered.tar")

    counts = (StoredFile.objects.count(), HeritageItem.objects.count(), Collection.objects.count())
    files = storage_names()
    with pytest.raises(BagRefused) as refusal:
        bag_import(path=tampered)
    assert "checksum mismatch" in "\n".join(refusal.value.problems)
    # The valid bag again: its collection slug is taken, so the import rolls back whole,
    # including the stored files it had already written.
    with pytest.raises(BagRefused) as conflict:
        bag_import(path=good)
    assert "already exists" in "\n".join(conflict.value.problems)
    assert (
        StoredFile.objects.count(),
        HeritageItem.objects.count(),
        Collection.objects.count(),
    ) == counts
    assert storage_names() == files
    assert not BagImport.objects.exists()

    with pytest.raises(CommandError):
        call_command("validate_bag", str(tampered))
    with pytest.raises(CommandError):
        call_command("import_bag", str(tampered))


@pytest.mark.django_db
def test_validate_api_and_page_list_the_problems(tmp_path, client):
    folder = make_bag_folder(tmp_path)
    (folder / "data" / "b.txt").write_text("changed\n")
    bad = tar_of(folder, tmp_path / "bad.tar", [(tar_info("../escape"), b"x")])
    client.force_login(make_archivist("keeper"))

    with open(bad, "rb") as upload:
        response = client.post("/api/v1/archives/bags/validate/", {"file": upload})
    assert response.status_code == 400
    body = response.json()
    assert body["valid"] is False
    assert any("path traversal" in p for p in body["problems"])

    with open(bad, "rb") as upload:
        response = client.post("/api/v1/archives/bags/import/", {"file": upload})
    assert response.status_code == 400 and response.json()["imported"] is False

    with open(bad, "rb") as upload:
        page = client.post("/archives/validate/", {"file": upload})
    assert page.status_code == 400
    assert "path traversal" in page.content.decode()
    assert client.get("/archives/validate/").status_code == 200
    assert not StoredFile.objects.exists() and not BagImport.objects.exists()


@pytest.mark.django_db
def test_archive_pages_are_for_archivists_only(client):
    client.force_login(make_user("cur", "curator", is_staff=True))
    assert client.get("/archives/").status_code == 403
    assert client.get("/archives/import/").status_code == 403
    response = client.post("/api/v1/archives/bags/import/", {})
    assert response.status_code == 403
