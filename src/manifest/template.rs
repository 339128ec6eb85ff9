//! Templates in runbooks: a strict minijinja environment, compiled value trees and native types.
//!
//! A string holding `{{` or `{%` is a template. A string that is exactly one `{{ expr }}` is
//! evaluated as an expression and keeps the expression's type, so `port: "{{ item.port }}"`
//! stays an integer. Everything else renders to a string.

use std::collections::HashSet;

use minijinja::value::Serde;
use minijinja::{Environment, Expression, Template, UndefinedBehavior};
use serde_json::{Map, Value};

/// Bounds the work one render may do, so a runaway loop fails instead of hanging.
pub const FUEL: u64 = 50_000;

/// The strict environment every runbook template runs in.
#[must_use]
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env
}

/// Whether a string is a template at all.
#[must_use]
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The expression inside a string that is exactly one `{{ expr }}`, if it is one.
#[must_use]
pub fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#")
    {
        return None;
    }
    Some(inner)
}

/// A template failure, with the byte range inside the template text when known.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub message: String,
    pub range: Option<std::ops::Range<usize>>,
    /// The JSON pointer (relative to the compiled value) of the failing string.
    pub pointer: String,
}

impl TemplateError {
    fn new(e: &minijinja::Error, pointer: &str, shift: usize) -> Self {
        let mut message = match e.kind() {
            minijinja::ErrorKind::OutOfFuel => {
                format!("the template does too much work (more than {FUEL} steps); simplify it")
            }
            minijinja::ErrorKind::UndefinedError => e.detail().map_or_else(
                || "undefined value".to_owned(),
                |d| format!("undefined value: {d}"),
            ),
            kind => match e.detail() {
                Some(d) => format!("{kind}: {d}"),
                None => kind.to_string(),
            },
        };
        if message.ends_with('.') {
            message.pop();
        }
        // Expression errors count from the start of the expression; shift them into the string.
        Self {
            message,
            range: e.range().map(|r| r.start + shift..r.end + shift),
            pointer: pointer.to_owned(),
        }
    }
}

/// One compiled string.
pub enum Piece<'env, 'src> {
    /// The expression, where it starts in the string, and its names when it is only a path of
    /// them (`item`, `item.dn`).
    Expr(Expression<'env, 'src>, usize, Option<Vec<&'src str>>),
    Text(Template<'env, 'src>),
}

/// The names of an expression that is only a dotted path of them: evaluated by looking them up,
/// not by the template machine (`"{{ item }}"` is what most `for_each` actions render, a
/// million times in a large plan).
fn bare_path(expr: &str) -> Option<Vec<&str>> {
    // Literals and operators minijinja reads as such, not as names.
    const WORDS: [&str; 13] = [
        "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if",
        "else",
    ];
    let names: Vec<&str> = expr.trim().split('.').collect();
    let name = |n: &&str| {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !WORDS.contains(n)
    };
    names.iter().all(name).then_some(names)
}

/// A path's value in `ctx`, as the template machine finds it; `None` when any name is missing
/// (or the value is unusable), for the machine to evaluate and report as it does.
fn look_up(ctx: &minijinja::Value, path: &[&str]) -> Option<minijinja::Value> {
    use minijinja::value::ValueKind;
    let mut value = ctx.clone();
    for name in path {
        value = value.get_attr(name).ok()?;
        if matches!(value.kind(), ValueKind::Undefined | ValueKind::Invalid) {
            return None;
        }
    }
    Some(value)
}

/// A JSON value whose template strings are compiled once and rendered per item.
pub enum Compiled<'env, 'src> {
    Literal(&'src Value),
    String(Piece<'env, 'src>, String),
    Array(Vec<Compiled<'env, 'src>>),
    Object(Vec<(&'src str, Compiled<'env, 'src>)>),
}

impl<'env, 'src> Compiled<'env, 'src> {
    /// Compiles every template string in `value`, collecting all syntax errors.
    ///
    /// # Errors
    /// Every string that does not compile.
    pub fn new(
        env: &'env Environment<'static>,
        value: &'src Value,
        pointer: &str,
    ) -> Result<Self, Vec<TemplateError>> {
        let mut errors = Vec::new();
        let compiled = Self::build(env, value, pointer, &mut errors);
        if errors.is_empty() {
            Ok(compiled)
        } else {
            Err(errors)
        }
    }

    fn build(
        env: &'env Environment<'static>,
        value: &'src Value,
        pointer: &str,
        errors: &mut Vec<TemplateError>,
    ) -> Self {
        match value {
            Value::String(s) if is_template(s) => match compile_str(env, s) {
                Ok(piece) => Self::String(piece, pointer.to_owned()),
                Err((e, shift)) => {
                    errors.push(TemplateError::new(&e, pointer, shift));
                    Self::Literal(value)
                }
            },
            Value::Array(items) if items.iter().any(has_template) => Self::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        Self::build(
                            env,
                            v,
                            &super::node::push_pointer(pointer, &i.to_string()),
                            errors,
                        )
                    })
                    .collect(),
            ),
            Value::Object(map) if map.values().any(has_template) => Self::Object(
                map.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str(),
                            Self::build(env, v, &super::node::push_pointer(pointer, k), errors),
                        )
                    })
                    .collect(),
            ),
            _ => Self::Literal(value),
        }
    }

    /// The names every template here reads, as `root.attr` paths.
    #[must_use]
    pub fn variables(&self) -> Vec<(String, HashSet<String>)> {
        let mut out = Vec::new();
        self.collect_variables(&mut out);
        out
    }

    fn collect_variables(&self, out: &mut Vec<(String, HashSet<String>)>) {
        match self {
            Self::Literal(_) => {}
            Self::String(Piece::Expr(e, _, _), p) => {
                out.push((p.clone(), e.undeclared_variables(true)))
            }
            Self::String(Piece::Text(t), p) => out.push((p.clone(), t.undeclared_variables(true))),
            Self::Array(items) => items.iter().for_each(|c| c.collect_variables(out)),
            Self::Object(entries) => entries.iter().for_each(|(_, c)| c.collect_variables(out)),
        }
    }

    /// The list a single `{{ expression }}` evaluates to, as the template value itself (no
    /// copy of its items); `None` for anything else, which [`Compiled::render`] then renders
    /// or reports.
    #[must_use]
    pub fn evaluate_seq(&self, ctx: &minijinja::Value) -> Option<minijinja::Value> {
        match self {
            Self::String(Piece::Expr(e, _, _), _) => e
                .eval(ctx.clone())
                .ok()
                .filter(|v| v.kind() == minijinja::value::ValueKind::Seq),
            _ => None,
        }
    }

    /// Renders with `ctx`.
    ///
    /// # Errors
    /// The first template that fails (undefined value, a filter error, out of fuel).
    pub fn render(&self, ctx: &minijinja::Value) -> Result<Value, TemplateError> {
        match self {
            Self::Literal(v) => Ok((*v).clone()),
            Self::String(Piece::Expr(e, offset, path), pointer) => {
                let v = match path.as_deref().and_then(|p| look_up(ctx, p)) {
                    Some(v) => v,
                    None => e
                        .eval(ctx.clone())
                        .map_err(|err| TemplateError::new(&err, pointer, *offset))?,
                };
                if v.is_undefined() {
                    return Err(TemplateError {
                        message: "the expression is undefined".to_owned(),
                        range: None,
                        pointer: pointer.clone(),
                    });
                }
                serde_json::to_value(&v).map_err(|err| TemplateError {
                    message: format!("the value cannot be used here: {err}"),
                    range: None,
                    pointer: pointer.clone(),
                })
            }
            Self::String(Piece::Text(t), pointer) => t
                .render(ctx.clone())
                .map(Value::String)
                .map_err(|err| TemplateError::new(&err, pointer, 0)),
            Self::Array(items) => items
                .iter()
                .map(|c| c.render(ctx))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Self::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, c) in entries {
                    map.insert((*k).to_owned(), c.render(ctx)?);
                }
                Ok(Value::Object(map))
            }
        }
    }
}

fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => is_template(s),
        Value::Array(items) => items.iter().any(has_template),
        Value::Object(map) => map.values().any(has_template),
        _ => false,
    }
}

/// Compiles one string: an expression when it is a single `{{ … }}`, else a template.
/// On failure, also returns how far into the string the compiled source starts.
fn compile_str<'env, 'src>(
    env: &'env Environment<'static>,
    text: &'src str,
) -> Result<Piece<'env, 'src>, (minijinja::Error, usize)> {
    if let Some(expr) = single_expression(text) {
        let offset = text.find(expr).unwrap_or(0);
        return env
            .compile_expression(expr)
            .map(|e| Piece::Expr(e, offset, bare_path(expr)))
            .map_err(|e| (e, offset));
    }
    env.template_from_str(text)
        .map(Piece::Text)
        .map_err(|e| (e, 0))
}

/// Compiles a `when` condition: a bare expression, or one `{{ expr }}`.
///
/// # Errors
/// The syntax error.
pub fn compile_condition<'env, 'src>(
    env: &'env Environment<'static>,
    text: &'src str,
) -> Result<Expression<'env, 'src>, TemplateError> {
    let expr = single_expression(text).unwrap_or(text);
    let shift = text.find(expr).unwrap_or(0);
    env.compile_expression(expr)
        .map_err(|e| TemplateError::new(&e, "", shift))
}

/// Turns any serializable value into a template value.
#[must_use]
pub fn value<T: serde::Serialize>(v: &T) -> minijinja::Value {
    minijinja::Value::from(Serde(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path looked up without the template machine gives what the machine gives, errors
    /// included (those go to the machine).
    #[test]
    fn a_path_looked_up_is_what_the_machine_evaluates() {
        let env = environment();
        let ctx = value(&serde_json::json!({
            "item": {"dn": "\\VED\\c1", "port": 443, "tags": ["a"], "none": null, "deep": {"x": true}},
            "vars": {"region": "eu"},
        }));
        for expr in [
            "item",
            "item.dn",
            " item.port ",
            "item.tags",
            "item.none",
            "item.deep.x",
            "vars.region",
            "item.nope",
            "nope",
            "item.dn.more",
            "true",
            "none",
            "item.port + 1",
            "range",
            "item.deep.x.y",
            "item['dn']",
        ] {
            let text = format!("{{{{{expr}}}}}");
            let text = Value::String(text);
            let fast = Compiled::new(&env, &text, "/v").expect("compiles");
            let mut slow = Compiled::new(&env, &text, "/v").expect("compiles");
            if let Compiled::String(Piece::Expr(_, _, path), _) = &mut slow {
                *path = None;
            }
            let shown = |r: Result<Value, TemplateError>| r.map_err(|e| (e.message, e.range));
            assert_eq!(shown(fast.render(&ctx)), shown(slow.render(&ctx)), "{expr}");
        }
        assert_eq!(bare_path(" item.dn "), Some(vec!["item", "dn"]));
        for not_a_path in ["item.", "1x", "item.0", "true", "item | upper", "a-b", ""] {
            assert_eq!(bare_path(not_a_path), None, "{not_a_path}");
        }
    }
}
