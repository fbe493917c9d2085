//! The `private_options` tree an agent passes to Validate and Configure, and the
//! `global_options` of Configure.
//!
//! Agent 2 sends its parsed config subtree `Plugins.<Name>` serialised with Go's default
//! JSON: `{"Name","Nodes","Line"}` nodes whose leaves are `{"Value":<base64>,"Line"}`
//! (protocol.md §4.2). In 6.0.14 the `System` → `Path` node is still included, so a
//! plugin that accepts its own registration must accept exactly that tree.

use serde_json::{json, Value};

/// One option `Plugins.<Name>.<path...>=<value>`; `path` has at least one element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginOption {
    pub path: Vec<String>,
    pub value: String,
}

impl PluginOption {
    pub fn new(path: &[&str], value: &str) -> PluginOption {
        PluginOption {
            path: path.iter().map(|s| s.to_string()).collect(),
            value: value.to_string(),
        }
    }

    /// Parse `Name.Sub=value` (the part after `Plugins.<Name>.`).
    pub fn parse(s: &str) -> Result<PluginOption, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("expected OPTION=VALUE, got {s:?}"))?;
        let path: Vec<String> = k.split('.').map(str::to_string).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(format!("bad option name {k:?}"));
        }
        Ok(PluginOption {
            path,
            value: v.to_string(),
        })
    }
}

/// The tree the agent would send for `Plugins.<name>.System.Path=<plugin_path>` plus
/// `extra` options, in the order given (line numbers are made up but increasing).
pub fn private_options(name: &str, plugin_path: &str, extra: &[PluginOption]) -> Value {
    let mut all = vec![PluginOption::new(&["System", "Path"], plugin_path)];
    all.extend(extra.iter().cloned());
    let mut root = Node {
        name: name.to_string(),
        line: 1,
        children: Vec::new(),
    };
    for (i, opt) in all.iter().enumerate() {
        root.insert(&opt.path, &opt.value, i as u64 + 2);
    }
    root.to_json()
}

/// An option no plugin defines: its presence must make a strict plugin's Validate fail.
pub fn unknown_option() -> PluginOption {
    PluginOption::new(&["ZbxConformNoSuchOption"], "1")
}

/// `global_options` as agent2 sends them in Configure (Go field names, capitalised).
pub fn global_options(timeout_secs: u64) -> Value {
    json!({ "Timeout": timeout_secs, "SourceIP": "" })
}

#[derive(Debug)]
struct Node {
    name: String,
    line: u64,
    children: Vec<Child>,
}

#[derive(Debug)]
enum Child {
    Node(Node),
    Value { value: String, line: u64 },
}

impl Node {
    fn insert(&mut self, path: &[String], value: &str, line: u64) {
        let Some((first, rest)) = path.split_first() else {
            self.children.push(Child::Value {
                value: value.to_string(),
                line,
            });
            return;
        };
        let pos = self
            .children
            .iter()
            .position(|c| matches!(c, Child::Node(n) if &n.name == first));
        let idx = match pos {
            Some(i) => i,
            None => {
                self.children.push(Child::Node(Node {
                    name: first.clone(),
                    line,
                    children: Vec::new(),
                }));
                self.children.len() - 1
            }
        };
        if let Some(Child::Node(n)) = self.children.get_mut(idx) {
            n.insert(rest, value, line);
        }
    }

    fn to_json(&self) -> Value {
        let nodes: Vec<Value> = self
            .children
            .iter()
            .map(|c| match c {
                Child::Node(n) => n.to_json(),
                Child::Value { value, line } => {
                    json!({ "Value": base64(value.as_bytes()), "Line": line })
                }
            })
            .collect();
        json!({ "Name": self.name, "Nodes": nodes, "Line": self.line })
    }
}

/// Standard base64 with padding (what Go's encoding/json does with `[]byte`).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "{plain:?}");
        }
    }

    #[test]
    fn tree_has_system_path_and_extras_grouped() {
        let t = private_options(
            "Good",
            "/p",
            &[
                PluginOption::new(&["System", "Capacity"], "5"),
                unknown_option(),
            ],
        );
        assert_eq!(t["Name"], "Good");
        let system = &t["Nodes"][0];
        assert_eq!(system["Name"], "System");
        assert_eq!(system["Nodes"][0]["Name"], "Path");
        assert_eq!(system["Nodes"][0]["Nodes"][0]["Value"], base64(b"/p"));
        assert_eq!(system["Nodes"][1]["Name"], "Capacity");
        assert_eq!(t["Nodes"][1]["Name"], "ZbxConformNoSuchOption");
        assert_eq!(t["Nodes"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn option_parsing() {
        assert_eq!(
            PluginOption::parse("Session.Uri=tcp://x").unwrap(),
            PluginOption::new(&["Session", "Uri"], "tcp://x")
        );
        assert!(PluginOption::parse("NoValue").is_err());
        assert!(PluginOption::parse("a..b=1").is_err());
    }
}
