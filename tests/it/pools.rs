use crate::helpers::*;

const ORG: &str = "my-org";
const POOLS: &str = "/orgs/my-org/pools";

async fn create_pool(browser: &Browser, name: &str, parent: &str) -> Page {
    browser
        .submit(POOLS, POOLS, &[("name", name), ("parent_id", parent)])
        .await
}

async fn add(browser: &Browser, pool: &str, user: &str, role: &str) -> Page {
    let base = format!("{POOLS}/{pool}");
    browser
        .submit(
            POOLS,
            &format!("{base}/members"),
            &[("user_id", user), ("role_id", role)],
        )
        .await
}

/// a ── b ── c, and a separate root d. Answers (a, b, c, d).
async fn tree(admin: &Browser) -> (String, String, String, String) {
    let a = location_id(&create_pool(admin, "Alpha", "").await);
    let b = location_id(&create_pool(admin, "Beta", &a).await);
    let c = location_id(&create_pool(admin, "Gamma", &b).await);
    let d = location_id(&create_pool(admin, "Delta", "").await);
    (a, b, c, d)
}

#[actix_web::test]
async fn pools_form_a_tree_shown_in_order() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, b, c, d) = tree(&admin).await;
    let page = admin.get(POOLS).await;
    assert_eq!(page.status, 200);
    let pos = |id: &str| page.body.find(&format!("data-id=\"{id}\"")).unwrap();
    assert!(pos(&a) < pos(&b) && pos(&b) < pos(&c) && pos(&c) < pos(&d));
    assert!(page.body.contains(&format!(
        "data-id=\"{c}\" data-depth=\"2\" data-parent=\"{b}\""
    )));
    let show = admin.get(&format!("{POOLS}/{c}")).await;
    assert!(show.body.contains("Alpha") && show.body.contains("Beta"));
    let bad = create_pool(&admin, "  ", "").await;
    assert_eq!(bad.status, 422);
    assert_eq!(app.audit_count(ORG, "pool.created"), 4);
}

#[actix_web::test]
async fn moving_a_pool_under_its_descendant_is_refused() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, _b, c, d) = tree(&admin).await;
    let under_descendant = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{a}"),
            &[("name", "Alpha"), ("parent_id", &c)],
        )
        .await;
    assert_eq!(under_descendant.status, 422);
    assert!(under_descendant.body.contains("own sub-pools"));
    let under_itself = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{a}"),
            &[("name", "Alpha"), ("parent_id", &a)],
        )
        .await;
    assert_eq!(under_itself.status, 422);
    let fine = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{a}"),
            &[("name", "Alpha"), ("parent_id", &d)],
        )
        .await;
    assert_eq!(fine.status, 303);
    assert_eq!(app.audit_count(ORG, "pool.moved"), 1);
    let renamed = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{a}"),
            &[("name", "Alef"), ("parent_id", &d)],
        )
        .await;
    assert_eq!(renamed.status, 303);
    assert_eq!(app.audit_count(ORG, "pool.updated"), 1);
}

#[actix_web::test]
async fn deleting_a_pool_says_what_goes_and_takes_its_subtree() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, b, c, _d) = tree(&admin).await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let engineer = app.role_id(ORG, "engineer");
    assert_eq!(add(&admin, &c, &bob, &engineer).await.status, 303);
    let confirm = admin.get(&format!("{POOLS}/{a}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("2 sub-pool(s)"));
    assert!(confirm.body.contains("Beta") && confirm.body.contains("Gamma"));
    assert!(confirm.body.contains("data-memberships=\"1\""));
    let deleted = admin
        .submit(POOLS, &format!("{POOLS}/{a}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(admin.get(&format!("{POOLS}/{b}")).await.status, 404);
    assert_eq!(app.count("pools"), 1);
    assert_eq!(app.count("pool_members"), 0);
    assert_eq!(app.audit_count(ORG, "pool.deleted"), 1);
}

#[actix_web::test]
async fn a_pool_manager_acts_inside_their_subtree_only() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, b, c, d) = tree(&admin).await;
    let mia = app.add_member(ORG, "mia@example.com", "Mia", "M", "member", true);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let (manager, engineer) = (app.role_id(ORG, "manager"), app.role_id(ORG, "engineer"));
    assert_eq!(add(&admin, &b, &mia, &manager).await.status, 303);
    let member_role = app.role_id(ORG, "member");
    assert_eq!(
        add(&admin, &b, &bob, &member_role).await.status,
        422,
        "Manager or Engineer only"
    );
    let m = app.member_browser("mia@example.com").await;

    // Inside: reads, creates sub-pools, manages members, moves within; deletes the pools
    // below their own, and is not offered to delete their own (the parent's to delete).
    let own = m.get(&format!("{POOLS}/{b}")).await;
    assert!(
        !own.body.contains(&format!("{POOLS}/{b}/delete")),
        "{}",
        own.body
    );
    let below = m.get(&format!("{POOLS}/{c}")).await;
    assert!(
        below.body.contains(&format!("{POOLS}/{c}/delete")),
        "{}",
        below.body
    );
    assert_eq!(m.get(&format!("{POOLS}/{c}")).await.status, 200);
    let sub = create_pool(&m, "Beta child", &b).await;
    assert_eq!(sub.status, 303, "{}", sub.body);
    let sub = location_id(&sub);
    assert_eq!(add(&m, &c, &bob, &engineer).await.status, 303);
    let moved = m
        .submit(
            POOLS,
            &format!("{POOLS}/{sub}"),
            &[("name", "Child"), ("parent_id", &c)],
        )
        .await;
    assert_eq!(moved.status, 303);
    let removed = m
        .submit(POOLS, &format!("{POOLS}/{c}/members/{bob}/remove"), &[])
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(
        m.submit(POOLS, &format!("{POOLS}/{sub}/delete"), &[])
            .await
            .status,
        303
    );

    // Outside: the parent, the other root and the top level are out of reach.
    assert_eq!(m.get(&format!("{POOLS}/{a}")).await.status, 403);
    assert_eq!(m.get(&format!("{POOLS}/{d}")).await.status, 403);
    assert_eq!(create_pool(&m, "Rogue", &d).await.status, 403);
    assert_eq!(create_pool(&m, "Rogue", "").await.status, 403);
    assert_eq!(add(&m, &d, &bob, &engineer).await.status, 403);
    assert_eq!(add(&m, &a, &bob, &engineer).await.status, 403);
    let escape = m
        .submit(
            POOLS,
            &format!("{POOLS}/{c}"),
            &[("name", "Gamma"), ("parent_id", &d)],
        )
        .await;
    assert_eq!(escape.status, 403);
    assert_eq!(
        m.submit(POOLS, &format!("{POOLS}/{b}/delete"), &[])
            .await
            .status,
        403
    );
    assert_eq!(
        m.submit(POOLS, &format!("{POOLS}/{d}/delete"), &[])
            .await
            .status,
        403
    );
    // Tree page shows only the subtree.
    let list = m.get(POOLS).await;
    assert!(list.body.contains(&format!("data-id=\"{b}\"")));
    assert!(!list.body.contains(&format!("data-id=\"{d}\"")));
    assert!(!list.body.contains(&format!("data-id=\"{a}\"")));
}

#[actix_web::test]
async fn an_engineer_only_reads_their_pools() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (_a, b, c, d) = tree(&admin).await;
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "member", true);
    let engineer = app.role_id(ORG, "engineer");
    assert_eq!(add(&admin, &b, &eve, &engineer).await.status, 303);
    let e = app.member_browser("eve@example.com").await;
    let page = e.get(&format!("{POOLS}/{b}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Rename or move"));
    assert_eq!(e.get(&format!("{POOLS}/{c}")).await.status, 200);
    assert_eq!(e.get(&format!("{POOLS}/{d}")).await.status, 403);
    assert_eq!(create_pool(&e, "Mine", &b).await.status, 403);
    assert_eq!(add(&e, &b, &eve, &engineer).await.status, 403);
    let rename = e
        .submit(
            POOLS,
            &format!("{POOLS}/{b}"),
            &[("name", "X"), ("parent_id", "")],
        )
        .await;
    assert_eq!(rename.status, 403);
    assert_eq!(
        e.submit(POOLS, &format!("{POOLS}/{b}/members/{eve}/remove"), &[])
            .await
            .status,
        403
    );
}

/// What sets an Engineer apart from a Member: in the pools they belong to, an Engineer
/// renames, adds sub-pools and chooses members (up to their own rank); a Member holding
/// the same pool role only reads. Every refusal below is the attack on a pool they are
/// not in.
#[actix_web::test]
async fn an_engineer_acts_on_the_pools_they_belong_to_and_no_other() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, b, c, d) = tree(&admin).await;
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "engineer", true);
    let mo = app.add_member(ORG, "mo@example.com", "Mo", "M", "member", true);
    let fay = app.add_member(ORG, "fay@example.com", "Fay", "F", "member", false);
    let (engineer, manager) = (app.role_id(ORG, "engineer"), app.role_id(ORG, "manager"));
    assert_eq!(add(&admin, &b, &eve, &engineer).await.status, 303);
    assert_eq!(add(&admin, &b, &mo, &engineer).await.status, 303);
    let e = app.member_browser("eve@example.com").await;
    let rename = |pool: String, name: &'static str, parent: String| {
        let e = &e;
        async move {
            e.submit(
                POOLS,
                &format!("{POOLS}/{pool}"),
                &[("name", name), ("parent_id", &parent)],
            )
            .await
            .status
        }
    };

    // Inside: their pool and its subtree.
    assert_eq!(rename(b.clone(), "Beta prime", a.clone()).await, 303);
    assert_eq!(create_pool(&e, "Eve's own", &b).await.status, 303);
    assert_eq!(add(&e, &c, &fay, &engineer).await.status, 303);
    let removed = e
        .submit(POOLS, &format!("{POOLS}/{c}/members/{fay}/remove"), &[])
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(app.audit_count(ORG, "pool.member_added"), 3);

    // Outside: a root they are not in, and the parent above their pool.
    assert_eq!(rename(d.clone(), "Mine now", String::new()).await, 403);
    assert_eq!(rename(a.clone(), "Mine now", String::new()).await, 403);
    assert_eq!(create_pool(&e, "Planted", &d).await.status, 403);
    assert_eq!(create_pool(&e, "Top", "").await.status, 403);
    assert_eq!(add(&e, &d, &fay, &engineer).await.status, 403);
    // Moving their pool out from under a parent they do not manage.
    assert_eq!(rename(b.clone(), "Beta prime", d.clone()).await, 403);
    // Within their pool, still not above their own rank.
    assert_eq!(add(&e, &c, &fay, &manager).await.status, 403);

    // A Member with the very same pool role reads, and acts on nothing.
    let m = app.member_browser("mo@example.com").await;
    assert_eq!(m.get(&format!("{POOLS}/{b}")).await.status, 200);
    assert_eq!(create_pool(&m, "Mo's", &b).await.status, 403);
    assert_eq!(add(&m, &c, &fay, &engineer).await.status, 403);
}

#[actix_web::test]
async fn pool_ids_of_another_organization_are_not_found() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other", "Other");
    app.add_member("other", "out@example.com", "Out", "S", "admin", true);
    let other = app.member_browser("out@example.com").await;
    let theirs = other
        .submit(
            "/orgs/other/pools",
            "/orgs/other/pools",
            &[("name", "Theirs"), ("parent_id", "")],
        )
        .await;
    let theirs = location_id(&theirs);
    let outsider = app.user_id("out@example.com");
    let (a, ..) = tree(&admin).await;
    assert_eq!(admin.get(&format!("{POOLS}/{theirs}")).await.status, 404);
    assert_eq!(create_pool(&admin, "Sub", &theirs).await.status, 422);
    let engineer = app.role_id(ORG, "engineer");
    assert_eq!(add(&admin, &a, &outsider, &engineer).await.status, 404);
    assert_eq!(
        admin
            .submit(POOLS, &format!("{POOLS}/{theirs}/delete"), &[])
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn a_pool_manager_invites_into_their_subtree_and_nowhere_else() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, b, c, d) = tree(&admin).await;
    let manager_id = app.add_member(ORG, "pm@example.com", "Pat", "Manager", "member", true);
    let engineer_id = app.add_member(ORG, "eng@example.com", "Eve", "Engineer", "member", true);
    assert_eq!(
        add(&admin, &b, &manager_id, &app.role_id(ORG, "manager"))
            .await
            .status,
        303
    );
    assert_eq!(
        add(&admin, &b, &engineer_id, &app.role_id(ORG, "engineer"))
            .await
            .status,
        303
    );
    let member_role = app.role_id(ORG, "member");

    let pm = app.member_browser("pm@example.com").await;
    let form = pm.get("/orgs/my-org/invitations/new").await;
    assert_eq!(form.status, 200);
    for inside in [&b, &c] {
        assert!(
            form.body.contains(&format!("value=\"{inside}\"")),
            "offers {inside}"
        );
    }
    for outside in [&a, &d] {
        assert!(
            !form.body.contains(&format!("value=\"{outside}\"")),
            "hides {outside}"
        );
    }
    let invite = |pool: String| {
        let pm = pm.clone();
        let member_role = member_role.clone();
        async move {
            pm.submit(
                "/orgs/my-org/invitations/new",
                "/orgs/my-org/invitations",
                &[
                    ("emails", "newbie@example.com"),
                    ("role_id", &member_role),
                    ("pool_ids", &pool),
                ],
            )
            .await
        }
    };
    // Refused on the form itself, at the pools, with the addresses kept to try again.
    for (pool, case) in [
        (d.clone(), "outside the subtree"),
        (String::new(), "no pool at all"),
    ] {
        let refused = invite(pool).await;
        assert_eq!(refused.status, 422, "{case}: {}", refused.body);
        assert!(
            refused.body.contains("invite people into your own pools"),
            "{case}"
        );
        assert!(
            refused.body.contains("newbie@example.com"),
            "{case}: the address is kept"
        );
        assert!(
            refused.body.contains(&format!("value=\"{c}\"")),
            "{case}: offers {c}"
        );
    }
    assert_eq!(app.count("invitations"), 0);
    let done = pm.follow_results(invite(c.clone()).await).await;
    assert_eq!(done.status, 200, "{}", done.body);

    assert!(
        !done.body.contains("/invite/"),
        "a pool Manager sees no link"
    );
    let link = mailed_invite_link(&app, "newbie@example.com").await;
    let newbie = app.client();
    let page = newbie.get(&link).await;
    assert_eq!(page.status, 200, "{link}: {}", page.body);
    let accepted = newbie
        .post(
            &link,
            &account_form(page.csrf(), "New", "Bie", "newbie password 1"),
        )
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let newbie_id = app.user_id("newbie@example.com");
    let org = app.org_id(ORG);
    let pools = portcullis::db::pools::roles_of_user(&mut app.conn(), &org, &newbie_id).unwrap();
    assert_eq!(
        pools.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        vec![c.as_str()]
    );

    let eng = app.member_browser("eng@example.com").await;
    assert_eq!(
        eng.get("/orgs/my-org/invitations/new").await.status,
        403,
        "an Engineer reads only"
    );
}

#[actix_web::test]
async fn sibling_pools_cannot_share_a_name_in_any_case() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let ops = location_id(&create_pool(&admin, "Ops", "").await);
    let ads = location_id(&create_pool(&admin, "Ads", "").await);

    let again = create_pool(&admin, "  ops ", "").await;
    assert_eq!(again.status, 422);
    assert!(
        again
            .body
            .contains("Another pool at this level already has this name")
    );
    assert!(
        again.body.contains("value=\"  ops \""),
        "the typed name stays"
    );

    // The same name under different parents is fine: the path tells them apart.
    assert_eq!(create_pool(&admin, "Berlin", &ops).await.status, 303);
    let berlin_ads = location_id(&create_pool(&admin, "Berlin", &ads).await);
    assert_eq!(create_pool(&admin, "BERLIN", &ops).await.status, 422);

    // Moving or renaming onto a sibling's name is refused the same way.
    let moved = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{berlin_ads}"),
            &[("name", "Berlin"), ("parent_id", &ops)],
        )
        .await;
    assert_eq!(moved.status, 422);
    assert!(
        moved
            .body
            .contains("Another pool at this level already has this name")
    );
    let renamed = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{ads}"),
            &[("name", "OPS"), ("parent_id", "")],
        )
        .await;
    assert_eq!(renamed.status, 422);
    assert_eq!(app.count("pools"), 4);
}

#[actix_web::test]
async fn two_admins_racing_to_create_the_same_top_level_pool_make_one() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let csrf = admin.get(POOLS).await.csrf();
    let forms: Vec<[(&str, String); 3]> = (0..6)
        .map(|i| {
            let name = if i % 2 == 0 { "Racing" } else { "racing" };
            [
                ("csrf_token", csrf.clone()),
                ("name", name.to_string()),
                ("parent_id", String::new()),
            ]
        })
        .collect();
    let posts = forms.iter().map(|form| admin.post(POOLS, form));
    let answers = futures_util::future::join_all(posts).await;
    let mut statuses: Vec<u16> = answers.iter().map(|p| p.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 422, 422, 422, 422, 422]);
    assert_eq!(app.count("pools"), 1);
    assert_eq!(app.audit_count(ORG, "pool.created"), 1);
}

#[actix_web::test]
async fn the_database_itself_refuses_a_second_top_level_pool_of_the_same_name() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id(ORG);
    let owner = app.user_id(ADMIN_EMAIL);
    let mut conn = app.conn();
    portcullis::db::pools::insert(&mut conn, &org, None, "Ops", &owner).unwrap();
    let twin = portcullis::db::pools::insert(&mut conn, &org, None, "OPS", &owner);
    assert!(
        matches!(
            twin,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{twin:?}"
    );
    let parent = portcullis::db::pools::insert(&mut conn, &org, None, "Ads", &owner).unwrap();
    portcullis::db::pools::insert(&mut conn, &org, Some(&parent), "Ops", &owner).unwrap();
}

/// Whoever may create pools cannot grow the tree without bound: the Pools page reads it
/// whole and prints each level's indentation, so ten thousand nested pools made every
/// view of it hundreds of megabytes of work. Ten levels, a thousand pools.
#[actix_web::test]
async fn pools_nest_ten_levels_deep_and_number_a_thousand_at_most() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let mut parent = String::new();
    for level in 0..10 {
        let made = create_pool(&admin, &format!("Level {level}"), &parent).await;
        assert_eq!(made.status, 303, "level {level}: {}", made.body);
        parent = location_id(&made);
    }
    let too_deep = create_pool(&admin, "Level 10", &parent).await;
    assert_eq!(too_deep.status, 422, "{}", too_deep.body);
    assert!(
        too_deep.body.contains("at most 10 levels"),
        "{}",
        too_deep.body
    );
    // Nor does a subtree move where it would end up deeper.
    let (a, _b, _c, _d) = tree(&admin).await;
    let moved = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{a}"),
            &[("name", "Alpha"), ("parent_id", &parent)],
        )
        .await;
    assert_eq!(moved.status, 422, "{}", moved.body);
    assert_eq!(app.count("pools"), 14);

    let org = app.org_id(ORG);
    let me = app.user_id(ADMIN_EMAIL);
    for i in 14..1000 {
        portcullis::db::pools::insert(&mut app.conn(), &org, None, &format!("Bulk {i}"), &me)
            .unwrap();
    }
    let one_too_many = create_pool(&admin, "Pool 1001", "").await;
    assert_eq!(one_too_many.status, 422, "{}", one_too_many.body);
    assert!(
        one_too_many.body.contains("1000 pools"),
        "{}",
        one_too_many.body
    );
    assert_eq!(app.count("pools"), 1000);
    let page = admin.get(POOLS).await;
    assert_eq!(page.status, 200);
}

/// A pool's page refuses a member who is not in it (or above it), and its name stayed
/// hidden from the tree; but the Users tab's effective roles and a profile's Pools tab
/// named it, with its role, through anyone who belonged to it.
#[actix_web::test]
async fn a_member_reads_no_name_of_a_pool_they_cannot_open() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (_a, b, _c, d) = tree(&admin).await;
    let engineer = app.role_id(ORG, "engineer");
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "member", true);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    for (pool, user) in [(&b, &eve), (&b, &bob), (&d, &bob)] {
        assert_eq!(add(&admin, pool, user, &engineer).await.status, 303);
    }
    let e = app.member_browser("eve@example.com").await;
    assert_eq!(e.get(&format!("{POOLS}/{d}")).await.status, 403);

    let bob_pools = format!("/orgs/my-org/users/{bob}/pools");
    for page in [e.get("/orgs/my-org/users").await, e.get(&bob_pools).await] {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("Beta"), "{}", page.body);
        assert!(!page.body.contains("Delta"), "{}", page.body);
        assert!(!page.body.contains(&d), "{}", page.body);
    }
    // Nor above the pool she opens: its path starts at her own pool.
    let beta = e.get(&format!("{POOLS}/{b}")).await;
    assert_eq!(beta.status, 200, "{}", beta.body);
    assert!(beta.body.contains("Beta"), "{}", beta.body);
    assert!(!beta.body.contains("Alpha"), "{}", beta.body);
    // Whoever manages every pool still reads them all.
    for page in [
        admin.get("/orgs/my-org/users").await,
        admin.get(&bob_pools).await,
    ] {
        assert!(page.body.contains("Delta"), "{}", page.body);
    }
}

/// Add pressed on a pool's page before anyone was picked: the reason at the picker, not
/// a 404 page.
#[actix_web::test]
async fn adding_nobody_to_a_pool_says_to_choose_a_member() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, b, _c, _d) = tree(&admin).await;
    let engineer = app.role_id(ORG, "engineer");
    let page = add(&admin, &a, "", &engineer).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("Choose a member first"), "{}", page.body);
    assert!(page.body.contains("id=\"user_id-error\""), "{}", page.body);

    // With JavaScript the picker's matches include who is in already: said there too.
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    assert_eq!(add(&admin, &a, &bob, &engineer).await.status, 303);
    let again = add(&admin, &a, &bob, &engineer).await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(
        again.body.contains("bob@example.com is already in"),
        "{}",
        again.body
    );
    assert!(
        again.body.contains("id=\"user_id-error\""),
        "{}",
        again.body
    );
    // Bob's profile offers to add him to the pools he is not in yet, and not to Alpha.
    let tab = admin.get(&format!("/orgs/{ORG}/users/{bob}/pools")).await;
    let offered = tab.body.split("id=\"pool_id\"").nth(1).unwrap();
    let offered = offered.split("</select>").next().unwrap();
    assert!(!offered.contains(&format!("value=\"{a}\"")), "{offered}");
    assert!(offered.contains(&format!("value=\"{b}\"")), "{offered}");
    // Sent from a second tab opened before: said at the pool field of that form.
    let profile = format!("/orgs/{ORG}/users/{bob}/pools");
    let twice = admin
        .submit(
            &profile,
            &profile,
            &[("pool_id", &a), ("role_id", &engineer)],
        )
        .await;
    assert_eq!(twice.status, 422, "{}", twice.body);
    assert!(
        twice.body.contains("id=\"pool_id-error\""),
        "{}",
        twice.body
    );
    assert!(twice.body.contains("is already in"), "{}", twice.body);
}

/// A pool Manager invites into their pools, but no button led to the invite form, and
/// its "Back to Invited" answered 403 (they have no Invited tab): the Users tab offers
/// "Invite people" to them, and the form and its results lead back to the Users tab.
#[actix_web::test]
async fn a_pool_manager_finds_the_invite_form_and_their_way_back() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, _b, _c, _d) = tree(&admin).await;
    let manager = app.role_id(ORG, "manager");
    let mia = app.add_member(ORG, "mia@example.com", "Mia", "M", "member", true);
    app.add_member(ORG, "eve@example.com", "Eve", "E", "member", true);
    assert_eq!(add(&admin, &a, &mia, &manager).await.status, 303);

    let invite_button = "href=\"/orgs/my-org/invitations/new\"";
    let m = app.member_browser("mia@example.com").await;
    let users = m.get("/orgs/my-org/users").await;
    assert!(users.body.contains(invite_button), "{}", users.body);
    // The Pools tab leads there too: for one whose role lacks the Users tab, the only way.
    assert!(m.get(POOLS).await.body.contains(invite_button));
    let form = m.get("/orgs/my-org/invitations/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Back to Users"));
    assert!(!form.body.contains("Back to Invited"));
    assert_eq!(
        m.get("/orgs/my-org/invitations/sent")
            .await
            .location
            .as_deref(),
        Some("/orgs/my-org/users")
    );

    let e = app.member_browser("eve@example.com").await;
    let users = e.get("/orgs/my-org/users").await;
    assert!(!users.body.contains(invite_button));
    assert!(!e.get(POOLS).await.body.contains(invite_button));
}

/// A pool Manager whose role opens no Users tab (a custom role without `users.read`)
/// enters on the Pools tab, finds "Invite people" there, and the form leads back to it.
#[actix_web::test]
async fn a_pool_manager_without_the_users_tab_invites_from_the_pools_tab() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, _b, _c, _d) = tree(&admin).await;
    let (bea, browser) =
        crate::authz::custom_role_holder(&app, &admin, "Bystander", &[], "bea@example.com").await;
    assert_eq!(
        add(&admin, &a, &bea, &app.role_id(ORG, "manager"))
            .await
            .status,
        303
    );
    let entry = browser.get("/orgs/my-org/users").await;
    assert_eq!(entry.location.as_deref(), Some(POOLS));
    let pools = browser.get(POOLS).await;
    assert!(pools.body.contains("href=\"/orgs/my-org/invitations/new\""));
    let form = browser.get("/orgs/my-org/invitations/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body
            .contains("href=\"/orgs/my-org/pools\">Back to Pools"),
        "{}",
        form.body
    );
    assert!(!form.body.contains("Back to Users"));
}

/// A pool Manager whose organization role does not read the members list (a custom
/// "Auditor") searched it through the pool page's picker, twenty addresses at a time.
/// The picker says it cannot be searched; the member's Manager role in the pool is kept.
#[actix_web::test]
async fn a_pool_manager_who_may_not_read_members_cannot_list_them_through_the_picker() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (a, _b, _c, _d) = tree(&admin).await;
    let (auditor, browser) = crate::authz::custom_role_holder(
        &app,
        &admin,
        "Auditor",
        &["audit.read"],
        "mallory@example.com",
    )
    .await;
    app.add_member(ORG, "secret@example.com", "Sec", "Ret", "member", true);
    let manager = app.role_id(ORG, "manager");
    assert_eq!(add(&admin, &a, &auditor, &manager).await.status, 303);

    for q in ["", "secret"] {
        let page = browser
            .get(&format!("{POOLS}/{a}?pick=user_id&q={q}"))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("data-no-search"), "{}", page.body);
        assert!(!page.body.contains("secret@example.com"), "{}", page.body);
    }
    // Whoever reads the members list still finds them there.
    let page = admin
        .get(&format!("{POOLS}/{a}?pick=user_id&q=secret"))
        .await;
    assert!(page.body.contains("secret@example.com"), "{}", page.body);
}
