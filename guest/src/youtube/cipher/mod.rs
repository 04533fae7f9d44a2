//! The signature transform of a player script (YOUTUBE-NOTES §4), as a permutation.
//!
//! The transform splits the signature into characters, applies helper methods (swap the
//! first character with the one at `b % length`, reverse, drop the first `b`) and joins
//! them again, so it depends only on the length: one evaluation on positions `0..len` maps
//! every signature of that length. Two script shapes are understood:
//!
//! 1. Classic: `X=function(a){a=a.split("");O.k1(a,43);O.k2(a,60);return a.join("")}` with a
//!    helper object `var O={k1:function(a,b){...},...}`.
//! 2. 2026: a global string table `var T="…".split(";")` (or an array of strings) through
//!    which method names are looked up (`L[T[6]](T[21])` is `L.split("")`), and a dispatcher
//!    `VV=function(d,L){…(d&28)==d&&(I=L[T[6]](T[21]),SC[T[70]](I,12),…,F=I[T[48]](T[21]));…
//!    return F}` called as `VV(4,decodeURIComponent(D.s))`. The branch is chosen by
//!    evaluating its guard for the call's selector; every other statement that could change
//!    the result must have a guard that is false for it.
//!
//! Anything else is an error: a wrong signature would give a URL that fails far from here.

mod guard;
mod js;
mod matcher;
mod objects;
mod statements;

use std::collections::HashMap;

use js::Tok;
use matcher::{Matcher, Output, Seq, Step};
use statements::{declared_vars, guarded, has_effect, statements, strip_semicolon};

/// `decodeURIComponent(` occurrences examined for call sites.
const MAX_CALL_SITES: usize = 4096;
/// Distinct candidate functions tried.
const MAX_CANDIDATES: usize = 16;
/// Definitions of one name tried.
const MAX_DEFS: usize = 8;
/// Tokens of one function, object or table.
const MAX_GROUP_TOKENS: usize = 200_000;
/// `=function(` occurrences examined by the classic scan.
const MAX_FUNCTION_SITES: usize = 200_000;

/// One step of the transform, on an array of characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `a.reverse()`.
    Reverse,
    /// `a.splice(0, b)`: drop the first `b`.
    Splice(usize),
    /// `c=a[0]; a[0]=a[b%a.length]; a[b%a.length]=c`.
    Swap(usize),
    /// The same with `a[b]=c` last: identical while `b < a.length`, which is checked.
    SwapInRange(usize),
}

/// What a helper method does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reverse,
    Splice,
    Swap,
    SwapInRange,
}

/// A player's signature transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transform {
    ops: Vec<Op>,
}

impl Transform {
    /// Where each output character comes from, for a signature of `len` characters.
    fn positions(&self, len: usize) -> Result<Vec<usize>, String> {
        let mut v: Vec<usize> = (0..len).collect();
        for op in &self.ops {
            match *op {
                Op::Reverse => v.reverse(),
                Op::Splice(n) => {
                    v.drain(..n.min(v.len()));
                }
                Op::Swap(b) => {
                    if !v.is_empty() {
                        let j = b % v.len();
                        v.swap(0, j);
                    }
                }
                Op::SwapInRange(b) => {
                    if b < v.len() {
                        v.swap(0, b);
                    } else if !v.is_empty() {
                        return Err(format!("swap with {b} beyond a length of {}", v.len()));
                    }
                }
            }
        }
        Ok(v)
    }
}

/// Signs ciphered URLs with one transform, evaluating it once per signature length.
pub(crate) struct Signer {
    transform: Transform,
    positions: HashMap<usize, Vec<usize>>,
}

impl Signer {
    pub(crate) fn new(transform: Transform) -> Self {
        Signer {
            transform,
            positions: HashMap::new(),
        }
    }

    /// The deciphered signature.
    fn sign(&mut self, s: &str) -> Result<String, String> {
        let chars: Vec<char> = s.chars().collect();
        if !self.positions.contains_key(&chars.len()) {
            let positions = self.transform.positions(chars.len())?;
            self.positions.insert(chars.len(), positions);
        }
        let positions = self.positions.get(&chars.len()).ok_or("no positions")?;
        positions
            .iter()
            .map(|&i| {
                chars
                    .get(i)
                    .copied()
                    .ok_or_else(|| "position out of range".to_string())
            })
            .collect()
    }

    /// The URL of a ciphered format: `url` with `ratebypass=yes` (unless present) and the
    /// deciphered signature under `sp`.
    pub(crate) fn signed_url(&mut self, url: &str, sp: &str, s: &str) -> Result<String, String> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("not an http(s) URL: {url:.60}"));
        }
        if sp.is_empty() || !sp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("bad signature parameter name {sp:?}"));
        }
        let sig = self.sign(s)?;
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let has_ratebypass =
            form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "ratebypass");
        let mut out = url.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if !has_ratebypass {
            out.push(sep);
            out.push_str("ratebypass=yes");
            sep = '&';
        }
        out.push(sep);
        out.push_str(sp);
        out.push('=');
        out.extend(form_urlencoded::byte_serialize(sig.as_bytes()));
        Ok(out)
    }
}

/// Finds the signature transform in a player script.
pub(crate) fn find(src: &str) -> Result<Transform, String> {
    let mut script = Script::new(src);
    let calls = call_sites(src);
    let mut found = Vec::new();
    let mut errors = Vec::new();
    if calls.is_empty() {
        // Older players: no recognisable call, but the function itself is distinctive.
        for paren in classic_candidates(src) {
            match script
                .function(paren)
                .and_then(|(params, body)| script.classic(&params, &body))
            {
                Ok(t) => found.push(t),
                Err(e) => errors.push(e),
            }
        }
    } else {
        for call in &calls {
            match script.transform_of_call(call) {
                Ok(t) => found.push(t),
                Err(e) => errors.push(format!("{}: {e}", call.name)),
            }
        }
    }
    errors.append(&mut script.notes);
    let Some(first) = found.first() else {
        if errors.is_empty() {
            return Err("no signature function found".into());
        }
        errors.dedup();
        errors.truncate(4);
        return Err(errors.join("; "));
    };
    if found.iter().any(|t| t != first) {
        return Err("signature functions disagree".into());
    }
    Ok(first.clone())
}

/// A call of the signature function: `NAME(decodeURIComponent(x))` or, for a dispatcher,
/// `NAME(SELECTOR,decodeURIComponent(x))`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call<'a> {
    name: &'a str,
    selector: Option<u64>,
}

/// Identifier-like words before `(` that are not functions.
const NOT_FUNCTIONS: &[&str] = &[
    "if",
    "while",
    "for",
    "switch",
    "return",
    "typeof",
    "case",
    "function",
    "decodeURIComponent",
    "encodeURIComponent",
    "unescape",
    "escape",
    "String",
];

/// The distinct calls on `decodeURIComponent(…)`; if some pass a format's `.s`, only those.
fn call_sites(src: &str) -> Vec<Call<'_>> {
    const NEEDLE: &str = "decodeURIComponent(";
    let mut with_s = Vec::new();
    let mut others = Vec::new();
    for (idx, _) in src.match_indices(NEEDLE).take(MAX_CALL_SITES) {
        let before = src.get(..idx).unwrap_or("");
        let (head, selector) = if let Some(b) = before.strip_suffix(',') {
            let digits_start = b.trim_end_matches(|c: char| c.is_ascii_digit());
            let digits = b.get(digits_start.len()..).unwrap_or("");
            let Some(head) = digits_start.strip_suffix('(') else {
                continue;
            };
            match digits.parse::<u64>() {
                Ok(n) if digits.len() <= 9 => (head, Some(n)),
                _ => continue,
            }
        } else if let Some(head) = before.strip_suffix('(') {
            (head, None)
        } else {
            continue;
        };
        let prefix = head.trim_end_matches(js::is_ident_char);
        let name = head.get(prefix.len()..).unwrap_or("");
        let starts_ok = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if !starts_ok || prefix.ends_with('.') || NOT_FUNCTIONS.contains(&name) {
            continue;
        }
        let after = src.get(idx + NEEDLE.len()..).unwrap_or("");
        let arg = after.trim_start_matches(js::is_ident_char);
        let passes_s = arg.len() < after.len() && arg.starts_with(".s)");
        let call = Call { name, selector };
        let list = if passes_s { &mut with_s } else { &mut others };
        if !list.contains(&call) && list.len() < MAX_CANDIDATES {
            list.push(call);
        }
    }
    if with_s.is_empty() { others } else { with_s }
}

/// Offsets of the `(` of functions shaped `NAME=function(a){a=a.split(`.
fn classic_candidates(src: &str) -> Vec<usize> {
    const NEEDLE: &str = "=function(";
    let mut out = Vec::new();
    for (idx, _) in src.match_indices(NEEDLE).take(MAX_FUNCTION_SITES) {
        let paren = idx + NEEDLE.len() - 1;
        let rest = src.get(paren + 1..).unwrap_or("");
        let param_rest = rest.trim_start_matches(js::is_ident_char);
        let param = rest.get(..rest.len() - param_rest.len()).unwrap_or("");
        if param.is_empty() {
            continue;
        }
        let Some(body) = param_rest.strip_prefix("){") else {
            continue;
        };
        let split = format!("{param}={param}.split(");
        let table_split = format!("{param}={param}[");
        if (body.starts_with(&split) || body.starts_with(&table_split))
            && out.len() < MAX_CANDIDATES
        {
            out.push(paren);
        }
    }
    out
}

/// Offsets where `name` starts a definition `name=…` (not a member, not a longer name).
fn definition_sites<'s>(src: &'s str, pattern: &'s str) -> impl Iterator<Item = usize> + 's {
    src.match_indices(pattern).filter_map(move |(idx, _)| {
        let before = src.get(..idx)?.chars().next_back();
        let boundary = before.is_none_or(|c| !js::is_ident_char(c) && c != '.');
        boundary.then_some(idx)
    })
}

/// The player script with cached string tables and helper objects.
struct Script<'a> {
    src: &'a str,
    tables: HashMap<String, Option<Vec<String>>>,
    helpers: HashMap<String, Result<HashMap<String, Kind>, String>>,
    /// Problems worth reporting if nothing is found.
    notes: Vec<String>,
}

impl<'a> Script<'a> {
    fn new(src: &'a str) -> Self {
        Script {
            src,
            tables: HashMap::new(),
            helpers: HashMap::new(),
            notes: Vec::new(),
        }
    }

    /// The transform a call site leads to (all definitions of the name must agree).
    fn transform_of_call(&mut self, call: &Call<'a>) -> Result<Transform, String> {
        let src = self.src;
        let assigned = format!("{}=function(", call.name);
        let declared = format!("function {}(", call.name);
        let parens: Vec<usize> = definition_sites(src, &assigned)
            .map(|i| i + assigned.len() - 1)
            .chain(definition_sites(src, &declared).map(|i| i + declared.len() - 1))
            .take(MAX_DEFS)
            .collect();
        if parens.is_empty() {
            return Err("definition not found".into());
        }
        let mut found: Option<Transform> = None;
        let mut last_error = String::new();
        for paren in parens {
            let result = self
                .function(paren)
                .and_then(|(params, body)| match call.selector {
                    None => self.classic(&params, &body),
                    Some(selector) => self.dispatcher(&params, &body, selector),
                });
            match result {
                Ok(t) if found.as_ref().is_some_and(|f| *f != t) => {
                    return Err("definitions disagree".into());
                }
                Ok(t) => found = Some(t),
                Err(e) => last_error = e,
            }
        }
        found.ok_or(last_error)
    }

    /// Parameters and body tokens (braces included) of the function whose `(` is at `paren`.
    fn function(&self, paren: usize) -> Result<(Vec<&'a str>, Vec<Tok<'a>>), String> {
        let mut lexer = js::Lexer::new(self.src, paren);
        let params_toks = js::read_group(&mut lexer, 64)?;
        let mut params = Vec::new();
        for tok in params_toks.iter() {
            match tok {
                Tok::Ident(name) => params.push(*name),
                Tok::Punct("(" | ")" | ",") => {}
                _ => return Err("unusual parameter list".into()),
            }
        }
        let body = js::read_group(&mut lexer, MAX_GROUP_TOKENS)?;
        if body.first() != Some(&Tok::Punct("{")) {
            return Err("no function body".into());
        }
        Ok((params, body))
    }

    /// Shape 1: the whole body is the sequence on the first parameter.
    fn classic(&mut self, params: &[&'a str], body: &[Tok<'a>]) -> Result<Transform, String> {
        let input = *params.first().ok_or("no parameter")?;
        let inner = body.get(1..body.len().saturating_sub(1)).unwrap_or(&[]);
        let seq = Matcher::new(inner, params, self)
            .seq(input)
            .ok_or("body is not a split/helpers/join sequence")?;
        if seq.output != Output::Return {
            return Err("sequence does not return".into());
        }
        self.transform(&seq.steps)
    }

    /// Shape 2: the branch of a dispatcher that the selector runs.
    fn dispatcher(
        &mut self,
        params: &[&'a str],
        body: &[Tok<'a>],
        selector: u64,
    ) -> Result<Transform, String> {
        let (Some(&sel), Some(&input)) = (params.first(), params.get(1)) else {
            return Err("a dispatcher takes a selector and the signature".into());
        };
        let inner = body.get(1..body.len().saturating_sub(1)).unwrap_or(&[]);
        let mut locals = params.to_vec();
        locals.extend(declared_vars(inner));
        let statements = statements(inner)?;
        let selector_value = selector as f64;

        let mut chosen: Option<(usize, Seq<'a>)> = None;
        for (i, stmt) in statements.iter().enumerate() {
            let (guard, branch) = guarded(stmt);
            let Some(seq) = Matcher::new(branch, &locals, self).seq(input) else {
                continue;
            };
            let runs = match guard {
                Some(g) => guard::eval(g, sel, selector_value)
                    .ok_or("the guard of a signature branch is not understood")?,
                None => true,
            };
            if runs {
                if chosen.is_some() {
                    return Err(format!(
                        "two signature branches run for selector {selector}"
                    ));
                }
                chosen = Some((i, seq));
            }
        }
        let (index, seq) =
            chosen.ok_or_else(|| format!("no signature branch runs for selector {selector}"))?;

        // Nothing else that runs may change the input before, or the result after.
        let output = match seq.output {
            Output::Assign(out) => {
                let last = statements.last().map(|s| strip_semicolon(s));
                if last != Some(&[Tok::Ident("return"), Tok::Ident(out)][..]) {
                    return Err(format!("the dispatcher does not end with `return {out}`"));
                }
                Some(out)
            }
            Output::Return => None,
        };
        let final_return = if output.is_some() {
            statements.len().checked_sub(1)
        } else {
            None
        };
        for (i, stmt) in statements.iter().enumerate() {
            if i == index || Some(i) == final_return {
                continue;
            }
            let touched = if i < index { Some(input) } else { output };
            if !has_effect(stmt, touched) {
                continue;
            }
            let (guard, _) = guarded(stmt);
            let skipped = guard.and_then(|g| guard::eval(g, sel, selector_value)) == Some(false);
            if !skipped {
                return Err(format!(
                    "statement {i} of the dispatcher may change the signature"
                ));
            }
        }
        self.transform(&seq.steps)
    }

    /// Resolves helper calls to operations.
    fn transform(&mut self, steps: &[Step]) -> Result<Transform, String> {
        let mut ops = Vec::with_capacity(steps.len());
        for step in steps {
            let kind = {
                let helpers = self.helpers(&step.object)?;
                *helpers
                    .get(&step.key)
                    .ok_or_else(|| format!("helper {}.{} not understood", step.object, step.key))?
            };
            let arg = || {
                step.arg
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                    .ok_or_else(|| format!("helper {}.{} needs an argument", step.object, step.key))
            };
            ops.push(match kind {
                Kind::Reverse => Op::Reverse,
                Kind::Splice => Op::Splice(arg()?),
                Kind::Swap => Op::Swap(arg()?),
                Kind::SwapInRange => Op::SwapInRange(arg()?),
            });
        }
        Ok(Transform { ops })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLASSIC: &str = include_str!("../../../tests/fixtures/youtube/player_classic.js");
    const SHAPE_2026: &str = include_str!("../../../tests/fixtures/youtube/player_2026.js");
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    impl Transform {
        fn apply(&self, sig: &str) -> Result<String, String> {
            Signer::new(self.clone()).sign(sig)
        }
    }

    #[test]
    fn classic_shape() {
        let t = find(CLASSIC).unwrap();
        assert_eq!(
            t.ops,
            [
                Op::Swap(43),
                Op::Reverse,
                Op::Splice(3),
                Op::Swap(150),
                Op::Reverse,
                Op::Splice(1)
            ]
        );
        // Expected output from running the script in node.
        assert_eq!(
            t.apply(ALPHABET).unwrap(),
            "BCDEFGHIJKLMNOPQRSTUVWXYZabcdef8hijklmnopqAstuvwxyz01234567g"
        );
    }

    #[test]
    fn shape_2026() {
        let t = find(SHAPE_2026).unwrap();
        assert_eq!(
            t.ops,
            [Op::Swap(12), Op::Reverse, Op::Splice(3), Op::Swap(150)]
        );
        assert_eq!(
            t.apply(ALPHABET).unwrap(),
            "g76543210zyxwvutsrqponmlkjih8fedcbaZYXWVUTSRQPONALKJIHGFEDCBM"
        );
    }

    #[test]
    fn a_later_branch_that_overwrites_the_result_is_refused() {
        // For selector 21 the reverse-only branch runs, but `if(d-6>=15&&(d|5)<31)` then
        // sets F=L (node returns the input unchanged): never guess.
        let script = SHAPE_2026.replace("VV(4,", "VV(21,");
        let err = find(&script).unwrap_err();
        assert!(err.contains("may change the signature"), "{err}");
    }

    #[test]
    fn selectors_without_a_branch_or_with_two() {
        let none = SHAPE_2026.replace("VV(4,", "VV(3,");
        assert!(
            find(&none)
                .unwrap_err()
                .contains("no signature branch runs for selector 3")
        );
        let two = SHAPE_2026.replace("(d^21)==0&&", "(d&4)==4&&");
        assert!(find(&two).unwrap_err().contains("two signature branches"));
    }

    #[test]
    fn call_sites_must_agree() {
        let script = SHAPE_2026.replace(
            "g.Xs=function(a,b,c)",
            "KR=function(a){a=a.split(\"\");SC.Rs(a);return a.join(\"\")};g.Zs=function(E){return KR(decodeURIComponent(E.s))};g.Xs=function(a,b,c)",
        );
        assert_eq!(find(&script), Err("signature functions disagree".into()));
    }

    #[test]
    fn guards_that_depend_on_anything_else_are_refused() {
        let script = SHAPE_2026.replace("(d&28)==d&&(I=", "(L.length>d)&&(I=");
        assert!(find(&script).unwrap_err().contains("guard"));
    }

    #[test]
    fn unknown_shapes_are_errors() {
        let cases = [
            // No call site and nothing classic.
            ("var x=1;", "no signature function found"),
            // A call site whose function is something else.
            (
                "Q=function(a){return a.split(\"\").map(function(c){return c}).join(\"\")};f(Q(decodeURIComponent(h.s)))",
                "Q: body is not a split/helpers/join sequence",
            ),
            // An unknown helper method.
            (
                "var H={p:function(a,b){a.push(b)}};Q=function(a){a=a.split(\"\");H.p(a,3);return a.join(\"\")};m=Q(decodeURIComponent(h.s))",
                "helper H.p not understood",
            ),
            // A helper object that is not there.
            (
                "Q=function(a){a=a.split(\"\");H.p(a,3);return a.join(\"\")};m=Q(decodeURIComponent(h.s))",
                "helper object H not found",
            ),
            // A call without its definition.
            ("m=Q(decodeURIComponent(h.s))", "Q: definition not found"),
        ];
        for (script, want) in cases {
            let err = find(script).unwrap_err();
            assert!(err.contains(want), "{script}: {err}");
        }
    }

    #[test]
    fn array_tables_quoted_keys_and_shorthand_methods() {
        let script = r#"'use strict';var W=["split","","join","rv","sw","sp"],x;
var H={"rv"(a){a.reverse()},sw:function(a,b){var c=a[0];a[0]=a[b%a.length];a[b]=c},'sp':function(a,b){a.splice(0,b)},n:5};
Q=function(d,L){var F;(d|1)==d&&(L=L[W[0]](W[1]),H[W[3]](L,2),H[W[4]](L,3),H[W[5]](L,1),F=L[W[2]](W[1]));return F};
z=Q(1,decodeURIComponent(h.s));"#;
        let t = find(script).unwrap();
        assert_eq!(t.ops, [Op::Reverse, Op::SwapInRange(3), Op::Splice(1)]);
        assert_eq!(t.apply("abcdef").unwrap(), "edfba");
        assert!(t.apply("ab").is_err());
        assert_eq!(t.apply("").unwrap(), "");
    }

    #[test]
    fn ambiguous_tables_are_not_used() {
        let script =
            SHAPE_2026.replace("var SC=", "function k(){var T=\"x;y\".split(\";\")}var SC=");
        let err = find(&script).unwrap_err();
        assert!(
            err.contains("string table T is defined differently twice"),
            "{err}"
        );
    }

    #[test]
    fn swaps_wrap_and_never_panic() {
        let t = Transform {
            ops: vec![
                Op::Swap(usize::MAX),
                Op::Splice(usize::MAX),
                Op::Reverse,
                Op::Swap(7),
            ],
        };
        assert_eq!(t.positions(0).unwrap(), Vec::<usize>::new());
        let t = Transform {
            ops: vec![Op::Swap(7), Op::Reverse, Op::Swap(5)],
        };
        // 7 % 3 = 1: [1,0,2] → reverse [2,0,1] → 5 % 3 = 2: [1,0,2].
        assert_eq!(t.positions(3).unwrap(), [1, 0, 2]);
        assert_eq!(t.positions(1).unwrap(), [0]);
    }

    #[test]
    fn signed_urls() {
        let mut t = Signer::new(Transform {
            ops: vec![Op::Reverse],
        });
        assert_eq!(
            t.signed_url("https://m.example/videoplayback?itag=18", "sig", "AB=")
                .unwrap(),
            "https://m.example/videoplayback?itag=18&ratebypass=yes&sig=%3DBA"
        );
        assert_eq!(
            t.signed_url("https://m.example/v?ratebypass=yes", "signature", "ab")
                .unwrap(),
            "https://m.example/v?ratebypass=yes&signature=ba"
        );
        assert_eq!(
            t.signed_url("http://m.example/v", "sig", "ab").unwrap(),
            "http://m.example/v?ratebypass=yes&sig=ba"
        );
        assert!(t.signed_url("javascript:alert(1)", "sig", "ab").is_err());
        assert!(t.signed_url("https://m/v", "s&x=1", "ab").is_err());
        assert!(t.signed_url("https://m/v", "", "ab").is_err());
    }

    proptest! {
        #[test]
        fn positions_are_a_permutation_prefix(
            ops in proptest::collection::vec((0u8..3, 0usize..300), 0..20),
            len in 0usize..200,
        ) {
            let ops: Vec<Op> = ops
                .into_iter()
                .map(|(k, n)| match k { 0 => Op::Reverse, 1 => Op::Splice(n), _ => Op::Swap(n) })
                .collect();
            let spliced: usize = ops.iter().map(|op| match op { Op::Splice(n) => *n, _ => 0 }).sum();
            let p = Transform { ops }.positions(len).unwrap();
            prop_assert_eq!(p.len(), len.saturating_sub(spliced));
            let mut sorted = p.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), p.len());
            prop_assert!(p.iter().all(|&i| i < len));
        }

        #[test]
        fn any_script_is_safe(script in "(?s).{0,400}") {
            let _ = find(&script);
        }

        #[test]
        fn mangled_players_are_safe(cut in 0usize..1091, byte in any::<u8>()) {
            // Truncate or corrupt the synthetic players anywhere: an answer or an error.
            for src in [CLASSIC, SHAPE_2026] {
                let cut = cut.min(src.len());
                let mut bytes = src.as_bytes().to_vec();
                bytes.truncate(cut);
                let _ = find(&String::from_utf8_lossy(&bytes));
                let mut bytes = src.as_bytes().to_vec();
                if let Some(b) = bytes.get_mut(cut) {
                    *b = byte;
                }
                let _ = find(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
