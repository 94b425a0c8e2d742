//! Generic business tables (chat history, chat logs, file uploads, user sessions, system
//! metrics). The original allowed one chat-history and one chat-log row per session and
//! one metric sample per instant; here sessions hold many rows and samples never collide.

use crate::helpers::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every table this migration creates, in creation order.
pub const TABLES: &[&str] = &[
    "chat_history",
    "chat_logs",
    "file_uploads",
    "user_sessions",
    "system_metrics",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            agent_table(
                "chat_history",
                vec![
                    string_len("session_id", 255),
                    text("user_message"),
                    text("assistant_message"),
                    string_len("user_id", 255),
                    string_len("message_type", 50).default("text").take(),
                    json_doc_null("metadata"),
                ],
            ),
            agent_table(
                "chat_logs",
                vec![
                    string_len("session_id", 255),
                    string_len("request_type", 50),
                    text("request_content"),
                    text_null("response_content"),
                    integer("status_code"),
                    text_null("error_message"),
                    big_integer_null("token_count"),
                    double_null("response_time"),
                    string_len("user_id", 255),
                    json_doc_null("metadata"),
                ],
            ),
            agent_table(
                "file_uploads",
                vec![
                    string_len("original_filename", 255),
                    string_len("stored_filename", 255),
                    string_len("file_path", 500),
                    big_integer("file_size")
                        .check(Expr::col("file_size").gte(0))
                        .take(),
                    string_len("mime_type", 100),
                    string_len("file_hash", 64),
                    flag("is_public", false),
                    string_len_null("download_url", 500),
                    ts_null("expires_at"),
                    string_len("user_id", 255),
                    json_doc_null("metadata"),
                ],
            ),
            agent_table(
                "user_sessions",
                vec![
                    string_len("session_id", 255),
                    string_len("user_id", 255),
                    flag("is_active", true),
                    ts_now("last_activity"),
                    json_doc_null("metadata"),
                    ts_null("expires_at"),
                ],
            ),
            agent_table(
                "system_metrics",
                vec![
                    string_len("metric_name", 100),
                    double("metric_value"),
                    string_len_null("metric_unit", 20),
                    json_doc_null("tags"),
                ],
            ),
        ];
        // Each index below leads with (tenant_id, agent_id), which also serves the
        // cascading delete from agents.
        let indexes = vec![
            idx_per_agent("chat_history", &["session_id", "created_at"]),
            idx_per_agent("chat_history", &["user_id"]),
            idx_per_agent("chat_logs", &["session_id", "created_at"]),
            idx_per_agent("chat_logs", &["status_code"]),
            uniq_per_agent("file_uploads", &["file_hash"]),
            idx_per_agent("file_uploads", &["user_id"]),
            uniq_per_agent("user_sessions", &["session_id"]),
            idx_per_agent("user_sessions", &["user_id"]),
            idx_per_agent("system_metrics", &["metric_name", "created_at"]),
        ];
        create_all(m, tables, indexes).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut rev: Vec<&'static str> = TABLES.to_vec();
        rev.reverse();
        drop_all(m, &rev).await
    }
}
