//! A message body as the catalog, the checks and the reports see it: JSON when the
//! payload parses as JSON, text otherwise. A leaf: it knows nothing of kinds or checks.

/// Most bytes of a non-JSON payload a [`Body::Text`] keeps.
pub const MAX_TEXT_BODY: usize = 16 << 20;

/// A received or sent message body, as the catalog and checks see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(serde_json::Value),
    Text(String),
}

impl Body {
    /// Interpret a payload: JSON when it parses as JSON (after Zabbix's own trimming of
    /// trailing whitespace), text otherwise.
    ///
    /// A text body keeps at most [`MAX_TEXT_BODY`] bytes of the payload: no Zabbix text
    /// message comes near it (item values are at most 64 KiB), and a copy of a 1 GiB
    /// payload of zeros would double what a hostile frame costs.
    pub fn from_payload(bytes: &[u8]) -> Body {
        let trimmed = trim_trailing_ws(bytes);
        if trimmed.first() == Some(&b'{') || trimmed.first() == Some(&b'[') {
            if let Ok(v) = serde_json::from_slice(trimmed) {
                return Body::Json(v);
            }
        }
        let kept = &bytes[..bytes.len().min(MAX_TEXT_BODY)];
        let mut text = String::from_utf8_lossy(kept).into_owned();
        if kept.len() < bytes.len() {
            text.push_str(&format!(
                "… (cut at {MAX_TEXT_BODY} of {} bytes)",
                bytes.len()
            ));
        }
        Body::Text(text)
    }

    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Body::Json(v) => Some(v),
            Body::Text(_) => None,
        }
    }
}

fn trim_trailing_ws(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b' ' | b'\r' | b'\n') {
        end -= 1;
    }
    &b[..end]
}
