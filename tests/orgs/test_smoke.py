import pytest

from tests.factories import make_member, make_organization, make_workspace


@pytest.mark.django_db
def test_factories_build_a_reachable_workspace(client):
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, workspaces={ws: "member"})
    client.force_login(member.user)
    response = client.get(f"/o/{org.slug}/w/{ws.slug}/")
    assert response.status_code == 200
    assert ws.name in response.content.decode()
