//! Evaluates the guard of a dispatcher branch, e.g. `(d&28)==d` or `d-6>=15&&(d|5)<31`, for
//! one value of the selector: numbers, one variable, arithmetic, bitwise, comparison and
//! logical operators with JavaScript semantics. Anything else (member access, calls, other
//! variables) is unknown, so the answer is `None` unless short-circuiting decides it.

use super::js::Tok;

/// Deepest nesting the parser follows.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Num(f64),
    Bool(bool),
    Unknown,
}

impl Val {
    fn truthy(self) -> Option<bool> {
        match self {
            Val::Num(n) => Some(n != 0.0 && !n.is_nan()),
            Val::Bool(b) => Some(b),
            Val::Unknown => None,
        }
    }

    fn num(self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(n),
            Val::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            Val::Unknown => None,
        }
    }
}

/// The truth of `tokens` as a JavaScript expression with `name` bound to `value`; `None` if
/// it cannot be parsed or depends on anything else.
pub(crate) fn eval(tokens: &[Tok<'_>], name: &str, value: f64) -> Option<bool> {
    let mut parser = Parser {
        toks: tokens,
        pos: 0,
        name,
        value,
        depth: 0,
    };
    let val = parser.comma().ok()?;
    if parser.pos != tokens.len() {
        return None;
    }
    val.truthy()
}

struct Parser<'t, 'a> {
    toks: &'t [Tok<'a>],
    pos: usize,
    name: &'t str,
    value: f64,
    depth: usize,
}

/// Binary operators by precedence (higher binds tighter).
fn precedence(op: &str) -> Option<u8> {
    Some(match op {
        "||" | "??" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" | "===" | "!==" => 6,
        "<" | ">" | "<=" | ">=" => 7,
        "<<" | ">>" | ">>>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        "**" => 11,
        _ => return None,
    })
}

fn to_int32(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let m = n.trunc().rem_euclid(4_294_967_296.0);
    let m = if m >= 2_147_483_648.0 {
        m - 4_294_967_296.0
    } else {
        m
    };
    m as i32
}

fn to_uint32(n: f64) -> u32 {
    to_int32(n) as u32
}

fn binary(op: &str, a: Val, b: Val) -> Val {
    // Logical operators return an operand and short-circuit on a known left side.
    match op {
        "&&" => {
            return match a.truthy() {
                Some(false) => a,
                Some(true) => b,
                None => Val::Unknown,
            };
        }
        "||" => {
            return match a.truthy() {
                Some(true) => a,
                Some(false) => b,
                None => Val::Unknown,
            };
        }
        "??" => return a,
        "===" | "!==" => {
            let same = match (a, b) {
                (Val::Num(x), Val::Num(y)) => Some(x == y),
                (Val::Bool(x), Val::Bool(y)) => Some(x == y),
                (Val::Unknown, _) | (_, Val::Unknown) => None,
                _ => Some(false),
            };
            return same.map_or(Val::Unknown, |s| Val::Bool(s == (op == "===")));
        }
        _ => {}
    }
    let (Some(x), Some(y)) = (a.num(), b.num()) else {
        return Val::Unknown;
    };
    match op {
        "|" => Val::Num(f64::from(to_int32(x) | to_int32(y))),
        "^" => Val::Num(f64::from(to_int32(x) ^ to_int32(y))),
        "&" => Val::Num(f64::from(to_int32(x) & to_int32(y))),
        "==" => Val::Bool(x == y),
        "!=" => Val::Bool(x != y),
        "<" => Val::Bool(x < y),
        ">" => Val::Bool(x > y),
        "<=" => Val::Bool(x <= y),
        ">=" => Val::Bool(x >= y),
        "<<" => Val::Num(f64::from(to_int32(x).wrapping_shl(to_uint32(y) & 31))),
        ">>" => Val::Num(f64::from(to_int32(x).wrapping_shr(to_uint32(y) & 31))),
        ">>>" => Val::Num(f64::from(to_uint32(x).wrapping_shr(to_uint32(y) & 31))),
        "+" => Val::Num(x + y),
        "-" => Val::Num(x - y),
        "*" => Val::Num(x * y),
        "/" => Val::Num(x / y),
        "%" => Val::Num(x % y),
        "**" => Val::Num(x.powf(y)),
        _ => Val::Unknown,
    }
}

fn number(text: &str) -> Val {
    let text = text.replace('_', "");
    let lower = text.to_ascii_lowercase();
    let radix = |prefix: &str, radix: u32| {
        lower
            .strip_prefix(prefix)
            .and_then(|digits| u64::from_str_radix(digits, radix).ok())
            .map(|n| n as f64)
    };
    let parsed = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
        .or_else(|| lower.parse::<f64>().ok());
    parsed.map_or(Val::Unknown, Val::Num)
}

impl Parser<'_, '_> {
    fn peek_punct(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Punct(p)) => Some(p),
            _ => None,
        }
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.peek_punct() == Some(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), ()> {
        if self.eat(p) { Ok(()) } else { Err(()) }
    }

    fn enter(&mut self) -> Result<(), ()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(())
        } else {
            Ok(())
        }
    }

    fn comma(&mut self) -> Result<Val, ()> {
        let mut val = self.conditional()?;
        while self.eat(",") {
            val = self.conditional()?;
        }
        Ok(val)
    }

    fn conditional(&mut self) -> Result<Val, ()> {
        self.enter()?;
        let cond = self.binary(1)?;
        let val = if self.eat("?") {
            let a = self.conditional()?;
            self.expect(":")?;
            let b = self.conditional()?;
            match cond.truthy() {
                Some(true) => a,
                Some(false) => b,
                None => Val::Unknown,
            }
        } else {
            cond
        };
        self.depth -= 1;
        Ok(val)
    }

    fn binary(&mut self, min: u8) -> Result<Val, ()> {
        self.enter()?;
        let mut lhs = self.unary()?;
        while let Some(op) = self.peek_punct() {
            let Some(prec) = precedence(op).filter(|&p| p >= min) else {
                break;
            };
            self.pos += 1;
            // `**` is right-associative.
            let next = if op == "**" { prec } else { prec + 1 };
            let rhs = self.binary(next)?;
            lhs = binary(op, lhs, rhs);
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Val, ()> {
        self.enter()?;
        let val = match self.toks.get(self.pos) {
            Some(Tok::Punct(op @ ("!" | "-" | "+" | "~"))) => {
                self.pos += 1;
                let v = self.unary()?;
                match *op {
                    "!" => v.truthy().map_or(Val::Unknown, |t| Val::Bool(!t)),
                    "-" => v.num().map_or(Val::Unknown, |n| Val::Num(-n)),
                    "+" => v.num().map_or(Val::Unknown, Val::Num),
                    _ => v
                        .num()
                        .map_or(Val::Unknown, |n| Val::Num(f64::from(!to_int32(n)))),
                }
            }
            Some(Tok::Ident("typeof" | "void")) => {
                self.pos += 1;
                self.unary()?;
                Val::Unknown
            }
            _ => self.postfix()?,
        };
        self.depth -= 1;
        Ok(val)
    }

    fn postfix(&mut self) -> Result<Val, ()> {
        let mut val = self.primary()?;
        loop {
            if self.eat(".") {
                match self.toks.get(self.pos) {
                    Some(Tok::Ident(_)) => self.pos += 1,
                    _ => return Err(()),
                }
                val = Val::Unknown;
            } else if self.eat("[") {
                self.comma()?;
                self.expect("]")?;
                val = Val::Unknown;
            } else if self.eat("(") {
                if !self.eat(")") {
                    self.comma()?;
                    self.expect(")")?;
                }
                val = Val::Unknown;
            } else {
                return Ok(val);
            }
        }
    }

    fn primary(&mut self) -> Result<Val, ()> {
        let tok = self.toks.get(self.pos).ok_or(())?;
        self.pos += 1;
        Ok(match tok {
            Tok::Num(text) => number(text),
            Tok::Ident("true") => Val::Bool(true),
            Tok::Ident("false") => Val::Bool(false),
            Tok::Ident(word) if *word == self.name => Val::Num(self.value),
            Tok::Ident(_) | Tok::Str(_) | Tok::Regex | Tok::Template => Val::Unknown,
            Tok::Punct("(") => {
                let v = self.comma()?;
                self.expect(")")?;
                v
            }
            Tok::Punct(_) => return Err(()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::js::Lexer;
    use super::*;

    fn check(src: &str, d: f64) -> Option<bool> {
        let mut lexer = Lexer::new(src, 0);
        let mut toks = Vec::new();
        while let Some(t) = lexer.next_token().unwrap() {
            toks.push(t);
        }
        eval(&toks, "d", d)
    }

    #[test]
    fn guards_of_real_dispatchers() {
        // Player 4e51e895 (2026-02): VV(4, s) runs the `(d&28)==d` branch only.
        assert_eq!(check("(d&28)==d", 4.0), Some(true));
        assert_eq!(check("(d-1&15)==1", 4.0), Some(false));
        assert_eq!(check("(d|72)==d", 4.0), Some(false));
        assert_eq!(check("d-6>=15&&(d|5)<31", 4.0), Some(false));
        // Player 87644c66 (2025-10): L$(48, s).
        assert_eq!(check("(A|48)==A", 4.0), None);
        assert_eq!(check("(d|48)==d", 48.0), Some(true));
        assert_eq!(check("(d+6&7)==1", 48.0), Some(false));
        assert_eq!(check("!((d^10)>>3)", 10.0), Some(true));
        assert_eq!(check("!(d+5&6)", 48.0), Some(false));
    }

    #[test]
    fn javascript_semantics() {
        assert_eq!(check("-1>>>28==15", 0.0), Some(true));
        assert_eq!(check("~d==-5", 4.0), Some(true));
        assert_eq!(check("1<<33==2", 0.0), Some(true));
        assert_eq!(check("-7%3==-1", 0.0), Some(true));
        assert_eq!(check("true==1&&true!==1", 0.0), Some(true));
        assert_eq!(check("d?0:1", 0.0), Some(true));
        assert_eq!(check("0x10==16&&1E1==10&&2**3**2==512", 0.0), Some(true));
        assert_eq!(check("d/0", 1.0), Some(true));
        assert_eq!(check("0/0", 1.0), Some(false));
    }

    #[test]
    fn unknowns_and_short_circuits() {
        assert_eq!(check("L[38]<-3", 4.0), None);
        assert_eq!(check("d>9&&L[38]<-3", 4.0), Some(false));
        assert_eq!(check("d<9||f(x)", 4.0), Some(true));
        assert_eq!(check("d<9&&f(x)", 4.0), None);
        assert_eq!(check("typeof x===\"undefined\"", 4.0), None);
        assert_eq!(check("d=4", 4.0), None);
        assert_eq!(check("(d", 4.0), None);
        assert_eq!(check("", 4.0), None);
        let deep = format!("{}d{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(check(&deep, 4.0), None);
    }
}
