"""The model registry over its three faces (API, SDK, `insights model`), against real collectors:
versions, content hashes, downloads, who may do what, and uploads that must be refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from collector_process import CollectorProcess

from collector.client import ApiError, Model, Workspace


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _insights(collector, *args, check=True):
    env = {**os.environ, "INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "collector", *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_versions_hashes_and_downloads_round_trip(collector, tmp_path):
    ws = Workspace(collector.url, api_key=collector.admin_key)
    name = _name("roundtrip")
    (tmp_path / "model.bin").write_bytes(os.urandom(300_000))
    (tmp_path / "bundle" / "sub").mkdir(parents=True)
    (tmp_path / "bundle" / "sub" / "weights.bin").write_bytes(b"w" * 1000)
    (tmp_path / "bundle" / "config.json").write_text("{}")
    file_model = Model.register(ws, tmp_path / "model.bin", name, tags={"stage": "dev"}, description="a file")
    assert file_model.sha256 == hashlib.sha256((tmp_path / "model.bin").read_bytes()).hexdigest()
    folder_model = Model.register(ws, tmp_path / "bundle", name)
    assert (file_model.id, folder_model.id, folder_model.files, folder_model.is_folder) == (
        f"{name}:1", f"{name}:2", 2, True)
    assert Model(ws, name).version == 2 and Model(ws, id=f"{name}:1").description == "a file"
    assert [m.id for m in Model.list(ws, name=name, tags=["stage"])] == [f"{name}:1"]

    out = tmp_path / "out"
    assert Model(ws, name, version=1).download(out) == str(out / "model.bin")
    assert (out / "model.bin").read_bytes() == (tmp_path / "model.bin").read_bytes()
    assert folder_model.download(out) == str(out / "bundle")
    assert (out / "bundle" / "sub" / "weights.bin").read_bytes() == b"w" * 1000
    with pytest.raises(Exception, match="exist_ok"):
        folder_model.download(out)

    with ThreadPoolExecutor(4) as pool:  # registrations at once still get a version each
        versions = sorted(pool.map(lambda _: Model.register(ws, tmp_path / "model.bin", name).version, range(4)))
    assert versions == [3, 4, 5, 6]
    file_model.delete()
    assert [m.version for m in Model.list(ws, name=name)] == [6, 5, 4, 3, 2]
    with pytest.raises(ApiError, match=r"no model .*:1'; its versions are 2, 3, 4, 5, 6"):
        Model(ws, name, version=1)


def test_writes_need_the_admin_key_and_reads_any_key(collector, tmp_path):
    name = _name("keys")
    (tmp_path / "m.pkl").write_bytes(b"model")
    Model.register(Workspace(collector.url, api_key=collector.admin_key), tmp_path / "m.pkl", name)
    service_key = collector.create_service("model-reader")["api_key"]
    reader = Workspace(collector.url, api_key=service_key)
    assert Model(reader, name).download(tmp_path / "got").endswith("m.pkl")
    with pytest.raises(ApiError) as refused:
        Model.register(reader, tmp_path / "m.pkl", name)
    assert refused.value.status_code == 403
    with pytest.raises(ApiError) as refused:
        Model(reader, name).delete()
    assert refused.value.status_code == 403
    assert collector.http.get("/api/models").status_code == 401


@pytest.mark.parametrize(("members", "message"), [
    ([_file("../escape.txt")], "may not leave its folder"),
    ([_file("model/../../escape.txt")], "may not leave its folder"),
    ([_file("/etc/cron.d/model")], "only relative names"),
    ([_file("model\\..\\escape.txt")], "only relative names"),
    ([(tarfile.TarInfo("model/link"), None)], None),  # replaced below by a symlink
    ([_file("one.pkl"), _file("two.pkl")], "2 top-level entries"),
    ([], "the archive is empty"),
])
def test_unsafe_or_unusable_archives_are_refused_with_what_is_wrong(collector, members, message):
    if message is None:
        members[0][0].type, members[0][0].linkname = tarfile.SYMTYPE, "/etc/passwd"
        message = "links and special files are not accepted"
    response = collector.admin.post(f"/api/models/{_name('bad')}", content=_tar(members))
    assert response.status_code == 400 and message in response.json()["detail"], response.text


def test_bad_names_tags_and_bodies_are_400s(collector):
    admin = collector.admin
    good = _tar([_file("m.pkl")])
    assert "model name" in admin.post("/api/models/-bad", content=good).json()["detail"]
    assert admin.post(f"/api/models/{_name('t')}", params={"tags": "{nope"}, content=good).json()["detail"] == "tags: not valid JSON"
    assert "strings to strings" in admin.post(f"/api/models/{_name('t')}", params={"tags": '{"a": 1}'}, content=good).json()["detail"]
    assert "not a readable tar archive" in admin.post(f"/api/models/{_name('t')}", content=b"not a tar").json()["detail"]
    assert admin.post(f"/api/models/{_name('t')}", content=b"").json()["detail"].startswith("the body is empty")
    assert admin.get("/api/models/nothing_here").status_code == 404


def test_uploads_and_unpacked_sizes_are_bounded(tmp_path):
    small = CollectorProcess(tmp_path / "data", env={"INSIGHTS_MODEL_MAX_MB": "1"}).start()
    try:
        big = _tar([_file("big.bin", os.urandom(1_200_000))])
        response = small.admin.post(f"/api/models/{_name('big')}", content=big)
        assert response.status_code == 413 and "limit of 1048576 bytes" in response.json()["detail"], response.text
        bomb = _tar([_file("zeros.bin", bytes(3_000_000))], compress=True)  # 3 MB unpacked from a few KB
        assert len(bomb) < 100_000 and gzip.decompress(bomb)
        response = small.admin.post(f"/api/models/{_name('bomb')}", content=bomb)
        assert response.status_code == 413 and "the model's files hold 3000000 bytes" in response.text, response.text
        assert not any((tmp_path / "data" / "models").glob("bomb*"))
        assert not any((tmp_path / "data" / "models" / ".incoming").iterdir())  # nothing left behind
    finally:
        small.stop()


def test_the_model_command_line(collector, tmp_path):
    name = _name("cli")
    (tmp_path / "model.pkl").write_bytes(b"one")
    registered = _insights(collector, "model", "register", name, str(tmp_path / "model.pkl"), "--tag", "team=ml",
                           "--description", "first").stdout
    assert f"{name}:1" in registered and hashlib.sha256(b"one").hexdigest() in registered
    (tmp_path / "model.pkl").write_bytes(b"two")
    _insights(collector, "model", "register", name, str(tmp_path / "model.pkl"))
    listed = _insights(collector, "model", "list", "--name", name).stdout
    assert listed.index(f"{name}:2") < listed.index(f"{name}:1") and '{"team":"ml"}' in listed
    assert "first" in _insights(collector, "model", "show", f"{name}:1").stdout
    downloaded = _insights(collector, "model", "download", name, "--target-dir", str(tmp_path / "dl")).stdout.strip()
    assert open(downloaded, "rb").read() == b"two"
    assert f"deleted {name}:2" in _insights(collector, "model", "delete", f"{name}:2", "--yes").stdout
    missing = _insights(collector, "model", "show", f"{name}:2", check=False)
    assert missing.returncode == 1 and f"no model '{name}:2'; its versions are 1" in missing.stderr
    bad = _insights(collector, "model", "register", name, str(tmp_path / "nowhere.pkl"), check=False)
    assert bad.returncode == 2 and "no such file or folder" in bad.stderr
