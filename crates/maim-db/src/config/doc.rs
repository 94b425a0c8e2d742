use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

macro_rules! section {
    ($(#[$m:meta])* $name:ident { $($field:ident : $ty:ty = $default:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                #[doc = concat!("`", stringify!($field), "` (default `", stringify!($default), "`).")]
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }
    };
}

section! {
    /// Persona: who the agent is and how it talks.
    Persona {
        personality: String = String::new(),
        reply_style: String = String::new(),
        interest: String = String::new(),
        plan_style: String = String::new(),
        private_plan_style: String = String::new(),
        visual_style: String = String::new(),
        states: Vec<String> = Vec::new(),
        state_probability: f64 = 0.0,
    }
}

section! {
    /// Bot identity overrides.
    BotOverrides {
        platform: String = String::new(),
        qq_account: String = String::new(),
        nickname: String = String::new(),
        platforms: Vec<String> = Vec::new(),
        alias_names: Vec<String> = Vec::new(),
    }
}

section! {
    /// Chat behaviour.
    Chat {
        max_context_size: i64 = 18,
        interest_rate_mode: String = "fast".into(),
        planner_size: f64 = 1.5,
        mentioned_bot_reply: bool = true,
        auto_chat_value: f64 = 1.0,
        enable_auto_chat_value_rules: bool = true,
        at_bot_inevitable_reply: f64 = 1.0,
        planner_smooth: f64 = 3.0,
        talk_value: f64 = 1.0,
        enable_talk_value_rules: bool = true,
        talk_value_rules: Vec<Value> = Vec::new(),
        auto_chat_value_rules: Vec<Value> = Vec::new(),
    }
}

section! {
    /// Expression learning.
    Expression {
        mode: String = "classic".into(),
        learning_list: Vec<Value> = Vec::new(),
        expression_groups: Vec<Value> = Vec::new(),
        reflect: bool = false,
        reflect_operator_id: String = String::new(),
        allow_reflect: Vec<Value> = Vec::new(),
    }
}

section! {
    /// Memory.
    Memory {
        max_memory_number: i64 = 100,
        memory_build_frequency: i64 = 1,
        max_agent_iterations: i64 = 5,
        enable_jargon_detection: bool = true,
    }
}

section! {
    /// Mood.
    Mood {
        enable_mood: bool = true,
        mood_update_threshold: f64 = 1.0,
        emotion_style: String = String::new(),
    }
}

section! {
    /// Emoji (sticker) behaviour.
    Emoji {
        emoji_chance: f64 = 0.6,
        max_reg_num: i64 = 200,
        do_replace: bool = true,
        check_interval: i64 = 120,
        steal_emoji: bool = true,
        content_filtration: bool = false,
        filtration_prompt: String = String::new(),
    }
}

section! {
    /// Tool use.
    Tool { enable_tool: bool = false }
}

section! {
    /// Voice.
    Voice { enable_asr: bool = false }
}

section! {
    /// Plugins.
    Plugin {
        enable_plugins: bool = true,
        tenant_mode_disable_plugins: bool = true,
        allowed_plugins: Vec<String> = Vec::new(),
        blocked_plugins: Vec<String> = Vec::new(),
    }
}

section! {
    /// Keyword and regex reactions.
    KeywordReaction {
        keyword_rules: Vec<Value> = Vec::new(),
        regex_rules: Vec<Value> = Vec::new(),
    }
}

section! {
    /// Relationships.
    Relationship { enable_relationship: bool = true }
}

section! {
    /// Message filtering on receive.
    MessageReceive {
        ban_words: Vec<String> = Vec::new(),
        ban_msgs_regex: Vec<String> = Vec::new(),
    }
}

section! {
    /// An LLM provider. `api_key` is a secret (see the module docs).
    ApiProvider {
        name: String = String::new(),
        client_type: String = "openai".into(),
        base_url: Option<String> = None,
        api_key: Option<String> = None,
        is_server_provider: bool = false,
    }
}

section! {
    /// A model offered by a provider (`api_provider` names one of `api_providers`).
    ModelInfo {
        name: String = String::new(),
        model_identifier: String = String::new(),
        api_provider: String = String::new(),
        temperature: Option<f64> = None,
        price_in: f64 = 0.0,
        price_out: f64 = 0.0,
        extra_params: Map<String, Value> = Map::new(),
    }
}

section! {
    /// LPMM knowledge base.
    LpmmKnowledge {
        enable: bool = false,
        lpmm_mode: String = String::new(),
        rag_synonym_search_top_k: i64 = 5,
        rag_synonym_threshold: f64 = 0.8,
        info_extraction_workers: i64 = 4,
        qa_relation_search_top_k: i64 = 10,
        qa_relation_threshold: f64 = 0.6,
        qa_paragraph_search_top_k: i64 = 5,
        qa_paragraph_node_weight: f64 = 0.5,
        qa_ent_filter_top_k: i64 = 10,
        qa_ppr_damping: f64 = 0.85,
        qa_res_top_k: i64 = 3,
        embedding_dimension: i64 = 768,
    }
}

section! {
    /// Dreaming (offline reflection).
    Dream {
        interval_minutes: i64 = 60,
        max_iterations: i64 = 3,
    }
}

section! {
    /// Jargon learning.
    Jargon { all_global: bool = false }
}

section! {
    /// Response post-processing.
    ResponsePostProcess { enable_response_post_process: bool = false }
}

section! {
    /// Simulated Chinese typos.
    ChineseTypo {
        enable: bool = false,
        error_rate: f64 = 0.0,
        min_freq: i64 = 0,
        tone_error_rate: f64 = 0.0,
        word_replace_rate: f64 = 0.0,
    }
}

section! {
    /// Splitting long responses.
    ResponseSplitter {
        enable: bool = false,
        max_length: i64 = 100,
        max_sentence_num: i64 = 5,
        enable_kaomoji_protection: bool = true,
        enable_overflow_return_all: bool = true,
    }
}

section! {
    /// Debug output switches.
    Debug {
        show_prompt: bool = false,
        show_replyer_prompt: bool = false,
        show_replyer_reasoning: bool = false,
        show_jargon_prompt: bool = false,
        show_memory_prompt: bool = false,
        show_planner_prompt: bool = false,
        show_lpmm_paragraph: bool = false,
    }
}

section! {
    /// Experimental features.
    Experimental {
        enable_friend_chat: bool = false,
        chat_prompts: Vec<Value> = Vec::new(),
    }
}

section! {
    /// maim_message transport. `auth_token` is a secret (see the module docs).
    MaimMessage {
        use_custom: bool = false,
        host: String = String::new(),
        port: i64 = 0,
        mode: String = String::new(),
        use_wss: bool = false,
        cert_file: String = String::new(),
        key_file: String = String::new(),
        auth_token: Vec<String> = Vec::new(),
    }
}

section! {
    /// Telemetry.
    Telemetry { enable: bool = true }
}

section! {
    /// One agent's whole configuration.
    AgentConfig {
        persona: Persona = Persona::default(),
        bot_overrides: BotOverrides = BotOverrides::default(),
        chat: Chat = Chat::default(),
        expression: Expression = Expression::default(),
        memory: Memory = Memory::default(),
        mood: Mood = Mood::default(),
        emoji: Emoji = Emoji::default(),
        tool: Tool = Tool::default(),
        voice: Voice = Voice::default(),
        plugin: Plugin = Plugin::default(),
        keyword_reaction: KeywordReaction = KeywordReaction::default(),
        relationship: Relationship = Relationship::default(),
        message_receive: MessageReceive = MessageReceive::default(),
        api_providers: Vec<ApiProvider> = Vec::new(),
        models: Vec<ModelInfo> = Vec::new(),
        model_task_config: Map<String, Value> = Map::new(),
        lpmm_knowledge: LpmmKnowledge = LpmmKnowledge::default(),
        dream: Dream = Dream::default(),
        jargon: Jargon = Jargon::default(),
        response_post_process: ResponsePostProcess = ResponsePostProcess::default(),
        chinese_typo: ChineseTypo = ChineseTypo::default(),
        response_splitter: ResponseSplitter = ResponseSplitter::default(),
        debug: Debug = Debug::default(),
        experimental: Experimental = Experimental::default(),
        maim_message: MaimMessage = MaimMessage::default(),
        telemetry: Telemetry = Telemetry::default(),
    }
}

impl AgentConfig {
    /// Checks what types alone cannot: provider and model names are present and unique,
    /// and every model names an existing provider.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for p in &self.api_providers {
            if p.name.trim().is_empty() {
                return Err("api_providers: every provider needs a name".into());
            }
            if !seen.insert(p.name.as_str()) {
                return Err(format!("api_providers: duplicate name {:?}", p.name));
            }
        }
        let mut models = std::collections::HashSet::new();
        for m in &self.models {
            if m.name.trim().is_empty() {
                return Err("models: every model needs a name".into());
            }
            if !models.insert(m.name.as_str()) {
                return Err(format!("models: duplicate name {:?}", m.name));
            }
            if !seen.contains(m.api_provider.as_str()) {
                return Err(format!(
                    "models.{}: api_provider {:?} is not one of api_providers",
                    m.name, m.api_provider
                ));
            }
        }
        Ok(())
    }
}

/// A configuration document as returned to callers: the version to send back with the
/// next update, and the configuration with secrets masked (or revealed on request).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigDocument {
    /// Optimistic-concurrency version; 0 when nothing was ever stored.
    pub version: i64,
    /// The configuration, as JSON with secret objects (see the module docs).
    pub config: Value,
}
