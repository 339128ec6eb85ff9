//! The committed JSON Schema must be exactly what the model generates.

#[test]
fn committed_schema_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/redrive.schema.json"
    ))
    .expect("schemas/redrive.schema.json exists");
    let generated = redrive::manifest::schema::generate_text();
    assert!(
        committed == generated,
        "schemas/redrive.schema.json is stale; regenerate it with `cargo run -- schema > schemas/redrive.schema.json`"
    );
}

#[test]
fn schema_is_draft_2020_12() {
    let schema = redrive::manifest::schema::generate();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the schema is valid against its meta-schema"
    );
}
