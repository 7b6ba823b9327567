//! Search text: one normalisation for both backends, so that a path such as
//! `ci/deploy-prod.v2` splits into the same words on SQLite's FTS5 and on
//! PostgreSQL's text search (whose default parser would keep `/a/b` whole).

/// Lowercases `text` and turns every run of non-alphanumeric characters into
/// one space, appending the words to `out`.
fn push_words(text: &str, out: &mut String) {
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
}

/// The indexed text of an invocation: the words of its skill name and of its
/// workflow path, lowercase, separated by single spaces.
pub fn search_text(skill_name: &str, workflow_path: Option<&str>) -> String {
    let mut out = String::new();
    push_words(skill_name, &mut out);
    if let Some(path) = workflow_path {
        push_words(path, &mut out);
    }
    out
}

/// One word of a search; all words must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    /// Lowercase letters and digits only, so it can never be query syntax.
    pub word: String,
    /// `true` when the user wrote `word*`: any indexed word starting with it.
    pub prefix: bool,
}

/// Reads what a user typed as literal words. Quotes, `AND`, `OR`, `NEAR`,
/// `-`, `:` and parentheses are not operators: punctuation separates words
/// and operator names are words. A `*` ending a word asks for prefix search.
pub fn parse_search_query(input: &str) -> Vec<SearchTerm> {
    let mut terms: Vec<SearchTerm> = Vec::new();
    for chunk in input.split_whitespace() {
        let prefix = chunk.ends_with('*');
        let mut words = String::new();
        push_words(chunk, &mut words);
        let parts: Vec<&str> = words.split(' ').filter(|w| !w.is_empty()).collect();
        let last = parts.len().saturating_sub(1);
        for (i, word) in parts.iter().enumerate() {
            let term = SearchTerm {
                word: (*word).to_owned(),
                prefix: prefix && i == last,
            };
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_words() {
        assert_eq!(
            search_text("Deploy", Some("ci/deploy-prod.v2")),
            "deploy ci deploy prod v2"
        );
        assert_eq!(search_text("x", Some("/a/b")), "x a b");
        assert_eq!(search_text("Ünïcode_名前", None), "ünïcode 名前");
    }

    #[test]
    fn hostile_input_becomes_plain_words() {
        let t = parse_search_query("\"deploy\" AND (prod OR -x) NEAR: v2*");
        let words: Vec<_> = t.iter().map(|t| (t.word.as_str(), t.prefix)).collect();
        assert_eq!(
            words,
            [
                ("deploy", false),
                ("and", false),
                ("prod", false),
                ("or", false),
                ("x", false),
                ("near", false),
                ("v2", true)
            ]
        );
        assert!(parse_search_query("*** \" ( ) -").is_empty());
    }
}
