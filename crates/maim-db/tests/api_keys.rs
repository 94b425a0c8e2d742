//! API keys: opaque, shown once, stored only as a keyed hash, verified server-side.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use maim_db::repo::{ApiKeyHasher, GrantedScope, NewApiKey};
use maim_db::{DbError, SystemScope};

fn hasher() -> ApiKeyHasher {
    ApiKeyHasher::new(b"test-pepper-test-pepper-test-pepper!".to_vec()).unwrap()
}

#[tokio::test]
async fn keys_verify_to_their_scope_and_forgeries_are_refused() {
    for t in common::backends().await {
        let (ts, agents) = common::tenant_with_agents(&t.db, "keys", 1).await;
        let h = hasher();
        let keys = t.db.api_keys(&h);
        let tenant_key = keys
            .create(
                &ts,
                NewApiKey {
                    name: "admin".into(),
                    permissions: vec!["config_write".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let agent_key = keys
            .create(
                &ts,
                NewApiKey {
                    name: "bot".into(),
                    agent_id: Some(agents[0].clone()),
                    permissions: vec!["chat".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(
            !format!("{agent_key:?}").contains(&agent_key.key),
            "Debug shows the key"
        );
        assert!(agent_key.key.starts_with("maim_") && agent_key.key.len() >= 60);
        // The key embeds no ids.
        assert!(!agent_key.key.contains(ts.tenant_id()) && !agent_key.key.contains(&agents[0]));

        let v = keys.verify(&tenant_key.key).await.unwrap();
        assert_eq!(v.scope, GrantedScope::Tenant(ts.clone()));
        assert!(v.has_permission("config_write") && !v.has_permission("chat"));
        let v = keys.verify(&agent_key.key).await.unwrap();
        assert_eq!(v.scope, GrantedScope::Agent(ts.agent(&agents[0]).unwrap()));

        // Forged (well-formed, never issued), altered, truncated, empty, other pepper.
        let mut forged = agent_key.key.clone();
        forged.replace_range(5..21, "AAAAAAAAAAAAAAAA");
        let mut altered = agent_key.key.clone().into_bytes();
        let i = altered.len() - 10;
        altered[i] = if altered[i] == b'x' { b'y' } else { b'x' };
        let altered = String::from_utf8(altered).unwrap();
        for bad in [
            forged.as_str(),
            altered.as_str(),
            &agent_key.key[..40],
            "",
            "maim_",
            "Bearer x",
        ] {
            assert!(
                matches!(keys.verify(bad).await, Err(DbError::Unauthorized)),
                "{}: accepted {bad:?}",
                t.name
            );
        }
        let other = ApiKeyHasher::new(vec![9u8; 40]).unwrap();
        assert!(matches!(
            t.db.api_keys(&other).verify(&agent_key.key).await,
            Err(DbError::Unauthorized)
        ));

        // Disabled, then revoked for good.
        keys.set_status(&ts, &agent_key.info.id, "disabled")
            .await
            .unwrap();
        assert!(matches!(
            keys.verify(&agent_key.key).await,
            Err(DbError::Unauthorized)
        ));
        keys.set_status(&ts, &agent_key.info.id, "active")
            .await
            .unwrap();
        keys.verify(&agent_key.key).await.unwrap();
        keys.revoke(&ts, &agent_key.info.id).await.unwrap();
        assert!(matches!(
            keys.verify(&agent_key.key).await,
            Err(DbError::Unauthorized)
        ));
        assert!(
            keys.set_status(&ts, &agent_key.info.id, "active")
                .await
                .is_err()
        );

        // Expired.
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        let expired = keys
            .create(
                &ts,
                NewApiKey {
                    name: "old".into(),
                    expires_at: Some(past),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(
            keys.verify(&expired.key).await,
            Err(DbError::Unauthorized)
        ));

        // A suspended tenant's keys stop working.
        t.db.tenants()
            .set_status(&SystemScope::new("test"), ts.tenant_id(), "suspended")
            .await
            .unwrap();
        assert!(matches!(
            keys.verify(&tenant_key.key).await,
            Err(DbError::Unauthorized)
        ));
        t.cleanup().await;
    }
}

#[tokio::test]
async fn the_stored_row_never_contains_the_key_and_use_is_recorded_lazily() {
    for t in common::backends().await {
        let (ts, _) = common::tenant_with_agents(&t.db, "keys-store", 0).await;
        let h = hasher();
        let keys = t.db.api_keys(&h);
        let created = keys
            .create(
                &ts,
                NewApiKey {
                    name: "k".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let rows =
            t.db.export_table(&SystemScope::new("test audit"), "api_keys")
                .await
                .unwrap();
        assert_eq!(rows.len(), 1);
        let dump = rows[0].to_string();
        let secret_part = &created.key[22..];
        assert!(
            !dump.contains(&created.key) && !dump.contains(secret_part),
            "{}: key stored: {dump}",
            t.name
        );
        assert_eq!(rows[0]["key_hash"].as_str().unwrap().len(), 64);

        assert!(
            keys.get(&ts, &created.info.id)
                .await
                .unwrap()
                .last_used_at
                .is_none()
        );
        keys.verify(&created.key).await.unwrap();
        let first = keys
            .get(&ts, &created.info.id)
            .await
            .unwrap()
            .last_used_at
            .expect("recorded");
        keys.verify(&created.key).await.unwrap();
        let second = keys
            .get(&ts, &created.info.id)
            .await
            .unwrap()
            .last_used_at
            .unwrap();
        assert_eq!(
            first, second,
            "last_used_at must not be rewritten on every call"
        );
        t.cleanup().await;
    }
    // SQLite: the key must not be anywhere in the database files either.
    let t = common::sqlite(true).await;
    let (ts, _) = common::tenant_with_agents(&t.db, "keys-file", 0).await;
    let h = hasher();
    let created =
        t.db.api_keys(&h)
            .create(
                &ts,
                NewApiKey {
                    name: "k".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    let path = maim_db::sqlite_path(&t.db.url().redacted()).unwrap();
    for p in [path.clone(), path.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&p) {
            let needle = created.key.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "key found in {p:?}"
            );
        }
    }
    t.cleanup().await;
}
