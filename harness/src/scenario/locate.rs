//! Where a nested key is written: `exchange.expect.kind` from a step's position.
//!
//! The model keeps spans only for steps, `then` actions and a few values (the YAML
//! deserializer loses them inside plain strings and maps), so an error about a `kind`
//! or a `fixture` would otherwise point at its step. This is a small scanner over the
//! file text, enough for how scenarios are written: block mappings, flow mappings
//! (`{ kind: x }`, also across lines), block and flow lists (`- x`, `[ x, y ]`), quoted
//! keys and comments. It never fails: a key or item it cannot find leaves the position
//! at the deepest one it did find.

/// A 1-based `(line, column)`, columns in characters as the YAML parser counts them.
pub type Pos = (u64, u64);

/// Where a key of a path was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The key itself.
    pub key: Pos,
    /// Its value: the first character after `key:` (or the next line's content).
    pub value: Pos,
}

/// One step of a path: a mapping's key, or a list's item (which has no key of its own,
/// so a problem inside a list can only be placed by its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// The key of a block (`k: v`) or flow (`{ k: v }`) mapping.
    Key(&'a str),
    /// The item of a block (`- x`) or flow (`[ x ]`) list, from 0.
    Index(usize),
}

impl<'a> Seg<'a> {
    /// A path of keys only.
    pub fn keys(keys: &[&'a str]) -> Vec<Seg<'a>> {
        keys.iter().map(|k| Seg::Key(k)).collect()
    }
}

/// A matcher's path (`check::matcher`) is located the same way as the file's keys.
impl<'a> From<&'a crate::check::matcher::KeySeg> for Seg<'a> {
    fn from(seg: &'a crate::check::matcher::KeySeg) -> Seg<'a> {
        match seg {
            crate::check::matcher::KeySeg::Key(k) => Seg::Key(k),
            crate::check::matcher::KeySeg::Index(i) => Seg::Index(*i),
        }
    }
}

/// A file's text split into lines of characters once, so that locating many keys
/// costs each step's lines rather than the whole file every time.
pub struct Text {
    lines: Vec<Vec<char>>,
}

impl Text {
    pub fn new(text: &str) -> Text {
        Text {
            lines: text.lines().map(|l| l.chars().collect()).collect(),
        }
    }

    /// The position of `path`'s last key, searched from the mapping that starts at
    /// `from` (a step's or an action's position): the key when `want_value` is false,
    /// else its value. When a key is missing, the deepest key found (or `from`) is
    /// returned.
    pub fn locate(&self, from: Pos, path: &[&str], want_value: bool) -> Pos {
        self.locate_path(from, &Seg::keys(path), want_value)
    }

    /// [`Text::locate`] for a path that may go through list items. An item has no key:
    /// its position is its content's (after `- `), whatever `want_value` says.
    pub fn locate_path(&self, from: Pos, path: &[Seg], want_value: bool) -> Pos {
        let s = Scanner { lines: &self.lines };
        let mut node = from;
        let mut best = from;
        for (i, seg) in path.iter().enumerate() {
            let found = match *seg {
                Seg::Key(key) => s.child(node, key),
                Seg::Index(index) => s.item(node, index),
            };
            let Some(f) = found else {
                return best;
            };
            let last = i + 1 == path.len();
            best = if last && want_value { f.value } else { f.key };
            node = f.value;
        }
        best
    }

    /// The first place `needle` is written in the block that starts at `from` (its
    /// line, then the following lines indented to `from`'s column or deeper), or `None`.
    pub fn find_text(&self, from: Pos, needle: &str) -> Option<Pos> {
        let first = usize::try_from(from.0).ok()?.checked_sub(1)?;
        let indent = usize::try_from(from.1).ok()?.saturating_sub(1);
        let needle: Vec<char> = needle.chars().collect();
        if needle.is_empty() {
            return None;
        }
        for (i, line) in self.lines.iter().enumerate().skip(first) {
            let lead = line.iter().take_while(|c| **c == ' ').count();
            let content = &line[lead..];
            if i != first && !content.is_empty() && content[0] != '#' && lead < indent {
                break;
            }
            // From the block's column on its first line (a step's `- ` is before it).
            let skip = if i == first { indent } else { 0 };
            let tail = line.get(skip..).unwrap_or(&[]);
            if let Some(at) = tail
                .windows(needle.len())
                .position(|w| w == needle.as_slice())
            {
                return Some((i as u64 + 1, (skip + at) as u64 + 1));
            }
        }
        None
    }
}

struct Scanner<'a> {
    lines: &'a [Vec<char>],
}

impl Scanner<'_> {
    /// The character at a 1-based position, if any.
    fn at(&self, (line, col): Pos) -> Option<char> {
        let l = self
            .lines
            .get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        l.get(usize::try_from(col).ok()?.checked_sub(1)?).copied()
    }

    /// The key `key` of the mapping whose first character is at `node`.
    fn child(&self, node: Pos, key: &str) -> Option<Found> {
        match self.at(node)? {
            '{' => self.flow_child(node, key),
            '[' | '"' | '\'' => None,
            _ => self.block_child(node, key),
        }
    }

    /// The item `index` of the list whose first character is at `node`.
    fn item(&self, node: Pos, index: usize) -> Option<Found> {
        match self.at(node)? {
            '[' => self.flow_item(node, index),
            '-' => self.block_item(node, index),
            _ => None,
        }
    }

    /// The lines of the block that starts at `node`, as 0-based `(line, column)` of
    /// their content at the block's column: `node`'s own line, then each following
    /// line indented exactly as much, until one indented less (blank lines, comment
    /// lines and deeper lines are skipped). Empty for a position outside the text.
    fn block_lines(&self, (line, col): Pos) -> impl Iterator<Item = (usize, usize)> + '_ {
        let first = usize::try_from(line).ok().and_then(|l| l.checked_sub(1));
        let indent = usize::try_from(col).ok().and_then(|c| c.checked_sub(1));
        let (first, indent) = match (first, indent) {
            (Some(f), Some(i)) => (f, i),
            _ => (usize::MAX, 0),
        };
        self.lines
            .iter()
            .enumerate()
            .skip(first)
            .map_while(move |(i, l)| {
                if i == first {
                    return Some(Some((i, indent)));
                }
                let lead = l.iter().take_while(|c| **c == ' ').count();
                let rest = l.get(lead..).unwrap_or(&[]);
                if rest.is_empty() || rest[0] == '#' || lead > indent {
                    return Some(None);
                }
                (lead == indent).then_some(Some((i, lead)))
            })
            .flatten()
    }

    /// A block list: items `- ` at `node`'s column on its line and the following lines,
    /// until a line indented less, or a line at that column that is not an item (the
    /// next key of a mapping whose list is not indented).
    fn block_item(&self, node: Pos, index: usize) -> Option<Found> {
        for (seen, (i, at)) in self.block_lines(node).enumerate() {
            let l = &self.lines[i];
            // `-` then a space or the line's end; `-1` or `---` is not an item.
            if l.get(at) != Some(&'-') || l.get(at + 1).is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
            if seen == index {
                let content = self.value_from(i, at + 1);
                return Some(Found {
                    key: content,
                    value: content,
                });
            }
        }
        None
    }

    /// A flow list `[ ... ]` starting at `node`: its items at bracket depth 1.
    fn flow_item(&self, node: Pos, index: usize) -> Option<Found> {
        let (l, c) = *self.flow_entries(node).get(index)?;
        let at = (l as u64 + 1, c as u64 + 1);
        Some(Found { key: at, value: at })
    }

    /// A block mapping: keys at `node`'s column on its line and the following lines,
    /// until a line indented less.
    fn block_child(&self, node: Pos, key: &str) -> Option<Found> {
        for (i, at) in self.block_lines(node) {
            if let Some(value) = self.key_here(i, at, key) {
                return Some(Found {
                    key: (i as u64 + 1, at as u64 + 1),
                    value: self.value_from(i, value),
                });
            }
        }
        None
    }

    /// Whether `key:` (plain or quoted) starts at 0-based `(line, at)`; then the
    /// 0-based column just after its colon.
    fn key_here(&self, line: usize, at: usize, key: &str) -> Option<usize> {
        let l = self.lines.get(line)?;
        let rest = l.get(at..)?;
        let key: Vec<char> = key.chars().collect();
        let len = if rest.starts_with(&key) {
            key.len()
        } else if matches!(rest.first(), Some('"' | '\''))
            && rest.get(1..=key.len()).is_some_and(|k| k == key.as_slice())
            && rest.get(key.len() + 1) == rest.first()
        {
            key.len() + 2
        } else {
            return None;
        };
        let after = rest[len..].iter().take_while(|c| **c == ' ').count();
        let colon = len + after;
        if rest.get(colon) != Some(&':') {
            return None;
        }
        // `a:b` is one plain scalar, not a key; a quoted key may be followed directly.
        let next = rest.get(colon + 1);
        let quoted = len != key.len();
        if next.is_some_and(|c| !c.is_whitespace() && !quoted && !matches!(c, ',' | '}' | '{')) {
            return None;
        }
        Some(at + colon + 1)
    }

    /// The position of the value that follows a key whose colon ends before 0-based
    /// `(line, col)`: on the same line, or the next line with content.
    fn value_from(&self, line: usize, col: usize) -> Pos {
        let mut l = line;
        let mut c = col;
        while let Some(chars) = self.lines.get(l) {
            while chars.get(c).is_some_and(|ch| ch.is_whitespace()) {
                c += 1;
            }
            match chars.get(c) {
                Some('#') | None => {
                    l += 1;
                    c = 0;
                }
                Some(_) => return (l as u64 + 1, c as u64 + 1),
            }
        }
        (line as u64 + 1, col as u64 + 1)
    }

    /// A flow mapping `{ ... }` starting at `node`: its keys at bracket depth 1.
    fn flow_child(&self, node: Pos, key: &str) -> Option<Found> {
        self.flow_entries(node).into_iter().find_map(|(l, c)| {
            let after = self.key_here(l, c, key)?;
            Some(Found {
                key: (l as u64 + 1, c as u64 + 1),
                value: self.value_from(l, after),
            })
        })
    }

    /// Where each entry of the flow mapping or list opening at `open` (`{` or `[`)
    /// starts, as 0-based `(line, column)`: the first character after the bracket or a
    /// comma at bracket depth 1, on any line, outside quoted strings and comments.
    fn flow_entries(&self, (line, col): Pos) -> Vec<(usize, usize)> {
        let mut entries = Vec::new();
        let Some(mut l) = usize::try_from(line).ok().and_then(|l| l.checked_sub(1)) else {
            return entries;
        };
        // Just after the bracket (`col` is 1-based).
        let Ok(mut c) = usize::try_from(col) else {
            return entries;
        };
        let mut depth = 1usize;
        let mut entry_next = true;
        while let Some(chars) = self.lines.get(l) {
            while let Some(&ch) = chars.get(c) {
                if ch.is_whitespace() {
                    c += 1;
                    continue;
                }
                if ch == '#' && (c == 0 || chars[c - 1].is_whitespace()) {
                    break;
                }
                // `}`, `]` or `,` here close an empty collection or follow a trailing comma.
                if depth == 1 && entry_next && !matches!(ch, '}' | ']' | ',') {
                    entries.push((l, c));
                }
                entry_next = false;
                match ch {
                    '"' | '\'' => c = skip_quoted(chars, c),
                    '{' | '[' => depth += 1,
                    '}' | ']' => {
                        depth -= 1;
                        if depth == 0 {
                            return entries;
                        }
                    }
                    ',' if depth == 1 => entry_next = true,
                    _ => {}
                }
                c += 1;
            }
            l += 1;
            c = 0;
        }
        entries
    }
}

/// The index of the closing quote of the string opening at `start` (or the line's end):
/// `''` escapes a single quote, `\` escapes in double quotes.
fn skip_quoted(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while let Some(&ch) = chars.get(i) {
        if quote == '"' && ch == '\\' {
            i += 2;
            continue;
        }
        if ch == quote {
            if quote == '\'' && chars.get(i + 1) == Some(&'\'') {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    // Short names keep the list paths below readable on one line.
    use Seg::{Index as I, Key as K};

    fn locate(text: &str, from: Pos, path: &[&str], value: bool) -> Pos {
        Text::new(text).locate(from, path, value)
    }

    fn find_text(text: &str, from: Pos, needle: &str) -> Option<Pos> {
        Text::new(text).find_text(from, needle)
    }

    const TEXT: &str = "name: x
steps:
  - exchange:
      send: { fixture: config.request, set: { kind: no }, kind: k1 }
      expect:
        # kind: in a comment
        match:
          /response: { $presnt: true }
        kind: k2
  - accept:
      expect: {
        \"kind\": k3 }
";

    #[test]
    fn block_and_flow_keys() {
        assert_eq!(
            locate(TEXT, (3, 5), &["exchange", "send", "kind"], false),
            (4, 59)
        );
        assert_eq!(
            locate(TEXT, (3, 5), &["exchange", "send", "fixture"], true),
            (4, 24)
        );
        assert_eq!(
            locate(TEXT, (3, 5), &["exchange", "expect", "kind"], true),
            (9, 15)
        );
        assert_eq!(
            locate(
                TEXT,
                (3, 5),
                &["exchange", "expect", "match", "/response", "$presnt"],
                false
            ),
            (8, 24)
        );
        assert_eq!(
            locate(TEXT, (10, 5), &["accept", "expect", "kind"], false),
            (12, 9)
        );
    }

    #[test]
    fn missing_keys_stop_at_the_deepest_found() {
        assert_eq!(
            locate(TEXT, (3, 5), &["exchange", "expect", "text"], false),
            (5, 7)
        );
        assert_eq!(locate(TEXT, (3, 5), &["accept"], false), (3, 5));
        // The previous step's keys are not this step's.
        assert_eq!(locate(TEXT, (10, 5), &["exchange"], false), (10, 5));
    }

    fn locate_path(text: &str, from: Pos, path: &[Seg], value: bool) -> Pos {
        Text::new(text).locate_path(from, path, value)
    }

    const LISTS: &str = "match:
  data:
    $any:
      - { host: { $presnt: true } }
      - host: h
        port: { $regex: \"[\" }
      # a comment between items
      -
        - nested
        - { deep: 1 }
  flow: { $any: [ { a: 1 }, \"b, ]\", # [ not an item
      { b: { $presnt: true } } ] }
  compact:
  - first
  - second: 2
  after: x
";

    #[test]
    fn block_list_items() {
        let any = [K("match"), K("data"), K("$any")];
        let at = |rest: &[Seg]| {
            let path: Vec<Seg> = any.iter().chain(rest).copied().collect();
            locate_path(LISTS, (1, 1), &path, false)
        };
        assert_eq!(at(&[I(0)]), (4, 9));
        assert_eq!(at(&[I(0), K("host"), K("$presnt")]), (4, 19));
        assert_eq!(at(&[I(1), K("host")]), (5, 9));
        assert_eq!(at(&[I(1), K("port"), K("$regex")]), (6, 17));
        // An item whose content starts on the next line: a nested list.
        assert_eq!(at(&[I(2)]), (9, 9));
        assert_eq!(at(&[I(2), I(1), K("deep")]), (10, 13));
        // A list at its key's column ends at the next key.
        let compact = [K("match"), K("compact"), I(1), K("second")];
        assert_eq!(locate_path(LISTS, (1, 1), &compact, true), (15, 13));
        let past = [K("match"), K("compact"), I(2)];
        assert_eq!(locate_path(LISTS, (1, 1), &past, false), (13, 3));
    }

    #[test]
    fn flow_list_items_across_lines() {
        let flow = [K("match"), K("flow"), K("$any")];
        let at = |rest: &[Seg]| {
            let path: Vec<Seg> = flow.iter().chain(rest).copied().collect();
            locate_path(LISTS, (1, 1), &path, false)
        };
        assert_eq!(at(&[I(0), K("a")]), (11, 21));
        // A quoted comma or bracket and a comment do not make items.
        assert_eq!(at(&[I(1)]), (11, 29));
        assert_eq!(at(&[I(2), K("b"), K("$presnt")]), (12, 14));
        assert_eq!(
            locate_path("[a, [b, c]]", (1, 1), &[I(1), I(1)], false),
            (1, 9)
        );
        assert_eq!(locate_path("k: [ ]", (1, 1), &[K("k"), I(0)], true), (1, 1));
    }

    #[test]
    fn a_missing_item_stops_at_the_deepest_found() {
        let any = [K("match"), K("data"), K("$any")];
        let path: Vec<Seg> = any.iter().copied().chain([I(3), K("host")]).collect();
        assert_eq!(locate_path(LISTS, (1, 1), &path, false), (3, 5));
        let flow = [K("match"), K("flow"), K("$any"), I(3)];
        assert_eq!(locate_path(LISTS, (1, 1), &flow, false), (11, 11));
        // An index into a mapping or a scalar finds nothing.
        assert_eq!(
            locate_path(LISTS, (1, 1), &[K("match"), I(0)], false),
            (1, 1)
        );
        assert_eq!(
            locate_path("a: -1\nb: ---", (1, 1), &[K("a"), I(0)], false),
            (1, 1)
        );
    }

    #[test]
    fn text_in_a_block() {
        assert_eq!(find_text(TEXT, (3, 5), "k1"), Some((4, 65)));
        assert_eq!(find_text(TEXT, (3, 5), "k3"), None);
        assert_eq!(find_text(TEXT, (10, 5), "k3"), Some((12, 17)));
        assert_eq!(find_text("a: é${x}", (1, 1), "${x}"), Some((1, 5)));
        assert_eq!(find_text("a", (0, 0), "a"), None);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "",
            "\t{ kind: ",
            "a:\n\t- {",
            "x: '",
            "k: \"\\",
            "{{{{",
            "- -\n-",
            "-",
            "a: [",
            "a: [ ,, ]",
            "a: [ 'x\n  - ",
            "]]]",
            "- [ { ] } ]\n  -\t#",
        ] {
            for from in [(0, 0), (1, 1), (1, 3), (9, 9), (u64::MAX, u64::MAX)] {
                let _ = locate(text, from, &["k", "kind"], true);
                let _ = locate(text, from, &["a", "x"], false);
                for path in [
                    [Seg::Index(0), Seg::Index(1)],
                    [Seg::Key("a"), Seg::Index(usize::MAX)],
                    [Seg::Index(2), Seg::Key("k")],
                ] {
                    let _ = locate_path(text, from, &path, true);
                }
            }
        }
        assert_eq!(locate("\t{ kind: x }", (1, 2), &["kind"], true), (1, 10));
    }
}
