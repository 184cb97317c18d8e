//! Errors are SCIM Error bodies with the right status; the API has no cookies.

use serde_json::json;

use super::*;

#[actix_web::test]
async fn without_a_valid_token_everything_is_401_in_a_scim_body() {
    let (app, _admin, _scim) = scim_app(&["scim"], "member").await;
    let client = reqwest::Client::new();
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Bearer pcs_AAAA"),
        Some("Basic abc"),
    ] {
        let mut request = client.get(app.url("/scim/v2/Users"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert_eq!(response.headers()["content-type"], "application/scim+json");
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["status"], "401");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    let discovery = client
        .get(app.url("/scim/v2/ServiceProviderConfig"))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), 401);
}

#[actix_web::test]
async fn a_session_cookie_does_not_open_the_api_and_none_is_ever_set() {
    let (app, admin, scim) = scim_app(&["scim"], "member").await;
    let cookie = admin.session_cookie().expect("signed in");
    let with_cookie = reqwest::Client::new()
        .get(app.url("/scim/v2/Users"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 401);
    assert!(with_cookie.headers().get("set-cookie").is_none());
    for answer in [
        scim.get("/Users").await,
        scim.post("/Users", &json!({"userName": "c@example.com"}))
            .await,
        scim.get("/ServiceProviderConfig").await,
        scim.get("/Nothing").await,
    ] {
        assert!(
            answer.headers.get("set-cookie").is_none(),
            "{:?}",
            answer.headers
        );
    }
}

#[actix_web::test]
async fn bad_requests_get_the_right_scim_type() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let bad_filter = scim.get("/Users?filter=userName%20eq").await;
    assert_eq!(bad_filter.status, 400);
    assert_eq!(bad_filter.scim_type(), Some("invalidFilter"));
    // A NUL escaped in a filter string: PostgreSQL refuses it in a text parameter (a 500
    // before the filter refused it).
    let nul = scim
        .get("/Users?filter=userName%20eq%20%22a%5Cu0000b%22")
        .await;
    assert_eq!(nul.status, 400);
    assert_eq!(nul.scim_type(), Some("invalidFilter"));
    let raw_nul = scim.get("/Users?filter=userName%20eq%20%22a%00b%22").await;
    assert_eq!(raw_nul.status, 400);
    let bad_number = scim.get("/Users?count=many").await;
    assert_eq!(bad_number.status, 400);
    assert_eq!(bad_number.scim_type(), Some("invalidValue"));

    let raw = reqwest::Client::new()
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&scim.token)
        .header("content-type", "application/scim+json")
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&raw.text().await.unwrap()).unwrap();
    assert_eq!(body["scimType"], "invalidSyntax");

    let no_name = scim
        .post("/Users", &json!({"name": {"givenName": "X"}}))
        .await;
    assert_eq!(no_name.status, 400);
    assert_eq!(no_name.scim_type(), Some("invalidValue"));
    let bad_op = scim
        .patch(
            "/Users/whatever",
            &patch_body(json!([{"op": "frobnicate", "path": "active"}])),
        )
        .await;
    assert_eq!(bad_op.status, 400, "{}", bad_op.body);

    let missing = scim.get("/Users/no-such-id").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["status"], "404");
    assert_eq!(scim.get("/Widgets").await.status, 404);
    let wrong = scim.delete("/ServiceProviderConfig").await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.body["status"], "405");
    assert_eq!(scim.put("/Users", &json!({})).await.status, 405);
}

/// PostgreSQL refuses a NUL in text, so one in a group's `externalId` or a member's
/// `value` used to end in a 500 there; it is a 400 on both databases, and nothing is made.
#[actix_web::test]
async fn a_nul_in_a_group_body_is_a_400_not_a_500() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    for body in [
        json!({"displayName": "Ops", "externalId": "a\u{0}b"}),
        json!({"displayName": "Ops", "members": [{"value": "\u{0}"}]}),
    ] {
        let refused = scim.post("/Groups", &body).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(refused.scim_type(), Some("invalidValue"));
    }
    assert_eq!(app.count("groups"), 0);
}

/// A flat chain of a hundred thousand `or`s fits in a body under the limit, and a
/// read-only token may send it; walking it once overflowed a thread's stack, which aborts
/// the whole process, every organization's portal with it. It is refused, and the server
/// goes on.
#[actix_web::test]
async fn a_filter_of_a_hundred_thousand_terms_is_refused_and_the_server_lives_on() {
    let (app, _admin, scim) = scim_app(&["read"], "member").await;
    for op in ["or", "and"] {
        let filter = vec!["a pr"; 100_000].join(&format!(" {op} "));
        assert!(filter.len() < 1024 * 1024);
        let refused = scim
            .post("/Users/.search", &json!({"filter": filter}))
            .await;
        assert_eq!(refused.status, 400, "{op}: {}", refused.body);
        assert_eq!(refused.scim_type(), Some("invalidFilter"));
    }
    let alive = scim.get("/Users?filter=userName%20pr").await;
    assert_eq!(alive.status, 200, "{}", alive.body);
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413_and_nothing_is_made() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let huge = json!({"userName": "big@example.com", "padding": "x".repeat(2 * 1024 * 1024)});
    let refused = scim.post("/Users", &huge).await;
    assert_eq!(refused.status, 413);
    assert_eq!(refused.body["status"], "413");
    assert_eq!(app.count("memberships"), 1);
}

#[actix_web::test]
async fn discovery_documents_are_served() {
    let (_app, _admin, scim) = scim_app(&["read"], "member").await;
    let config = scim.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, 200);
    assert_eq!(config.headers["content-type"], "application/scim+json");
    assert_eq!(config.body["patch"]["supported"], true);
    let types = scim.get("/ResourceTypes").await;
    assert_eq!(types.status, 200);
    assert_eq!(scim.get("/ResourceTypes/User").await.status, 200);
    let schemas = scim.get("/Schemas").await;
    assert_eq!(schemas.status, 200);
    assert_eq!(
        scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
            .await
            .status,
        200
    );
}

/// A PATCH is applied inside the organization's write transaction: 20,000 addresses added
/// one by one against the growing list held every writer of the installation. A request
/// now lists at most 1,000 values, and a user's attributes, which are read back with every
/// representation, take at most 8 KB.
#[actix_web::test]
async fn a_patch_or_a_profile_of_unbounded_size_is_refused() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("ada@example.com").await;
    let many: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
    let patched = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "add", "path": "emails", "value": many}])),
        )
        .await;
    assert_eq!(patched.status, 400, "the 20,000 addresses were taken");
    assert_eq!(patched.scim_type(), Some("invalidValue"));
    // Nor through 20,000 attributes of one object, each looked up in the resource, nor
    // through a thousand operations.
    let keys: serde_json::Map<String, Value> = (0..20_000)
        .map(|i| (format!("a{i:05}"), json!(0)))
        .collect();
    let wide = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "add", "value": keys}])),
        )
        .await;
    assert_eq!(wide.status, 400, "{}", wide.detail());
    let ops: Vec<Value> = (0..101)
        .map(|_| json!({"op": "replace", "path": "name.givenName", "value": "Ada"}))
        .collect();
    let busy = scim
        .patch(&format!("/Users/{id}"), &patch_body(json!(ops)))
        .await;
    assert_eq!(busy.status, 400, "{}", busy.detail());

    let user = |extra: Value| {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bob@example.com",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let nested = scim
        .post("/Users", &user(json!({"displayName": [[], [], []]})))
        .await;
    assert_eq!(nested.status, 400, "{}", nested.body);
    let turned = scim
        .post(
            "/Users",
            &user(json!({"name": {"givenName": "Ada\u{202E}nimda", "familyName": "L"}})),
        )
        .await;
    assert_eq!(turned.status, 400, "{}", turned.body);
    let addresses: Vec<Value> = (0..300)
        .map(|i| json!({"value": format!("bob{i}@example.com"), "type": "other"}))
        .collect();
    let bloated = scim
        .post("/Users", &user(json!({"emails": addresses})))
        .await;
    assert_eq!(bloated.status, 400, "{}", bloated.body);
    assert!(
        bloated.detail().contains("8192 bytes"),
        "{}",
        bloated.detail()
    );

    let ada = scim.get(&format!("/Users/{id}")).await;
    assert!(
        ada.body["emails"].as_array().map_or(0, Vec::len) <= 1,
        "nothing was added: {}",
        ada.body
    );
}

/// A query string the server cannot read, or one with a control character, is refused
/// in a SCIM Error body an identity provider can parse, never the portal's page.
#[actix_web::test]
async fn an_unreadable_address_is_a_scim_error() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    for path in [
        "/Users?count=1&count=2",
        "/Groups?startIndex=1&startIndex=2",
        "/Users?filter=userName%20eq%20%22a%01b%22",
        "/Users/%01",
    ] {
        let answer = scim.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {:?}", answer.body);
        assert_eq!(
            answer.headers["content-type"], "application/scim+json",
            "{path}"
        );
        assert_eq!(answer.scim_type(), Some("invalidSyntax"), "{path}");
        assert!(!answer.detail().is_empty(), "{path}");
    }
}

/// Each name of `attributes` is looked for in every resource of the page: a list of
/// thousands would keep a worker busy for seconds on one request.
#[actix_web::test]
async fn an_attribute_list_without_bound_is_refused() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("ada@example.com").await;
    let long = vec!["userName"; 1_000].join(",");
    for path in [
        format!("/Users?attributes={long}"),
        format!("/Users?excludedAttributes={long}"),
        format!("/Users/{id}?attributes={long}"),
        format!("/Groups?excludedAttributes={long}"),
    ] {
        let refused = scim.get(&path).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.scim_type(), Some("invalidValue"));
    }
    let search = scim
        .post(
            "/Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "attributes": vec!["userName"; 5_000],
            }),
        )
        .await;
    assert_eq!(search.status, 400, "{}", search.body);

    let hundred = vec!["userName"; 100].join(",");
    let served = scim.get(&format!("/Users/{id}?attributes={hundred}")).await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.body["userName"], "ada@example.com");
    assert!(served.body.get("name").is_none(), "{}", served.body);
}
