//! "Did you mean" hints: the known names closest to a misspelt one.
//!
//! Scenario files are written by hand, so most unknown names are typos of a known one
//! (`$presnt`, `config.respons`). One place decides what is "close", so kinds,
//! operators, fixtures and keys all hint alike.

/// Most names a hint offers: more is a list, not a hint.
const MAX_SUGGESTIONS: usize = 3;

/// Edit distance with adjacent transpositions (optimal string alignment): a swapped
/// pair of letters (`reqeust`) is one edit, the commonest typo there is.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one before last (for transpositions), the last, the current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (last[j - 1] + cost).min(last[j] + 1).min(cur[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        before = std::mem::replace(&mut last, cur);
    }
    last[b.len()]
}

/// The largest distance still taken for a typo of `word`: about a third of its length,
/// at least 1 and at most 3, so `ab` does not "mean" `xy` and long names may carry a
/// few slips.
fn budget(word: &str) -> usize {
    (word.chars().count() / 3).clamp(1, 3)
}

/// Up to three candidates close to `word`, closest first (ties in the candidates'
/// order); none when `word` is itself a candidate or nothing is close.
pub fn closest<'a, I>(word: &str, candidates: I) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = budget(word);
    let mut scored: Vec<(usize, usize, &'a str)> = Vec::new();
    for (i, c) in candidates.into_iter().enumerate() {
        if c == word {
            return Vec::new();
        }
        if scored.iter().any(|(_, _, s)| *s == c) {
            continue;
        }
        let d = distance(word, c);
        if d <= limit {
            scored.push((d, i, c));
        }
    }
    scored.sort();
    // Only the nearest: a name one edit away is meant rather than one three away.
    let best = scored.first().map_or(0, |(d, _, _)| *d);
    scored
        .into_iter()
        .take_while(|(d, _, _)| *d == best)
        .take(MAX_SUGGESTIONS)
        .map(|(_, _, c)| c)
        .collect()
}

/// ` (did you mean "x"?)`, ` (did you mean "x" or "y"?)`, or "" when nothing is close:
/// ready to append to a message.
pub fn hint<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    phrase(&closest(word, candidates))
}

/// The hint for suggestions already chosen (callers that rewrite them, e.g. to put a
/// family back in front of a kind).
pub fn phrase<S: AsRef<str>>(suggestions: &[S]) -> String {
    let quoted: Vec<String> = suggestions
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        [init @ .., last] => format!(" (did you mean {} or {last}?)", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "ab"), 2);
        assert_eq!(distance("same", "same"), 0);
        assert_eq!(distance("$presnt", "$present"), 1);
        // A transposition is one edit.
        assert_eq!(distance("reqeust", "request"), 1);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("é", "e"), 1);
    }

    #[test]
    fn closest_takes_only_near_names() {
        let ops = ["$regex", "$type", "$present", "$len", "$gt", "$ge"];
        assert_eq!(closest("$presnt", ops), vec!["$present"]);
        assert_eq!(closest("$regexp", ops), vec!["$regex"]);
        // Short names allow one edit only; equally near names come in the list's order.
        assert_eq!(closest("$gx", ops), vec!["$gt", "$ge"]);
        // Only the nearest are offered.
        assert_eq!(
            closest("pasive-proxy", ["active-proxy", "passive-proxy"]),
            vec!["passive-proxy"]
        );
        assert!(closest("$bogus", ops).is_empty());
        assert!(closest("", ops).is_empty());
        // The word itself is no typo.
        assert!(closest("$len", ops).is_empty());
    }

    #[test]
    fn at_most_three() {
        let many = ["ab1", "ab2", "ab3", "ab4"];
        assert_eq!(closest("ab", many).len(), 3);
    }

    #[test]
    fn hints_read_as_a_question() {
        assert_eq!(
            hint("$presnt", ["$present"]),
            " (did you mean \"$present\"?)"
        );
        assert_eq!(hint("zzz", ["$present"]), "");
        assert_eq!(
            phrase(&["a", "b", "c"]),
            " (did you mean \"a\", \"b\" or \"c\"?)"
        );
    }
}
