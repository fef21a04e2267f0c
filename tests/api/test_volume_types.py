"""Volume types over real HTTP: `/types`, their extra specs and encryption, and
the volumes made of them (docs/volume-types.md)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.conftest import Api

LUKS = {
    "provider": "luks",
    "cipher": "aes-xts-plain64",
    "key_size": 256,
    "control_location": "front-end",
}


def _type(api: Api, **spec: Any) -> dict[str, Any]:
    body = {"name": f"t-{uuid.uuid4().hex[:12]}", **spec}
    r = api.post("/types", json={"volume_type": body})
    assert r.status_code == 200, r.text
    return r.json()["volume_type"]  # type: ignore[no-any-return]


def _put(api: Api, path: str, body: object) -> httpx.Response:
    return api.http.put(path, json=body)


def test_a_type_is_created_shown_listed_updated_and_deleted(api: Api) -> None:
    made = _type(api, description="fast disks", extra_specs={"volume_backend_name": "ashbox"})
    assert made["extra_specs"] == {"volume_backend_name": "ashbox"}
    assert made["is_public"] is made["os-volume-type-access:is_public"] is True
    assert "qos_specs_id" not in made  # as Cinder's create answers
    shown = api.get(f"/types/{made['id']}").json()["volume_type"]
    assert shown == {**made, "qos_specs_id": None}
    assert made["id"] in [t["id"] for t in api.get("/types").json()["volume_types"]]

    r = _put(api, f"/types/{made['id']}", {"volume_type": {"name": "renamed", "is_public": False}})
    assert r.status_code == 200, r.text
    updated = r.json()["volume_type"]
    assert (updated["name"], updated["is_public"], updated["description"]) == (
        "renamed",
        False,
        "fast disks",
    )
    # Private types are left out of a list unless an admin asks for them.
    listed = [t["id"] for t in api.get("/types").json()["volume_types"]]
    assert made["id"] not in listed
    every = api.get("/types", params={"is_public": "None"}).json()["volume_types"]
    assert made["id"] in [t["id"] for t in every]

    assert api.delete(f"/types/{made['id']}").status_code == 202
    assert api.get(f"/types/{made['id']}").status_code == 404
    assert api.delete(f"/types/{made['id']}").status_code == 404


def test_bad_type_requests_are_4xx_with_cinder_s_messages(api: Api) -> None:
    made = _type(api)
    r = api.post("/types", json={"volume_type": {"name": made["name"]}})
    assert r.status_code == 409
    assert (
        r.json()["conflictingRequest"]["message"] == f"Volume Type {made['name']} already exists."
    )
    for body in ({"volume_type": {"name": ""}}, {"volume_type": {}}, {"volume_type": {"name": 1}}):
        assert api.post("/types", json=body).status_code == 400, body
    r = _put(api, f"/types/{made['id']}", {"volume_type": {}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Specify volume type name, description, is_public or a combination thereof."
    )
    r = _put(api, f"/types/{made['id']}", {"volume_type": {"name": "  "}})
    assert r.json()["badRequest"]["message"] == "Volume type name can not be empty."
    missing = str(uuid.uuid4())
    r = api.get(f"/types/{missing}")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == f"Volume type {missing} could not be found."
    assert api.get("/types", params={"is_public": "maybe"}).status_code == 400


def test_the_default_type_is_every_untyped_volume_s_and_stays(api: Api) -> None:
    default = api.get("/types/default").json()["volume_type"]
    assert default["name"] == "__DEFAULT__"
    volume = api.show_volume(api.volume())
    assert (volume["volume_type"], volume["volume_type_id"]) == ("__DEFAULT__", default["id"])
    r = api.delete(f"/types/{default['id']}")
    assert r.status_code == 400
    assert "is a default volume type and cannot be deleted" in r.json()["badRequest"]["message"]


def test_extra_specs_are_added_shown_changed_and_deleted(api: Api) -> None:
    made = _type(api, extra_specs={"spec1": "val1"})
    path = f"/types/{made['id']}/extra_specs"
    r = api.post(path, json={"extra_specs": {"spec2": "val2", "spec1": "new"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"extra_specs": {"spec2": "val2", "spec1": "new"}}
    assert api.get(path).json() == {"extra_specs": {"spec1": "new", "spec2": "val2"}}
    assert api.get(f"{path}/spec2").json() == {"spec2": "val2"}
    r = _put(api, f"{path}/spec2", {"spec2": "changed"})
    assert (r.status_code, r.json()) == (200, {"spec2": "changed"})
    assert api.delete(f"{path}/spec2").status_code == 202
    r = api.get(f"{path}/spec2")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == (
        f"Volume Type {made['id']} has no extra specs with key spec2."
    )
    assert api.delete(f"{path}/spec2").status_code == 404


def test_bad_extra_spec_requests_are_4xx(api: Api) -> None:
    made = _type(api, extra_specs={"spec1": "val1"})
    path = f"/types/{made['id']}/extra_specs"
    r = _put(api, f"{path}/other", {"spec1": "x"})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Request body and URI mismatch"
    assert _put(api, f"{path}/spec1", {"spec1": "x", "spec2": "y"}).status_code == 400
    assert _put(api, f"{path}/spec1", None).status_code == 400
    assert api.post(path, json=None).status_code == 400
    assert api.post(path, json={"extra_specs": ["invalid"]}).status_code == 400
    assert api.post(path, json={"extra_specs": {"bad key": "v"}}).status_code == 400
    missing = str(uuid.uuid4())
    assert api.get(f"/types/{missing}/extra_specs").status_code == 404
    assert api.post(f"/types/{missing}/extra_specs", json={"extra_specs": {}}).status_code == 404
    assert _put(api, f"/types/{missing}/extra_specs/spec1", {"spec1": "x"}).status_code == 404


def test_encryption_is_created_shown_updated_and_deleted(api: Api) -> None:
    made = _type(api)
    path = f"/types/{made['id']}/encryption"
    assert api.get(path).json() == {}
    r = api.post(path, json={"encryption": LUKS})
    assert r.status_code == 200, r.text
    created = r.json()["encryption"]
    assert {k: created[k] for k in LUKS} == LUKS
    assert created["volume_type_id"] == made["id"]
    shown = api.get(path).json()
    assert {k: shown[k] for k in LUKS} == LUKS
    assert shown["encryption_id"] == created["encryption_id"]
    assert api.get(f"{path}/cipher").json() == {"cipher": "aes-xts-plain64"}
    r = api.post(path, json={"encryption": LUKS})
    assert r.status_code == 400
    assert "already exists" in r.json()["badRequest"]["message"]

    changed = {"key_size": "128", "provider": "other", "control_location": "back-end"}
    r = _put(api, f"{path}/{created['encryption_id']}", {"encryption": changed})
    assert r.status_code == 200, r.text
    assert api.get(f"{path}/key_size").json() == {"key_size": 128}
    assert api.get(path).json()["control_location"] == "back-end"

    assert api.delete(f"{path}/{created['encryption_id']}").status_code == 202
    assert api.get(path).json() == {}
    assert api.get(f"{path}/cipher").status_code == 404
    assert api.delete(f"{path}/{created['encryption_id']}").status_code == 404


def test_bad_encryption_requests_are_4xx(api: Api) -> None:
    made = _type(api)
    path = f"/types/{made['id']}/encryption"
    for spec in (
        {"provider": "luks"},
        {**LUKS, "control_location": "elsewhere"},
        {**LUKS, "key_size": "big"},
        {**LUKS, "key_size": "9" * 5000},
        {**LUKS, "bogus": 1},
    ):
        assert api.post(path, json={"encryption": spec}).status_code == 400, spec
    missing = str(uuid.uuid4())
    assert api.post(f"/types/{missing}/encryption", json={"encryption": LUKS}).status_code == 404


def test_a_volume_gets_the_type_it_names_by_id_or_name(api: Api) -> None:
    made = _type(api)
    for named in (made["id"], made["name"]):
        volume = api.show_volume(api.volume(volume_type=named))
        assert (volume["volume_type"], volume["volume_type_id"]) == (made["name"], made["id"])
        assert volume["encrypted"] is False
    r = api.post("/volumes", json={"volume": {"size": 1, "volume_type": "no-such-type"}})
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == (
        "Volume type with name no-such-type could not be found."
    )


def test_a_type_in_use_keeps_its_specs_and_encryption_and_stays(api: Api) -> None:
    made = _type(api, extra_specs={"vendor:spec1": "val1"})  # scoped: not a capability
    api.volume(volume_type=made["id"])
    specs = f"/types/{made['id']}/extra_specs"
    r = api.post(specs, json={"extra_specs": {"vendor:spec2": "x"}})
    assert (r.status_code, r.json()["badRequest"]["message"]) == (
        400,
        "Volume Type is currently in use.",
    )
    assert api.delete(f"{specs}/vendor:spec1").status_code == 400
    r = api.post(f"/types/{made['id']}/encryption", json={"encryption": LUKS})
    assert (
        r.json()["badRequest"]["message"] == "Cannot create encryption specs. Volume type in use."
    )
    r = api.delete(f"/types/{made['id']}")
    assert r.json()["badRequest"]["message"] == "Target volume type is still in use."


def test_a_type_the_backend_cannot_meet_leaves_the_volume_in_error_with_a_message(
    api: Api,
) -> None:
    made = _type(api, extra_specs={"storage_protocol": "iSCSI", "vendor_name": "nobody"})
    r = api.post("/volumes", json={"volume": {"size": 1, "volume_type": made["id"]}})
    assert r.status_code == 202, r.text
    volume_id = r.json()["volume"]["id"]
    assert api.wait_volume(volume_id)["status"] == "error"
    messages = api.get("/messages").json()["messages"]
    (message,) = [m for m in messages if m["resource_uuid"] == volume_id]
    assert message["event_id"] == "VOLUME_VOLUME_001_003"
    assert message["user_message"] == (
        "schedule allocate volume:Could not find any available weighted backend."
    )
    # A type ashbox meets, scoped keys aside, makes a volume.
    fits = _type(
        api,
        extra_specs={
            "volume_backend_name": "ashbox",
            "capabilities:storage_protocol": "<in> file",
            "thin_provisioning_support": "<is> True",
            "RESKEY:availability_zones": "nova",
        },
    )
    api.volume(volume_type=fits["id"])


def test_a_volume_of_an_encrypted_type_gets_a_key(api: Api) -> None:
    made = _type(api)
    r = api.post(f"/types/{made['id']}/encryption", json={"encryption": LUKS})
    assert r.status_code == 200, r.text
    volume = api.show_volume(api.volume(volume_type=made["name"]))
    assert volume["encrypted"] is True
    assert volume["encryption_key_id"] is not None
