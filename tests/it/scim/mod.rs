//! The SCIM 2.0 server through real HTTP with bearer tokens (issue 15, item 2).

mod errors;
mod groups;
mod idp_shapes;
mod rules;
mod users;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::api_tokens::admin_token;
use crate::helpers::*;

/// An IdP's client: a bearer token and JSON.
pub struct Scim {
    client: reqwest::Client,
    base: String,
    token: String,
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("an id").to_string()
    }

    pub fn total(&self) -> i64 {
        self.body["totalResults"]
            .as_i64()
            .expect("an integer totalResults")
    }

    pub fn scim_type(&self) -> Option<&str> {
        self.body["scimType"].as_str()
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}

impl Scim {
    pub fn new(app: &TestApp, token: &str) -> Self {
        Self::at(&app.address, token)
    }

    /// The same token sent to the instance at `address`.
    pub fn at(address: &str, token: &str) -> Self {
        Scim {
            client: reqwest::Client::new(),
            base: format!("{address}/scim/v2"),
            token: token.to_string(),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("SCIM request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a user with this email as userName; answers its id.
    pub async fn create_user(&self, email: &str) -> String {
        let made = self
            .post(
                "/Users",
                &serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": email,
                    "name": {"givenName": "Given", "familyName": "Family"},
                    "active": true,
                }),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        made.id()
    }
}

/// An app with its Admin signed in, and a SCIM client of my-org whose token gives new
/// members `role_key` and has `scopes`.
pub async fn scim_app(scopes: &[&str], role_key: &str) -> (TestApp, Browser, Scim) {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let token = admin_token(&app, &admin, scopes, role_key).await;
    let scim = Scim::new(&app, &token);
    (app, admin, scim)
}

/// A PatchOp request body.
pub fn patch_body(ops: Value) -> Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops,
    })
}
