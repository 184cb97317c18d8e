use crate::helpers::*;

const ORG: &str = "my-org";

fn custom_role_id(app: &TestApp, name: &str) -> String {
    let org = app.org_id(ORG);
    portcullis::db::roles::list(&mut app.conn(), &org)
        .unwrap()
        .into_iter()
        .find(|r| r.name == name)
        .expect("role exists")
        .id
}

#[actix_web::test]
async fn admins_create_edit_and_delete_custom_roles() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let page = admin.get("/orgs/my-org/roles").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("href=\"/orgs/my-org/roles\""),
        "Roles tab for admins"
    );
    assert!(
        page.body
            .contains("data-role=\"admin\" data-builtin=\"true\"")
    );

    let created = admin
        .submit(
            "/orgs/my-org/roles",
            "/orgs/my-org/roles",
            &[
                ("name", "Group keeper"),
                ("permissions", "users.read"),
                ("permissions", "groups.manage"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let role_id = custom_role_id(&app, "Group keeper");
    let org = app.org_id(ORG);
    let role = portcullis::db::roles::find(&mut app.conn(), &org, &role_id)
        .unwrap()
        .unwrap();
    assert_eq!(role.permissions, "users.read,groups.manage");
    assert_eq!(role.rank, 30);
    assert_eq!(app.audit_count(ORG, "role.created"), 1);

    let taken = admin
        .submit(
            "/orgs/my-org/roles",
            "/orgs/my-org/roles",
            &[("name", "group KEEPER"), ("permissions", "users.read")],
        )
        .await;
    assert_eq!(taken.status, 422);
    assert!(taken.body.contains("already exists"));
    let empty = admin
        .submit("/orgs/my-org/roles", "/orgs/my-org/roles", &[("name", " ")])
        .await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("field-error"));

    // Narrowed to what a Member holds, it ranks as one; renamed and widened again, it
    // ranks as before. The trail keeps the rank it had each time.
    let update = |name: &'static str, permissions: &'static [&'static str]| {
        let admin = &admin;
        let path = format!("/orgs/my-org/roles/{role_id}");
        async move {
            let mut fields = vec![("name", name)];
            fields.extend(permissions.iter().map(|p| ("permissions", *p)));
            let saved = admin.submit("/orgs/my-org/roles", &path, &fields).await;
            assert_eq!(saved.status, 303, "{}", saved.body);
        }
    };
    let ranks = || {
        let (_, details) = app.latest_event(ORG);
        (details["old_rank"].as_i64(), details["rank"].as_i64())
    };
    update("Group keeper", &["users.read"]).await;
    let (old, narrowed) = ranks();
    assert_eq!(old, Some(30));
    assert_ne!(narrowed, Some(30));
    update("Keeper", &["users.read", "groups.manage"]).await;
    assert_eq!(ranks(), (narrowed, Some(30)));
    assert_eq!(app.audit_count(ORG, "role.updated"), 2);

    // In use by a member: 409; once unused, it goes.
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    app.set_member_role(ORG, &bob, "member");
    let org_id = app.org_id(ORG);
    portcullis::db::memberships::set_role(&mut app.conn(), &org_id, &bob, &role_id).unwrap();
    let in_use = admin
        .submit(
            "/orgs/my-org/roles",
            &format!("/orgs/my-org/roles/{role_id}/delete"),
            &[],
        )
        .await;
    refused_on_the_list(&admin, in_use, "in use").await;
    // Refused before the confirmation too, with the same reason.
    let asked = admin
        .get(&format!("/orgs/my-org/roles/{role_id}/delete"))
        .await;
    refused_on_the_list(&admin, asked, "in use").await;

    // The custom role works: Bob may manage groups but not users.
    let bob_browser = app.member_browser("bob@example.com").await;
    let group = bob_browser
        .submit(
            "/orgs/my-org/groups",
            "/orgs/my-org/groups",
            &[("name", "Night shift")],
        )
        .await;
    assert_eq!(group.status, 303, "{}", group.body);
    assert_eq!(bob_browser.get("/orgs/my-org/roles").await.status, 403);
    let deactivate = bob_browser
        .submit(
            "/orgs/my-org/groups",
            &format!("/orgs/my-org/users/{bob}/deactivate"),
            &[],
        )
        .await;
    assert_eq!(deactivate.status, 403);

    app.set_member_role(ORG, &bob, "member");
    let deleted = admin
        .submit(
            "/orgs/my-org/roles",
            &format!("/orgs/my-org/roles/{role_id}/delete"),
            &[],
        )
        .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(app.audit_count(ORG, "role.deleted"), 1);

    let builtin = app.role_id(ORG, "manager");
    let refused = admin
        .submit(
            "/orgs/my-org/roles",
            &format!("/orgs/my-org/roles/{builtin}/delete"),
            &[],
        )
        .await;
    refused_on_the_list(&admin, refused, "").await;
    let edit_builtin = admin
        .submit(
            "/orgs/my-org/roles",
            &format!("/orgs/my-org/roles/{builtin}"),
            &[("name", "Boss"), ("permissions", "org.manage")],
        )
        .await;
    assert_eq!(edit_builtin.status, 409);
}

#[actix_web::test]
async fn only_admins_see_and_use_the_roles_page() {
    let app = spawn_app().await;
    app.setup_admin().await;
    app.add_member(ORG, "mia@example.com", "Mia", "M", "manager", true);
    let manager = app.member_browser("mia@example.com").await;
    let page = manager.get("/orgs/my-org/users").await;
    assert!(!page.body.contains("href=\"/orgs/my-org/roles\""));
    assert_eq!(manager.get("/orgs/my-org/roles").await.status, 403);
    let post = manager
        .submit(
            "/orgs/my-org/users",
            "/orgs/my-org/roles",
            &[("name", "X"), ("permissions", "users.read")],
        )
        .await;
    assert_eq!(post.status, 403);
}

#[actix_web::test]
async fn one_account_has_a_different_role_in_each_organization() {
    let app = spawn_app().await;
    app.setup_admin().await;
    app.create_org("other", "Other Org");
    app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    app.add_member("other", "bob@example.com", "Bob", "B", "admin", true);
    let bob = app.member_browser("bob@example.com").await;
    assert_eq!(bob.get("/orgs/my-org/roles").await.status, 403);
    let other = bob.get("/orgs/other/roles").await;
    assert_eq!(other.status, 200);
    assert!(
        other
            .body
            .contains("href=\"/orgs/other/users\" aria-current=\"true\"")
    );
    assert!(other.body.contains("href=\"/orgs/my-org/users\">"));
    let mine = bob.get("/orgs/my-org/users").await;
    assert!(
        mine.body
            .contains("href=\"/orgs/my-org/users\" aria-current=\"true\"")
    );
    assert!(mine.body.contains("Other Org"));
}

/// The `<tr>` of the role with this key.
fn role_row<'a>(html: &'a str, key: &str) -> &'a str {
    let at = html
        .find(&format!("data-role=\"{key}\""))
        .unwrap_or_else(|| panic!("no row for {key}"));
    let end = html[at..].find("</tr>").unwrap() + at;
    &html[at..end]
}

#[actix_web::test]
async fn the_roles_page_explains_each_permission_the_rank_and_who_holds_each_role() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "e1@example.com", "E", "One", "engineer", false);
    app.add_member(ORG, "e2@example.com", "E", "Two", "engineer", false);
    app.add_member(ORG, "m1@example.com", "M", "One", "member", false);
    let page = admin.get("/orgs/my-org/roles").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("nobody grants a role, or acts on a member, ranked above their own")
    );
    // Member counts, each a link to the Users tab filtered by that role.
    for (key, n) in [("admin", 1), ("engineer", 2), ("member", 1), ("manager", 0)] {
        let row = role_row(&page.body, key);
        assert!(
            row.contains(&format!("data-members=\"{n}\"")),
            "{key}: {row}"
        );
        assert!(row.contains(&format!("href=\"/orgs/my-org/users?role={key}\"")));
    }
    // Every permission a role holds is named and explained.
    let member = role_row(&page.body, "member");
    assert!(member.contains("<code>users.read</code>"));
    assert!(
        member.contains("See the Users tab, members&#39; profiles")
            || member.contains("See the Users tab, members' profiles"),
        "{member}"
    );
    // Engineer is not Member: it acts on the pools it belongs to.
    let engineer = role_row(&page.body, "engineer");
    assert!(
        engineer.contains("data-permission=\"pools.operate\""),
        "{engineer}"
    );
    assert!(engineer.contains("Act on the pools they belong to"));
    assert!(!member.contains("pools.operate"));
    // The new-role form explains each box too.
    assert!(
        page.body
            .contains("<code>audit.read</code> <span class=\"muted\">Read and export")
    );
}

/// A custom role once named by a token and an invitation goes once neither works any
/// more (the database refused before: a 500); a working token keeps it, with the reason.
#[actix_web::test]
async fn a_role_named_only_by_revoked_tokens_and_closed_invitations_can_be_deleted() {
    use diesel::prelude::*;
    use portcullis::db::schema::api_tokens;
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let roles = "/orgs/my-org/roles";
    let created = admin
        .submit(
            roles,
            roles,
            &[("name", "Ops"), ("permissions", "users.read")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let role_id = custom_role_id(&app, "Ops");
    let (made, _) =
        crate::api_tokens::create(&admin, ORG, "Okta", &["scim"], &role_id, "365").await;
    assert_eq!(made.status, 200, "{}", made.body);
    let invited = admin.invite("my-org", "ops@example.com", &role_id).await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let invitation = app.invitation_id("ops@example.com");
    let cancel = format!("/orgs/my-org/invitations/{invitation}/cancel");
    assert_eq!(admin.submit(roles, &cancel, &[]).await.status, 303);

    let delete = format!("/orgs/my-org/roles/{role_id}/delete");
    let kept = admin.submit(roles, &delete, &[]).await;
    refused_on_the_list(&admin, kept, "1 API tokens").await;

    let token: String = api_tokens::table
        .select(api_tokens::id)
        .first(&mut *app.conn())
        .unwrap();
    let revoke = format!("/orgs/my-org/api-tokens/{token}/revoke");
    assert_eq!(admin.submit(roles, &revoke, &[]).await.status, 303);
    let deleted = admin.submit(roles, &delete, &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(app.count(&format!("roles WHERE id = '{role_id}'")), 0);
    assert_eq!(app.audit_count(ORG, "role.deleted"), 1);
}

/// A deletion refused with its reason (`why`) said on the Roles page it was asked from,
/// not on an error page of its own.
async fn refused_on_the_list(admin: &Browser, answer: Page, why: &str) {
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some("/orgs/my-org/roles"));
    let list = admin.get("/orgs/my-org/roles").await;
    assert!(list.body.contains("flash flash-error"), "{}", list.body);
    assert!(list.body.contains(why), "{}", list.body);
}
