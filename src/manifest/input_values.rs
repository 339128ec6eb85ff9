//! The loaded inputs as template values: a list of strings is held as one text and its ends.

use serde_json::Value;

/// A loaded input: a `lines` input comes as its lines already (see [`Strings`]), any other as
/// its value.
pub enum Input {
    Lines(Strings),
    Value(Value),
}

/// The loaded inputs as templates read them. A list of strings (a `lines` input, or any
/// input that is one) is kept as one text and its line ends, not a value per line: a million
/// DNs are about 30 MB instead of about 70 MB, and an item is made when a template reads it.
#[must_use]
pub fn inputs_value(inputs: indexmap::IndexMap<String, Input>) -> minijinja::Value {
    inputs
        .into_iter()
        .map(|(name, input)| {
            let shown = match input {
                Input::Lines(lines) => minijinja::Value::from_object(lines),
                Input::Value(Value::Array(items)) if items.iter().all(Value::is_string) => {
                    minijinja::Value::from_object(Strings::of(
                        items.iter().filter_map(Value::as_str),
                    ))
                }
                Input::Value(other) => super::template::value(&other),
            };
            (name, shown)
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into()
}

/// A list of strings held as one text (see [`inputs_value`]).
#[derive(Debug)]
pub struct Strings {
    text: String,
    /// Where each string ends in `text` (it starts where the one before it ends).
    ends: Vec<usize>,
}

impl Strings {
    /// The strings of `strs`, in one text: a `lines` input comes straight from its file's
    /// text, with no value per line on the way (at a million lines those took a quarter of a
    /// second before the first action).
    pub fn of<'a>(strs: impl Iterator<Item = &'a str>) -> Self {
        let mut text = String::new();
        let mut ends = Vec::new();
        for s in strs {
            text.push_str(s);
            ends.push(text.len());
        }
        text.shrink_to_fit();
        ends.shrink_to_fit();
        Self { text, ends }
    }

    /// The strings, in order.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let s = &self.text[start..end];
                start = end;
                s
            })
            .collect()
    }
}

impl minijinja::value::Object for Strings {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Seq
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let i = key.as_usize()?;
        let end = *self.ends.get(i)?;
        let start = i.checked_sub(1).map_or(0, |before| self.ends[before]);
        Some(minijinja::Value::from(&self.text[start..end]))
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.ends.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::template::{environment, value};

    /// A list of strings held as one text reads in templates as the list itself would.
    #[test]
    fn inputs_held_as_one_text_read_as_the_list() {
        let list = serde_json::json!(["a", "", "\\VED\\Policy\\c1", "ü"]);
        let inputs: indexmap::IndexMap<String, Value> = [
            ("compact".to_owned(), list.clone()),
            ("mixed".to_owned(), serde_json::json!(["a", 1])),
        ]
        .into_iter()
        .collect();
        let compact = inputs_value(
            inputs
                .iter()
                .map(|(k, v)| (k.clone(), Input::Value(v.clone())))
                .collect(),
        );
        let native = minijinja::context! { inputs => value(&inputs) };
        let compact = minijinja::context! { inputs => compact };
        let env = environment();
        for text in [
            "{{ inputs.compact | length }}",
            "{{ inputs.compact[2] }}|{{ inputs.compact[3] }}|{{ inputs.compact[9] is undefined }}",
            "{% for x in inputs.compact %}[{{ loop.index0 }}:{{ x }}]{% endfor %}",
            "{{ inputs.compact | join(',') }}",
            "{{ inputs.compact | tojson }}",
            "{{ inputs.mixed | tojson }}",
            "{{ 'ü' in inputs.compact }}",
        ] {
            let expected = env.render_str(text, &native).expect("renders");
            assert_eq!(
                env.render_str(text, &compact).expect("renders"),
                expected,
                "{text}"
            );
        }
        let seq = env
            .compile_expression("inputs.compact")
            .expect("compiles")
            .eval(compact)
            .expect("evaluates");
        assert_eq!(serde_json::to_value(&seq).expect("JSON"), list);
    }
}
