//! The player's string tables and helper objects, found by name.

use std::collections::HashMap;

use super::js::{self, Tok};
use super::matcher::{Matcher, match_reverse, match_splice, match_swap};
use super::{Kind, MAX_DEFS, MAX_GROUP_TOKENS, Script, definition_sites};

/// Assignments examined when looking for a string table.
const MAX_TABLE_SITES: usize = 20_000;

impl<'a> Script<'a> {
    /// The understood methods of the helper object `name` (all definitions must agree).
    pub(super) fn helpers(&mut self, name: &str) -> Result<&HashMap<String, Kind>, String> {
        if !self.helpers.contains_key(name) {
            let result = self.parse_helpers(name);
            self.helpers.insert(name.to_string(), result);
        }
        match self.helpers.get(name) {
            Some(Ok(map)) => Ok(map),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("helper object {name} not found")),
        }
    }

    fn parse_helpers(&mut self, name: &str) -> Result<HashMap<String, Kind>, String> {
        let src = self.src;
        let pattern = format!("{name}={{");
        let opens: Vec<usize> = definition_sites(src, &pattern)
            .map(|i| i + pattern.len() - 1)
            .take(MAX_DEFS)
            .collect();
        // Objects without a known method are other objects of the same (short) name.
        let mut merged: Option<HashMap<String, Kind>> = None;
        let mut any_object = false;
        for open in opens {
            let Ok(tokens) = js::group(src, open, MAX_GROUP_TOKENS) else {
                continue;
            };
            let Some(methods) = self.object_methods(&tokens) else {
                continue;
            };
            any_object = true;
            if methods.is_empty() {
                continue;
            }
            match &merged {
                Some(m) if *m != methods => {
                    return Err(format!("helper object {name} is defined differently twice"));
                }
                _ => merged = Some(methods),
            }
        }
        match merged {
            Some(methods) => Ok(methods),
            None if any_object => Ok(HashMap::new()),
            None => Err(format!("helper object {name} not found")),
        }
    }

    /// The classified methods of an object literal (`None` if it is not one).
    fn object_methods(&mut self, tokens: &[Tok<'a>]) -> Option<HashMap<String, Kind>> {
        let matches = js::match_brackets(tokens).ok()?;
        let mut out = HashMap::new();
        let end = tokens.len().checked_sub(1)?;
        let mut i = 1;
        while i < end {
            let key = match tokens.get(i)? {
                Tok::Ident(k) | Tok::Num(k) => (*k).to_string(),
                Tok::Str(k) => k.clone(),
                _ => return None,
            };
            i += 1;
            let method = if tokens.get(i) == Some(&Tok::Punct(":")) {
                i += 1;
                if tokens.get(i) == Some(&Tok::Ident("function")) {
                    i += 1;
                    if let Some(Tok::Ident(_)) = tokens.get(i) {
                        i += 1;
                    }
                    true
                } else {
                    false
                }
            } else {
                // Method shorthand: `key(a,b){...}`.
                tokens.get(i) == Some(&Tok::Punct("("))
            };
            if method {
                let params_close = (*matches.get(i)?)?;
                let params: Vec<&'a str> = tokens
                    .get(i + 1..params_close)?
                    .iter()
                    .filter_map(|t| match t {
                        Tok::Ident(p) => Some(*p),
                        _ => None,
                    })
                    .collect();
                let body_open = params_close + 1;
                if tokens.get(body_open) != Some(&Tok::Punct("{")) {
                    return None;
                }
                let body_close = (*matches.get(body_open)?)?;
                let body = tokens.get(body_open + 1..body_close)?;
                if let Some(kind) = self.classify(&params, body) {
                    out.insert(key, kind);
                }
                i = body_close + 1;
            } else {
                // Some other value: skip to the next top-level comma.
                while i < end && tokens.get(i) != Some(&Tok::Punct(",")) {
                    i = match matches.get(i) {
                        Some(Some(close)) if *close > i => close + 1,
                        _ => i + 1,
                    };
                }
            }
            match tokens.get(i)? {
                Tok::Punct(",") => i += 1,
                _ if i == end => {}
                _ => return None,
            }
        }
        Some(out)
    }

    /// What a helper method body does, if it is one of the known three.
    fn classify(&mut self, params: &[&'a str], body: &[Tok<'a>]) -> Option<Kind> {
        let (&a, b) = (params.first()?, params.get(1).copied());
        (0..3).find_map(|shape| {
            let mut m = Matcher::new(body, params, self);
            let kind = match shape {
                0 => match_reverse(&mut m, a),
                1 => match_splice(&mut m, a, b?),
                _ => match_swap(&mut m, a, b?),
            }?;
            m.eat(";");
            m.at_end().then_some(kind)
        })
    }

    /// The string table `name` (`var T="…".split(d)` or `var T=["…",…]`), if it has
    /// exactly one definition.
    pub(super) fn table(&mut self, name: &str) -> Option<&Vec<String>> {
        if !self.tables.contains_key(name) {
            let table = self.find_table(name);
            self.tables.insert(name.to_string(), table);
        }
        self.tables.get(name)?.as_ref()
    }

    fn find_table(&mut self, name: &str) -> Option<Vec<String>> {
        let src = self.src;
        let pattern = format!("{name}=");
        let mut found: Option<Vec<String>> = None;
        for idx in definition_sites(src, &pattern).take(MAX_TABLE_SITES) {
            let value = idx + pattern.len();
            let table = match src.get(value..).and_then(|r| r.chars().next()) {
                Some('"' | '\'') => split_table(src, value),
                Some('[') => array_table(src, value),
                _ => None,
            };
            let Some(table) = table else { continue };
            match &found {
                Some(f) if *f != table => {
                    self.notes
                        .push(format!("string table {name} is defined differently twice"));
                    return None;
                }
                _ => found = Some(table),
            }
        }
        found
    }
}

/// `"…".split("d")` at `at`.
fn split_table(src: &str, at: usize) -> Option<Vec<String>> {
    let mut lexer = js::Lexer::new(src, at);
    let mut next = || lexer.next_token().ok().flatten();
    let Some(Tok::Str(text)) = next() else {
        return None;
    };
    if next()? != Tok::Punct(".") || next()? != Tok::Ident("split") || next()? != Tok::Punct("(") {
        return None;
    }
    let Some(Tok::Str(delim)) = next() else {
        return None;
    };
    if next()? != Tok::Punct(")") {
        return None;
    }
    Some(if delim.is_empty() {
        text.chars().map(String::from).collect()
    } else {
        text.split(delim.as_str()).map(String::from).collect()
    })
}

/// `["…","…",…]` at `at` (strings only; stops at the first other token).
fn array_table(src: &str, at: usize) -> Option<Vec<String>> {
    let mut lexer = js::Lexer::new(src, at);
    let mut next = || lexer.next_token().ok().flatten();
    if next()? != Tok::Punct("[") {
        return None;
    }
    let mut out = Vec::new();
    loop {
        match next()? {
            Tok::Str(s) if out.len() < MAX_GROUP_TOKENS => out.push(s),
            _ => return None,
        }
        match next()? {
            Tok::Punct(",") => {}
            Tok::Punct("]") => return Some(out),
            _ => return None,
        }
    }
}
