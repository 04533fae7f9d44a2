//! Just enough of a JavaScript lexer to read pieces of a player script: identifiers,
//! numbers, decoded string literals and punctuators, skipping comments, regular-expression
//! and template literals so that their quotes and braces never confuse a brace match.
//!
//! Regex-or-division is decided the usual way (by the previous token); minified player
//! scripts never hit the ambiguous cases.

/// A token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// An identifier or keyword.
    Ident(&'a str),
    /// A numeric literal, as written.
    Num(&'a str),
    /// A string literal, decoded.
    Str(String),
    /// A punctuator.
    Punct(&'static str),
    /// A regular-expression literal (content ignored).
    Regex,
    /// A template literal (content ignored).
    Template,
}

/// Longest first, so that `>>>=` wins over `>>`.
const PUNCTS: &[&str] = &[
    ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=", "=>", "==", "!=",
    "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
    "<<", ">>", "**", "{", "}", "(", ")", "[", "]", ";", ",", "<", ">", "+", "-", "*", "/", "%",
    "&", "|", "^", "!", "~", "?", ":", "=", ".", "@", "#",
];

/// Keywords after which a `/` starts a regular expression.
const REGEX_AFTER: &[&str] = &[
    "return",
    "typeof",
    "case",
    "do",
    "else",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "instanceof",
    "yield",
    "await",
];

/// Deepest `${ … }` nesting inside template literals.
const MAX_TEMPLATE_DEPTH: usize = 16;

/// Lexes `src` from a byte offset.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    regex_ok: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer at `pos` (which must be a token start).
    pub(crate) fn new(src: &'a str, pos: usize) -> Self {
        Lexer {
            src,
            pos,
            regex_ok: true,
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The next token, `Ok(None)` at the end of the input.
    pub(crate) fn next_token(&mut self) -> Result<Option<Tok<'a>>, String> {
        self.next_token_at(0)
    }

    fn next_token_at(&mut self, depth: usize) -> Result<Option<Tok<'a>>, String> {
        self.skip_space_and_comments()?;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let tok = if c == '"' || c == '\'' {
            Tok::Str(self.string(c)?)
        } else if c == '`' {
            self.template(depth)?;
            Tok::Template
        } else if c.is_ascii_digit()
            || (c == '.'
                && self
                    .rest()
                    .as_bytes()
                    .get(1)
                    .is_some_and(u8::is_ascii_digit))
        {
            Tok::Num(self.number())
        } else if is_ident_start(c) {
            Tok::Ident(self.ident())
        } else if c == '/' && self.regex_ok {
            self.regex()?;
            Tok::Regex
        } else if let Some(p) = PUNCTS.iter().find(|p| self.rest().starts_with(**p)) {
            self.pos += p.len();
            Tok::Punct(p)
        } else {
            return Err(format!("unexpected character {c:?} at {}", self.pos));
        };
        self.regex_ok = match &tok {
            Tok::Punct(p) => !matches!(*p, ")" | "]"),
            Tok::Ident(word) => REGEX_AFTER.contains(word),
            _ => false,
        };
        Ok(Some(tok))
    }

    fn skip_space_and_comments(&mut self) -> Result<(), String> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                let end = trimmed.find('\n').unwrap_or(trimmed.len());
                self.pos += end;
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let end = body.find("*/").ok_or("unterminated comment")?;
                self.pos += 2 + end + 2;
            } else {
                return Ok(());
            }
        }
    }

    fn ident(&mut self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .char_indices()
            .find(|&(_, c)| !is_ident_char(c))
            .map_or(rest.len(), |(i, _)| i);
        self.pos += end;
        rest.get(..end).unwrap_or("")
    }

    fn number(&mut self) -> &'a str {
        let rest = self.rest();
        let hex = rest.starts_with("0x") || rest.starts_with("0X");
        let mut end = 0;
        let mut prev = '\0';
        for (i, c) in rest.char_indices() {
            let exponent_sign = !hex && matches!(c, '+' | '-') && matches!(prev, 'e' | 'E');
            if !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || exponent_sign) {
                break;
            }
            end = i + c.len_utf8();
            prev = c;
        }
        self.pos += end;
        rest.get(..end).unwrap_or("")
    }

    /// Reads a quoted string literal starting at the quote and decodes its escapes.
    fn string(&mut self, quote: char) -> Result<String, String> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        let mut pending_high: Option<u32> = None;
        while let Some((i, c)) = chars.next() {
            if c == quote {
                flush_high(&mut out, &mut pending_high);
                self.pos += i + 1;
                return Ok(out);
            }
            match c {
                '\n' | '\r' => break,
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    let unit = match e {
                        'n' => Some('\n' as u32),
                        't' => Some('\t' as u32),
                        'r' => Some('\r' as u32),
                        'b' => Some(8),
                        'f' => Some(12),
                        'v' => Some(11),
                        '0' => Some(0),
                        'x' => Some(hex_digits(&mut chars, 2)?),
                        'u' => Some(unicode_escape(&mut chars)?),
                        // A line continuation adds nothing.
                        '\n' => None,
                        '\r' => {
                            if self
                                .src
                                .get(self.pos + i + 2..)
                                .is_some_and(|r| r.starts_with('\n'))
                            {
                                chars.next();
                            }
                            None
                        }
                        other => Some(other as u32),
                    };
                    if let Some(unit) = unit {
                        push_unit(&mut out, &mut pending_high, unit);
                    }
                }
                c => {
                    flush_high(&mut out, &mut pending_high);
                    out.push(c);
                }
            }
        }
        Err(format!("unterminated string at {start}"))
    }

    /// Skips a template literal, lexing the expressions inside `${ }`.
    fn template(&mut self, depth: usize) -> Result<(), String> {
        if depth >= MAX_TEMPLATE_DEPTH {
            return Err("template literals nested too deep".into());
        }
        let start = self.pos;
        self.pos += 1;
        loop {
            let rest = self.rest();
            let Some(i) = rest.find(['`', '\\', '$']) else {
                return Err(format!("unterminated template at {start}"));
            };
            let tail = rest.get(i..).unwrap_or("");
            if tail.starts_with('`') {
                self.pos += i + 1;
                return Ok(());
            } else if tail.starts_with('\\') {
                let skip = tail.chars().nth(1).map_or(1, |c| 1 + c.len_utf8());
                self.pos += i + skip;
            } else if tail.starts_with("${") {
                self.pos += i + 2;
                self.regex_ok = true;
                let mut braces = 0usize;
                loop {
                    match self.next_token_at(depth + 1)? {
                        None => return Err(format!("unterminated template at {start}")),
                        Some(Tok::Punct("{")) => braces += 1,
                        Some(Tok::Punct("}")) if braces == 0 => break,
                        Some(Tok::Punct("}")) => braces -= 1,
                        Some(_) => {}
                    }
                }
            } else {
                self.pos += i + 1;
            }
        }
    }

    /// Skips a regular-expression literal and its flags.
    fn regex(&mut self) -> Result<(), String> {
        let start = self.pos;
        let mut in_class = false;
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\n' | '\r' => break,
                '[' => in_class = true,
                ']' => in_class = false,
                '/' if !in_class => {
                    self.pos += i + 1;
                    self.ident();
                    return Ok(());
                }
                _ => {}
            }
        }
        Err(format!("unterminated regular expression at {start}"))
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$' || !c.is_ascii()
}

/// Identifier characters, also used for boundaries in text searches.
pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

fn hex_digits(chars: &mut impl Iterator<Item = (usize, char)>, n: usize) -> Result<u32, String> {
    let mut value = 0u32;
    for _ in 0..n {
        let digit = chars
            .next()
            .and_then(|(_, c)| c.to_digit(16))
            .ok_or("bad hex escape")?;
        value = value * 16 + digit;
    }
    Ok(value)
}

/// `\uXXXX` or `\u{X…}` (after the `u`).
fn unicode_escape(chars: &mut impl Iterator<Item = (usize, char)>) -> Result<u32, String> {
    let mut peekable = chars.peekable();
    if peekable.peek().is_some_and(|&(_, c)| c == '{') {
        peekable.next();
        let mut value = 0u32;
        for (count, (_, c)) in peekable.by_ref().enumerate() {
            if c == '}' {
                return Ok(value);
            }
            let digit = c.to_digit(16).ok_or("bad unicode escape")?;
            if count >= 6 {
                return Err("bad unicode escape".into());
            }
            value = value * 16 + digit;
        }
        Err("bad unicode escape".into())
    } else {
        hex_digits(&mut peekable, 4)
    }
}

/// Appends one UTF-16 code unit (or a code point from `\u{}`), pairing surrogates.
fn push_unit(out: &mut String, pending_high: &mut Option<u32>, unit: u32) {
    if (0xD800..0xDC00).contains(&unit) {
        flush_high(out, pending_high);
        *pending_high = Some(unit);
        return;
    }
    if (0xDC00..0xE000).contains(&unit)
        && let Some(high) = pending_high.take()
    {
        let code = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
        return;
    }
    flush_high(out, pending_high);
    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
}

fn flush_high(out: &mut String, pending_high: &mut Option<u32>) {
    if pending_high.take().is_some() {
        out.push('\u{FFFD}');
    }
}

/// Lexes the bracketed group that opens at byte `open` (`{`, `(` or `[`) up to and including
/// its matching close, with at most `max_tokens` tokens.
pub(crate) fn group(src: &str, open: usize, max_tokens: usize) -> Result<Vec<Tok<'_>>, String> {
    read_group(&mut Lexer::new(src, open), max_tokens)
}

/// Like [`group`], from wherever `lexer` is (its next token must open a bracket).
pub(crate) fn read_group<'a>(
    lexer: &mut Lexer<'a>,
    max_tokens: usize,
) -> Result<Vec<Tok<'a>>, String> {
    let mut tokens = Vec::new();
    let mut stack: Vec<&'static str> = Vec::new();
    loop {
        if tokens.len() >= max_tokens {
            return Err(format!("more than {max_tokens} tokens in a group"));
        }
        let tok = lexer.next_token()?.ok_or("group not closed")?;
        if let Tok::Punct(p) = tok {
            match p {
                "{" => stack.push("}"),
                "(" => stack.push(")"),
                "[" => stack.push("]"),
                "}" | ")" | "]" if stack.pop() != Some(p) => {
                    return Err(format!("unbalanced {p:?}"));
                }
                _ => {}
            }
        }
        if tokens.is_empty() && stack.is_empty() {
            return Err("a group must start with a bracket".into());
        }
        tokens.push(tok);
        if stack.is_empty() {
            return Ok(tokens);
        }
    }
}

/// For every opening bracket token, the index of its matching close (and vice versa).
pub(crate) fn match_brackets(tokens: &[Tok<'_>]) -> Result<Vec<Option<usize>>, String> {
    let mut out = vec![None; tokens.len()];
    let mut stack: Vec<(usize, &'static str)> = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        if let Tok::Punct(p) = tok {
            match *p {
                "{" => stack.push((i, "}")),
                "(" => stack.push((i, ")")),
                "[" => stack.push((i, "]")),
                "}" | ")" | "]" => {
                    let (open, want) = stack.pop().ok_or("unbalanced brackets")?;
                    if want != *p {
                        return Err("unbalanced brackets".into());
                    }
                    if let Some(slot) = out.get_mut(open) {
                        *slot = Some(i);
                    }
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(open);
                    }
                }
                _ => {}
            }
        }
    }
    if stack.is_empty() {
        Ok(out)
    } else {
        Err("unbalanced brackets".into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn lex(src: &str) -> Vec<Tok<'_>> {
        let mut lexer = Lexer::new(src, 0);
        let mut out = Vec::new();
        while let Some(t) = lexer.next_token().unwrap() {
            out.push(t);
        }
        out
    }

    #[test]
    fn lexes_minified_code() {
        assert_eq!(
            lex(r#"a=a.split("");Xy.k1(a,43);return a.join('')"#),
            vec![
                Tok::Ident("a"),
                Tok::Punct("="),
                Tok::Ident("a"),
                Tok::Punct("."),
                Tok::Ident("split"),
                Tok::Punct("("),
                Tok::Str(String::new()),
                Tok::Punct(")"),
                Tok::Punct(";"),
                Tok::Ident("Xy"),
                Tok::Punct("."),
                Tok::Ident("k1"),
                Tok::Punct("("),
                Tok::Ident("a"),
                Tok::Punct(","),
                Tok::Num("43"),
                Tok::Punct(")"),
                Tok::Punct(";"),
                Tok::Ident("return"),
                Tok::Ident("a"),
                Tok::Punct("."),
                Tok::Ident("join"),
                Tok::Punct("("),
                Tok::Str(String::new()),
                Tok::Punct(")"),
            ]
        );
    }

    #[test]
    fn decodes_strings() {
        assert_eq!(
            lex(r#""a\"b\\c\x41\u0042\u{43}\n\uD83D\uDE00" 'it\'s'"#),
            vec![Tok::Str("a\"b\\cABC\n😀".into()), Tok::Str("it's".into())]
        );
        assert!(Lexer::new("\"open", 0).next_token().is_err());
        assert!(Lexer::new("\"bad\\x4\"", 0).next_token().is_err());
    }

    #[test]
    fn regex_division_template_comment() {
        let toks = lex(r#"x=a/b;y=/"[{{"]]();/g;z=`a${ {b:"}"} }c`;/* } */ // {"#);
        assert_eq!(
            toks,
            vec![
                Tok::Ident("x"),
                Tok::Punct("="),
                Tok::Ident("a"),
                Tok::Punct("/"),
                Tok::Ident("b"),
                Tok::Punct(";"),
                Tok::Ident("y"),
                Tok::Punct("="),
                Tok::Regex,
                Tok::Punct(";"),
                Tok::Ident("z"),
                Tok::Punct("="),
                Tok::Template,
                Tok::Punct(";"),
            ]
        );
        assert_eq!(lex("1E3+0x1F>>>2")[0], Tok::Num("1E3"));
        assert_eq!(lex("1e-5")[0], Tok::Num("1e-5"));
    }

    #[test]
    fn groups_match_brackets() {
        let src = r#"f={a:function(b){return"}"},c:/}/};rest"#;
        let toks = group(src, 2, 100).unwrap();
        assert_eq!(toks.first(), Some(&Tok::Punct("{")));
        assert_eq!(toks.last(), Some(&Tok::Punct("}")));
        assert_eq!(toks.len(), 16);
        assert!(group("{(}", 0, 100).is_err());
        assert!(group("{{{", 0, 100).is_err());
        assert!(group("{a,b,c,d}", 0, 3).is_err());
        let m = match_brackets(&toks).unwrap();
        assert_eq!(m[0], Some(15));
        assert!(match_brackets(&lex("(]")).is_err());
    }
}
