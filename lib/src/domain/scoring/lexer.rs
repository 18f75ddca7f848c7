//! The lexer: source text into tokens, each with its 0-based character position for messages.

use std::fmt;

use crate::error::{Error, Result};

/// An operator or bracket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Punct {
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Gt,
    Ge,
    Lt,
    Le,
    EqEq,
    Ne,
    AndAnd,
    OrOr,
    Bang,
    Question,
    Colon,
    LParen,
    RParen,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'a> {
    Num(f64),
    Str(String),
    Ident(&'a str),
    P(Punct),
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'a> {
    pub(super) tok: Tok<'a>,
    /// 0-based character offset.
    pub(super) pos: usize,
    /// The source text of the token (empty at the end).
    pub(super) text: &'a str,
}

/// An [`Error::Invalid`] naming the problem and its position.
pub(super) fn err_at(what: impl fmt::Display, pos: usize) -> Error {
    Error::invalid(format!("expression: {what} at position {pos}"))
}

/// The error for a token the grammar does not allow where it is.
pub(super) fn unexpected(t: &Token<'_>) -> Error {
    if matches!(t.tok, Tok::Eof) {
        return err_at("unexpected end of expression", t.pos);
    }
    err_at(format_args!("unexpected '{}'", shorten(t.text)), t.pos)
}

/// At most 32 characters of a token, for messages.
pub(super) fn shorten(s: &str) -> String {
    if s.chars().count() <= 32 {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(31).collect();
        out.push('…');
        out
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits `src` into tokens, ending with [`Tok::Eof`] at the position after the last character.
pub(super) fn lex(src: &str) -> Result<Vec<Token<'_>>> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let ch = |i: usize| chars.get(i).map(|c| c.1);
    let byte = |i: usize| chars.get(i).map_or(src.len(), |c| c.0);
    let slice = |a: usize, b: usize| src.get(byte(a)..byte(b)).unwrap_or("");
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(c) = ch(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let digit_at = |j: usize| ch(j).is_some_and(|d| d.is_ascii_digit());
        let tok = if c.is_ascii_digit() || (c == '.' && digit_at(i + 1)) {
            while digit_at(i) {
                i += 1;
            }
            if ch(i) == Some('.') && digit_at(i + 1) {
                i += 1;
                while digit_at(i) {
                    i += 1;
                }
            }
            if matches!(ch(i), Some('e' | 'E')) {
                let sign = usize::from(matches!(ch(i + 1), Some('+' | '-')));
                if digit_at(i + 1 + sign) {
                    i += 1 + sign;
                    while digit_at(i) {
                        i += 1;
                    }
                }
            }
            if ch(i).is_some_and(|d| is_ident_char(d) || d == '.') {
                while ch(i).is_some_and(|d| is_ident_char(d) || d == '.') {
                    i += 1;
                }
                return Err(err_at(
                    format_args!("invalid number '{}'", shorten(slice(start, i))),
                    start,
                ));
            }
            match slice(start, i).parse::<f64>() {
                Ok(x) if x.is_finite() => Tok::Num(x),
                _ => {
                    return Err(err_at(
                        format_args!("number '{}' out of range", shorten(slice(start, i))),
                        start,
                    ));
                }
            }
        } else if is_ident_start(c) {
            while ch(i).is_some_and(is_ident_char) {
                i += 1;
            }
            Tok::Ident(slice(start, i))
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                match ch(i) {
                    None => return Err(err_at("unterminated string", start)),
                    Some(q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = match ch(i + 1) {
                            Some(e @ ('\\' | '"' | '\'')) => e,
                            Some('n') => '\n',
                            Some('t') => '\t',
                            None => return Err(err_at("unterminated string", start)),
                            Some(other) => {
                                return Err(err_at(
                                    format_args!("invalid escape '\\{other}' in string"),
                                    i,
                                ));
                            }
                        };
                        s.push(e);
                        i += 2;
                    }
                    Some(other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else {
            let next = ch(i + 1);
            let (p, len) = match (c, next) {
                ('>', Some('=')) => (Punct::Ge, 2),
                ('<', Some('=')) => (Punct::Le, 2),
                ('=', Some('=')) => (Punct::EqEq, 2),
                ('!', Some('=')) => (Punct::Ne, 2),
                ('&', Some('&')) => (Punct::AndAnd, 2),
                ('|', Some('|')) => (Punct::OrOr, 2),
                ('+', _) => (Punct::Plus, 1),
                ('-', _) => (Punct::Minus, 1),
                ('*', _) => (Punct::Star, 1),
                ('/', _) => (Punct::Slash, 1),
                ('%', _) => (Punct::Percent, 1),
                ('>', _) => (Punct::Gt, 1),
                ('<', _) => (Punct::Lt, 1),
                ('!', _) => (Punct::Bang, 1),
                ('?', _) => (Punct::Question, 1),
                (':', _) => (Punct::Colon, 1),
                ('(', _) => (Punct::LParen, 1),
                (')', _) => (Punct::RParen, 1),
                ('=', _) => return Err(err_at("unexpected '=' (use '==')", i)),
                ('&', _) => return Err(err_at("unexpected '&' (use '&&')", i)),
                ('|', _) => return Err(err_at("unexpected '|' (use '||')", i)),
                _ => {
                    return Err(err_at(
                        format_args!("unexpected character '{}'", c.escape_debug()),
                        i,
                    ));
                }
            };
            i += len;
            Tok::P(p)
        };
        toks.push(Token {
            tok,
            pos: start,
            text: slice(start, i),
        });
    }
    toks.push(Token {
        tok: Tok::Eof,
        pos: chars.len(),
        text: "",
    });
    Ok(toks)
}
