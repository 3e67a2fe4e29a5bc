//! The tiny typed expression language of generated cases (`{{ min(pub, max(s1, s2)) }}`):
//! integers, booleans, strings, parameter names, `min`/`max`, `+ -`, comparisons, `&& || !`
//! and `c ? a : b`. Parsed and type-checked once at load, evaluated per combination.

use std::collections::BTreeMap;
use std::fmt;

/// A value of the language (also the type of a matrix parameter's values).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// A whole number.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A string (a quoted literal or a string parameter).
    Str(String),
}

impl Value {
    /// The type of this value.
    pub fn ty(&self) -> Ty {
        match self {
            Value::Int(_) => Ty::Int,
            Value::Bool(_) => Ty::Bool,
            Value::Str(_) => Ty::Str,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// The three types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Integers.
    Int,
    /// Booleans.
    Bool,
    /// Strings.
    Str,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Ty::Int => "integer",
            Ty::Bool => "boolean",
            Ty::Str => "string",
        })
    }
}

/// A parse, type or evaluation error at a character offset of the expression text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// 0-based character offset in the expression.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

fn err<T>(at: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        at,
        message: message.into(),
    })
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A literal.
    Lit(Value),
    /// A parameter, with its offset.
    Name(String, usize),
    /// `!e` or `-e`, with the operator's offset.
    Not(Box<Expr>, usize),
    /// Negation.
    Neg(Box<Expr>, usize),
    /// A binary operation, with the operator's offset.
    Bin(Bin, Box<Expr>, Box<Expr>, usize),
    /// `min(..)` / `max(..)`: `true` for max.
    MinMax(bool, Vec<Expr>, usize),
    /// `c ? a : b`.
    If(Box<Expr>, Box<Expr>, Box<Expr>, usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Str(String),
    Name(String),
    Op(&'static str),
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    const OPS: [&str; 17] = [
        "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "!", "(", ")", ",", "?", ":", "=",
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let n = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
                Some(h) => i64::from_str_radix(h, 16),
                None => word.parse::<i64>(),
            };
            match n {
                Ok(n) => out.push((Tok::Int(n), start)),
                Err(_) => return err(start, format!("`{word}` is not an integer")),
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), start));
        } else if c == '"' || c == '\'' {
            let start = i;
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != c {
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return err(start, "unterminated string");
            }
            i += 1;
            out.push((Tok::Str(s), start));
        } else {
            let rest: String = chars[i..].iter().take(2).collect();
            match OPS.iter().find(|op| rest.starts_with(**op)) {
                Some(&"=") => return err(i, "`=` is not an operator (compare with `==`)"),
                Some(op) => {
                    out.push((Tok::Op(op), i));
                    i += op.len();
                }
                None => return err(i, format!("unexpected character `{c}`")),
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.end)
    }
    fn eat(&mut self, op: &'static str) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, op: &'static str) -> Result<(), ExprError> {
        if self.eat(op) {
            Ok(())
        } else {
            err(self.at(), format!("expected `{op}`"))
        }
    }

    fn ternary(&mut self) -> Result<Expr, ExprError> {
        let c = self.binary(0)?;
        let at = self.at();
        if self.eat("?") {
            let a = self.ternary()?;
            self.expect(":")?;
            let b = self.ternary()?;
            return Ok(Expr::If(Box::new(c), Box::new(a), Box::new(b), at));
        }
        Ok(c)
    }

    /// Precedence climbing: `||` < `&&` < comparisons < `+ -`.
    fn binary(&mut self, level: usize) -> Result<Expr, ExprError> {
        const LEVELS: [&[(&str, Bin)]; 4] = [
            &[("||", Bin::Or)],
            &[("&&", Bin::And)],
            &[
                ("==", Bin::Eq),
                ("!=", Bin::Ne),
                ("<=", Bin::Le),
                (">=", Bin::Ge),
                ("<", Bin::Lt),
                (">", Bin::Gt),
            ],
            &[("+", Bin::Add), ("-", Bin::Sub)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let at = self.at();
            let Some(&(_, op)) = LEVELS[level]
                .iter()
                .find(|(s, _)| self.peek() == Some(&Tok::Op(s)))
            else {
                return Ok(left);
            };
            self.pos += 1;
            let right = self.binary(level + 1)?;
            // Comparisons do not chain (`a < b < c` is an error, not a surprise).
            if level == 2
                && LEVELS[2]
                    .iter()
                    .any(|(s, _)| self.peek() == Some(&Tok::Op(s)))
            {
                return err(self.at(), "comparisons do not chain: use `&&`");
            }
            left = Expr::Bin(op, Box::new(left), Box::new(right), at);
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        let at = self.at();
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?), at));
        }
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?), at));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let at = self.at();
        let Some(tok) = self.peek().cloned() else {
            return err(at, "expected a value");
        };
        self.pos += 1;
        match tok {
            Tok::Int(n) => Ok(Expr::Lit(Value::Int(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::Str(s))),
            Tok::Op("(") => {
                let e = self.ternary()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Name(n) if n == "true" || n == "false" => Ok(Expr::Lit(Value::Bool(n == "true"))),
            Tok::Name(n) if (n == "min" || n == "max") && self.eat("(") => {
                let mut args = vec![self.ternary()?];
                while self.eat(",") {
                    args.push(self.ternary()?);
                }
                self.expect(")")?;
                Ok(Expr::MinMax(n == "max", args, at))
            }
            Tok::Name(n) => {
                if self.peek() == Some(&Tok::Op("(")) {
                    return err(at, format!("unknown function `{n}` (only min and max)"));
                }
                Ok(Expr::Name(n, at))
            }
            Tok::Op(op) => err(at, format!("unexpected `{op}`")),
        }
    }
}

/// Parse `text` as one expression.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: text.chars().count(),
    };
    let e = p.ternary()?;
    if p.pos < p.toks.len() {
        return err(p.at(), "unexpected text after the expression");
    }
    Ok(e)
}

/// The type of `e` with parameters of the given types, or where it is ill-typed.
pub fn check(e: &Expr, params: &BTreeMap<String, Ty>) -> Result<Ty, ExprError> {
    let want = |e: &Expr, ty: Ty, at: usize, what: &str| -> Result<(), ExprError> {
        let got = check(e, params)?;
        if got == ty {
            Ok(())
        } else {
            err(at, format!("{what} needs {ty} operands, got {got}"))
        }
    };
    match e {
        Expr::Lit(v) => Ok(v.ty()),
        Expr::Name(n, at) => params.get(n).copied().map_or_else(
            || {
                err(
                    *at,
                    format!(
                        "unknown parameter `{n}` (declared: {})",
                        params.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            },
            Ok,
        ),
        Expr::Not(x, at) => want(x, Ty::Bool, *at, "`!`").map(|_| Ty::Bool),
        Expr::Neg(x, at) => want(x, Ty::Int, *at, "`-`").map(|_| Ty::Int),
        Expr::MinMax(_, args, at) => {
            for a in args {
                want(a, Ty::Int, *at, "min/max")?;
            }
            Ok(Ty::Int)
        }
        Expr::If(c, a, b, at) => {
            want(c, Ty::Bool, *at, "the condition of `?`")?;
            let ta = check(a, params)?;
            let tb = check(b, params)?;
            if ta != tb {
                return err(*at, format!("`?` branches differ: {ta} and {tb}"));
            }
            Ok(ta)
        }
        Expr::Bin(op, a, b, at) => {
            let (ta, tb) = (check(a, params)?, check(b, params)?);
            let sym = format!("`{}`", op_text(*op));
            match op {
                Bin::Add | Bin::Sub | Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge => {
                    if ta != Ty::Int || tb != Ty::Int {
                        return err(
                            *at,
                            format!("{sym} needs integer operands, got {ta} and {tb}"),
                        );
                    }
                }
                Bin::And | Bin::Or => {
                    if ta != Ty::Bool || tb != Ty::Bool {
                        return err(
                            *at,
                            format!("{sym} needs boolean operands, got {ta} and {tb}"),
                        );
                    }
                }
                Bin::Eq | Bin::Ne => {
                    if ta != tb {
                        return err(*at, format!("{sym} compares {ta} with {tb}"));
                    }
                }
            }
            Ok(if matches!(op, Bin::Add | Bin::Sub) {
                Ty::Int
            } else {
                Ty::Bool
            })
        }
    }
}

fn op_text(op: Bin) -> &'static str {
    match op {
        Bin::Add => "+",
        Bin::Sub => "-",
        Bin::Eq => "==",
        Bin::Ne => "!=",
        Bin::Lt => "<",
        Bin::Le => "<=",
        Bin::Gt => ">",
        Bin::Ge => ">=",
        Bin::And => "&&",
        Bin::Or => "||",
    }
}

/// Evaluate a type-checked expression under one combination of parameter values.
pub fn eval(e: &Expr, env: &BTreeMap<String, Value>) -> Result<Value, ExprError> {
    let int = |e: &Expr| -> Result<i64, ExprError> {
        match eval(e, env)? {
            Value::Int(i) => Ok(i),
            other => err(0, format!("expected an integer, got {other}")),
        }
    };
    let boolean = |e: &Expr| -> Result<bool, ExprError> {
        match eval(e, env)? {
            Value::Bool(b) => Ok(b),
            other => err(0, format!("expected a boolean, got {other}")),
        }
    };
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Name(n, at) => match env.get(n) {
            Some(v) => v.clone(),
            None => return err(*at, format!("unknown parameter `{n}`")),
        },
        Expr::Not(x, _) => Value::Bool(!boolean(x)?),
        Expr::Neg(x, at) => match int(x)?.checked_neg() {
            Some(v) => Value::Int(v),
            None => return err(*at, "integer overflow"),
        },
        Expr::MinMax(is_max, args, _) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(int(a)?);
            }
            let v = if *is_max {
                vals.into_iter().max()
            } else {
                vals.into_iter().min()
            };
            Value::Int(v.unwrap_or_default())
        }
        Expr::If(c, a, b, _) => {
            if boolean(c)? {
                eval(a, env)?
            } else {
                eval(b, env)?
            }
        }
        Expr::Bin(op, a, b, at) => match op {
            Bin::And => Value::Bool(boolean(a)? && boolean(b)?),
            Bin::Or => Value::Bool(boolean(a)? || boolean(b)?),
            Bin::Eq => Value::Bool(eval(a, env)? == eval(b, env)?),
            Bin::Ne => Value::Bool(eval(a, env)? != eval(b, env)?),
            _ => {
                let (x, y) = (int(a)?, int(b)?);
                match op {
                    Bin::Add | Bin::Sub => {
                        let v = if *op == Bin::Add {
                            x.checked_add(y)
                        } else {
                            x.checked_sub(y)
                        };
                        match v {
                            Some(v) => Value::Int(v),
                            None => return err(*at, "integer overflow"),
                        }
                    }
                    Bin::Lt => Value::Bool(x < y),
                    Bin::Le => Value::Bool(x <= y),
                    Bin::Gt => Value::Bool(x > y),
                    _ => Value::Bool(x >= y),
                }
            }
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn env() -> (BTreeMap<String, Ty>, BTreeMap<String, Value>) {
        let vals: BTreeMap<String, Value> = [
            ("pub_qos", Value::Int(2)),
            ("s1", Value::Int(1)),
            ("s2", Value::Int(0)),
            ("rap", Value::Bool(true)),
            ("end", Value::Str("drop".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let tys = vals.iter().map(|(k, v)| (k.clone(), v.ty())).collect();
        (tys, vals)
    }

    #[rstest]
    #[case("min(pub_qos, max(s1, s2))", Value::Int(1))]
    #[case("max(s1, s2, 2) - 1 + 3", Value::Int(4))]
    #[case("-s1 + 0x10", Value::Int(15))]
    #[case("rap && s1 >= 1 || false", Value::Bool(true))]
    #[case("!rap", Value::Bool(false))]
    #[case("end == \"drop\" ? 1 : 0", Value::Int(1))]
    #[case("s2 > 0 ? 'a' : s1 == 1 ? 'b' : 'c'", Value::Str("b".into()))]
    #[case("(s1 + s2) != 1", Value::Bool(false))]
    #[case("65_535", Value::Int(65535))]
    fn evaluates(#[case] text: &str, #[case] want: Value) {
        let (tys, vals) = env();
        let e = parse(text).unwrap();
        assert_eq!(check(&e, &tys).unwrap(), want.ty());
        assert_eq!(eval(&e, &vals).unwrap(), want);
    }

    #[rstest]
    #[case("min(s1", 6, "expected `)`")]
    #[case("s1 +", 4, "expected a value")]
    #[case("s1 = 1", 3, "`==`")]
    #[case("s1 s2", 3, "unexpected text")]
    #[case("avg(s1)", 0, "unknown function `avg`")]
    #[case("'abc", 0, "unterminated")]
    #[case("s1 < s2 < 2", 8, "do not chain")]
    #[case("s1 # 2", 3, "unexpected character")]
    fn parse_errors_have_offsets(#[case] text: &str, #[case] at: usize, #[case] needle: &str) {
        let e = parse(text).unwrap_err();
        assert_eq!(e.at, at, "{e:?}");
        assert!(e.message.contains(needle), "{e:?}");
    }

    #[rstest]
    #[case("s1 + rap", 3, "needs integer operands")]
    #[case("rap && 1", 4, "needs boolean operands")]
    #[case("end == 1", 4, "compares string with integer")]
    #[case("qos3", 0, "unknown parameter `qos3`")]
    #[case("rap ? 1 : 'x'", 4, "branches differ")]
    #[case("s1 ? 1 : 2", 3, "condition")]
    #[case("max(s1, rap)", 0, "min/max")]
    #[case("!s1", 0, "`!`")]
    fn type_errors_have_offsets(#[case] text: &str, #[case] at: usize, #[case] needle: &str) {
        let (tys, _) = env();
        let e = check(&parse(text).unwrap(), &tys).unwrap_err();
        assert_eq!(e.at, at, "{e:?}");
        assert!(e.message.contains(needle), "{e:?}");
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let e = parse("9223372036854775807 + 1").unwrap();
        assert!(eval(&e, &BTreeMap::new()).is_err());
    }
}
