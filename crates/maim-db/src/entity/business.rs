//! Generic business tables. Chat history and chat logs hold many rows per session (the
//! original's unique index allowed one); metric samples never collide on a timestamp.

use super::macros::agent_entity;

agent_entity! {
    /// Conversation turns.
    chat_history = "chat_history", key [] {
        session_id: String, user_message: String, assistant_message: String,
        user_id: String, message_type: String, metadata: Option<Json>,
    }
}

agent_entity! {
    /// Request/response logs.
    chat_logs = "chat_logs", key [] {
        session_id: String, request_type: String, request_content: String,
        response_content: Option<String>, status_code: i32, error_message: Option<String>,
        token_count: Option<i64>, response_time: Option<f64>, user_id: String,
        metadata: Option<Json>,
    }
}

agent_entity! {
    /// Uploaded files, one per content hash per agent.
    file_uploads = "file_uploads", key ["file_hash"] {
        original_filename: String, stored_filename: String, file_path: String,
        file_size: i64, mime_type: String, file_hash: String, is_public: bool,
        download_url: Option<String>, expires_at: Option<DateTimeUtc>, user_id: String,
        metadata: Option<Json>,
    }
}

agent_entity! {
    /// User sessions, one row per session id per agent.
    user_sessions = "user_sessions", key ["session_id"] {
        session_id: String, user_id: String, is_active: bool, last_activity: DateTimeUtc,
        metadata: Option<Json>, expires_at: Option<DateTimeUtc>,
    }
}

agent_entity! {
    /// Metric samples.
    system_metrics = "system_metrics", key [] {
        metric_name: String, metric_value: f64, metric_unit: Option<String>,
        tags: Option<Json>,
    }
}
