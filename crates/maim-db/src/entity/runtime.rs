//! MaiMBot runtime tables. Column names and meanings follow MaiBot's own database, so a
//! MaiBot running against the data plane reads what it wrote; every row is owned by one
//! agent of one tenant and natural keys are unique per agent.

use super::macros::agent_entity;

agent_entity! {
    /// Chat streams (one per group or private chat the agent takes part in).
    chat_streams = "chat_streams", key ["stream_id"] {
        stream_id: String, create_time: f64, group_platform: Option<String>,
        group_id: Option<String>, group_name: Option<String>, last_active_time: f64,
        platform: String, user_platform: String, user_id: String, user_nickname: String,
        user_cardname: Option<String>,
    }
}

agent_entity! {
    /// Messages seen or sent by the agent.
    messages = "messages", key [] {
        message_id: String, time: f64, chat_id: String, reply_to: Option<String>,
        interest_value: Option<f64>, key_words: Option<String>, key_words_lite: Option<String>,
        is_mentioned: Option<bool>, is_at: Option<bool>, reply_probability_boost: Option<f64>,
        chat_info_stream_id: String, chat_info_platform: String,
        chat_info_user_platform: String, chat_info_user_id: String,
        chat_info_user_nickname: String, chat_info_user_cardname: Option<String>,
        chat_info_group_platform: Option<String>, chat_info_group_id: Option<String>,
        chat_info_group_name: Option<String>, chat_info_create_time: f64,
        chat_info_last_active_time: f64, user_platform: Option<String>,
        user_id: Option<String>, user_nickname: Option<String>, user_cardname: Option<String>,
        processed_plain_text: Option<String>, display_message: Option<String>,
        priority_mode: Option<String>, priority_info: Option<String>,
        additional_config: Option<String>, is_emoji: bool, is_picid: bool, is_command: bool,
        is_notify: bool, intercept_message_level: i64, selected_expressions: Option<String>,
    }
}

agent_entity! {
    /// Actions the agent decided on (the original defined this table but never created it).
    action_records = "action_records", key [] {
        action_id: String, time: f64, action_reasoning: Option<String>, action_name: String,
        action_data: String, action_done: bool, action_build_into_prompt: bool,
        action_prompt_display: String, chat_id: String, chat_info_stream_id: String,
        chat_info_platform: String,
    }
}

agent_entity! {
    /// Registered emoji (stickers), keyed by file path per agent.
    emoji = "emoji", key ["full_path"] {
        full_path: String, format: String, emoji_hash: String, description: String,
        query_count: i64, is_registered: bool, is_banned: bool, emotion: Option<String>,
        record_time: f64, register_time: Option<f64>, usage_count: i64,
        last_used_time: Option<f64>,
    }
}

agent_entity! {
    /// Images seen by the agent, keyed by path per agent.
    images = "images", key ["path"] {
        image_id: String, emoji_hash: String, description: Option<String>, path: String,
        count: i64, timestamp: f64, r#type: String, vlm_processed: bool,
    }
}

agent_entity! {
    /// Cached image descriptions by content hash.
    image_descriptions = "image_descriptions", key [] {
        r#type: String, image_description_hash: String, description: String, timestamp: f64,
    }
}

agent_entity! {
    /// Cached emoji descriptions, one per emoji hash per agent.
    emoji_description_cache = "emoji_description_cache", key ["emoji_hash"] {
        emoji_hash: String, description: String, emotion_tags: Option<String>, timestamp: f64,
    }
}

agent_entity! {
    /// People the agent knows, one per person id per agent.
    person_info = "person_info", key ["person_id"] {
        is_known: bool, person_id: String, person_name: Option<String>,
        name_reason: Option<String>, platform: String, user_id: String,
        nickname: Option<String>, group_nick_name: Option<String>,
        memory_points: Option<String>, know_times: Option<f64>, know_since: Option<f64>,
        last_know: Option<f64>,
    }
}

agent_entity! {
    /// Groups the agent is in, one per group id per agent.
    group_info = "group_info", key ["group_id"] {
        group_id: String, group_name: Option<String>, platform: String,
        group_impression: Option<String>, member_list: Option<String>, topic: Option<String>,
        create_time: Option<f64>, last_active: Option<f64>, member_count: Option<i64>,
    }
}

agent_entity! {
    /// Learned expression styles.
    expression = "expression", key [] {
        situation: String, style: String, context: Option<String>,
        content_list: Option<String>, count: i64, last_active_time: f64, chat_id: String,
        create_date: Option<f64>, checked: bool, rejected: bool,
    }
}

agent_entity! {
    /// Learned jargon and its inferred meaning.
    jargon = "jargon", key [] {
        content: String, raw_content: Option<String>, meaning: Option<String>,
        chat_id: String, is_global: bool, count: i64, is_jargon: Option<bool>,
        last_inference_count: Option<i64>, is_complete: bool,
        inference_with_context: Option<String>, inference_content_only: Option<String>,
    }
}

agent_entity! {
    /// Summaries of chat history windows.
    chat_history_summary = "chat_history_summary", key [] {
        chat_id: String, start_time: f64, end_time: f64, original_text: String,
        participants: Json, theme: String, keywords: Json, summary: String,
        key_point: Option<String>, count: i64, forget_times: i64,
    }
}

agent_entity! {
    /// Questions the agent thought back about, and what it found.
    thinking_back = "thinking_back", key [] {
        chat_id: String, question: String, context: Option<String>, found_answer: bool,
        answer: Option<String>, thinking_steps: Option<Json>, create_time: f64,
        update_time: f64,
    }
}

agent_entity! {
    /// LLM calls and their token usage and cost.
    llm_usage = "llm_usage", key [] {
        model_name: String, model_assign_name: Option<String>,
        model_api_provider: Option<String>, user_id: String, request_type: String,
        endpoint: String, prompt_tokens: i64, completion_tokens: i64, total_tokens: i64,
        cost: f64, time_cost: Option<f64>, status: String, timestamp: DateTimeUtc,
    }
}

agent_entity! {
    /// Online-time intervals (UTC; the original mixed local time in).
    online_time = "online_time", key [] {
        duration: i64, start_timestamp: DateTimeUtc, end_timestamp: DateTimeUtc,
    }
}

agent_entity! {
    /// Key/value runtime state, one value per key per agent.
    runtime_state = "runtime_state", key ["state_key"] {
        state_key: String, state_value: Option<String>,
    }
}

agent_entity! {
    /// Hippocampus topic cache, one per chat per agent.
    hippo_topic_cache = "hippo_topic_cache", key ["chat_id"] {
        chat_id: String, topics_payload: Option<String>, last_topic_check_time: f64,
    }
}

agent_entity! {
    /// Hippocampus batch window, one per chat per agent.
    hippo_batch_state = "hippo_batch_state", key ["chat_id"] {
        chat_id: String, start_time: Option<f64>, end_time: Option<f64>,
    }
}
