//! Merge-patch application and secret masking on configuration documents.

use super::doc::AgentConfig;
use serde_json::{Map, Value, json};

/// Top-level keys that remove list entries by name (explicit deletion; nothing is deleted
/// because an update merely left it out).
const REMOVE_PROVIDERS: &str = "remove_api_providers";
const REMOVE_MODELS: &str = "remove_models";

enum SecretInput {
    Keep,
    Clear,
    Set(Value),
}

fn secret_input(path: &str, v: &Value, want_list: bool) -> Result<SecretInput, String> {
    let Some(obj) = v.as_object() else {
        return Err(format!(
            "{path}: a secret is written as {{\"value\": …}}, {{\"keep\": true}} or {{\"clear\": true}}"
        ));
    };
    for k in obj.keys() {
        if !["value", "keep", "clear", "set", "hint", "count"].contains(&k.as_str()) {
            return Err(format!("{path}: unknown secret field {k:?}"));
        }
    }
    if let Some(value) = obj.get("value") {
        let ok = if want_list {
            value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string))
        } else {
            value.is_string()
        };
        if !ok {
            let want = if want_list {
                "a list of strings"
            } else {
                "a string"
            };
            return Err(format!("{path}.value must be {want}"));
        }
        return Ok(SecretInput::Set(value.clone()));
    }
    if obj.get("keep") == Some(&Value::Bool(true)) {
        return Ok(SecretInput::Keep);
    }
    if obj.get("clear") == Some(&Value::Bool(true)) {
        return Ok(SecretInput::Clear);
    }
    Err(format!(
        "{path}: a secret needs \"value\", \"keep\": true or \"clear\": true"
    ))
}

fn apply_secret(target: &mut Map<String, Value>, key: &str, input: SecretInput, empty: Value) {
    match input {
        SecretInput::Keep => {}
        SecretInput::Clear => {
            target.insert(key.to_owned(), empty);
        }
        SecretInput::Set(v) => {
            target.insert(key.to_owned(), v);
        }
    }
}

/// RFC 7386-style merge: objects merge recursively, `null` removes a key (so the typed
/// document falls back to that field's default), anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if let Some(existing) =
                    t.get_mut(k).filter(|e| e.is_object() && v.is_object())
                {
                    merge(existing, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Merges a list of objects keyed by `name`: entries named in the patch are merged into
/// (or appended to) the stored list; entries not named stay as they are.
fn merge_named_list(
    path: &str,
    stored: &mut Vec<Value>,
    patch: &Value,
    secret_key: Option<&str>,
) -> Result<(), String> {
    let items = patch
        .as_array()
        .ok_or_else(|| format!("{path} must be a list of objects with a name"))?;
    for item in items {
        let obj = item
            .as_object()
            .ok_or_else(|| format!("{path}: every entry must be an object"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{path}: every entry needs a string \"name\""))?;
        let mut plain = obj.clone();
        let secret = match secret_key.and_then(|k| plain.remove(k).map(|v| (k, v))) {
            Some((k, v)) => Some((k, secret_input(&format!("{path}.{name}.{k}"), &v, false)?)),
            None => None,
        };
        let slot = match stored
            .iter()
            .position(|e| e.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(i) => &mut stored[i],
            None => {
                stored.push(json!({}));
                let last = stored.len() - 1;
                &mut stored[last]
            }
        };
        merge(slot, &Value::Object(plain));
        if let (Some((k, input)), Some(map)) = (secret, slot.as_object_mut()) {
            apply_secret(map, k, input, Value::Null);
        }
    }
    Ok(())
}

fn remove_named(path: &str, stored: &mut Vec<Value>, names: &Value) -> Result<(), String> {
    let names: Vec<&str> = names
        .as_array()
        .and_then(|a| a.iter().map(Value::as_str).collect())
        .ok_or_else(|| format!("{path} must be a list of names"))?;
    stored.retain(|e| {
        !e.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| names.contains(&n))
    });
    Ok(())
}

fn list_mut<'a>(doc: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = doc.entry(key.to_owned()).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    match slot {
        Value::Array(a) => a,
        // Just made sure it is an array.
        _ => unreachable!("slot was set to an array above"),
    }
}

/// Applies `patch` to the stored (unmasked) document and returns the validated result.
pub(crate) fn apply_patch(stored: &Value, patch: &Value) -> Result<AgentConfig, String> {
    let patch = patch
        .as_object()
        .ok_or_else(|| "a configuration update must be a JSON object".to_string())?;
    let mut doc = match stored {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        match key.as_str() {
            "api_providers" => {
                merge_named_list(key, list_mut(&mut doc, key), value, Some("api_key"))?
            }
            "models" => merge_named_list(key, list_mut(&mut doc, key), value, None)?,
            REMOVE_PROVIDERS => remove_named(key, list_mut(&mut doc, "api_providers"), value)?,
            REMOVE_MODELS => remove_named(key, list_mut(&mut doc, "models"), value)?,
            "maim_message" if value.is_object() => {
                let mut plain = value.as_object().cloned().unwrap_or_default();
                let token = plain.remove("auth_token");
                let section = doc.entry(key.clone()).or_insert_with(|| json!({}));
                merge(section, &Value::Object(plain));
                if let (Some(t), Some(map)) = (token, section.as_object_mut()) {
                    let input = secret_input("maim_message.auth_token", &t, true)?;
                    apply_secret(map, "auth_token", input, json!([]));
                }
            }
            _ if value.is_null() => {
                doc.remove(key);
            }
            _ => {
                let slot = doc.entry(key.clone()).or_insert(Value::Null);
                if slot.is_object() && value.is_object() {
                    merge(slot, value);
                } else {
                    *slot = value.clone();
                }
            }
        }
    }
    let value = Value::Object(doc);
    let cfg: AgentConfig = serde_path_to_error::deserialize(&value)
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    cfg.validate()?;
    Ok(cfg)
}

fn hint(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        "…".into()
    } else {
        let tail: String = secret.chars().skip(n - 4).collect();
        format!("…{tail}")
    }
}

fn secret_view(value: Option<&Value>, reveal: bool) -> Value {
    let set = match value {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    match (reveal, value) {
        (true, Some(v)) if set => json!({"set": true, "value": v}),
        (true, _) => json!({"set": false, "value": null}),
        (false, Some(Value::String(s))) if set => {
            json!({"set": true, "hint": hint(s), "keep": true})
        }
        (false, Some(Value::Array(a))) if set => {
            json!({"set": true, "count": a.len(), "keep": true})
        }
        (false, _) => json!({"set": false, "keep": true}),
    }
}

/// The document as callers see it: secrets masked unless `reveal`.
pub(crate) fn view(cfg: &AgentConfig, reveal: bool) -> Value {
    let mut v = serde_json::to_value(cfg).unwrap_or_else(|_| json!({}));
    if let Some(providers) = v.get_mut("api_providers").and_then(Value::as_array_mut) {
        for p in providers {
            if let Some(obj) = p.as_object_mut() {
                let shown = secret_view(obj.get("api_key"), reveal);
                obj.insert("api_key".into(), shown);
            }
        }
    }
    if let Some(mm) = v.get_mut("maim_message").and_then(Value::as_object_mut) {
        let shown = secret_view(mm.get("auth_token"), reveal);
        mm.insert("auth_token".into(), shown);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        let mut c = AgentConfig::default();
        c.chat.talk_value = 0.5;
        c.api_providers.push(super::super::ApiProvider {
            name: "p".into(),
            api_key: Some("sk-secret-0123456789".into()),
            ..Default::default()
        });
        serde_json::to_value(c).unwrap()
    }

    #[test]
    fn partial_update_touches_only_named_fields() {
        let cfg = apply_patch(&base(), &json!({"chat": {"max_context_size": 40}})).unwrap();
        assert_eq!(cfg.chat.max_context_size, 40);
        assert_eq!(cfg.chat.talk_value, 0.5);
        assert_eq!(
            cfg.api_providers[0].api_key.as_deref(),
            Some("sk-secret-0123456789")
        );
    }

    #[test]
    fn masked_view_round_trips_without_loss() {
        let stored = base();
        let cfg: AgentConfig = serde_json::from_value(stored.clone()).unwrap();
        let masked = view(&cfg, false);
        assert!(!masked.to_string().contains("sk-secret"));
        let again = apply_patch(&stored, &masked).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn plain_string_secret_is_refused() {
        let err = apply_patch(
            &base(),
            &json!({"api_providers": [{"name": "p", "api_key": "********"}]}),
        );
        assert!(err.is_err());
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = apply_patch(&base(), &json!({"chat": {"max_context_size": "big"}})).unwrap_err();
        assert!(err.contains("chat.max_context_size"), "{err}");
    }
}
