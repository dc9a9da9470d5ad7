//! Liberty Boolean functions (`"(!((A B)+C))"`) as truth tables over a cell's pins, so that
//! the cycle simulator evaluates a cell by one table lookup.
//!
//! Operators, loosest first: `+` or `|` (or), `*`, `&` or juxtaposition (and), `^` (xor),
//! `!` before or `'` after an operand (not); `0` and `1` are constants.

/// A parsed function.
#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Const(bool),
    Var(usize),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Xor(Box<Expr>, Box<Expr>),
}

impl Expr {
    fn eval(&self, bits: u32) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::Var(i) => bits >> i & 1 == 1,
            Expr::Not(e) => !e.eval(bits),
            Expr::And(a, b) => a.eval(bits) && b.eval(bits),
            Expr::Or(a, b) => a.eval(bits) || b.eval(bits),
            Expr::Xor(a, b) => a.eval(bits) ^ b.eval(bits),
        }
    }
}

/// The most variables a table takes (the OSU cells have at most 5 counting the state).
pub const MAX_VARS: usize = 6;

/// The truth table of `function` over `vars`: bit `i` of the result is the function's value
/// when variable `j` is bit `j` of `i`. An error names what could not be read.
pub fn truth_table(function: &str, vars: &[&str]) -> Result<u64, String> {
    if vars.len() > MAX_VARS {
        return Err(format!(
            "{} variables, at most {MAX_VARS} supported",
            vars.len()
        ));
    }
    let tokens = tokenize(function)?;
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        vars,
    };
    let e = p.or()?;
    if p.at != tokens.len() {
        return Err(format!("unexpected {:?} in {function:?}", tokens[p.at]));
    }
    Ok((0..1u32 << vars.len())
        .filter(|&i| e.eval(i))
        .fold(0u64, |t, i| t | 1 << i))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Op(char),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            // Juxtaposition is and: a space between two operands stands for `*`.
            let prev_operand = matches!(out.last(), Some(Tok::Name(_) | Tok::Op(')' | '\'')));
            let next_operand = chars
                .peek()
                .is_some_and(|&n| n.is_alphanumeric() || n == '_' || n == '(' || n == '!');
            if prev_operand && next_operand {
                out.push(Tok::Op('*'));
            }
        } else if c.is_alphanumeric() || c == '_' {
            let mut name = String::new();
            while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                name.push(n);
                chars.next();
            }
            out.push(Tok::Name(name));
        } else if "+|*&^!'()".contains(c) {
            // `(A)(B)` and `A (B)` without a space are and too.
            if c == '(' && matches!(out.last(), Some(Tok::Name(_) | Tok::Op(')' | '\''))) {
                out.push(Tok::Op('*'));
            }
            out.push(Tok::Op(c));
            chars.next();
        } else {
            return Err(format!("unexpected character {c:?} in {s:?}"));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [Tok],
    at: usize,
    vars: &'a [&'a str],
}

impl Parser<'_> {
    fn peek_op(&self, ops: &str) -> Option<char> {
        match self.tokens.get(self.at) {
            Some(Tok::Op(c)) if ops.contains(*c) => Some(*c),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek_op("+|").is_some() {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.xor()?;
        while self.peek_op("*&").is_some() {
            self.at += 1;
            e = Expr::And(Box::new(e), Box::new(self.xor()?));
        }
        Ok(e)
    }

    fn xor(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while self.peek_op("^").is_some() {
            self.at += 1;
            e = Expr::Xor(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_op("!").is_some() {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let mut e = match self.tokens.get(self.at) {
            Some(Tok::Op('(')) => {
                self.at += 1;
                let e = self.or()?;
                if self.peek_op(")").is_none() {
                    return Err("missing ')'".into());
                }
                self.at += 1;
                e
            }
            Some(Tok::Name(n)) => {
                self.at += 1;
                match n.as_str() {
                    "0" => Expr::Const(false),
                    "1" => Expr::Const(true),
                    _ => Expr::Var(
                        self.vars
                            .iter()
                            .position(|v| v == n)
                            .ok_or_else(|| format!("unknown pin {n:?}"))?,
                    ),
                }
            }
            other => return Err(format!("expected an operand, found {other:?}")),
        };
        while self.peek_op("'").is_some() {
            self.at += 1;
            e = Expr::Not(Box::new(e));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(f: &str, vars: &[&str]) -> u64 {
        truth_table(f, vars).unwrap()
    }

    #[test]
    fn the_osu_functions_read_as_their_gates() {
        // Bit i: A = bit 0 of i, B = bit 1, C = bit 2.
        assert_eq!(table("(A B)", &["A", "B"]), 0b1000);
        assert_eq!(table("(A+B)", &["A", "B"]), 0b1110);
        assert_eq!(table("(!(A^B))", &["A", "B"]), 0b1001);
        assert_eq!(table("(!A)", &["A"]), 0b01);
        // AOI21: !((A & B) | C).
        let aoi: u64 = (0..8)
            .filter(|i| !((i & 1 == 1 && i & 2 == 2) || i & 4 == 4))
            .fold(0, |t, i| t | 1 << i);
        assert_eq!(table("(!((A B)+C))", &["A", "B", "C"]), aoi);
        // MUX2X1 (inverting): !((S A) + (!S B)).
        let mux: u64 = (0..8)
            .filter(|i| {
                let (a, b, s) = (i & 1 == 1, i & 2 == 2, i & 4 == 4);
                !(if s { a } else { b })
            })
            .fold(0, |t, i| t | 1 << i);
        assert_eq!(table("(!((S A) + (!S B)))", &["A", "B", "S"]), mux);
        // Full adder carry.
        let carry: u64 = (0..8u64)
            .filter(|i| i.count_ones() >= 2)
            .fold(0, |t, i| t | 1 << i);
        assert_eq!(table("(((A B)+(B C))+(C A))", &["A", "B", "C"]), carry);
        assert_eq!(table("A'", &["A"]), table("!A", &["A"]));
        assert_eq!(
            table("A&B|C", &["A", "B", "C"]),
            table("(A B)+C", &["A", "B", "C"])
        );
    }

    #[test]
    fn unknown_pins_and_bad_text_are_errors() {
        assert!(truth_table("(A B)", &["A"]).unwrap_err().contains("\"B\""));
        assert!(truth_table("(A", &["A"]).is_err());
        assert!(truth_table("A % B", &["A", "B"]).is_err());
    }
}
