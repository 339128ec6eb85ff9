//! The README's runbook reference names exactly the keys the schema has.

use std::collections::BTreeSet;

use serde_json::Value;

fn schema_keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|x| schema_keys(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| schema_keys(x, out)),
        _ => {}
    }
}

#[test]
fn reference_matches_schema() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let start = readme
        .find("## Runbook reference")
        .expect("a runbook reference section");
    let rest = &readme[start + 3..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let documented: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let mut schema = BTreeSet::new();
    schema_keys(&redrive::manifest::schema::generate(), &mut schema);
    let missing: Vec<_> = schema.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&schema).collect();
    assert!(
        missing.is_empty(),
        "keys in the schema but not in the README reference: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "keys in the README reference but not in the schema: {unknown:?}"
    );
}
