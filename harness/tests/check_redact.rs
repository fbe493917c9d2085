//! Secret redaction: a known secret string never survives, in any of the shapes Zabbix
//! uses (plain keys, config table columns, secret/vault macros, macro.secrets).

use serde_json::{json, Value};
use zbx_conform::check::redact::{redact_secrets, redact_text, REDACTED, SECRET_KEYS};

const SECRET: &str = "S3cr3t-0xDEADBEEF";

fn text(v: &Value) -> String {
    v.to_string()
}

/// A passive `proxy config` request as 6.0 sends it, with secrets in every known place.
fn proxy_config() -> Value {
    json!({
        "request": "proxy config",
        "data": {
            "globalmacro": {
                "fields": ["globalmacroid", "macro", "value", "type"],
                "data": [
                    [1, "{$PLAIN}", "visible-text", 0],
                    [2, "{$SECRET}", format!("{SECRET}-g1"), 1],
                    [3, "{$VAULT}", format!("{SECRET}-g2"), 2]
                ]
            },
            "hosts": {
                "fields": ["hostid", "host", "status", "ipmi_username", "ipmi_password",
                           "tls_psk_identity", "tls_psk"],
                "data": [
                    [10084, "Zabbix server", 0, "admin", format!("{SECRET}-h1"),
                     format!("{SECRET}-h2"), format!("{SECRET}-h3")],
                    [10085, "no-psk", 0, "", "", "", ""]
                ]
            },
            "hostmacro": {
                "fields": ["hostmacroid", "hostid", "macro", "value", "type"],
                "data": [
                    [7, 10084, "{$A}", "keep-me", "0"],
                    [8, 10084, "{$B}", format!("{SECRET}-m1"), "1"]
                ]
            },
            "interface_snmp": {
                "fields": ["interfaceid", "version", "community", "securityname",
                           "authpassphrase", "privpassphrase"],
                "data": [[1, 3, format!("{SECRET}-s1"), format!("{SECRET}-s2"),
                          format!("{SECRET}-s3"), format!("{SECRET}-s4")]]
            },
            "items": {
                "fields": ["itemid", "key_", "username", "password", "publickey", "privatekey",
                           "ssl_key_password"],
                "data": [[1, "ssh.run[x]", format!("{SECRET}-i1"), format!("{SECRET}-i2"),
                          format!("{SECRET}-i3"), format!("{SECRET}-i4"), format!("{SECRET}-i5")]]
            },
            "config_autoreg_tls": {
                "fields": ["autoreg_tlsid", "tls_psk_identity", "tls_psk"],
                "data": [[1, format!("{SECRET}-a1"), format!("{SECRET}-a2")]]
            },
            "macro.secrets": {
                "secret/zabbix": {"password": format!("{SECRET}-v1"), "token": format!("{SECRET}-v2")}
            }
        }
    })
}

#[test]
fn no_secret_survives_a_proxy_config() {
    let input = proxy_config();
    assert!(
        text(&input).contains(SECRET),
        "fixture must contain the secret"
    );
    let out = redact_secrets(&input);
    assert!(!text(&out).contains(SECRET), "secret survived: {out:#}");
}

#[test]
fn table_columns_are_redacted_and_other_columns_kept() {
    let out = redact_secrets(&proxy_config());
    let hosts = &out["data"]["hosts"]["data"];
    assert_eq!(
        hosts[0],
        json!([
            10084,
            "Zabbix server",
            0,
            "admin",
            REDACTED,
            REDACTED,
            REDACTED
        ])
    );
    // Empty strings stay empty: "no PSK" is not a secret.
    assert_eq!(hosts[1], json!([10085, "no-psk", 0, "", "", "", ""]));
}

#[test]
fn macros_of_type_secret_and_vault_are_redacted_only() {
    let out = redact_secrets(&proxy_config());
    let g = &out["data"]["globalmacro"]["data"];
    assert_eq!(g[0][2], json!("visible-text"));
    assert_eq!(g[1][2], json!(REDACTED));
    assert_eq!(g[2][2], json!(REDACTED));
    // type as a string column works too
    let h = &out["data"]["hostmacro"]["data"];
    assert_eq!(h[0][3], json!("keep-me"));
    assert_eq!(h[1][3], json!(REDACTED));
}

#[test]
fn username_is_redacted_only_next_to_credentials() {
    let out = redact_secrets(&proxy_config());
    assert_eq!(out["data"]["items"]["data"][0][2], json!(REDACTED));
    assert_eq!(out["data"]["hosts"]["data"][0][3], json!("admin"));
    let task = redact_secrets(
        &json!({"tasks": [{"type": 2, "username": "root", "password": "pw",
        "publickey": "pub", "privatekey": "priv", "command": "uptime"}]}),
    );
    assert_eq!(
        task["tasks"][0],
        json!({"type": 2, "username": REDACTED, "password": REDACTED,
               "publickey": REDACTED, "privatekey": REDACTED, "command": "uptime"})
    );
    let plain = redact_secrets(&json!({"username": "zabbix"}));
    assert_eq!(plain, json!({"username": "zabbix"}));
}

#[test]
fn macro_secrets_keep_paths_and_keys() {
    let out = redact_secrets(&proxy_config());
    assert_eq!(
        out["data"]["macro.secrets"],
        json!({"secret/zabbix": {"password": REDACTED, "token": REDACTED}})
    );
}

#[test]
fn object_form_macro_and_private_options() {
    let out = redact_secrets(&json!({
        "macros": [{"macro": "{$X}", "value": SECRET, "type": 1},
                   {"macro": "{$Y}", "value": "fine", "type": 0}],
        "private_options": {"Uri": "dGNwOi8vdXNlcjpwYXNz"}
    }));
    assert!(!text(&out).contains(SECRET));
    assert_eq!(out["macros"][1]["value"], json!("fine"));
    assert_eq!(out["private_options"]["Uri"], json!(REDACTED));
}

#[test]
fn every_secret_key_is_redacted_in_any_case_and_type() {
    for k in SECRET_KEYS {
        let out = redact_secrets(&json!({"deep": [{*k: SECRET}], k.to_uppercase(): 12345}));
        assert_eq!(out["deep"][0][*k], json!(REDACTED), "key {k}");
        assert_eq!(
            out[k.to_uppercase()],
            json!(REDACTED),
            "key {k} upper-case, number"
        );
    }
}

#[test]
fn non_secret_input_is_unchanged() {
    let v = json!({"request": "proxy data", "host": "p1", "history data": [{"value": "1"}]});
    assert_eq!(redact_secrets(&v), v);
    let pretty = serde_json::to_string_pretty(&v).expect("serialize");
    assert_eq!(
        redact_text(&pretty),
        pretty,
        "formatting kept when nothing to redact"
    );
}

#[test]
fn redact_text_json_and_fallback() {
    let json_text = text(&proxy_config());
    let out = redact_text(&json_text);
    assert!(!out.contains(SECRET));
    assert!(out.contains(REDACTED));

    // A truncated body (not JSON) with plain keys.
    let truncated = format!(
        r#"{{"tasks":[{{"type":2,"password":"{SECRET}","tls_psk": "{SECRET}2","privatekey":12345"#
    );
    let out = redact_text(&truncated);
    assert!(!out.contains(SECRET), "{out}");
    assert!(!out.contains("12345"), "{out}");

    // A log line.
    let log = format!("connecting with password={SECRET} community: {SECRET}x ok");
    let out = redact_text(&log);
    assert!(!out.contains(SECRET), "{out}");
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn only_macro_tables_use_the_type_rule() {
    let v = json!({"httpstep_field": {
        "fields": ["httpstep_fieldid", "httpstepid", "type", "name", "value"],
        "data": [[1, 2, 1, "{token}", "regex:abc"]]
    }});
    assert_eq!(redact_secrets(&v), v);
}

#[test]
fn prefixed_snmp_and_http_credentials() {
    let v = json!({"dchecks": {
        "fields": ["dcheckid", "snmp_community", "snmpv3_securityname",
                   "snmpv3_authpassphrase", "snmpv3_privpassphrase"],
        "data": [[1, SECRET, SECRET, SECRET, SECRET]]
    }, "httptest": {"fields": ["httptestid", "http_user", "http_password"],
                    "data": [[1, "web", SECRET]]}});
    let out = redact_secrets(&v);
    assert!(!text(&out).contains(SECRET), "{out}");
    assert_eq!(out["httptest"]["data"][0][1], json!("web"));
}
