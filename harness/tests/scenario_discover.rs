//! Discovery of scenario files in folders: extensions, hidden entries, symlink loops,
//! unreadable folders.

use std::path::PathBuf;
use zbx_conform::scenario::discover;

fn touch(p: &std::path::Path) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, "name: x\n").expect("write");
}

#[test]
fn finds_yaml_and_yml_only_sorted_skipping_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    for f in [
        "b.yaml",
        "a/c.yml",
        "a/notes.txt",
        "a/.hidden.yaml",
        ".git/x.yaml",
        "a/deeper/d.yaml",
        "README.md",
    ] {
        touch(&r.join(f));
    }
    let got = discover(&[r.to_path_buf()]).expect("discover");
    let rel: Vec<String> = got
        .iter()
        .map(|p| p.strip_prefix(r).expect("under root").display().to_string())
        .collect();
    assert_eq!(rel, vec!["a/c.yml", "a/deeper/d.yaml", "b.yaml"]);
}

#[test]
fn explicit_files_are_kept_and_duplicates_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("s.txt");
    touch(&f);
    let y = dir.path().join("s.yaml");
    touch(&y);
    let got = discover(&[f.clone(), dir.path().to_path_buf(), y.clone()]).expect("discover");
    assert_eq!(got, {
        let mut v = vec![f, y];
        v.sort();
        v
    });
}

#[test]
fn missing_path_is_an_error_naming_it() {
    let p = PathBuf::from("/nonexistent/zbx-conform/scenarios");
    let e = discover(std::slice::from_ref(&p)).expect_err("must fail");
    assert_eq!(e.path, p);
    assert!(e.message.contains("no such file"), "{e}");
}

#[cfg(unix)]
#[test]
fn symlink_loops_terminate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    touch(&r.join("a/s.yaml"));
    std::os::unix::fs::symlink(r, r.join("a/loop")).expect("symlink");
    std::os::unix::fs::symlink(r.join("nowhere"), r.join("a/dangling.yaml")).expect("symlink");
    let got = discover(&[r.to_path_buf()]).expect("discover");
    assert_eq!(got, vec![r.join("a/s.yaml")]);
}

#[cfg(unix)]
#[test]
fn unreadable_directory_is_an_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    // Root can read anything, so the check only means something for other users.
    if is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let locked = dir.path().join("locked");
    touch(&locked.join("s.yaml"));
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let result = discover(&[dir.path().to_path_buf()]);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let e = result.expect_err("must fail");
    assert_eq!(e.path, locked);
    assert!(e.message.contains("cannot read directory"), "{e}");
}

#[cfg(unix)]
fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
