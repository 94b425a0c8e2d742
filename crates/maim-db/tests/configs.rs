//! Agent configuration documents: merge semantics, optimistic concurrency, secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use maim_db::DbError;
use serde_json::json;

#[tokio::test]
async fn partial_updates_change_only_what_they_name() {
    for t in common::backends().await {
        let (ts, agents) = common::tenant_with_agents(&t.db, "cfg", 1).await;
        let a = ts.agent(&agents[0]).unwrap();
        let cfgs = t.db.configs();
        let first = cfgs
            .update(
                &a,
                Some(0),
                &json!({
                    "chat": {"talk_value": 0.5, "max_context_size": 30},
                    "persona": {"personality": "curious", "states": ["happy"]},
                    "api_providers": [{"name": "openai", "base_url": "https://api.example", "api_key": {"value": "sk-live-abcdefghijklmnop"}}],
                    "models": [{"name": "gpt", "model_identifier": "gpt-x", "api_provider": "openai"}],
                    "model_task_config": {"replyer": {"model_list": ["gpt"]}},
                    "maim_message": {"auth_token": {"value": ["tok-1", "tok-2"]}}
                }),
            )
            .await
            .unwrap();
        assert_eq!(first.version, 1);

        // Touch one field of one section.
        let second = cfgs
            .update(&a, Some(1), &json!({"chat": {"max_context_size": 40}}))
            .await
            .unwrap();
        assert_eq!(second.version, 2);
        let (_, cfg) = cfgs.load(&a).await.unwrap();
        assert_eq!(cfg.chat.max_context_size, 40);
        assert_eq!(cfg.chat.talk_value, 0.5, "{}: sibling field reset", t.name);
        assert_eq!(
            cfg.persona.states,
            vec!["happy".to_string()],
            "persona.states reset"
        );
        assert_eq!(
            cfg.model_task_config["replyer"]["model_list"][0], "gpt",
            "task config erased"
        );
        assert_eq!(
            cfg.api_providers[0].api_key.as_deref(),
            Some("sk-live-abcdefghijklmnop")
        );
        assert_eq!(cfg.maim_message.auth_token, vec!["tok-1", "tok-2"]);

        // Adding a provider does not remove the other; removal is explicit.
        cfgs.update(
            &a,
            None,
            &json!({"api_providers": [{"name": "local", "api_key": {"clear": true}}]}),
        )
        .await
        .unwrap();
        assert_eq!(cfgs.load(&a).await.unwrap().1.api_providers.len(), 2);
        // A provider still used by a model cannot be removed.
        let err = cfgs
            .update(&a, None, &json!({"remove_api_providers": ["openai"]}))
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::InvalidInput(_)), "{err:?}");
        cfgs.update(&a, None, &json!({"remove_api_providers": ["local"]}))
            .await
            .unwrap();
        assert_eq!(cfgs.load(&a).await.unwrap().1.api_providers.len(), 1);

        // null resets a field to its default, by name.
        cfgs.update(&a, None, &json!({"chat": {"talk_value": null}}))
            .await
            .unwrap();
        assert_eq!(cfgs.load(&a).await.unwrap().1.chat.talk_value, 1.0);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn bad_updates_are_refused_and_change_nothing() {
    for t in common::backends().await {
        let (ts, agents) = common::tenant_with_agents(&t.db, "cfg-bad", 1).await;
        let a = ts.agent(&agents[0]).unwrap();
        let cfgs = t.db.configs();
        cfgs.update(&a, None, &json!({"chat": {"talk_value": 0.25}}))
            .await
            .unwrap();
        let before = cfgs.export(&a, true).await.unwrap();
        for bad in [
            json!({"chat": {"max_context_size": "lots"}}),
            json!({"chat": {"no_such_field": 1}}),
            json!({"no_such_section": {}}),
            json!({"api_providers": [{"name": "p", "api_key": "plain-string"}]}),
            json!({"api_providers": [{"base_url": "nameless"}]}),
            json!({"models": [{"name": "m", "api_provider": "missing"}]}),
            json!(["not", "an", "object"]),
        ] {
            let err = cfgs.update(&a, None, &bad).await.unwrap_err();
            assert!(
                matches!(err, DbError::InvalidInput(_)),
                "{}: {bad} -> {err:?}",
                t.name
            );
        }
        assert_eq!(cfgs.export(&a, true).await.unwrap(), before);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn stale_versions_and_concurrent_writers_get_a_conflict() {
    for t in common::backends().await {
        let (ts, agents) = common::tenant_with_agents(&t.db, "cfg-race", 1).await;
        let a = ts.agent(&agents[0]).unwrap();
        let cfgs = t.db.configs();
        cfgs.update(&a, Some(0), &json!({"dream": {"interval_minutes": 5}}))
            .await
            .unwrap();
        let err = cfgs
            .update(&a, Some(0), &json!({"dream": {"interval_minutes": 6}}))
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Conflict { .. }), "{err:?}");

        // Ten writers race from version 1: exactly one wins.
        let mut tasks = Vec::new();
        for i in 0..10 {
            let db = t.db.clone();
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                db.configs()
                    .update(&a, Some(1), &json!({"dream": {"max_iterations": i}}))
                    .await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(doc) => {
                    ok += 1;
                    assert_eq!(doc.version, 2);
                }
                // SQLite may also refuse a writer with "database is locked" under the busy
                // timeout; either way the write did not happen.
                Err(DbError::Conflict { .. }) | Err(DbError::Database(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(ok, 1, "{}: exactly one concurrent writer must win", t.name);
        assert_eq!(cfgs.export(&a, false).await.unwrap().version, 2);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn masked_documents_round_trip_without_losing_secrets() {
    for t in common::backends().await {
        let (ts, agents) = common::tenant_with_agents(&t.db, "cfg-mask", 1).await;
        let a = ts.agent(&agents[0]).unwrap();
        let cfgs = t.db.configs();
        cfgs.update(
            &a,
            None,
            &json!({
                "api_providers": [{"name": "p", "base_url": "https://x", "api_key": {"value": "sk-very-secret-value-1234"}}],
                "maim_message": {"auth_token": {"value": ["secret-token"]}}
            }),
        )
        .await
        .unwrap();
        let masked = cfgs.export(&a, false).await.unwrap();
        let text = masked.config.to_string();
        assert!(
            !text.contains("sk-very-secret") && !text.contains("secret-token"),
            "{text}"
        );
        assert_eq!(
            masked.config["api_providers"][0]["api_key"]["hint"],
            "…1234"
        );
        assert_eq!(masked.config["api_providers"][0]["base_url"], "https://x");

        // Send the masked document back as an update: nothing is lost.
        cfgs.update(&a, Some(masked.version), &masked.config)
            .await
            .unwrap();
        let revealed = cfgs.export(&a, true).await.unwrap();
        assert_eq!(
            revealed.config["api_providers"][0]["api_key"]["value"],
            "sk-very-secret-value-1234"
        );
        assert_eq!(
            revealed.config["maim_message"]["auth_token"]["value"][0],
            "secret-token"
        );
        // The revealed form round-trips too.
        cfgs.update(&a, None, &revealed.config).await.unwrap();
        assert_eq!(
            cfgs.load(&a).await.unwrap().1.api_providers[0]
                .api_key
                .as_deref(),
            Some("sk-very-secret-value-1234")
        );
        t.cleanup().await;
    }
}
