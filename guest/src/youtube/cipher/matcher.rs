//! Token patterns of the signature code: the split/helpers/join sequence and the three
//! helper method bodies, with method names resolved through string tables.

use super::js::Tok;
use super::{Kind, Script};

/// Helper calls in one transform.
const MAX_OPS: usize = 256;

/// A helper call of the transform: `object.key(work, arg)`.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) object: String,
    pub(super) key: String,
    pub(super) arg: Option<u64>,
}

/// How the transformed array leaves the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Output<'a> {
    Return,
    Assign(&'a str),
}

/// `w=input.split("")`, helper calls on `w`, then `return w.join("")` or `out=w.join("")`.
#[derive(Debug, Clone)]
pub(super) struct Seq<'a> {
    pub(super) steps: Vec<Step>,
    pub(super) output: Output<'a>,
}

/// A cursor over tokens that resolves method names through string tables.
pub(super) struct Matcher<'t, 'a, 's> {
    toks: &'t [Tok<'a>],
    pos: usize,
    locals: &'t [&'a str],
    script: &'s mut Script<'a>,
}

impl<'t, 'a, 's> Matcher<'t, 'a, 's> {
    pub(super) fn new(
        toks: &'t [Tok<'a>],
        locals: &'t [&'a str],
        script: &'s mut Script<'a>,
    ) -> Self {
        Matcher {
            toks,
            pos: 0,
            locals,
            script,
        }
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos == self.toks.len()
    }

    pub(super) fn eat(&mut self, p: &str) -> bool {
        if matches!(self.toks.get(self.pos), Some(Tok::Punct(q)) if *q == p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                Some(*name)
            }
            _ => None,
        }
    }

    /// The identifier `word` (nothing is consumed on a mismatch).
    fn word(&mut self, word: &str) -> Option<()> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(w)) if *w == word => {
                self.pos += 1;
                Some(())
            }
            _ => None,
        }
    }

    fn punct(&mut self, p: &str) -> Option<()> {
        self.eat(p).then_some(())
    }

    fn num(&mut self) -> Option<u64> {
        match self.toks.get(self.pos) {
            Some(Tok::Num(text)) if text.bytes().all(|b| b.is_ascii_digit()) => {
                self.pos += 1;
                text.parse().ok()
            }
            _ => None,
        }
    }

    /// A string: a literal or `T[n]` of a global string table.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        let out = self.string_inner();
        if out.is_none() {
            self.pos = start;
        }
        out
    }

    fn string_inner(&mut self) -> Option<String> {
        match self.toks.get(self.pos)? {
            Tok::Str(s) => {
                self.pos += 1;
                Some(s.clone())
            }
            Tok::Ident(table) if !self.locals.contains(table) => {
                let table = *table;
                self.pos += 1;
                self.punct("[")?;
                let n = usize::try_from(self.num()?).ok()?;
                self.punct("]")?;
                self.script.table(table)?.get(n).cloned()
            }
            _ => None,
        }
    }

    /// A property name: `.name`, `["name"]` or `[T[n]]`.
    fn key(&mut self) -> Option<String> {
        let start = self.pos;
        let out = if self.eat(".") {
            self.ident().map(String::from)
        } else if self.eat("[") {
            self.string().filter(|_| self.eat("]"))
        } else {
            None
        };
        if out.is_none() {
            self.pos = start;
        }
        out
    }

    fn key_is(&mut self, name: &str) -> Option<()> {
        (self.key()? == name).then_some(())
    }

    /// `(""​)` (a literal or a table entry).
    fn empty_string_arg(&mut self) -> Option<()> {
        self.punct("(")?;
        (self.string()?.is_empty()).then_some(())?;
        self.punct(")")
    }

    /// The whole remaining input as a split/helpers/join sequence on `input`.
    pub(super) fn seq(&mut self, input: &str) -> Option<Seq<'a>> {
        self.declaration();
        let work = self.ident()?;
        self.punct("=")?;
        self.word(input)?;
        self.key_is("split")?;
        self.empty_string_arg()?;
        let mut steps = Vec::new();
        loop {
            if !(self.eat(",") || self.eat(";")) {
                return None;
            }
            let start = self.pos;
            if self.word("return").is_some() {
                self.word(work)?;
                self.key_is("join")?;
                self.empty_string_arg()?;
                self.eat(";");
                return self.at_end().then_some(Seq {
                    steps,
                    output: Output::Return,
                });
            }
            self.pos = start;
            if let Some(out) = self.join_assignment(work) {
                self.eat(";");
                return self.at_end().then_some(Seq {
                    steps,
                    output: Output::Assign(out),
                });
            }
            self.pos = start;
            let object = self.ident()?;
            let key = self.key()?;
            self.punct("(")?;
            self.word(work)?;
            let arg = if self.eat(",") {
                Some(self.num()?)
            } else {
                None
            };
            self.punct(")")?;
            if steps.len() >= MAX_OPS {
                return None;
            }
            steps.push(Step {
                object: object.to_string(),
                key,
                arg,
            });
        }
    }

    /// Skips `var`, `let` or `const`.
    fn declaration(&mut self) {
        let _ = self
            .word("var")
            .or_else(|| self.word("let"))
            .or_else(|| self.word("const"));
    }

    /// `[var ]out=work.join("")`.
    fn join_assignment(&mut self, work: &str) -> Option<&'a str> {
        self.declaration();
        let out = self.ident()?;
        self.punct("=")?;
        self.word(work)?;
        self.key_is("join")?;
        self.empty_string_arg()?;
        Some(out)
    }
}

/// `a.reverse()` (optionally returned).
pub(super) fn match_reverse<'a>(m: &mut Matcher<'_, 'a, '_>, a: &'a str) -> Option<Kind> {
    m.word("return");
    m.word(a)?;
    m.key_is("reverse")?;
    m.punct("(")?;
    m.punct(")")?;
    Some(Kind::Reverse)
}

/// `a.splice(0,b)` (optionally returned).
pub(super) fn match_splice<'a>(
    m: &mut Matcher<'_, 'a, '_>,
    a: &'a str,
    b: &'a str,
) -> Option<Kind> {
    m.word("return");
    m.word(a)?;
    m.key_is("splice")?;
    m.punct("(")?;
    (m.num()? == 0).then_some(())?;
    m.punct(",")?;
    m.word(b)?;
    m.punct(")")?;
    Some(Kind::Splice)
}

/// `var c=a[0];a[0]=a[b%a.length];a[b%a.length]=c` (or `a[b]=c` last).
pub(super) fn match_swap<'a>(m: &mut Matcher<'_, 'a, '_>, a: &'a str, b: &'a str) -> Option<Kind> {
    let zero_index = |m: &mut Matcher<'_, 'a, '_>| -> Option<()> {
        m.punct("[")?;
        (m.num()? == 0).then_some(())?;
        m.punct("]")
    };
    let modulo_index = |m: &mut Matcher<'_, 'a, '_>| -> Option<()> {
        m.punct("[")?;
        m.word(b)?;
        m.punct("%")?;
        m.word(a)?;
        m.key_is("length")?;
        m.punct("]")
    };
    let sep =
        |m: &mut Matcher<'_, 'a, '_>| -> Option<()> { (m.eat(";") || m.eat(",")).then_some(()) };
    m.word("var")?;
    let c = m.ident()?;
    m.punct("=")?;
    m.word(a)?;
    zero_index(m)?;
    sep(m)?;
    m.word(a)?;
    zero_index(m)?;
    m.punct("=")?;
    m.word(a)?;
    modulo_index(m)?;
    sep(m)?;
    m.word(a)?;
    let start = m.pos;
    let kind = if modulo_index(m).is_some() {
        Kind::Swap
    } else {
        m.pos = start;
        m.punct("[")?;
        m.word(b)?;
        m.punct("]")?;
        Kind::SwapInRange
    };
    m.punct("=")?;
    m.word(c)?;
    Some(kind)
}
