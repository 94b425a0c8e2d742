//! A downstream service in miniature: verify an API key, take the scope it grants, write
//! and read chat streams and messages in that scope, and touch the agent's heartbeat.
//!
//! ```text
//! cargo run -p maim-db --example downstream -- sqlite://data/example.db
//! cargo run -p maim-db --example downstream -- postgres://postgres@127.0.0.1/test --schema demo
//! ```
//!
//! To be self-contained it first plays the control plane: it creates a tenant, an agent
//! and a key (as the admin service would) and then uses only the key.

use maim_db::entity::runtime::{chat_streams, messages};
use maim_db::prelude::*;
use maim_db::repo::{ApiKeyHasher, GrantedScope, NewAgent, NewApiKey, NewTenant};
use maim_db::{DbOptions, Filter, Query, SystemScope, TenantScope, connect};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite://data/example.db".into());
    let mut opts = DbOptions::default();
    if args.next().as_deref() == Some("--schema") {
        opts.postgres_schema = args.next();
    }
    let pepper = std::env::var("MAIM_API_KEY_PEPPER")
        .unwrap_or_else(|_| "example-pepper-example-pepper-example-pepper".into());
    let hasher = ApiKeyHasher::new(pepper.into_bytes())?;

    let db = connect(&url, &opts).await?;
    db.migrate(&SystemScope::new("example startup")).await?;

    // --- control plane: tenant, agent, key ---------------------------------------------
    let sys = SystemScope::new("example provisioning");
    let suffix = std::process::id();
    let tenant = db
        .tenants()
        .create(
            &sys,
            NewTenant {
                tenant_name: format!("example-{suffix}"),
                ..Default::default()
            },
        )
        .await?;
    let tscope = TenantScope::new(tenant.id)?;
    let agent = db
        .agents()
        .create(
            &tscope,
            NewAgent {
                name: "mai".into(),
                ..Default::default()
            },
        )
        .await?;
    let created = db
        .api_keys(&hasher)
        .create(
            &tscope,
            NewApiKey {
                name: "runtime".into(),
                agent_id: Some(agent.id.clone()),
                permissions: vec!["chat".into()],
                ..Default::default()
            },
        )
        .await?;

    // --- runtime: everything below uses only the presented key ---------------------------
    let verified = db.api_keys(&hasher).verify(&created.key).await?;
    let GrantedScope::Agent(scope) = verified.scope.clone() else {
        return Err("expected an agent-scoped key".into());
    };
    assert!(verified.has_permission("chat"));

    let now = chrono::Utc::now().timestamp() as f64;
    let stream = db
        .table::<chat_streams::Entity>()
        .upsert(
            &scope,
            chat_streams::ActiveModel {
                stream_id: Set("stream-1".into()),
                create_time: Set(now),
                last_active_time: Set(now),
                platform: Set("qq".into()),
                user_platform: Set("qq".into()),
                user_id: Set("10001".into()),
                user_nickname: Set("alice".into()),
                ..Default::default()
            },
        )
        .await?;

    let msgs = db.table::<messages::Entity>();
    for i in 0..3 {
        msgs.insert(
            &scope,
            messages::ActiveModel {
                message_id: Set(format!("m{i}")),
                time: Set(now + i as f64),
                chat_id: Set(stream.stream_id.clone()),
                chat_info_stream_id: Set(stream.stream_id.clone()),
                chat_info_platform: Set("qq".into()),
                chat_info_user_platform: Set("qq".into()),
                chat_info_user_id: Set("10001".into()),
                chat_info_user_nickname: Set("alice".into()),
                chat_info_create_time: Set(now),
                chat_info_last_active_time: Set(now),
                processed_plain_text: Set(Some(format!("hello {i}"))),
                ..Default::default()
            },
        )
        .await?;
    }
    let latest = msgs
        .find(
            &scope,
            Query::new()
                .filter(Filter::eq(
                    messages::Column::ChatId,
                    stream.stream_id.clone(),
                ))
                .desc(messages::Column::Time)
                .limit(20),
        )
        .await?;

    let beat = db
        .heartbeats()
        .touch(&scope, Duration::from_secs(300))
        .await?;
    let active = db.heartbeats().list_active(scope.tenant()).await?;

    println!(
        "ok backend={:?} key={} scope={:?} stream={} messages={} newest={:?} heartbeat_expires={} active={}",
        db.backend(),
        verified.key_id,
        scope,
        stream.stream_id,
        latest.len(),
        latest.first().and_then(|m| m.processed_plain_text.clone()),
        beat.expires_at,
        active.len()
    );
    db.tenants().delete(&sys, scope.tenant_id()).await?;
    db.close().await?;
    Ok(())
}
