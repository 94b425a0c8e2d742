//! Agent configuration as one typed document per agent.
//!
//! Every section of the original `AgentConfigManager` is a struct here whose [`Default`]
//! is the single definition of its defaults. The document is stored as one JSON row per
//! agent with a version; updates are merge patches applied in one transaction (see
//! [`crate::repo::Configs`]).
//!
//! Secrets (provider `api_key`, `maim_message.auth_token`) are stored as values but are
//! never read back unmasked unless the caller asks. In documents they appear as objects:
//! masked `{"set": true, "hint": "…b7c1", "keep": true}`, revealed
//! `{"set": true, "value": "sk-…"}`. Writes take `{"value": …}`, `{"keep": true}` or
//! `{"clear": true}`; there is no magic mask string, and a masked document sent back
//! unchanged keeps every secret.

mod doc;
mod patch;

pub use doc::*;
pub(crate) use patch::{apply_patch, view};
