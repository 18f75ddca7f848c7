//! Accounts over HTTP: registration, login (sessions, throttling), the account, API keys
//! (create, list, revoke) and their scopes. Runs on every backend.
#![allow(clippy::unwrap_used)]

use klozeo_core::ports::Clock as _;
use klozeo_tests::{Api, Resp, TestServer, assert_flat_error, backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Calls a route without any credential (register, login).
async fn anonymous(s: &TestServer, m: Method, path: &str, body: Value) -> Resp {
    let r = reqwest::Client::new()
        .request(m, format!("{}{}", s.base_url, path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// Calls `path` with `Authorization: Bearer token`.
async fn bearer(s: &TestServer, m: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    let mut r = reqwest::Client::new()
        .request(m, format!("{}{}", s.base_url, path))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Resp {
        status,
        headers,
        body: if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        },
    }
}

async fn register(s: &TestServer, email: &str, password: &str) -> Resp {
    anonymous(
        s,
        Method::POST,
        "/register",
        json!({"email": email, "password": password}),
    )
    .await
}

async fn login(s: &TestServer, email: &str, password: &str) -> Resp {
    anonymous(
        s,
        Method::POST,
        "/login",
        json!({"email": email, "password": password}),
    )
    .await
}

async fn lead_count(api: &Api) -> usize {
    api.ids("limit=1000").await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_gives_a_working_key_and_refuses_bad_input() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let r = register(&s, "New.User@Example.com", "correct horse battery").await;
        assert_eq!(r.status, StatusCode::CREATED, "{b:?} {}", r.body);
        assert_eq!(r.body["email"], "new.user@example.com");
        assert_eq!(r.body["plan"], "free");
        let key = r.body["api_key"].as_str().unwrap().to_string();
        assert!(key.starts_with("sk_live_") && key.len() == 40, "{key}");
        let api = Api::new(&s, &key);
        api.create_lead(json!({"name": "Acme", "source": "web"}))
            .await;
        let (st, acct) = api.get("/account").await;
        assert_eq!(st, StatusCode::OK, "{acct}");
        assert_eq!(acct["id"], r.body["id"]);
        assert_eq!(acct["email"], "new.user@example.com");
        assert_eq!(acct["plan"], "free");
        assert_eq!(acct["limits"]["max_leads"], 100);
        assert_eq!(acct["usage"]["leads"], 1);
        // The free plan counts requests: the create and this one.
        assert_eq!(acct["usage"]["requests_in_window"], 2, "{acct}");
        // Only a hash of the password is stored.
        let stored = s
            .app
            .accounts
            .find_by_email("new.user@example.com")
            .await
            .unwrap()
            .unwrap();
        let phc = stored.password_hash.unwrap();
        assert!(phc.starts_with("$argon2id$") && !phc.contains("correct horse"));

        let dup = register(&s, "new.user@EXAMPLE.com", "another password").await;
        assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
        assert_flat_error(&dup.body, "conflict");
        let short = register(&s, "short@example.com", "123456789").await;
        assert_eq!(short.status, StatusCode::BAD_REQUEST);
        assert_flat_error(&short.body, "bad_request");
        assert!(short.body["message"].as_str().unwrap().contains("10"));
        let bad = register(&s, "not-an-email", "long enough password").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let missing = anonymous(&s, Method::POST, "/register", json!({"email": "x@y.io"})).await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        // None of the refused registrations created an account.
        for e in ["short@example.com", "x@y.io"] {
            assert!(s.app.accounts.find_by_email(e).await.unwrap().is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_closes_registration_and_picks_the_plan() {
    for b in backends() {
        let s = TestServer::start_with_config(b, |c| c.accounts.registration_open = false).await;
        let r = register(&s, "closed@example.com", "long enough password").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert_flat_error(&r.body, "forbidden");
        assert!(
            s.app
                .accounts
                .find_by_email("closed@example.com")
                .await
                .unwrap()
                .is_none()
        );

        let s = TestServer::start_with_config(b, |c| c.accounts.default_plan = "pro".into()).await;
        let r = register(&s, "pro@example.com", "long enough password").await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["plan"], "pro");
        let (_, acct) = Api::new(&s, r.body["api_key"].as_str().unwrap())
            .get("/account")
            .await;
        assert_eq!(acct["limits"]["max_leads"], 500);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_opens_a_session_for_the_account_routes_only() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let reg = register(&s, "login@example.com", "correct horse battery").await;
        let r = login(&s, "LOGIN@example.com", "correct horse battery").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let token = r.body["token"].as_str().unwrap().to_string();
        assert!(r.body["expires_at"].as_i64().unwrap() > s.clock.now_secs());
        let cookie = r.headers["set-cookie"].to_str().unwrap();
        assert!(
            cookie.starts_with(&format!("klozeo_session={token};")),
            "{cookie}"
        );
        for attr in ["HttpOnly", "Secure", "SameSite=Lax"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        let acct = bearer(&s, Method::GET, "/account", &token, None).await;
        assert_eq!(acct.status, StatusCode::OK, "{}", acct.body);
        assert_eq!(acct.body["id"], reg.body["id"]);
        let created = bearer(
            &s,
            Method::POST,
            "/api-keys",
            &token,
            Some(json!({"name": "from the dashboard"})),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        // A session is not an API key: the data routes refuse it.
        let leads = bearer(&s, Method::GET, "/leads", &token, None).await;
        assert_eq!(leads.status, StatusCode::UNAUTHORIZED);
        assert_flat_error(&leads.body, "unauthorized");
        // It expires.
        s.clock.advance_secs(24 * 3600 + 1);
        let late = bearer(&s, Method::GET, "/account", &token, None).await;
        assert_eq!(late.status, StatusCode::UNAUTHORIZED);
        // An operator-created account has no password and cannot log in.
        s.app
            .accounts
            .create_account("operator@example.com", "free")
            .await
            .unwrap();
        let op = login(&s, "operator@example.com", "").await;
        assert_eq!(op.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_fail_alike_and_are_throttled() {
    for b in backends() {
        let s = TestServer::start(b).await;
        register(&s, "victim@example.com", "correct horse battery").await;
        let wrong = login(&s, "victim@example.com", "wrong password!").await;
        let unknown = login(&s, "nobody@example.com", "wrong password!").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.status, unknown.status);
        assert_eq!(wrong.body, unknown.body, "the two failures must not differ");
        assert_flat_error(&wrong.body, "unauthorized");
        // Let those two failures of this client address age out.
        s.clock.advance_secs(15 * 60);
        assert_eq!(
            login(&s, "victim@example.com", "wrong password!")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );

        // Four more failures for the e-mail (five in all), then the sixth attempt is refused
        // even with the right password.
        for _ in 0..4 {
            assert_eq!(
                login(&s, "victim@example.com", "guess").await.status,
                StatusCode::UNAUTHORIZED
            );
        }
        let refused = login(&s, "victim@example.com", "correct horse battery").await;
        assert_eq!(
            refused.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            refused.body
        );
        assert_flat_error(&refused.body, "rate_limit_exceeded");
        let retry: i64 = refused.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
        // Once the failures leave the 15-minute window, the right password works again.
        s.clock.advance_secs(retry);
        let ok = login(&s, "victim@example.com", "correct horse battery").await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_is_throttled_across_emails() {
    for b in backends() {
        let s = TestServer::start(b).await;
        register(&s, "real@example.com", "correct horse battery").await;
        // Five failures from this address, each for another e-mail: no e-mail is throttled.
        for i in 0..5 {
            let r = login(&s, &format!("probe{i}@example.com"), "nope nope nope").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = login(&s, "real@example.com", "correct horse battery").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert!(r.headers.contains_key("retry-after"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_and_revoked() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let admin = Api::on_plan(&s, "unlimited").await;
        let (st, created) = admin
            .send(Method::POST, "/api-keys", Some(json!({"name": "ci"})))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{created}");
        assert_eq!(created["name"], "ci");
        assert_eq!(created["scope"], "admin");
        let raw = created["key"].as_str().unwrap().to_string();
        assert!(raw.starts_with("sk_live_") && raw.len() == 40);
        assert!(raw.starts_with(created["prefix"].as_str().unwrap()));
        let id = created["id"].as_str().unwrap().to_string();
        let second = Api::new(&s, &raw);
        let (st, _) = second.get("/leads").await;
        assert_eq!(st, StatusCode::OK);

        let (st, list) = admin.get("/api-keys").await;
        assert_eq!(st, StatusCode::OK);
        let keys = list["api_keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{list}");
        let ci = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
        assert_eq!(ci["name"], "ci");
        assert_eq!(ci["prefix"], created["prefix"]);
        assert!(ci["created_at"].as_i64().unwrap() > 0);
        assert!(ci["last_used_at"].as_i64().is_some(), "used once: {ci}");
        // Neither the key nor its hash is ever listed.
        let text = list.to_string();
        assert!(!text.contains(&raw[8..]));
        assert!(!text.contains("hash"));
        for k in keys {
            let mut fields: Vec<&str> = k.as_object().unwrap().keys().map(|s| s.as_str()).collect();
            fields.sort();
            assert_eq!(
                fields,
                [
                    "created_at",
                    "id",
                    "last_used_at",
                    "name",
                    "prefix",
                    "scope"
                ]
            );
        }

        // Another account cannot see or revoke the key.
        let other = Api::on_plan(&s, "unlimited").await;
        let (st, v) = other
            .send(Method::DELETE, &format!("/api-keys/{id}"), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_flat_error(&v, "not_found");
        assert_eq!(second.get("/leads").await.0, StatusCode::OK);

        let (st, v) = admin
            .send(Method::DELETE, &format!("/api-keys/{id}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
        let (st, v) = second.get("/leads").await;
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "a revoked key is refused at once"
        );
        assert_flat_error(&v, "unauthorized");
        let (_, list) = admin.get("/api-keys").await;
        assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
        let (st, _) = admin
            .send(Method::DELETE, &format!("/api-keys/{id}"), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        for bad in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "x", "scope": "owner"}),
        ] {
            let (st, v) = admin.send(Method::POST, "/api-keys", Some(bad)).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        }
        let (_, list) = admin.get("/api-keys").await;
        assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scope_allows_what_it_names_and_refuses_the_rest() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let admin = Api::on_plan(&s, "unlimited").await;
        let lead = admin
            .create_lead(json!({"name": "Kept", "source": "s"}))
            .await;
        let mut scoped = std::collections::HashMap::new();
        for scope in ["read", "write", "admin"] {
            let (st, v) = admin
                .send(
                    Method::POST,
                    "/api-keys",
                    Some(json!({"name": scope, "scope": scope})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            assert_eq!(v["scope"], scope);
            scoped.insert(scope, Api::new(&s, v["key"].as_str().unwrap()));
        }
        let refused = |r: (StatusCode, Value)| {
            assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
            assert_flat_error(&r.1, "insufficient_scope");
        };

        // read: every GET, nothing else.
        let read = &scoped["read"];
        assert_eq!(read.get("/leads").await.0, StatusCode::OK);
        assert_eq!(read.get(&format!("/leads/{lead}")).await.0, StatusCode::OK);
        assert_eq!(read.get("/scoring-rules").await.0, StatusCode::OK);
        refused(
            read.send(
                Method::POST,
                "/leads",
                Some(json!({"name": "No", "source": "s"})),
            )
            .await,
        );
        refused(
            read.send(Method::DELETE, &format!("/leads/{lead}"), None)
                .await,
        );
        refused(
            read.send(
                Method::PATCH,
                &format!("/leads/{lead}"),
                Some(json!({"name": "Changed"})),
            )
            .await,
        );
        refused(read.get("/api-keys").await);
        refused(read.get("/account").await);

        // write: data changes, no key or account management.
        let write = &scoped["write"];
        let made = write
            .create_lead(json!({"name": "Written", "source": "s"}))
            .await;
        let (st, _) = write
            .send(
                Method::PATCH,
                &format!("/leads/{made}"),
                Some(json!({"city": "Oslo"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = write
            .send(
                Method::POST,
                "/scoring-rules",
                Some(json!({"name": "r", "expression": "10"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        assert_eq!(
            write
                .send(Method::DELETE, &format!("/leads/{made}"), None)
                .await
                .0,
            StatusCode::NO_CONTENT
        );
        refused(write.get("/api-keys").await);
        refused(
            write
                .send(Method::POST, "/api-keys", Some(json!({"name": "escalate"})))
                .await,
        );
        refused(write.get("/account").await);
        let admin_key_id = {
            let (_, list) = admin.get("/api-keys").await;
            list["api_keys"][0]["id"].as_str().unwrap().to_string()
        };
        refused(
            write
                .send(Method::DELETE, &format!("/api-keys/{admin_key_id}"), None)
                .await,
        );

        // admin: everything.
        let adm = &scoped["admin"];
        assert_eq!(adm.get("/api-keys").await.0, StatusCode::OK);
        assert_eq!(adm.get("/account").await.0, StatusCode::OK);
        adm.create_lead(json!({"name": "By admin", "source": "s"}))
            .await;

        // Nothing refused had an effect: the lead is unchanged, the read key made no lead,
        // the write key made no key and revoked none.
        let kept = admin.get_lead(&lead).await;
        assert_eq!(kept["name"], "Kept");
        assert_eq!(lead_count(&admin).await, 2);
        let (_, list) = admin.get("/api-keys").await;
        assert_eq!(list["api_keys"].as_array().unwrap().len(), 4);
        assert_eq!(admin.get("/leads").await.0, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_is_public_and_names_every_account_route() {
    let s = TestServer::start(klozeo_tests::Backend::Embedded).await;
    let r = reqwest::get(format!("{}/openapi.json", s.base_url))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/api/v1/register", "post"),
        ("/api/v1/login", "post"),
        ("/api/v1/account", "get"),
        ("/api/v1/api-keys", "get"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/stats", "get"),
        ("/api/v1/categories", "get"),
        ("/api/v1/cities", "get"),
        ("/api/v1/leads", "get"),
        ("/api/v1/webhooks/{id}/test", "post"),
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/leads/{id}/score", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["ApiKey"]["in"], "header");
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
}

/// A key this server has verified (and keeps as verified) is refused at once when another
/// process on the same store revokes it: here a second `App` over the same store stands for
/// another server, a Lambda instance or `klozeo key revoke`.
#[tokio::test]
async fn a_key_revoked_by_another_process_is_refused_at_once() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let admin = Api::on_plan(&s, "unlimited").await;
        let (st, created) = admin
            .send(Method::POST, "/api-keys", Some(json!({"name": "ci"})))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{created}");
        let second = Api::new(&s, created["key"].as_str().unwrap());
        for _ in 0..3 {
            assert_eq!(second.get("/leads").await.0, StatusCode::OK, "{b:?}");
        }
        let account_id = s
            .app
            .accounts
            .authenticate(&admin.key)
            .await
            .unwrap()
            .account_id;
        let elsewhere = klozeo_core::app::App::with_parts(
            s.app.deps.store.clone(),
            s.clock.clone(),
            std::sync::Arc::new(klozeo_core::ports::UuidIds),
            &klozeo_tests::test_config(),
        )
        .unwrap();
        elsewhere
            .accounts
            .revoke_key(&account_id, created["id"].as_str().unwrap())
            .await
            .unwrap();
        let (st, v) = second.get("/leads").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{b:?} {v}");
        assert_flat_error(&v, "unauthorized");
        // The admin key, verified before the revocation moved the account's revision, is
        // verified again and still works.
        assert_eq!(admin.get("/leads").await.0, StatusCode::OK, "{b:?}");
    }
}
