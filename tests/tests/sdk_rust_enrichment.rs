//! Notes and scoring through the official Rust SDK (`klozeo = "=0.1.5"`), on every backend.

use crate::common;

use common::sdk;
use klozeo_sdk::{Error, LeadInput, ScoringRuleInput};
use klozeo_tests::{TestServer, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_through_the_rust_sdk() {
    for b in backends() {
        let server = TestServer::start(b).await;
        let c = sdk(&server, &server.account("unlimited").await);
        let other = sdk(&server, &server.account("unlimited").await);
        let lead = c
            .leads()
            .create(LeadInput::builder().name("Noted").source("sdk").build())
            .await
            .expect("create lead");
        let first = c.notes().create(&lead.id, "first").await.expect("note");
        assert!(first.id.starts_with("note_"), "{b:?}");
        assert_eq!(first.lead_id, lead.id);
        let second = c.notes().create(&lead.id, "second").await.expect("note");
        let listed: Vec<String> = c
            .notes()
            .list(&lead.id)
            .await
            .expect("list")
            .into_iter()
            .map(|n| n.content)
            .collect();
        assert_eq!(listed, ["second", "first"]);
        let edited = c.notes().update(&first.id, "edited").await.expect("update");
        assert_eq!(
            (edited.id.as_str(), edited.content.as_str()),
            (first.id.as_str(), "edited")
        );
        c.notes().delete(&second.id).await.expect("delete");
        assert_eq!(c.notes().list(&lead.id).await.expect("list").len(), 1);
        assert!(matches!(
            c.notes().update(&second.id, "x").await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            other.notes().list(&lead.id).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            c.notes().create(&lead.id, "  ").await,
            Err(Error::BadRequest(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_through_the_rust_sdk() {
    for b in backends() {
        let server = TestServer::start(b).await;
        let c = sdk(&server, &server.account("unlimited").await);
        let lead = c
            .leads()
            .create(
                LeadInput::builder()
                    .name("Scored")
                    .source("sdk")
                    .rating(4.5)
                    .build(),
            )
            .await
            .expect("create lead");
        let rule = c
            .scoring()
            .create_rule(ScoringRuleInput {
                name: "rating".into(),
                expression: "rating * 10".into(),
                priority: Some(1),
            })
            .await
            .expect("create rule");
        assert_eq!(
            (rule.expression.as_str(), rule.priority),
            ("rating * 10", 1)
        );
        assert_eq!(
            c.scoring().recalculate(&lead.id).await.expect("score"),
            45.0,
            "{b:?}"
        );
        assert_eq!(c.leads().get(&lead.id).await.expect("get").score, 45.0);
        assert_eq!(
            c.scoring().get_rule(&rule.id).await.expect("get rule").name,
            "rating"
        );
        // The Rust SDK always sends name and expression on update.
        c.scoring()
            .update_rule(
                &rule.id,
                ScoringRuleInput {
                    name: "rating x20".into(),
                    expression: "rating * 20".into(),
                    priority: None,
                },
            )
            .await
            .expect("update rule");
        assert_eq!(c.leads().get(&lead.id).await.expect("get").score, 90.0);
        let rules = c.scoring().list_rules().await.expect("list rules");
        assert_eq!(rules.len(), 1);
        assert_eq!(
            (rules[0].name.as_str(), rules[0].priority),
            ("rating x20", 1)
        );
        c.scoring()
            .delete_rule(&rule.id)
            .await
            .expect("delete rule");
        assert_eq!(c.scoring().recalculate(&lead.id).await.expect("score"), 0.0);
        assert!(matches!(
            c.scoring().get_rule(&rule.id).await,
            Err(Error::NotFound)
        ));
        let bad = c
            .scoring()
            .create_rule(ScoringRuleInput {
                name: "bad".into(),
                expression: "rating *".into(),
                priority: None,
            })
            .await;
        assert!(matches!(bad, Err(Error::BadRequest(_))), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_through_the_rust_sdk() {
    use klozeo_sdk::WebhookInput;
    for b in backends() {
        let server = TestServer::start(b).await;
        let c = sdk(&server, &server.account("unlimited").await);
        let other = sdk(&server, &server.account("unlimited").await);
        let hook = c
            .webhooks()
            .create(WebhookInput {
                url: "https://hooks.example.com/klozeo".into(),
                events: Some(vec!["lead.created".into(), "leads.created".into()]),
                secret: Some("signing-secret".into()),
            })
            .await
            .expect("create webhook");
        assert!(hook.active, "{b:?}");
        assert_eq!(hook.url, "https://hooks.example.com/klozeo");
        assert_eq!(
            hook.events.as_deref(),
            Some(&["lead.created".to_string(), "leads.created".to_string()][..])
        );
        assert!(hook.created_at.ends_with('Z'), "{}", hook.created_at);
        let all = c
            .webhooks()
            .create(WebhookInput {
                url: "https://hooks.example.com/all".into(),
                events: None,
                secret: None,
            })
            .await
            .expect("create webhook for every event");
        assert_eq!(all.events.map(|e| e.len()), Some(11));
        let listed: Vec<String> = c
            .webhooks()
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(listed, [hook.id.clone(), all.id.clone()], "{b:?}");
        assert!(other.webhooks().list().await.expect("list").is_empty());
        assert!(matches!(
            other.webhooks().delete(&hook.id).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            c.webhooks()
                .create(WebhookInput {
                    url: "http://hooks.example.com/plain".into(),
                    events: None,
                    secret: None,
                })
                .await,
            Err(Error::BadRequest(_))
        ));
        c.webhooks().delete(&hook.id).await.expect("delete");
        assert!(matches!(
            c.webhooks().delete(&hook.id).await,
            Err(Error::NotFound)
        ));
        assert_eq!(c.webhooks().list().await.expect("list").len(), 1);
    }
}
