"""Invitations: adding a member needs the invitee's consent, and tells nothing about accounts."""

from __future__ import annotations

from typing import Any

from ..helpers import Api, from_address, make_event


def _invite(api: Api, token: str, project_id: int, email: str, role: str = "member"
            ) -> dict[str, Any]:
    """Invite ``email`` and return the answer's data (asserting 202)."""
    return dict(api.data("POST", f"/api/projects/{project_id}/members", token,
                         {"email": email, "role": role}, status=202))


def _pending(api: Api, token: str) -> list[dict[str, Any]]:
    """The caller's pending invitations."""
    return list(api.data("GET", "/api/invitations", token))


class TestConsent:
    """Nothing of a project reaches an invitee before they accept."""

    def test_an_unaccepted_invitation_reaches_nothing(self, api: Api) -> None:
        """Invited even as owner, the victim's projects, /me, totals and events exclude the
        inviter's project, which answers 404 to them, until they accept."""
        attacker, victim = api.tenant(), api.tenant()
        api.track(attacker.key, [make_event(), make_event()])
        api.track(victim.key, [make_event()])
        email = api.data("GET", "/api/auth/me", victim.token)["user"]["email"]
        _invite(api, attacker.token, attacker.project_id, email, role="owner")
        me = api.data("GET", "/api/auth/me", victim.token)
        assert [p["id"] for p in me["projects"]] == [victim.project_id]
        assert [p["id"] for p in api.data("GET", "/api/projects", victim.token)] == [
            victim.project_id]
        summary = api.data("GET", "/api/costs/summary", victim.token, query_string={
            "start": "2026-11-01", "end": "2026-11-03"})
        assert summary["totals"]["calls"] == 1
        events = api.data("GET", "/api/events", victim.token, query_string={
            "start": "2026-11-01", "end": "2026-11-03"})
        assert len(events["events"]) == 1
        assert api.call("GET", f"/api/projects/{attacker.project_id}",
                        victim.token).status_code == 404

    def test_accepting_joins_with_the_offered_role(self, api: Api) -> None:
        """The invitee sees project, role and inviter, accepts, and then reads the project."""
        owner, invitee = api.tenant(), api.signup()
        owner_email = api.data("GET", "/api/auth/me", owner.token)["user"]["email"]
        _invite(api, owner.token, owner.project_id, invitee["user"]["email"], role="viewer")
        [invitation] = _pending(api, invitee["access_token"])
        assert invitation["project"]["id"] == owner.project_id
        assert invitation["role"] == "viewer" and invitation["invited_by"] == owner_email
        joined = api.data("POST", f"/api/invitations/{invitation['id']}/accept",
                          invitee["access_token"])
        assert joined["id"] == owner.project_id and joined["role"] == "viewer"
        me = api.data("GET", "/api/auth/me", invitee["access_token"])
        assert [(p["id"], p["role"]) for p in me["projects"]] == [(owner.project_id, "viewer")]
        assert _pending(api, invitee["access_token"]) == []
        assert api.call("POST", f"/api/invitations/{invitation['id']}/accept",
                        invitee["access_token"]).status_code == 404

    def test_declining_leaves_no_membership(self, api: Api) -> None:
        """A declined invitation is gone and cannot be accepted afterwards."""
        owner, invitee = api.tenant(), api.signup()
        _invite(api, owner.token, owner.project_id, invitee["user"]["email"])
        [invitation] = _pending(api, invitee["access_token"])
        api.data("POST", f"/api/invitations/{invitation['id']}/decline", invitee["access_token"])
        assert _pending(api, invitee["access_token"]) == []
        assert api.call("POST", f"/api/invitations/{invitation['id']}/accept",
                        invitee["access_token"]).status_code == 404
        assert api.call("GET", f"/api/projects/{owner.project_id}",
                        invitee["access_token"]).status_code == 404

    def test_after_leaving_a_new_invitation_needs_a_new_yes(self, api: Api) -> None:
        """A member who left is not a member again when the project invites them again."""
        owner, member = api.tenant(), api.signup()
        api.add_member(owner.token, owner.project_id, member)
        api.data("DELETE", f"/api/projects/{owner.project_id}/members/{member['user']['id']}",
                 member["access_token"])
        _invite(api, owner.token, owner.project_id, member["user"]["email"], role="owner")
        assert api.call("GET", f"/api/projects/{owner.project_id}",
                        member["access_token"]).status_code == 404
        assert api.data("GET", "/api/auth/me", member["access_token"])["projects"] == []

    def test_nobody_else_sees_or_answers_an_invitation(self, api: Api) -> None:
        """Another user lists nothing and gets 404 accepting or declining it; a key gets 403."""
        owner, invitee, other = api.tenant(), api.signup(), api.signup()
        _invite(api, owner.token, owner.project_id, invitee["user"]["email"])
        [invitation] = _pending(api, invitee["access_token"])
        assert _pending(api, other["access_token"]) == []
        for action in ("accept", "decline"):
            response = api.call("POST", f"/api/invitations/{invitation['id']}/{action}",
                                other["access_token"])
            assert response.status_code == 404, action
            assert api.call("POST", f"/api/invitations/{invitation['id']}/{action}",
                            owner.key).status_code == 403
        assert len(_pending(api, invitee["access_token"])) == 1

    def test_an_invitation_waits_for_a_future_account(self, api: Api) -> None:
        """An email without an account is invited all the same and sees it once signed up."""
        owner = api.tenant()
        _invite(api, owner.token, owner.project_id, "later@example.com")
        later = api.signup("later@example.com")
        [invitation] = _pending(api, later["access_token"])
        assert invitation["project"]["id"] == owner.project_id


class TestNoEnumeration:
    """Inviting answers the same for registered and unregistered emails."""

    def test_same_status_and_shape_whether_or_not_the_email_is_registered(self, api: Api
                                                                         ) -> None:
        """A registered and an unknown email get 202 with the same fields (was 201 vs 404)."""
        owner, registered = api.tenant(), api.signup()
        known = api.call("POST", f"/api/projects/{owner.project_id}/members", owner.token,
                         {"email": registered["user"]["email"]})
        unknown = api.call("POST", f"/api/projects/{owner.project_id}/members", owner.token,
                           {"email": "nobody-here@example.com"})
        assert known.status_code == unknown.status_code == 202
        a, b = known.get_json(), unknown.get_json()
        assert a.keys() == b.keys() and a["data"].keys() == b["data"].keys()
        assert {k: v for k, v in a["data"].items() if k not in ("id", "email", "created_at")} \
            == {k: v for k, v in b["data"].items() if k not in ("id", "email", "created_at")}

    def test_slug_probes_are_throttled(self, api: Api) -> None:
        """Each 409 slug_taken counts as a failure: probing slugs stops at the allowance."""
        owner, prober = api.tenant(), api.user()
        api.project(owner.token, "Secret", slug="acme-secret-launch")
        codes = [api.call("POST", "/api/projects", prober, {"name": "x",
                          "slug": "acme-secret-launch"},
                          **from_address("10.9.0.1")).status_code
                 for _ in range(31)]
        assert codes == [409] * 30 + [429]


class TestAdministration:
    """Admins list and withdraw invitations; roles bound what they may offer."""

    def test_admins_list_reinvite_and_cancel(self, api: Api) -> None:
        """Inviting again changes the role of the one pending invitation; cancelling it
        removes it from the invitee's list."""
        owner, invitee = api.tenant(), api.signup()
        pid = owner.project_id
        first = _invite(api, owner.token, pid, invitee["user"]["email"], role="viewer")
        second = _invite(api, owner.token, pid, invitee["user"]["email"], role="admin")
        assert first["id"] == second["id"] and second["role"] == "admin"
        sent = api.data("GET", f"/api/projects/{pid}/invitations", owner.token)
        assert [(i["email"], i["role"]) for i in sent] == [(invitee["user"]["email"], "admin")]
        api.data("DELETE", f"/api/projects/{pid}/invitations/{first['id']}", owner.token)
        assert _pending(api, invitee["access_token"]) == []
        assert api.call("DELETE", f"/api/projects/{pid}/invitations/{first['id']}",
                        owner.token).status_code == 404

    def test_roles_bound_invitations(self, api: Api) -> None:
        """An admin cannot offer owner; a member cannot invite or list; an outsider gets 404."""
        owner, admin, member, outsider = api.tenant(), api.signup(), api.signup(), api.user()
        pid = owner.project_id
        api.add_member(owner.token, pid, admin, "admin")
        api.add_member(owner.token, pid, member, "member")
        offer = api.call("POST", f"/api/projects/{pid}/members", admin["access_token"],
                         {"email": "x@example.com", "role": "owner"})
        assert offer.status_code == 403
        _invite(api, admin["access_token"], pid, "x@example.com", role="admin")
        assert api.call("POST", f"/api/projects/{pid}/members", member["access_token"],
                        {"email": "y@example.com"}).status_code == 403
        assert api.call("GET", f"/api/projects/{pid}/invitations",
                        member["access_token"]).status_code == 403
        assert api.call("GET", f"/api/projects/{pid}/invitations", outsider).status_code == 404


class TestInvitationVolume:
    """Inviting a whole team is not mistaken for an attack; flooding one mailbox is refused."""

    def test_forty_invitations_from_one_address(self, api: Api) -> None:
        """An admin invites 40 people from one address without a 429."""
        owner = api.tenant()
        for n in range(40):
            _invite(api, owner.token, owner.project_id, f"teammate{n}@example.com")

    def test_one_mailbox_gets_at_most_ten_invitation_mails(self, api: Api) -> None:
        """Re-inviting one email an eleventh time within the window is a 429."""
        owner = api.tenant()
        for _ in range(10):
            _invite(api, owner.token, owner.project_id, "target@example.com")
        response = api.call("POST", f"/api/projects/{owner.project_id}/members", owner.token,
                            {"email": "target@example.com"})
        assert response.status_code == 429
