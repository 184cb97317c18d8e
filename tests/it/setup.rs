use crate::helpers::*;

#[actix_web::test]
async fn setup_link_creates_the_first_admin_once_and_signs_them_in() {
    let app = spawn_app().await;
    let browser = app.client();
    let setup = app.setup_url.clone().unwrap();

    let form = browser.get_abs(&setup).await;
    assert_eq!(form.status, 200);
    assert_eq!(form.headers["referrer-policy"], "strict-origin");
    let token = form.csrf();
    let fields = |csrf: String| {
        vec![
            ("csrf_token", csrf),
            ("email", "First.Admin@Example.com".to_string()),
            ("first_name", "Grace".to_string()),
            ("last_name", "Hopper".to_string()),
            ("org_name", "Acme Corp".to_string()),
            ("password", ADMIN_PASSWORD.to_string()),
            ("password_confirm", ADMIN_PASSWORD.to_string()),
        ]
    };
    let done = browser.post_abs(&setup, &fields(token)).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/orgs/acme-corp/users"));

    let users = browser.get("/orgs/acme-corp/users").await;
    assert_eq!(users.status, 200);
    assert!(
        users
            .body
            .contains("data-email=\"first.admin@example.com\"")
    );
    assert!(users.body.contains("Welcome, Grace"));
    assert!(users.body.contains("data-role=\"admin\""));
    // The trail knew the organization by the name it was made with: it says the new one.
    let (action, details) = app.latest_event("acme-corp");
    assert_eq!(action, "setup.completed");
    assert_eq!(details["name"], "Acme Corp");
    assert_eq!(details["slug"], "acme-corp");
    assert_eq!(details["old_slug"], "my-org");

    // The link is spent: neither showing nor submitting it works again. Opened again
    // from the email, it says so and points to signing in (it said "nothing here").
    let other = app.client();
    let spent = other.get_abs(&setup).await;
    assert_eq!(spent.status, 404);
    assert!(
        spent.body.contains("This setup link is not valid any more"),
        "{}",
        spent.body
    );
    assert!(spent.body.contains("href=\"/login\""));
    let again = other.get("/login").await;
    let replay = other.post_abs(&setup, &fields(again.csrf())).await;
    assert_eq!(replay.status, 404);
    assert_eq!(app.count("users"), 1);
}

#[actix_web::test]
async fn no_setup_link_once_a_user_exists() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let restarted = app.restart().await;
    assert!(restarted.setup_url.is_none());
}

#[actix_web::test]
async fn a_restart_before_setup_replaces_the_link() {
    let app = spawn_app().await;
    let first = app.setup_url.clone().unwrap();
    let restarted = app.restart().await;
    let second = restarted.setup_url.clone().unwrap();
    assert_ne!(first, second);
    let browser = app.client();
    assert_eq!(browser.get_abs(&first).await.status, 404);
    assert_eq!(browser.get_abs(&second).await.status, 200);
}

#[actix_web::test]
async fn setup_form_explains_bad_input_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let browser = app.client();
    let setup = app.setup_url.clone().unwrap();
    let form = browser.get_abs(&setup).await;
    let response = browser
        .post_abs(
            &setup,
            &[
                ("csrf_token", form.csrf()),
                ("email", "not-an-address".into()),
                ("first_name", "Grace".into()),
                ("last_name", "".into()),
                ("password", "short".into()),
                ("password_confirm", "short".into()),
            ],
        )
        .await;
    assert_eq!(response.status, 422);
    assert!(response.body.contains("An email address needs one @"));
    assert!(response.body.contains("Enter a name."));
    assert!(response.body.contains("Use at least 8 characters."));
    assert!(response.body.contains("value=\"Grace\""));
    assert!(!response.body.contains("value=\"short\""));
    assert_eq!(app.count("users"), 0);
    // The link still works after a failed attempt.
    assert_eq!(browser.get_abs(&setup).await.status, 200);
}

#[actix_web::test]
async fn unknown_setup_tokens_are_not_found() {
    let app = spawn_app().await;
    let page = app.client().get("/setup/not-a-real-token").await;
    assert_eq!(page.status, 404);
}

/// A second copy started by mistake on the running instance's port stops at once, and
/// the first-admin link the running instance printed still works: the failed start did
/// not replace it.
#[actix_web::test]
async fn a_start_that_fails_keeps_the_running_instances_first_admin_link() {
    let app = spawn_app().await;
    let mut settings = app.settings.clone();
    settings.bind = app.address.trim_start_matches("http://").to_string();
    settings.public_url = None;
    let err = portcullis::startup::Application::build(settings)
        .await
        .err()
        .expect("the port is taken");
    assert!(err.to_string().contains("cannot listen"), "{err}");
    let setup = app.client().get_abs(app.setup_url.as_ref().unwrap()).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    app.setup_admin().await;
}
