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

/// An independent validator (python `jsonschema`) must accept the schema and every example.
#[test]
fn python_jsonschema_accepts_schema_and_examples() {
    let script = r#"
import glob, json, sys
import yaml
from jsonschema import Draft202012Validator
schema = json.load(open("schemas/redrive.schema.json"))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
bad = 0
for f in sorted(glob.glob("examples/*.yaml")):
    doc = yaml.safe_load(open(f))
    for e in v.iter_errors(doc):
        bad += 1
        print(f"{f}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
sys.exit(1 if bad else 0)
"#;
    // `.ci/run` installs the modules when missing; an independent validator is the point.
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 with the `jsonschema` and `yaml` modules (pip install jsonschema pyyaml)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python jsonschema rejected:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn committed_scenario_schema_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/sandbox-scenario.schema.json"
    ))
    .expect("schemas/sandbox-scenario.schema.json exists");
    let generated = redrive::sandbox::scenario::schema_text();
    assert!(
        committed == generated,
        "schemas/sandbox-scenario.schema.json is stale; regenerate it with `cargo run -- schema --scenario > schemas/sandbox-scenario.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&generated).expect("JSON");
    assert!(jsonschema::meta::is_valid(&schema));
}

/// Every scenario in `examples/sandbox/` passes the scenario schema (python `jsonschema`) and
/// loads in redrive.
#[test]
fn example_scenarios_are_valid() {
    let script = r#"
import glob, json, sys
import yaml
from jsonschema import Draft202012Validator
v = Draft202012Validator(json.load(open("schemas/sandbox-scenario.schema.json")))
bad = 0
for f in sorted(glob.glob("examples/sandbox/*.yaml")) + sorted(glob.glob("bench/*.yaml")):
    for e in v.iter_errors(yaml.safe_load(open(f))):
        bad += 1
        print(f"{f}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
sys.exit(1 if bad else 0)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 with jsonschema and yaml");
    assert!(
        out.status.success(),
        "python jsonschema rejected a scenario:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sandbox");
    for entry in std::fs::read_dir(dir).expect("examples/sandbox exists") {
        let path = entry.expect("a directory entry").path();
        redrive::sandbox::Scenario::load(&path)
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    }
}
