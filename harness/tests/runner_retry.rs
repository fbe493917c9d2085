//! `retry` on exchange and accept steps, and `accept` with `others: skip` but no
//! `expect.kind`, against small in-test peers whose answers change over time: a step
//! passes once the data arrives, fails when it never does, and a message that breaks its
//! schema fails at once however long the step may retry.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::runner::{CheckKind, Direction, Outcome, RunOptions, RunResult};
use zbx_conform::transport::{connect_tcp, Connection};

const SESSION: &str = "0123456789abcdef0123456789abcdef";

/// A passive-proxy stand-in: the n-th `proxy data` answer (from 0) is `answer(n)`; it
/// counts the acknowledgements it gets.
struct FakePassive {
    addr: String,
    polls: Arc<AtomicUsize>,
    acks: Arc<AtomicUsize>,
}

async fn fake_passive(answer: fn(usize) -> Value) -> FakePassive {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let polls = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(AtomicUsize::new(0));
    let (p, a) = (polls.clone(), acks.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let mut c = Connection::new(s, ZbxdCodec::default(), "harness");
            if c.read_frame(Duration::from_secs(5))
                .await
                .ok()
                .flatten()
                .is_none()
            {
                continue;
            }
            let n = p.fetch_add(1, Ordering::SeqCst);
            let body = answer(n).to_string();
            let _ = c
                .write_all(
                    &encode_frame(body.as_bytes(), &FrameOptions::default()),
                    Duration::from_secs(5),
                )
                .await;
            if let Ok(Some(_)) = c.read_frame(Duration::from_secs(2)).await {
                a.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    FakePassive { addr, polls, acks }
}

/// Discovery data from the third poll on.
fn late_discovery(n: usize) -> Value {
    let mut v = json!({"session": SESSION, "version": "6.0.14", "clock": 1, "ns": 2});
    if n >= 2 {
        v["discovery data"] =
            json!([{"clock": 1, "drule": 7, "dcheck": 8, "ip": "127.0.0.1", "port": 1}]);
    }
    v
}

/// Never any discovery data.
fn no_discovery(_: usize) -> Value {
    json!({"session": SESSION, "version": "6.0.14", "clock": 1, "ns": 2})
}

/// A session of the wrong length: a schema failure.
fn broken(_: usize) -> Value {
    json!({"session": "abc", "version": "6.0.14", "clock": 1, "ns": 2})
}

fn write_scenario(dir: &std::path::Path, retry: &str) -> std::path::PathBuf {
    let path = dir.join("s.yaml");
    std::fs::write(
        &path,
        format!(
            r#"name: waits for discovery data
family: server-proxy
versions: ["6.0"]
plays: server
peer: {{ address: "${{ADDR}}" }}
steps:
  - name: discovery arrives
    {retry}
    exchange:
      send: {{ json: {{ request: proxy data }} }}
      expect:
        kind: passive.proxy-data.response
        match:
          discovery data: {{ $contains: {{ drule: 7 }} }}
      then:
        - send: {{ json: {{ response: success }} }}
"#
        ),
    )
    .unwrap();
    path
}

fn run_with(path: std::path::PathBuf, vars: &[(&str, &str)]) -> RunResult {
    support::run_opts(&RunOptions {
        paths: vec![path],
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        timeout: Duration::from_secs(5),
        ..RunOptions::default()
    })
}

/// Run one exchange scenario against a fake peer answering with `answer`.
fn exchange_case(answer: fn(usize) -> Value, retry: &str) -> (RunResult, usize, usize, Duration) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let peer = rt.block_on(fake_passive(answer));
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(dir.path(), retry);
    let addr = peer.addr.clone();
    let started = Instant::now();
    let r = std::thread::spawn(move || run_with(path, &[("ADDR", &addr)]))
        .join()
        .unwrap();
    let took = started.elapsed();
    let (polls, acks) = (
        peer.polls.load(Ordering::SeqCst),
        peer.acks.load(Ordering::SeqCst),
    );
    drop(rt);
    (r, polls, acks, took)
}

#[test]
fn an_exchange_is_retried_until_its_match_passes_and_only_the_last_is_acknowledged() {
    let (r, polls, acks, _) = exchange_case(late_discovery, "retry: { within: 10s, every: 100ms }");
    assert_eq!(
        r.scenarios[0].outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );
    assert_eq!(polls, 3, "two misses, then the data");
    assert_eq!(acks, 1, "failed attempts do not run `then`");
    let notes: Vec<&str> = r.scenarios[0]
        .transcript
        .iter()
        .filter(|e| e.direction == Direction::Note)
        .map(|e| e.body.as_str())
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with("attempt 1: match")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("(attempt 3)")), "{notes:?}");
}

#[test]
fn without_retry_the_first_miss_fails() {
    let (r, polls, _, _) = exchange_case(late_discovery, "");
    support::assert_all_failed_with(&r, "no retry", CheckKind::Match);
    assert_eq!(polls, 1);
}

#[test]
fn a_retry_that_never_matches_fails_after_its_window_and_says_so() {
    let (r, polls, acks, took) = exchange_case(no_discovery, "retry: { within: 1s, every: 200ms }");
    support::assert_all_failed_with(&r, "never matches", CheckKind::Match);
    assert!(polls >= 3, "{polls} attempts");
    assert_eq!(acks, 0);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let detail = r.scenarios[0]
        .failures()
        .map(|(_, f)| f.detail.clone())
        .next()
        .unwrap();
    assert!(
        detail.contains(&format!("last of {polls} attempts")),
        "{detail}"
    );
}

#[test]
fn a_schema_failure_is_not_retried() {
    let (r, polls, _, took) = exchange_case(broken, "retry: { within: 30s }");
    support::assert_all_failed_with(&r, "broken session", CheckKind::Schema);
    assert_eq!(polls, 1);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// An active-proxy stand-in connects to the harness again and again; data arrives in the
/// third message. Every message gets the step's reply, matching or not.
#[test]
fn an_accept_is_retried_and_every_attempt_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    std::fs::write(
        &path,
        r#"name: active data arrives
family: server-proxy
versions: ["6.0"]
plays: server
listen: "127.0.0.1:${PORT}"
steps:
  - retry: { within: 10s, every: 10ms }
    accept:
      others: skip
      expect:
        kind: active.proxy-data.request
        match:
          discovery data: { $len: 1 }
      reply: { json: { upload: enabled, response: success } }
"#,
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let answered = Arc::new(AtomicUsize::new(0));
    let a = answered.clone();
    let proxy = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let mut n = 0usize;
            for _ in 0..100 {
                let Ok(s) = connect_tcp(&addr, Duration::from_secs(1)).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let mut c = Connection::new(s, ZbxdCodec::default(), "harness");
                let mut body = json!({"request": "proxy data", "host": "p", "session": SESSION,
                    "version": "6.0.14", "clock": 1, "ns": 2});
                if n >= 2 {
                    body["discovery data"] = json!([{"clock": 1, "drule": 7, "ip": "127.0.0.1"}]);
                }
                let bytes = encode_frame(body.to_string().as_bytes(), &FrameOptions::default());
                let _ = c.write_all(&bytes, Duration::from_secs(2)).await;
                if let Ok(Some(_)) = c.read_frame(Duration::from_secs(2)).await {
                    a.fetch_add(1, Ordering::SeqCst);
                }
                if n >= 2 {
                    break;
                }
                n += 1;
            }
        })
    });
    let r = run_with(path, &[("PORT", &port.to_string())]);
    proxy.join().unwrap();
    assert_eq!(
        r.scenarios[0].outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );
    assert_eq!(answered.load(Ordering::SeqCst), 3);
}

/// `others: skip` without `expect.kind`: the family's own kinds are skipped (and answered
/// through `answer_others`), the first unrecognised message — an agent poll — is taken
/// and answered by `reply_by`.
#[test]
fn an_accept_without_kind_skips_the_family_s_own_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    std::fs::write(
        &path,
        r#"name: agent poll among proxy traffic
family: server-proxy
versions: ["6.0"]
plays: server
listen: "127.0.0.1:${PORT}"
steps:
  - accept:
      others: skip
      expect: { schema: false }
      reply_by: { agent.ping: { text: "1" } }
      answer_others:
        active.proxy-data.request: { json: { upload: enabled, response: success } }
"#,
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let peer = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let mut got = Vec::new();
            let msgs: [&[u8]; 2] = [
                br#"{"request":"proxy data","host":"p","session":"0123456789abcdef0123456789abcdef","version":"6.0.14","clock":1,"ns":2}"#,
                b"agent.ping",
            ];
            for m in msgs {
                let mut s = None;
                for _ in 0..50 {
                    if let Ok(x) = connect_tcp(&addr, Duration::from_secs(1)).await {
                        s = Some(x);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let mut c = Connection::new(s.expect("connects"), ZbxdCodec::default(), "h");
                let _ = c
                    .write_all(&encode_frame(m, &FrameOptions::default()), Duration::from_secs(2))
                    .await;
                let reply = c.read_frame(Duration::from_secs(3)).await.ok().flatten();
                got.push(reply.map(|f| {
                    serde_json::from_slice::<Value>(&f.payload)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&f.payload).into()))
                }));
            }
            got
        })
    });
    let r = run_with(path, &[("PORT", &port.to_string())]);
    let got = peer.join().unwrap();
    assert_eq!(
        r.scenarios[0].outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );
    assert_eq!(
        got,
        [
            Some(json!({"response": "success", "upload": "enabled"})),
            Some(json!(1))
        ]
    );
}

#[rstest::rstest]
#[case::on_a_sleep(
    "  - sleep: 1s\n    retry: { within: 5s }\n",
    "`retry` applies only to `exchange` and `accept`"
)]
#[case::every_too_long(
    "  - retry: { within: 1s, every: 2s }\n    exchange: { connect: \"127.0.0.1:1\", send: { json: {} } }\n",
    "`retry.every` must be"
)]
fn retry_is_refused_where_it_means_nothing(#[case] step: &str, #[case] error: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        format!(
            "name: bad\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: server\nsteps:\n{step}"
        ),
    )
    .unwrap();
    let errors = match zbx_conform::scenario::load_file(&path) {
        Ok(l) => zbx_conform::scenario::lint(&l, support::catalog(), &[]),
        Err(e) => vec![e.into()],
    };
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(text.iter().any(|e| e.contains(error)), "{text:?}");
}
