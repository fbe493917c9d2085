//! `zbx-conform validate`: check one message against the schema of its kind. Without
//! `--kind`, the kind is recognised the way the runner recognises what a peer sends, so
//! a message captured from a real daemon can be checked without knowing its name.

use super::EXIT_USAGE;
use crate::catalog::{Body, BodyType, Catalog, KindEntry};
use crate::check::SchemaCache;
use crate::discover::protocol_for;
use serde_json::Value;
use std::path::Path;

/// What the user said about the message.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub family: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub from: Option<String>,
}

/// The message as read: its body, and whether it came in a ZBXD frame.
struct Message {
    body: Body,
    framed: bool,
}

/// Run the command; returns the exit code (0 valid, 1 invalid or not recognised, 2
/// usage).
pub fn run(catalog: &Catalog, want: &Wanted, file: &Path) -> i32 {
    if let Err(e) = check_names(catalog, want) {
        complain!("error: {e}");
        return EXIT_USAGE;
    }
    let msg = match read(file) {
        Ok(m) => m,
        Err(Read::Usage(e)) => {
            complain!("error: {e}");
            return EXIT_USAGE;
        }
        Err(Read::Invalid(e)) => {
            say!("FAIL {}: {e}", file.display());
            return 1;
        }
    };
    let schemas = SchemaCache::new();
    match &want.kind {
        Some(kind) => {
            let (Some(family), Some(version)) = (&want.family, &want.version) else {
                complain!("error: --kind needs --family and --version");
                return EXIT_USAGE;
            };
            let Some(entry) = catalog.kind(family, version, kind) else {
                complain!(
                    "error: kind `{kind}` does not exist in {family} {version} (see `zbx-conform catalog`)"
                );
                return EXIT_USAGE;
            };
            let candidate = Candidate {
                family: family.clone(),
                version: version.clone(),
                kind: entry,
            };
            report(catalog, &schemas, file, &msg, &[candidate], false)
        }
        None => recognise_and_report(catalog, &schemas, want, file, &msg),
    }
}

/// A kind the message may be.
struct Candidate<'a> {
    family: String,
    version: String,
    kind: &'a KindEntry,
}

fn recognise_and_report(
    catalog: &Catalog,
    schemas: &SchemaCache,
    want: &Wanted,
    file: &Path,
    msg: &Message,
) -> i32 {
    let version = want
        .version
        .clone()
        .or_else(|| own_version(catalog, want, &msg.body));
    let found = catalog.recognise(
        &msg.body,
        want.family.as_deref(),
        version.as_deref(),
        want.from.as_deref(),
    );
    if found.is_empty() {
        say!(
            "FAIL {}: not recognised as any message kind ({})",
            file.display(),
            scope(want, version.as_deref())
        );
        return 1;
    }
    let candidates: Vec<Candidate> = found
        .into_iter()
        .map(|r| Candidate {
            family: r.family,
            version: r.version,
            kind: r.kind,
        })
        .collect();
    report(catalog, schemas, file, msg, &candidates, true)
}

/// The catalog version named by the message's own `version` field (`6.0.14` → 6.0),
/// when some family in scope knows it.
fn own_version(catalog: &Catalog, want: &Wanted, body: &Body) -> Option<String> {
    let named = body.as_json()?.get("version")?.as_str()?;
    let known: Vec<String> = match &want.family {
        Some(f) => catalog.versions(f),
        None => {
            let mut all: Vec<String> = catalog
                .families()
                .iter()
                .flat_map(|f| catalog.versions(&f.family))
                .collect();
            all.sort();
            all.dedup();
            all
        }
    };
    protocol_for(&known, named).map(|r| r.protocol)
}

fn scope(want: &Wanted, version: Option<&str>) -> String {
    format!(
        "family {}, version {}, from {}",
        want.family.as_deref().unwrap_or("any"),
        version.unwrap_or("any"),
        want.from.as_deref().unwrap_or("any side")
    )
}

/// Validate against each candidate; valid when one of them accepts the message.
fn report(
    catalog: &Catalog,
    schemas: &SchemaCache,
    file: &Path,
    msg: &Message,
    candidates: &[Candidate],
    recognised: bool,
) -> i32 {
    let how = if recognised { ", recognised" } else { "" };
    let mut results = Vec::new();
    for c in candidates {
        let at = crate::check::message::KindAt {
            family: &c.family,
            version: &c.version,
            kind: &c.kind.kind,
        };
        let body = as_kind_sees_it(&msg.body, c.kind.body, msg.framed);
        match crate::check::message::validate_message(catalog, schemas, at, &body) {
            Ok(v) => results.push((c, v)),
            Err(e) => {
                complain!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let valid: Vec<&Candidate> = results
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(c, _)| *c)
        .collect();
    if !valid.is_empty() {
        for c in valid {
            say!(
                "ok   {} is a valid `{}` ({} {}{how})",
                file.display(),
                c.kind.kind,
                c.family,
                c.version
            );
        }
        return 0;
    }
    // Closest first: the candidate with the fewest violations in full, the rest by name.
    results.sort_by_key(|(_, v)| v.len());
    let (best, violations) = &results[0];
    say!(
        "FAIL {} is not a valid `{}` ({} {}{how}):",
        file.display(),
        best.kind.kind,
        best.family,
        best.version
    );
    for x in violations {
        let at = if x.instance_path.is_empty() {
            "/"
        } else {
            &x.instance_path
        };
        say!("  at {at}: {} (schema {})", x.message, x.schema_path);
    }
    if results.len() > 1 {
        let others: Vec<String> = results[1..]
            .iter()
            .map(|(c, v)| {
                format!(
                    "`{}` ({} {}): {} problems",
                    c.kind.kind,
                    c.family,
                    c.version,
                    v.len()
                )
            })
            .collect();
        say!("  also not a valid {}", others.join(", "));
    }
    1
}

/// The body as a kind sees it: the payload of a framed text kind is text even when it
/// happens to parse as JSON (an agent's value `[1,2]`).
fn as_kind_sees_it(body: &Body, kind_body: BodyType, framed: bool) -> std::borrow::Cow<'_, Body> {
    match (body, kind_body) {
        (Body::Json(v), BodyType::Text) if framed => {
            std::borrow::Cow::Owned(Body::Text(v.to_string()))
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}

enum Read {
    Usage(String),
    Invalid(String),
}

/// Read a file (or stdin): a ZBXD frame, a JSON document, or a JSON string holding a
/// text payload (as text fixtures are stored).
fn read(file: &Path) -> Result<Message, Read> {
    let bytes = if file == Path::new("-") {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| Read::Usage(format!("cannot read stdin: {e}")))?;
        b
    } else {
        std::fs::read(file)
            .map_err(|e| Read::Usage(format!("cannot read {}: {e}", file.display())))?
    };
    if bytes.starts_with(b"ZBXD") {
        let frame = crate::frame::ZbxdCodec::default()
            .decode_exact(&bytes)
            .map_err(|e| Read::Invalid(format!("bad frame: {e}")))?;
        return Ok(Message {
            body: Body::from_payload(&frame.payload),
            framed: true,
        });
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::String(t)) => Ok(Message {
            body: Body::Text(t),
            framed: false,
        }),
        Ok(v) => Ok(Message {
            body: Body::Json(v),
            framed: false,
        }),
        Err(e) => Err(Read::Invalid(format!("not valid JSON: {e}"))),
    }
}

/// Family, version and side names must exist, or the answer would be a silent "not
/// recognised".
fn check_names(catalog: &Catalog, want: &Wanted) -> Result<(), String> {
    if let Some(f) = &want.family {
        if catalog.family(f).is_none() {
            let known: Vec<&str> = catalog
                .families()
                .iter()
                .map(|f| f.family.as_str())
                .collect();
            return Err(format!(
                "--family {f}: no such family (known: {})",
                known.join(", ")
            ));
        }
    }
    if let Some(v) = &want.version {
        let known = match &want.family {
            Some(f) => catalog.versions(f),
            None => catalog
                .families()
                .iter()
                .flat_map(|f| catalog.versions(&f.family))
                .collect(),
        };
        if !known.contains(v) {
            let mut known = known;
            known.sort();
            known.dedup();
            return Err(format!(
                "--version {v}: not in the catalog (known: {})",
                known.join(", ")
            ));
        }
    }
    if let Some(side) = &want.from {
        const SIDES: [&str; 5] = ["server", "proxy", "agent", "sender", "plugin"];
        if !SIDES.contains(&side.as_str()) {
            return Err(format!(
                "--from {side}: expected one of {}",
                SIDES.join(", ")
            ));
        }
    }
    Ok(())
}
