//! MaiMBot runtime tables. Every row carries `tenant_id` and `agent_id` with a composite
//! foreign key to its agent; every natural key is unique per agent, never globally
//! (the original's global `stream_id`, `person_id`, `group_id`, `full_path`, `path` and
//! `emoji_hash` keys let two tenants collide or squat on each other's rows).

use crate::helpers::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every table this migration creates, in creation order.
pub const TABLES: &[&str] = &[
    "chat_streams",
    "messages",
    "action_records",
    "emoji",
    "images",
    "image_descriptions",
    "emoji_description_cache",
    "person_info",
    "group_info",
    "expression",
    "jargon",
    "chat_history_summary",
    "thinking_back",
    "llm_usage",
    "online_time",
    "runtime_state",
    "hippo_topic_cache",
    "hippo_batch_state",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            agent_table(
                "chat_streams",
                vec![
                    text("stream_id"),
                    double("create_time"),
                    text_null("group_platform"),
                    text_null("group_id"),
                    text_null("group_name"),
                    double("last_active_time"),
                    text("platform"),
                    text("user_platform"),
                    text("user_id"),
                    text("user_nickname"),
                    text_null("user_cardname"),
                ],
            ),
            agent_table(
                "messages",
                vec![
                    text("message_id"),
                    double("time"),
                    text("chat_id"),
                    text_null("reply_to"),
                    double_null("interest_value"),
                    text_null("key_words"),
                    text_null("key_words_lite"),
                    boolean_null("is_mentioned"),
                    boolean_null("is_at"),
                    double_null("reply_probability_boost"),
                    text("chat_info_stream_id"),
                    text("chat_info_platform"),
                    text("chat_info_user_platform"),
                    text("chat_info_user_id"),
                    text("chat_info_user_nickname"),
                    text_null("chat_info_user_cardname"),
                    text_null("chat_info_group_platform"),
                    text_null("chat_info_group_id"),
                    text_null("chat_info_group_name"),
                    double("chat_info_create_time"),
                    double("chat_info_last_active_time"),
                    text_null("user_platform"),
                    text_null("user_id"),
                    text_null("user_nickname"),
                    text_null("user_cardname"),
                    text_null("processed_plain_text"),
                    text_null("display_message"),
                    text_null("priority_mode"),
                    text_null("priority_info"),
                    text_null("additional_config"),
                    flag("is_emoji", false),
                    flag("is_picid", false),
                    flag("is_command", false),
                    flag("is_notify", false),
                    count("intercept_message_level", 0),
                    text_null("selected_expressions"),
                ],
            ),
            agent_table(
                "action_records",
                vec![
                    text("action_id"),
                    double("time"),
                    text_null("action_reasoning"),
                    text("action_name"),
                    text("action_data"),
                    flag("action_done", false),
                    flag("action_build_into_prompt", false),
                    text("action_prompt_display"),
                    text("chat_id"),
                    text("chat_info_stream_id"),
                    text("chat_info_platform"),
                ],
            ),
            agent_table(
                "emoji",
                vec![
                    text("full_path"),
                    text("format"),
                    text("emoji_hash"),
                    text("description"),
                    count("query_count", 0),
                    flag("is_registered", false),
                    flag("is_banned", false),
                    text_null("emotion"),
                    double("record_time"),
                    double_null("register_time"),
                    count("usage_count", 0),
                    double_null("last_used_time"),
                ],
            ),
            agent_table(
                "images",
                vec![
                    text("image_id").default("").take(),
                    text("emoji_hash"),
                    text_null("description"),
                    text("path"),
                    count("count", 1),
                    double("timestamp"),
                    text("type"),
                    flag("vlm_processed", false),
                ],
            ),
            agent_table(
                "image_descriptions",
                vec![
                    text("type"),
                    text("image_description_hash"),
                    text("description"),
                    double("timestamp"),
                ],
            ),
            agent_table(
                "emoji_description_cache",
                vec![
                    text("emoji_hash"),
                    text("description"),
                    text_null("emotion_tags"),
                    double("timestamp"),
                ],
            ),
            agent_table(
                "person_info",
                vec![
                    flag("is_known", false),
                    text("person_id"),
                    text_null("person_name"),
                    text_null("name_reason"),
                    text("platform"),
                    text("user_id"),
                    text_null("nickname"),
                    text_null("group_nick_name"),
                    text_null("memory_points"),
                    double_null("know_times"),
                    double_null("know_since"),
                    double_null("last_know"),
                ],
            ),
            agent_table(
                "group_info",
                vec![
                    text("group_id"),
                    text_null("group_name"),
                    text("platform"),
                    text_null("group_impression"),
                    text_null("member_list"),
                    text_null("topic"),
                    double_null("create_time"),
                    double_null("last_active"),
                    big_integer_null("member_count"),
                ],
            ),
            agent_table(
                "expression",
                vec![
                    text("situation"),
                    text("style"),
                    text_null("context"),
                    text_null("content_list"),
                    count("count", 1),
                    double("last_active_time"),
                    text("chat_id"),
                    double_null("create_date"),
                    flag("checked", false),
                    flag("rejected", false),
                ],
            ),
            agent_table(
                "jargon",
                vec![
                    text("content"),
                    text_null("raw_content"),
                    text_null("meaning"),
                    text("chat_id"),
                    flag("is_global", false),
                    count("count", 0),
                    boolean_null("is_jargon"),
                    big_integer_null("last_inference_count"),
                    flag("is_complete", false),
                    text_null("inference_with_context"),
                    text_null("inference_content_only"),
                ],
            ),
            agent_table(
                "chat_history_summary",
                vec![
                    text("chat_id"),
                    double("start_time"),
                    double("end_time"),
                    text("original_text"),
                    json_doc("participants"),
                    text("theme"),
                    json_doc("keywords"),
                    text("summary"),
                    text_null("key_point"),
                    count("count", 0),
                    count("forget_times", 0),
                ],
            ),
            agent_table(
                "thinking_back",
                vec![
                    text("chat_id"),
                    text("question"),
                    text_null("context"),
                    flag("found_answer", false),
                    text_null("answer"),
                    json_doc_null("thinking_steps"),
                    double("create_time"),
                    double("update_time"),
                ],
            ),
            agent_table(
                "llm_usage",
                vec![
                    text("model_name"),
                    text_null("model_assign_name"),
                    text_null("model_api_provider"),
                    text("user_id"),
                    text("request_type"),
                    text("endpoint"),
                    count("prompt_tokens", 0),
                    count("completion_tokens", 0),
                    count("total_tokens", 0),
                    double("cost").default(0.0).take(),
                    double_null("time_cost"),
                    text("status"),
                    ts_now("timestamp"),
                ],
            ),
            // The original stored a local-time string frozen at import; here both ends
            // are UTC timestamps and the duration is derived by the writer.
            agent_table(
                "online_time",
                vec![
                    count("duration", 0),
                    timestamp_with_time_zone("start_timestamp"),
                    timestamp_with_time_zone("end_timestamp"),
                ],
            ),
            agent_table(
                "runtime_state",
                vec![text("state_key"), text_null("state_value")],
            ),
            agent_table(
                "hippo_topic_cache",
                vec![
                    text("chat_id"),
                    text_null("topics_payload"),
                    double("last_topic_check_time").default(0.0).take(),
                ],
            ),
            agent_table(
                "hippo_batch_state",
                vec![
                    text("chat_id"),
                    double_null("start_time"),
                    double_null("end_time"),
                ],
            ),
        ];

        // Each index below leads with (tenant_id, agent_id), which also serves the
        // cascading delete from agents.
        let indexes = vec![
            uniq_per_agent("chat_streams", &["stream_id"]),
            // "Latest N messages of a chat" is the hot read.
            idx_per_agent("messages", &["chat_id", "time"]),
            idx_per_agent("messages", &["message_id"]),
            idx_per_agent("action_records", &["chat_id", "time"]),
            idx_per_agent("action_records", &["action_id"]),
            uniq_per_agent("emoji", &["full_path"]),
            idx_per_agent("emoji", &["emoji_hash"]),
            uniq_per_agent("images", &["path"]),
            idx_per_agent("images", &["emoji_hash"]),
            idx_per_agent("image_descriptions", &["image_description_hash"]),
            uniq_per_agent("emoji_description_cache", &["emoji_hash"]),
            uniq_per_agent("person_info", &["person_id"]),
            idx_per_agent("person_info", &["platform", "user_id"]),
            uniq_per_agent("group_info", &["group_id"]),
            idx_per_agent("expression", &["chat_id"]),
            idx_per_agent("jargon", &["chat_id"]),
            idx_per_agent("chat_history_summary", &["chat_id"]),
            idx_per_agent("thinking_back", &["chat_id"]),
            idx_per_agent("llm_usage", &["timestamp"]),
            idx_per_agent("llm_usage", &["model_name"]),
            idx_per_agent("online_time", &["end_timestamp"]),
            uniq_per_agent("runtime_state", &["state_key"]),
            uniq_per_agent("hippo_topic_cache", &["chat_id"]),
            uniq_per_agent("hippo_batch_state", &["chat_id"]),
        ];
        create_all(m, tables, indexes).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut rev: Vec<&'static str> = TABLES.to_vec();
        rev.reverse();
        drop_all(m, &rev).await
    }
}
