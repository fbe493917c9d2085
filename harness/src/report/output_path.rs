//! Checks that a report file can be written, made before a run starts: a path that is a
//! folder, or in a place the user cannot write, should not cost a whole run first.

use std::path::Path;

/// Ok when `path` can be written as a report file: not a folder, its folder exists or
/// can be created, and the file can be opened for writing. Nothing is truncated; a
/// file created by the check is removed again (the report writer creates it later).
pub fn check_writable(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("the path is empty".into());
    }
    if path.is_dir() {
        return Err("is a folder; give a file name, e.g. report.xml inside it".into());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() && !dir.is_dir() {
            return Err(format!("{} is not a folder", dir.display()));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot write: {e}"))?;
    if !existed {
        // Best effort: a leftover empty file is harmless, the report overwrites it.
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_writable;

    #[test]
    fn folders_and_files_under_files_are_refused_new_files_are_not_left_behind() {
        let dir = std::env::temp_dir().join(format!("zbxc-output-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(check_writable(&dir).unwrap_err().contains("is a folder"));
        let new = dir.join("sub/report.xml");
        assert_eq!(check_writable(&new), Ok(()));
        assert!(!new.exists(), "the check leaves no file");
        let file = dir.join("file");
        std::fs::write(&file, "keep").unwrap();
        assert_eq!(check_writable(&file), Ok(()));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "keep",
            "not truncated"
        );
        assert!(check_writable(&file.join("x.xml"))
            .unwrap_err()
            .contains("is not a folder"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
