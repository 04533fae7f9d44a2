//! Statement structure of a function body: top-level statements, their guards, and
//! whether they could change a value. Enough to reason about a dispatcher's branches.

use super::js::{self, Tok};

/// Names declared with `var`/`let`/`const` anywhere in `tokens`.
pub(super) fn declared_vars<'a>(tokens: &[Tok<'a>]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut declaring = false;
    let mut depth = 0usize;
    let mut expect_name = false;
    for tok in tokens {
        match tok {
            Tok::Ident("var" | "let" | "const") => {
                declaring = true;
                expect_name = true;
                depth = 0;
            }
            Tok::Ident(name) if declaring && expect_name && depth == 0 => {
                out.push(*name);
                expect_name = false;
            }
            Tok::Punct("(" | "[" | "{") if declaring => depth += 1,
            Tok::Punct(")" | "]" | "}") if declaring => {
                if depth == 0 {
                    declaring = false;
                } else {
                    depth -= 1;
                }
            }
            Tok::Punct(",") if declaring && depth == 0 => expect_name = true,
            Tok::Punct(";") if declaring && depth == 0 => declaring = false,
            _ => {}
        }
    }
    out
}

/// The statements of a function body (a top-level statement parser: blocks, `if`/`else`,
/// loops, `try`, labels, and expression statements up to `;`).
pub(super) fn statements<'t, 'a>(tokens: &'t [Tok<'a>]) -> Result<Vec<&'t [Tok<'a>]>, String> {
    let matches = js::match_brackets(tokens)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let end = statement_end(tokens, &matches, i, 0)?;
        out.push(tokens.get(i..end).ok_or("bad statement")?);
        i = end;
    }
    Ok(out)
}

fn statement_end(
    tokens: &[Tok<'_>],
    matches: &[Option<usize>],
    i: usize,
    depth: usize,
) -> Result<usize, String> {
    if depth > 64 {
        return Err("statements nested too deep".into());
    }
    let after_group = |open: usize| -> Result<usize, String> {
        match matches.get(open) {
            Some(Some(close)) if *close > open => Ok(close + 1),
            _ => Err("expected a bracket".into()),
        }
    };
    let next = |j: usize| statement_end(tokens, matches, j, depth + 1);
    Ok(match tokens.get(i) {
        None => i,
        Some(Tok::Punct("{")) => after_group(i)?,
        Some(Tok::Punct(";")) => i + 1,
        Some(Tok::Ident("if")) => {
            let end = next(after_group(i + 1)?)?;
            if tokens.get(end) == Some(&Tok::Ident("else")) {
                next(end + 1)?
            } else {
                end
            }
        }
        Some(Tok::Ident("for" | "while" | "with")) => next(after_group(i + 1)?)?,
        Some(Tok::Ident("switch")) => after_group(after_group(i + 1)?)?,
        Some(Tok::Ident("do")) => {
            let body_end = next(i + 1)?;
            let cond_end = after_group(body_end + 1)?;
            if tokens.get(cond_end) == Some(&Tok::Punct(";")) {
                cond_end + 1
            } else {
                cond_end
            }
        }
        Some(Tok::Ident("try")) => {
            let mut end = after_group(i + 1)?;
            if tokens.get(end) == Some(&Tok::Ident("catch")) {
                end = if tokens.get(end + 1) == Some(&Tok::Punct("(")) {
                    after_group(after_group(end + 1)?)?
                } else {
                    after_group(end + 1)?
                };
            }
            if tokens.get(end) == Some(&Tok::Ident("finally")) {
                end = after_group(end + 1)?;
            }
            end
        }
        Some(Tok::Ident("function")) => {
            let mut j = i + 1;
            if let Some(Tok::Ident(_)) = tokens.get(j) {
                j += 1;
            }
            after_group(after_group(j)?)?
        }
        Some(Tok::Ident(_)) if tokens.get(i + 1) == Some(&Tok::Punct(":")) => next(i + 2)?,
        Some(_) => {
            // An expression statement: up to `;` or the end of the enclosing block.
            let mut j = i;
            loop {
                match tokens.get(j) {
                    None => break j,
                    Some(Tok::Punct(";")) => break j + 1,
                    Some(Tok::Punct("}" | ")" | "]")) => {
                        return Err("unbalanced statement".into());
                    }
                    Some(Tok::Punct("{" | "(" | "[")) => j = after_group(j)?,
                    Some(_) => j += 1,
                }
            }
        }
    })
}

pub(super) fn strip_semicolon<'t, 'a>(stmt: &'t [Tok<'a>]) -> &'t [Tok<'a>] {
    match stmt.split_last() {
        Some((Tok::Punct(";"), rest)) => rest,
        _ => stmt,
    }
}

/// Splits `if(G){B}`, `if(G)B` and `G&&(B)` into guard and body; else no guard.
pub(super) fn guarded<'t, 'a>(stmt: &'t [Tok<'a>]) -> (Option<&'t [Tok<'a>]>, &'t [Tok<'a>]) {
    let stmt = strip_semicolon(stmt);
    let Ok(matches) = js::match_brackets(stmt) else {
        return (None, stmt);
    };
    let close_of = |i: usize| matches.get(i).copied().flatten();
    if stmt.first() == Some(&Tok::Ident("if"))
        && stmt.get(1) == Some(&Tok::Punct("("))
        && let Some(close) = close_of(1)
    {
        // With an `else`, something runs either way: no guard.
        let then_end = statement_end(stmt, &matches, close + 1, 0);
        if then_end.map_or(true, |end| end < stmt.len()) {
            return (None, stmt);
        }
        let guard = stmt.get(2..close).unwrap_or(&[]);
        let last = stmt.len() - 1;
        let body =
            if stmt.get(close + 1) == Some(&Tok::Punct("{")) && close_of(close + 1) == Some(last) {
                stmt.get(close + 2..last).unwrap_or(&[])
            } else {
                stmt.get(close + 1..).unwrap_or(&[])
            };
        return (Some(guard), strip_semicolon(body));
    }
    // `G&&(B)`: the last top-level `&&` followed by a group that ends the statement.
    let last = stmt.len().saturating_sub(1);
    let mut depth = 0usize;
    let mut split = None;
    for (i, tok) in stmt.iter().enumerate() {
        match tok {
            Tok::Punct("(" | "[" | "{") => depth += 1,
            Tok::Punct(")" | "]" | "}") => depth = depth.saturating_sub(1),
            Tok::Punct("&&")
                if depth == 0
                    && stmt.get(i + 1) == Some(&Tok::Punct("("))
                    && close_of(i + 1) == Some(last) =>
            {
                split = Some(i);
            }
            _ => {}
        }
    }
    match split {
        Some(i) => (stmt.get(..i), stmt.get(i + 2..last).unwrap_or(&[])),
        None => (None, stmt),
    }
}

/// Whether a statement may end the function or assign `name` (outside nested functions).
pub(super) fn has_effect(stmt: &[Tok<'_>], name: Option<&str>) -> bool {
    let matches = js::match_brackets(stmt).unwrap_or_default();
    let mut i = 0;
    while let Some(tok) = stmt.get(i) {
        match tok {
            Tok::Ident("return" | "throw") => return true,
            // Skip nested function bodies: their returns are not ours.
            Tok::Ident("function") | Tok::Punct("=>") => {
                let open = stmt
                    .iter()
                    .skip(i)
                    .position(|t| *t == Tok::Punct("{"))
                    .map(|p| p + i);
                let arrow_expr = *tok == Tok::Punct("=>") && open != Some(i + 1);
                match open.and_then(|o| matches.get(o).copied().flatten()) {
                    Some(close) if !arrow_expr => {
                        i = close + 1;
                        continue;
                    }
                    _ => {}
                }
            }
            Tok::Ident(word) if Some(*word) == name => {
                let member = i > 0 && stmt.get(i - 1) == Some(&Tok::Punct("."));
                let assigns = matches!(
                    stmt.get(i + 1),
                    Some(Tok::Punct(p)) if p.ends_with('=') && !matches!(*p, "==" | "===" | "!=" | "!==" | "<=" | ">=")
                );
                if assigns && !member {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}
