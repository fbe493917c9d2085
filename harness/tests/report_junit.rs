//! JUnit XML: structure, failure bodies, transcripts, well-formedness with hostile bytes,
//! and no secret in the file.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use zbx_conform::report::junit::{cdata_safe, write, write_to, xml_safe};
use zbx_conform::runner::result::*;

const SECRET: &str = "PSK-0123-SECRET-abcdef";

/// A minimal XML 1.0 reader, strict enough to reject what CI parsers reject: forbidden
/// characters, unbalanced tags, raw `<`/`&` in text, unquoted or unescaped attributes.
/// Returns the elements in document order with their attributes and text (CDATA decoded).
#[derive(Debug, Clone, Default)]
struct Element {
    name: String,
    attrs: HashMap<String, String>,
    text: String,
    parent: Option<usize>,
}

fn parse(xml: &str) -> Result<Vec<Element>, String> {
    for (i, c) in xml.char_indices() {
        let ok = matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{d7ff}').contains(&c)
            || ('\u{e000}'..='\u{fffd}').contains(&c)
            || ('\u{10000}'..='\u{10ffff}').contains(&c);
        if !ok {
            return Err(format!(
                "forbidden character U+{:04X} at byte {i}",
                c as u32
            ));
        }
    }
    let mut elems: Vec<Element> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut rest = xml;
    let mut seen_root = false;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unterminated declaration")?;
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").ok_or("unterminated CDATA")?;
            let top = *stack.last().ok_or("CDATA outside the root")?;
            elems[top].text.push_str(&r[..end]);
            rest = &r[end + 3..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').ok_or("unterminated end tag")?;
            let name = r[..end].trim();
            let top = stack.pop().ok_or("end tag without start")?;
            if elems[top].name != name {
                return Err(format!("</{name}> closes <{}>", elems[top].name));
            }
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('<') {
            let end = find_tag_end(r)?;
            let (inner, empty) = match r[..end].strip_suffix('/') {
                Some(i) => (i, true),
                None => (&r[..end], false),
            };
            let (name, attrs) = parse_tag(inner)?;
            if stack.is_empty() && seen_root {
                return Err("second root element".into());
            }
            seen_root = true;
            elems.push(Element {
                name,
                attrs,
                text: String::new(),
                parent: stack.last().copied(),
            });
            if !empty {
                stack.push(elems.len() - 1);
            }
            rest = &r[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            if text.contains("]]>") {
                return Err("']]>' in text".into());
            }
            match stack.last() {
                Some(&top) => elems[top].text.push_str(&unescape(text)?),
                None if text.trim().is_empty() => {}
                None => return Err(format!("text outside the root: {text:?}")),
            }
            rest = &rest[end..];
        }
    }
    if !stack.is_empty() {
        return Err("unclosed elements".into());
    }
    Ok(elems)
}

fn find_tag_end(r: &str) -> Result<usize, String> {
    let mut quote = None;
    for (i, c) in r.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Ok(i),
            (None, '<') => return Err("'<' inside a tag".into()),
            _ => {}
        }
    }
    Err("unterminated tag".into())
}

fn parse_tag(inner: &str) -> Result<(String, HashMap<String, String>), String> {
    let inner = inner.trim();
    let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
    let name = inner[..name_end].to_string();
    let mut attrs = HashMap::new();
    let mut rest = inner[name_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or(format!("attribute without value in <{name}>"))?;
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let q = after.chars().next().ok_or("missing attribute value")?;
        if q != '"' && q != '\'' {
            return Err(format!("unquoted attribute {key}"));
        }
        let close = after[1..].find(q).ok_or("unterminated attribute")?;
        let raw = &after[1..1 + close];
        if raw.contains('<') {
            return Err(format!("'<' in attribute {key}"));
        }
        if attrs.insert(key.clone(), unescape(raw)?).is_some() {
            return Err(format!("duplicate attribute {key}"));
        }
        rest = after[close + 2..].trim_start();
    }
    Ok((name, attrs))
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').ok_or("unterminated entity")?;
        let ent = &rest[i + 1..i + end];
        match ent {
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "amp" => out.push('&'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            e if e.starts_with("#x") => {
                let n = u32::from_str_radix(&e[2..], 16).map_err(|_| "bad char ref")?;
                out.push(char::from_u32(n).ok_or("bad char ref")?);
            }
            e if e.starts_with('#') => {
                let n: u32 = e[1..].parse().map_err(|_| "bad char ref")?;
                out.push(char::from_u32(n).ok_or("bad char ref")?);
            }
            other => return Err(format!("unknown entity &{other};")),
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------------------

fn failure(check: CheckKind, expected: &str, detail: &str, received: Option<&str>) -> CheckFailure {
    CheckFailure {
        check,
        expected: expected.into(),
        detail: detail.into(),
        path: Some("/response".into()),
        received: received.map(str::to_string),
    }
}

fn step(
    index: &str,
    name: Option<&str>,
    outcome: Outcome,
    failures: Vec<CheckFailure>,
) -> StepResult {
    StepResult {
        requirement: Vec::new(),
        sent: None,
        index: index.into(),
        action: "exchange".into(),
        name: name.map(str::to_string),
        line: 14,
        outcome,
        failures,
        duration: Duration::from_millis(7),
    }
}

fn run() -> RunResult {
    let mut failed = support::scenario_result("config rejected", "server-proxy", Outcome::Failed);
    failed.steps = vec![
        step("1", None, Outcome::Passed, vec![]),
        step(
            "3",
            Some("push config"),
            Outcome::Failed,
            vec![
                failure(
                    CheckKind::Match,
                    r#"/response == "success""#,
                    r#"got "failed""#,
                    Some(&format!(
                        r#"{{"response":"failed","info":"a]]>b <&> \u0001","hosts":{{"fields":["hostid","tls_psk"],"data":[[1,"{SECRET}"]]}}}}"#
                    )),
                ),
                failure(
                    CheckKind::Schema,
                    "schema ok",
                    "\"version\" is a required property",
                    None,
                ),
            ],
        ),
    ];
    failed.transcript = vec![
        TranscriptEntry {
            at: Duration::from_millis(123),
            direction: Direction::Sent,
            kind: Some("proxy-config.request".into()),
            flags: Some(0x03),
            body: format!(
                r#"{{"request":"proxy config","data":{{"x":{{"tls_psk":"{SECRET}"}}}}}}"#
            ),
            step: None,
        },
        TranscriptEntry {
            at: Duration::from_millis(2045),
            direction: Direction::Received,
            kind: None,
            flags: Some(0x01),
            body: "ZBX_NOTSUPPORTED\0Unknown metric.".into(),
            step: None,
        },
    ];
    failed.peer_log = Some(format!("proxy started\nusing tls_psk={SECRET}\n\x07bell"));

    let mut errored = support::scenario_result(
        "bad fixture",
        "server-proxy",
        Outcome::Error("no such fixture".into()),
    );
    errored.steps = vec![step(
        "2",
        None,
        Outcome::Error("no such fixture: y.json".into()),
        vec![],
    )];

    RunResult {
        scenarios: vec![
            support::scenario_result("config ok", "server-proxy", Outcome::Passed),
            failed,
            errored,
            support::scenario_result(
                "agent down",
                "agent",
                Outcome::Unreachable("connection refused".into()),
            ),
            support::scenario_result(
                "only 7.0",
                "agent",
                Outcome::Skipped("version 6.0 not selected".into()),
            ),
        ],
        duration: Duration::from_secs(3),
        started_at: None,
        memory: None,
    }
}

fn xml_of(run: &RunResult) -> String {
    let mut buf = Vec::new();
    write_to(run, &mut buf).expect("write xml");
    String::from_utf8(buf).expect("utf-8")
}

fn testcase<'a>(elems: &'a [Element], name: &str) -> (usize, &'a Element) {
    elems
        .iter()
        .enumerate()
        .find(|(_, e)| {
            e.name == "testcase" && e.attrs.get("name").map(String::as_str) == Some(name)
        })
        .unwrap_or_else(|| panic!("no testcase {name}"))
}

fn child<'a>(elems: &'a [Element], parent: usize, name: &str) -> Option<&'a Element> {
    elems
        .iter()
        .find(|e| e.parent == Some(parent) && e.name == name)
}

#[test]
fn well_formed_and_structured() {
    let xml = xml_of(&run());
    let elems = parse(&xml).unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}"));
    let suites: Vec<&str> = elems
        .iter()
        .filter(|e| e.name == "testsuite")
        .filter_map(|e| e.attrs.get("name").map(String::as_str))
        .collect();
    assert_eq!(
        suites,
        vec!["server-proxy", "agent"],
        "one suite per family"
    );
    let names: Vec<&str> = elems
        .iter()
        .filter(|e| e.name == "testcase")
        .filter_map(|e| e.attrs.get("name").map(String::as_str))
        .collect();
    assert_eq!(
        names,
        vec![
            "config ok [6.0]",
            "config rejected [6.0]",
            "bad fixture [6.0]",
            "agent down [6.0]",
            "only 7.0 [6.0]"
        ]
    );

    let (i, ok) = testcase(&elems, "config ok [6.0]");
    assert_eq!(
        ok.attrs.get("classname").map(String::as_str),
        Some("server-proxy.server")
    );
    let time: Option<f64> = ok.attrs.get("time").and_then(|t| t.parse().ok());
    assert_eq!(time, Some(1.5));
    assert!(child(&elems, i, "failure").is_none() && child(&elems, i, "error").is_none());
}

#[test]
fn failure_has_type_message_and_full_body() {
    let elems = parse(&xml_of(&run())).expect("well-formed");
    let (i, _) = testcase(&elems, "config rejected [6.0]");
    let f = child(&elems, i, "failure").expect("failure element");
    assert_eq!(f.attrs.get("type").map(String::as_str), Some("match"));
    let msg = f.attrs.get("message").expect("message");
    assert!(!msg.contains('\n'), "one-line message: {msg:?}");
    assert!(
        msg.contains(r#"/response == "success""#) && msg.contains("(+1 more)"),
        "{msg}"
    );
    let body = &f.text;
    assert!(
        body.contains(
            r#"step 3 (exchange "push config") at scenarios/server-proxy/config rejected.yaml:14"#
        ),
        "{body}"
    );
    assert!(body.contains(r#"got "failed""#), "{body}");
    assert!(body.contains("at: /response"), "{body}");
    assert!(body.contains("schema: expected schema ok"), "{body}");
    assert!(
        body.contains("\"version\" is a required property"),
        "{body}"
    );
    // `]]>` and markup in a received body survive the CDATA round trip unchanged.
    assert!(body.contains(r#"a]]>b <&> \u0001"#), "{body}");
    assert!(
        !body.contains("step 1 "),
        "passing steps are not listed: {body}"
    );
}

#[test]
fn transcript_and_peer_log() {
    let elems = parse(&xml_of(&run())).expect("well-formed");
    let (i, _) = testcase(&elems, "config rejected [6.0]");
    let out = &child(&elems, i, "system-out").expect("system-out").text;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(
            "+0.123s >> proxy-config.request [flags 0x03] {\"request\":\"proxy config\""
        ),
        "{out}"
    );
    // The NUL of ZBX_NOTSUPPORTED is shown, not dropped or written raw.
    assert_eq!(
        lines[1],
        r"+2.045s << [flags 0x01] ZBX_NOTSUPPORTED\x00Unknown metric."
    );
    let err = &child(&elems, i, "system-err").expect("system-err").text;
    assert!(
        err.contains("proxy started") && err.contains(r"\x07bell"),
        "{err}"
    );
}

#[test]
fn error_unreachable_and_skipped() {
    let elems = parse(&xml_of(&run())).expect("well-formed");
    let (i, _) = testcase(&elems, "bad fixture [6.0]");
    let e = child(&elems, i, "error").expect("error");
    assert_eq!(e.attrs.get("type").map(String::as_str), Some("error"));
    assert_eq!(
        e.attrs.get("message").map(String::as_str),
        Some("no such fixture")
    );
    assert!(e.text.contains("no such fixture: y.json"), "{}", e.text);

    let (i, _) = testcase(&elems, "agent down [6.0]");
    let e = child(&elems, i, "error").expect("error");
    assert_eq!(e.attrs.get("type").map(String::as_str), Some("unreachable"));
    assert_eq!(
        e.attrs.get("message").map(String::as_str),
        Some("connection refused")
    );

    let (i, _) = testcase(&elems, "only 7.0 [6.0]");
    let s = child(&elems, i, "skipped").expect("skipped");
    assert_eq!(
        s.attrs.get("message").map(String::as_str),
        Some("version 6.0 not selected")
    );
}

#[test]
fn no_secret_anywhere() {
    let xml = xml_of(&run());
    assert!(
        run()
            .scenarios
            .iter()
            .any(|s| format!("{s:?}").contains(SECRET)),
        "fixture has the secret"
    );
    assert!(!xml.contains(SECRET), "secret leaked into JUnit XML");
    assert!(xml.contains("[redacted]"));
}

#[test]
fn hostile_names_and_messages_stay_well_formed() {
    let mut s = support::scenario_result("we<ird> & \"name\"\0", "fam\u{1b}ily", Outcome::Failed);
    s.steps = vec![step(
        "1",
        Some("x]]>y"),
        Outcome::Failed,
        vec![failure(
            CheckKind::Frame,
            "magic ZBXD",
            "got \u{0}\u{1}\u{2}\u{ffff}",
            None,
        )],
    )];
    let r = RunResult {
        scenarios: vec![s],
        duration: Duration::ZERO,
        started_at: None,
        memory: None,
    };
    let xml = xml_of(&r);
    let elems = parse(&xml).unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}"));
    let tc = elems
        .iter()
        .find(|e| e.name == "testcase")
        .expect("testcase");
    assert_eq!(
        tc.attrs.get("name").map(String::as_str),
        Some("we<ird> & \"name\"\\x00 [6.0]")
    );
    let f = elems.iter().find(|e| e.name == "failure").expect("failure");
    assert!(f.text.contains(r"got \x00\x01\x02\u{ffff}"), "{}", f.text);
    assert!(f.text.contains(r#""x]]>y""#), "{}", f.text);
}

#[test]
fn sanitizers() {
    assert_eq!(xml_safe("a\0b\tc\nd\re"), "a\\x00b\tc\nd\\re");
    assert_eq!(cdata_safe("a]]>b"), "a]]]]><![CDATA[>b");
    assert_eq!(xml_safe("a]]>b"), "a]]>b");
}

#[test]
fn write_creates_parent_dirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reports/junit.xml");
    write(&run(), &path).expect("write");
    let text = std::fs::read_to_string(&path).expect("read back");
    assert!(parse(&text).is_ok());
    assert!(text.contains("config rejected [6.0]"));
}

#[test]
fn checker_rejects_bad_xml() {
    // The test's XML checker must be able to fail, or the tests above prove nothing.
    assert!(parse("<a>\0</a>").is_err());
    assert!(parse("<a><b></a>").is_err());
    assert!(parse("<a>x & y</a>").is_err());
    assert!(parse("<a><![CDATA[x]]>]]></a>").is_err());
    assert_eq!(
        parse("<a><![CDATA[x]]]]><![CDATA[>]]></a>").map(|e| e[0].text.clone()),
        Ok("x]]>".to_string())
    );
    assert!(parse("<a x=1/>").is_err());
}
