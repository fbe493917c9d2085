//! File names that come from scenarios and profiles: checked the same way whether they
//! are written literally or built from variables (`fixture: "${FIX}"` with
//! `--var FIX=../../secret` must not read a file outside the data root), so the check
//! runs at lint time on literal names and again at run time after expansion.

/// A fixture name: `name` or `family:name`, where both parts are relative names inside
/// the fixtures tree (no empty part, no `..`, no absolute path, no backslash).
pub fn fixture_name(name: &str) -> Result<(), String> {
    let (family, rest) = match name.split_once(':') {
        Some((f, r)) => (Some(f), r),
        None => (None, name),
    };
    if let Some(f) = family {
        plain_file_name(f).map_err(|e| format!("fixture family {f:?}: {e}"))?;
    }
    let bad = rest.trim().is_empty()
        || rest.starts_with('/')
        || rest.contains('\\')
        || rest.split('/').any(|part| part == ".." || part.is_empty());
    if bad {
        return Err(format!(
            "fixture {name:?} must be a plain fixture name (no empty name, `..`, or absolute path)"
        ));
    }
    Ok(())
}

/// Split a possibly family-qualified name: `server-proxy:passive.proxy-config.response`
/// → `(Some("server-proxy"), "passive.proxy-config.response")`, a plain name →
/// `(None, name)`. The same rule as fixture names, so a fixture named after a kind of
/// another family names that kind too.
pub fn split_qualified(name: &str) -> (Option<&str>, &str) {
    match name.split_once(':') {
        Some((family, rest)) if !family.is_empty() && !family.contains('/') => (Some(family), rest),
        _ => (None, name),
    }
}

/// A snapshot name: a plain file name (the snapshot is `<name>.json` in the version's
/// snapshot folder).
pub fn snapshot_name(name: &str) -> Result<(), String> {
    plain_file_name(name).map_err(|e| format!("snapshot {name:?}: {e}"))
}

/// One path component: not empty, not `.` or `..`, no `/` or `\`, no NUL.
pub fn plain_file_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("an empty name".into());
    }
    if name == "." || name == ".." || name.contains("..") {
        return Err("must not contain `..`".into());
    }
    if name.contains('/') || name.contains('\\') || name.contains('\0') {
        return Err("must be a plain name (no `/`, `\\`)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_names_stay_inside_the_fixture_tree() {
        for ok in [
            "proxy-config.trapper",
            "server-proxy:proxy-config.trapper",
            "sub/name",
        ] {
            assert!(fixture_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "../../../../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "a\\b",
            "../x:y",
            "server-proxy:../x",
            "x:",
        ] {
            assert!(fixture_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn qualified_names_split_at_the_first_colon() {
        assert_eq!(
            split_qualified("sender:sender.data.response"),
            (Some("sender"), "sender.data.response")
        );
        assert_eq!(
            split_qualified("failed.response"),
            (None, "failed.response")
        );
        assert_eq!(split_qualified(":x"), (None, ":x"));
        assert_eq!(split_qualified("a/b:c"), (None, "a/b:c"));
    }

    #[test]
    fn snapshot_and_file_names_are_one_component() {
        assert!(snapshot_name("passive-config-ok").is_ok());
        for bad in ["", "..", "a/b", "../x", "a\\b", "x\0y"] {
            assert!(snapshot_name(bad).is_err(), "{bad:?}");
            assert!(plain_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
