"""The last administrator cannot remove itself: 409, and the answer says what to do."""

from __future__ import annotations

from tests.support.api import Api

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""


def _refused(response) -> str:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "interlock role add admin" in detail and "interlock token create" in detail
    return detail


def test_the_last_admin_keeps_its_role_and_its_last_token(pilot):
    api = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0).start()
    try:
        root = api.admin()
        (token,) = root.get("/api/v1/users/root/tokens").json()
        assert "last" in _refused(root.delete("/api/v1/roles/admin/members/root"))
        _refused(root.delete(f"/api/v1/tokens/{token['id']}"))
        assert root.get("/api/v1/users/me").json()["roles"] == ["admin"]
        # a second admin who can sign in: now either may go
        ann = api.user("ann", roles=["admin"])
        assert root.delete("/api/v1/roles/admin/members/root").json()["changed"] is True
        (ann_token,) = ann.get("/api/v1/users/ann/tokens").json()
        _refused(ann.delete(f"/api/v1/tokens/{ann_token['id']}"))
        spare = ann.post("/api/v1/users/ann/tokens", json={"expires_in": "1h"}).json()
        assert ann.delete(f"/api/v1/tokens/{ann_token['id']}").status_code == 200
        _refused(api.client(spare["token"]).delete(f"/api/v1/tokens/{spare['id']}"))
    finally:
        api.stop()


def test_an_admin_who_cannot_sign_in_does_not_count(pilot):
    path = pilot.config(CONFIG.replace("version: 1", "version: 1\nroles: {admin: [cfg]}"))
    api = Api(pilot.engine, pilot.configs, path, workers=0).start()
    try:
        root = api.admin()
        api.identity.add_user(actor="test", name="cfg")  # an admin by config, with no token
        _refused(root.delete("/api/v1/roles/admin/members/root"))
        api.user("cfg")  # now it has one
        assert root.delete("/api/v1/roles/admin/members/root").status_code == 200
    finally:
        api.stop()
