//! Building what a step sends: body from a fixture or inline, templated with variables,
//! overridden with `set`/`remove`, checked against its kind's schema, then framed.

use super::context::ScenarioContext;
use crate::catalog::Body;
use crate::frame::{encode_frame, FrameOptions};
use crate::scenario::model::{FrameSpec, Message};
use crate::scenario::structure::decode_hex;
use serde_json::Value;

/// A message ready to be written.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Exactly the bytes to write (frame included, or raw bytes).
    pub bytes: Vec<u8>,
    /// The body for the transcript (`None` for raw bytes).
    pub body: Option<Body>,
    /// Frame flags written, if framed.
    pub flags: Option<u8>,
    /// Declared kind, if any.
    pub kind: Option<String>,
}

/// Build the bytes for `msg`. Errors are scenario errors (bad fixture, bad pointer,
/// unset variable, body that does not match its declared kind).
pub fn build(ctx: &ScenarioContext, msg: &Message) -> Result<Outgoing, String> {
    if let Some(hex) = &msg.raw {
        let bytes = decode_hex(&ctx.vars.expand_str(hex).map_err(|e| e.to_string())?)?;
        return Ok(Outgoing {
            bytes,
            body: None,
            flags: None,
            kind: msg.kind.clone(),
        });
    }
    let (body, fixture) = body_of(ctx, msg)?;
    let body = apply_overrides(ctx, msg, body)?;
    // A fixture named after a kind declares it (`kind:` may still say otherwise).
    let kind = msg
        .kind
        .clone()
        .or_else(|| fixture.filter(|name| ctx.names_kind(name)));
    if let (Some(kind), true) = (&kind, msg.check.unwrap_or(true)) {
        check_declared_kind(ctx, kind, &body)?;
    }
    let payload: Vec<u8> = match &body {
        Body::Json(v) => serde_json::to_vec(v).map_err(|e| e.to_string())?,
        Body::Text(t) => t.as_bytes().to_vec(),
    };
    let opts = frame_options(msg.frame.as_ref())?;
    let bytes = encode_frame(&payload, &opts);
    Ok(Outgoing {
        flags: bytes.get(4).copied(),
        bytes,
        body: Some(body),
        kind,
    })
}

/// The templated body of a `fixture`, `json` or `text` message, and the fixture's name
/// after expansion (it may declare the message's kind).
fn body_of(ctx: &ScenarioContext, msg: &Message) -> Result<(Body, Option<String>), String> {
    let expand_value = |v: &Value| ctx.vars.expand_value(v).map_err(|e| e.to_string());
    let expand_str = |t: &str| ctx.vars.expand_str(t).map_err(|e| e.to_string());
    if let Some(name) = &msg.fixture {
        let name = expand_str(name)?;
        crate::scenario::names::fixture_name(&name)?;
        let body = match load_fixture(ctx, &name)? {
            // Fixtures of text kinds (body: text) hold the payload as a JSON string; no
            // Zabbix JSON message is a bare string, so a string fixture is always text.
            Value::String(text) => Body::Text(expand_str(&text)?),
            value => Body::Json(expand_value(&value)?),
        };
        return Ok((body, Some(name)));
    }
    if let Some(json) = &msg.json {
        // A YAML string under `json:` is JSON text (handy for exact key order or for
        // deliberately invalid JSON: use `text:` for the latter).
        let value = match json {
            Value::String(s) => serde_json::from_str(s)
                .map_err(|e| format!("`json` string is not valid JSON: {e}"))?,
            other => other.clone(),
        };
        return Ok((Body::Json(expand_value(&value)?), None));
    }
    if let Some(text) = &msg.text {
        return Ok((Body::Text(expand_str(text)?), None));
    }
    Err("nothing to send: give one of fixture, json, text or raw".into())
}

/// `set` and `remove` on a JSON body (they do not apply to text).
fn apply_overrides(ctx: &ScenarioContext, msg: &Message, body: Body) -> Result<Body, String> {
    match body {
        Body::Json(mut value) => {
            for (pointer, v) in &msg.set {
                let v = ctx.vars.expand_value(v).map_err(|e| e.to_string())?;
                set_pointer(&mut value, &normalise_pointer(pointer), v)?;
            }
            for pointer in &msg.remove {
                remove_pointer(&mut value, &normalise_pointer(pointer))?;
            }
            Ok(Body::Json(value))
        }
        text => {
            if !msg.set.is_empty() || !msg.remove.is_empty() {
                return Err("`set`/`remove` apply only to JSON bodies".into());
            }
            Ok(text)
        }
    }
}

/// Our own message against the schema of the kind it declares (`kind` or
/// `family:kind`). Text kinds have schemas over the payload as a JSON string; text sent
/// under a JSON kind (deliberately invalid JSON) is not checked.
fn check_declared_kind(ctx: &ScenarioContext, kind: &str, body: &Body) -> Result<(), String> {
    match body {
        Body::Json(value) => ctx.check_own_message(kind, value),
        Body::Text(t) => {
            let at = ctx.kind_at(kind);
            let text_kind = ctx
                .catalog
                .kind(at.family, at.version, at.kind)
                .is_some_and(|k| k.body == crate::catalog::BodyType::Text);
            if text_kind {
                ctx.check_own_message(kind, &Value::String(t.clone()))
            } else {
                Ok(())
            }
        }
    }
}

/// Read `fixtures/<family>/<version>/<name>.json`.
fn load_fixture(ctx: &ScenarioContext, name: &str) -> Result<Value, String> {
    let path = ctx.catalog.fixture_path(&ctx.family, &ctx.version, name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read fixture {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("fixture {} is not valid JSON: {e}", path.display()))
}

fn frame_options(spec: Option<&FrameSpec>) -> Result<FrameOptions, String> {
    let Some(s) = spec else {
        return Ok(FrameOptions::default());
    };
    let magic = match &s.magic {
        None => None,
        Some(m) => {
            let b = m.as_bytes();
            if b.len() != 4 {
                return Err(format!("frame.magic must be 4 characters, got {m:?}"));
            }
            Some([b[0], b[1], b[2], b[3]])
        }
    };
    Ok(FrameOptions {
        compress: s.compressed,
        large: s.large,
        flags: s.flags,
        datalen: s.datalen,
        reserved: s.reserved,
        magic,
        trailing: match &s.trailing {
            Some(h) => decode_hex(h)?,
            None => Vec::new(),
        },
    })
}

/// `response` → `/response`; pointers pass through.
pub fn normalise_pointer(p: &str) -> String {
    if p.is_empty() || p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{}", p.replace('~', "~0").replace('/', "~1"))
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Set the value at `pointer`, creating missing object members along the way.
/// `-` as the last array token appends.
pub fn set_pointer(root: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        *root = value;
        return Ok(());
    }
    let tokens: Vec<String> = pointer[1..].split('/').map(unescape).collect();
    let mut cur = root;
    for (i, tok) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        cur = match cur {
            Value::Object(map) => {
                if last {
                    map.insert(tok.clone(), value);
                    return Ok(());
                }
                map.entry(tok.clone())
                    .or_insert(Value::Object(Default::default()))
            }
            Value::Array(arr) => {
                if last && tok == "-" {
                    arr.push(value);
                    return Ok(());
                }
                let idx: usize = tok
                    .parse()
                    .map_err(|_| format!("{pointer}: {tok:?} is not an array index"))?;
                let len = arr.len();
                let slot = arr.get_mut(idx).ok_or_else(|| {
                    format!("{pointer}: index {idx} out of range (array has {len})")
                })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            other => {
                return Err(format!(
                    "{pointer}: cannot descend into {} at {tok:?}",
                    type_name(other)
                ))
            }
        };
    }
    Ok(())
}

/// Remove the value at `pointer` (an error if it does not exist: a typo should not pass
/// silently).
pub fn remove_pointer(root: &mut Value, pointer: &str) -> Result<(), String> {
    let (parent, last) = match pointer.rfind('/') {
        Some(i) => (&pointer[..i], unescape(&pointer[i + 1..])),
        None => return Err(format!("cannot remove the whole body ({pointer:?})")),
    };
    let target = root
        .pointer_mut(parent)
        .ok_or_else(|| format!("remove {pointer}: {parent:?} does not exist"))?;
    let removed = match target {
        Value::Object(m) => m.shift_remove(&last).is_some(),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    };
    if removed {
        Ok(())
    } else {
        Err(format!("remove {pointer}: no such member"))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_and_remove() {
        let mut v = json!({"a": {"b": [1, 2]}});
        set_pointer(&mut v, "/a/b/1", json!(5)).unwrap();
        set_pointer(&mut v, "/a/b/-", json!(6)).unwrap();
        set_pointer(&mut v, "/x/y", json!("z")).unwrap();
        assert_eq!(v, json!({"a": {"b": [1, 5, 6]}, "x": {"y": "z"}}));
        remove_pointer(&mut v, "/a/b/0").unwrap();
        remove_pointer(&mut v, "/x").unwrap();
        assert_eq!(v, json!({"a": {"b": [5, 6]}}));
        assert!(remove_pointer(&mut v, "/nope").is_err());
        assert!(set_pointer(&mut v, "/a/b/9", json!(1)).is_err());
    }

    #[test]
    fn pointers() {
        assert_eq!(normalise_pointer("response"), "/response");
        assert_eq!(normalise_pointer("history data"), "/history data");
        assert_eq!(normalise_pointer("/a/b"), "/a/b");
    }
}
