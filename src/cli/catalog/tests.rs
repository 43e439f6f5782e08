//! The catalog of a registry state built record by record.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::markdown::{code, file_stems, mermaid, table};
use super::{CatalogSummary, render, write_catalog};
use crate::governance::lineage::{Edge, Node};
use crate::registry::*;

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000_000;

fn apply(state: &mut RegistryState, principal: &str, change: Change) {
    let rec = ChangeRecord {
        seq: state.seq + 1,
        committed_at: T0 + state.seq as i64 * 1_000_000,
        principal: principal.to_string(),
        statement: String::new(),
        change,
    };
    state.apply(&rec).expect("record applies");
}

fn schema(columns: &[(&str, DataType)]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    )
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

fn feature(name: &str, kind: FeatureKind, description: Option<&str>) -> Feature {
    Feature {
        name: name.to_string(),
        kind,
        description: description.map(str::to_string),
    }
}

fn group(
    name: &str,
    source: FeatureSource,
    features: Vec<Feature>,
    schema: Schema,
) -> FeatureGroup {
    FeatureGroup {
        name: name.to_string(),
        entity: vec!["customer_id".into()],
        timestamp: "ts".into(),
        created: None,
        source,
        features,
        transformations: vec![],
        ttl: None,
        description: None,
        tags: vec![],
        owner: None,
        schema,
    }
}

/// A table `tx`, groups `cb` (from `tx`) and `odd name/x` (a query), expectations, a set
/// `fs` with two versions, online with a run, an export and a drift baseline.
fn registry() -> RegistryState {
    let mut state = RegistryState::default();
    let tx = schema(&[
        ("customer_id", DataType::Utf8),
        ("ts", ts()),
        ("amount", DataType::Float64),
    ]);
    apply(
        &mut state,
        "alice",
        Change::CreateTable(ManagedTable {
            name: "tx".into(),
            schema: tx,
            dir: "tables/tx".into(),
            files: vec![],
            replace: false,
        }),
    );
    let mut cb = group(
        "cb",
        FeatureSource::Relation { name: "tx".into() },
        vec![
            feature(
                "amount",
                FeatureKind::Column {
                    column: "amount".into(),
                },
                Some("Amount | in EUR\nnet"),
            ),
            feature(
                "amount_30d",
                FeatureKind::Window {
                    agg: "mean".into(),
                    input: Some("amount".into()),
                    window: WindowLength {
                        text: "30 days".into(),
                        micros: 30 * 86_400_000_000,
                    },
                },
                None,
            ),
            feature(
                "blank",
                FeatureKind::Expression {
                    sql: "amount || 'x'".into(),
                },
                Some("   "),
            ),
        ],
        schema(&[
            ("customer_id", DataType::Utf8),
            ("ts", ts()),
            ("amount", DataType::Float64),
            ("amount_30d", DataType::Float64),
            ("blank", DataType::Utf8),
        ]),
    );
    cb.description = Some("Customer <b>behaviour</b>".into());
    cb.owner = Some("team_ml".into());
    cb.tags = vec!["team:ml".into()];
    apply(
        &mut state,
        "alice",
        Change::CreateFeatureGroup {
            group: cb.clone(),
            replace: false,
        },
    );
    let odd = group(
        "odd name/x",
        FeatureSource::Query {
            sql: "SELECT customer_id, ts, amount AS v FROM tx".into(),
        },
        vec![feature(
            "v`x",
            FeatureKind::Column { column: "v".into() },
            Some("documented"),
        )],
        schema(&[
            ("customer_id", DataType::Utf8),
            ("ts", ts()),
            ("v`x", DataType::Float64),
        ]),
    );
    apply(
        &mut state,
        "bob",
        Change::CreateFeatureGroup {
            group: odd,
            replace: false,
        },
    );
    apply(
        &mut state,
        "alice",
        Change::CreateExpectation(FeatureExpectations {
            group: "cb".into(),
            feature: "amount".into(),
            expectations: vec![Expectation::MinValue { value: 0.0 }],
        }),
    );
    let pinned = PinnedGroup {
        version: state.feature_groups["cb"].version,
        def: cb,
    };
    for description in [Some("First cut"), None] {
        apply(
            &mut state,
            "carol",
            Change::CreateFeatureSet(FeatureSetVersion {
                name: "fs".into(),
                version: 0,
                features: vec![FeatureRef {
                    group: "cb".into(),
                    feature: "amount".into(),
                }],
                groups: BTreeMap::from([("cb".to_string(), pinned.clone())]),
                metadata: BTreeMap::from([("purpose".to_string(), "fraud".to_string())]),
                tags: vec!["prod".into()],
                description: description.map(str::to_string),
                author: "team_ml".into(),
                created_at: 0,
            }),
        );
    }
    apply(
        &mut state,
        "carol",
        Change::SetOnline(OnlineConfig {
            set: "fs".into(),
            version: 1,
            update_frequency: None,
            cache_ttl: None,
            since: 0,
        }),
    );
    apply(
        &mut state,
        "carol",
        Change::Materialized(MaterializationRun {
            set: "fs".into(),
            version: 1,
            trigger: "refresh".into(),
            mode: "full".into(),
            as_of: T0,
            started: T0,
            finished: T0 + 1_500_000,
            rows: 42,
            status: RunStatus::Succeeded,
            error: None,
            store: "embedded".into(),
            generation: 1,
            sources: vec![],
        }),
    );
    apply(
        &mut state,
        "carol",
        Change::Exported(ExportRecord {
            set: "fs".into(),
            version: 2,
            path: "s3://bucket/fs|v2".into(),
            files: vec!["a.parquet".into()],
            rows: 7,
            at: 0,
        }),
    );
    apply(
        &mut state,
        "carol",
        Change::SetDriftBaseline(DriftBaseline {
            set: "fs".into(),
            version: 1,
            from: "2024-01-01".into(),
            to: "2024-01-31".into(),
            start_micros: T0,
            end_micros: T0 + 30 * 86_400_000_000,
            features: vec![BaselineFeature {
                group: "cb".into(),
                feature: "amount".into(),
                rows: 10,
                nulls: 1,
                sketch: BaselineSketch::Categorical {
                    counts: vec![("a".into(), 9)],
                },
            }],
        }),
    );
    state
}

/// `page` contains `text` (the page is shown when it does not).
#[track_caller]
fn has(page: &str, text: &str) {
    assert!(page.contains(text), "{page}");
}

#[test]
fn pages_cover_every_group_and_set_with_safe_file_names() {
    let (files, summary) = render(&registry());
    assert_eq!(
        summary,
        CatalogSummary {
            groups: 2,
            sets: 1,
            undocumented: 2
        }
    );
    assert_eq!(
        summary.to_string(),
        "2 feature groups, 1 feature sets, 2 undocumented features"
    );
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.contains(&"README.md")
            && names.contains(&"groups/cb.md")
            && names.contains(&"sets/fs.md")
    );
    let odd = names
        .iter()
        .find(|n| n.starts_with("groups/odd_name_x-"))
        .expect("odd group page");
    assert!(
        odd.ends_with(".md") && odd.len() == "groups/odd_name_x-".len() + 8 + 3,
        "{odd}"
    );
    // The index links to it by that file name.
    assert!(files["README.md"].contains(&format!("[`odd name/x`]({odd})")));
}

#[test]
fn the_index_lists_exactly_the_undocumented_features() {
    let (files, _) = render(&registry());
    let readme = &files["README.md"];
    let section = readme
        .split("## Undocumented features")
        .nth(1)
        .expect("section");
    has(section, "- [`cb.amount_30d`](groups/cb.md)");
    assert!(
        section.contains("- [`cb.blank`](groups/cb.md)"),
        "blank descriptions count: {section}"
    );
    assert!(
        !section.contains("cb.amount`"),
        "documented feature listed: {section}"
    );
    assert!(!section.contains("v`x"), "{section}");
    has(readme, "| feature sets | 1 (2 versions) |");
    has(
        readme,
        "| [`fs`](sets/fs.md) | 2 | 1 | version 1 | `carol` |",
    );
}

#[test]
fn group_pages_escape_cells_and_show_source_expectations_sets_and_lineage() {
    let (files, _) = render(&registry());
    let cb = &files["groups/cb.md"];
    // A pipe and a newline in a description stay inside their cell; HTML is literal.
    has(
        cb,
        "| `amount` | `Float64` | column | `amount` | Amount \\| in EUR<br>net |",
    );
    has(cb, "`amount \\|\\| 'x'`");
    has(cb, "Customer &lt;b&gt;behaviour&lt;/b&gt;");
    assert!(cb.contains("| `amount_30d` | `Float64` | window (30 days) | `mean(amount) WINDOW '30 days'` | *undocumented* |"));
    has(cb, "| owner | `alice` (declared: team_ml) |");
    has(cb, "| version | 2 (registry sequence; created at 2) |");
    has(cb, "Reads table `tx`.");
    has(cb, "| `amount` | `min_value` | `>= 0` |");
    has(cb, "| [`fs`](../sets/fs.md) | 1 | 2 (current) | `amount` |");
    let diagram = cb
        .split("```mermaid\nflowchart LR\n")
        .nth(1)
        .expect("mermaid block");
    let diagram = diagram.split("```").next().unwrap();
    has(diagram, "    table_tx[\"table: tx\"]");
    has(diagram, "    table_tx -->|source| feature_group_cb_2");
    has(diagram, "    feature_group_cb_2 -->|pins| feature_set_fs_1");
    has(
        diagram,
        "feature_set_fs_2 -->|export| export_s3___bucket_fs_v2",
    );
    has(diagram, "    class feature_group_cb_2 focus");

    let odd = files
        .iter()
        .find(|(k, _)| k.starts_with("groups/odd"))
        .unwrap()
        .1;
    has(odd, "# Feature group `odd name/x`");
    has(
        odd,
        "```sql\nSELECT customer_id, ts, amount AS v FROM tx\n```",
    );
    has(odd, "| ``v`x`` |");
    assert!(odd.contains("No feature set uses this group."));
    has(odd, "table_tx -->|source| feature_group_odd_name_x_3");
}

#[test]
fn set_pages_show_versions_owner_online_runs_baselines_and_exports() {
    let (files, _) = render(&registry());
    let fs = &files["sets/fs.md"];
    has(fs, "| owner | `carol` |");
    has(fs, "| status | online, version 1 |");
    has(fs, "| online since | 2024-01-01T00:00:06Z |");
    has(
        fs,
        "| 2024-01-01T00:00:01.500Z | 1 | refresh | full | 2024-01-01T00:00:00Z | 42 | succeeded | embedded |  |",
    );
    // Newest version first, each with its own creation time, description and pins.
    let v2 = fs.find("### Version 2").expect("v2");
    let v1 = fs.find("### Version 1").expect("v1");
    assert!(v2 < v1);
    let (second, first) = (&fs[v2..v1], &fs[v1..]);
    has(second, "| created | 2024-01-01T00:00:05Z |");
    assert!(second.contains("| description | *undocumented* |"));
    has(
        second,
        "| 2024-01-01T00:00:08Z | s3://bucket/fs\\|v2 | 7 | 1 |",
    );
    assert!(second.contains("No drift baseline."));
    assert!(first.contains("| description | First cut |"));
    assert!(first.contains("| author | `team_ml` |"));
    assert!(first.contains("| tags | `prod` |"));
    assert!(first.contains("| `purpose` | fraud |"));
    assert!(first.contains("| feature groups | [`cb`](../groups/cb.md) (definition 2) |"));
    has(
        first,
        "| `amount` | [`cb`](../groups/cb.md) | `Float64` | `min_value >= 0` | Amount \\| in EUR<br>net |",
    );
    has(first, "Drift baseline: from `2024-01-01` to `2024-01-31`");
    assert!(first.contains("| `cb.amount` | 10 | 1 | categorical, 1 categories |"));
    assert!(first.contains("Never exported."));
    has(fs, "feature_set_fs_1 -->|materialize| online_fs_1");
    has(fs, "    class feature_set_fs_1,feature_set_fs_2 focus");
}

#[test]
fn writing_is_deterministic_and_touches_only_the_catalogs_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("catalog");
    let state = registry();
    write_catalog(&state, &out).unwrap();
    let read = |p: &str| std::fs::read(out.join(p)).unwrap();
    let first = (read("README.md"), read("groups/cb.md"), read("sets/fs.md"));
    // Foreign files, and a page of a group that no longer exists.
    std::fs::write(out.join("groups/notes.txt"), "mine").unwrap();
    std::fs::write(out.join("other.md"), "mine").unwrap();
    std::fs::write(out.join("groups/gone.md"), "stale").unwrap();
    std::fs::write(out.join("sets/fs.md"), "edited").unwrap();
    let summary = write_catalog(&state, &out).unwrap();
    assert_eq!(summary.undocumented, 2);
    assert_eq!(
        (read("README.md"), read("groups/cb.md"), read("sets/fs.md")),
        first
    );
    assert!(!out.join("groups/gone.md").exists());
    assert_eq!(read("groups/notes.txt"), b"mine");
    assert_eq!(read("other.md"), b"mine");

    // A file where the directory should be is a clear error.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = write_catalog(&state, &file).unwrap_err();
    assert!(err.starts_with("cannot create directory"), "{err}");
}

#[test]
fn an_empty_registry_has_an_index_only() {
    let (files, summary) = render(&RegistryState::default());
    assert_eq!(
        summary,
        CatalogSummary {
            groups: 0,
            sets: 0,
            undocumented: 0
        }
    );
    assert_eq!(files.len(), 1);
    assert!(files["README.md"].contains("Every feature is documented."));
}

#[test]
fn file_stems_never_collide() {
    let names: Vec<String> = ["a b", "a_b", "A", "a", ".", "..", "", "ok-1.x"]
        .map(String::from)
        .to_vec();
    let stems = file_stems(&names);
    let folded: std::collections::BTreeSet<String> =
        stems.values().map(|s| s.to_ascii_lowercase()).collect();
    assert_eq!(folded.len(), names.len(), "{stems:?}");
    assert_eq!(stems["a_b"], "a_b");
    assert_eq!(stems["ok-1.x"], "ok-1.x");
    for s in stems.values() {
        assert!(
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "{s}"
        );
        assert!(!s.is_empty() && s != "." && s != "..");
    }
    assert_eq!(file_stems(&names), stems, "stable");
}

#[test]
fn code_spans_tables_and_mermaid_ids_escape_what_they_hold() {
    assert_eq!(code("x"), "`x`");
    assert_eq!(code("a`b"), "``a`b``");
    assert_eq!(code("`x"), "`` `x ``");
    assert_eq!(code("a\nb"), "`a b`");
    let mut t = String::new();
    table(&mut t, &["a", "b"], &[vec!["x|y".into(), "1\r\n2".into()]]);
    assert_eq!(t, "| a | b |\n|---|---|\n| x\\|y | 1<br>2 |\n\n");

    let node = |name: &str| Node {
        kind: "table",
        name: name.into(),
        version: None,
    };
    let edges = [
        Edge {
            from: node("a.b"),
            to: node("a_b"),
            relation: "reads",
            at: None,
        },
        Edge {
            from: node("say \"hi\" #1"),
            to: node("a_b"),
            relation: "reads",
            at: None,
        },
    ];
    let mut m = String::new();
    mermaid(&mut m, &edges.into_iter().collect(), &[node("a_b")]);
    assert!(
        m.starts_with("```mermaid\nflowchart LR\n") && m.ends_with("```\n\n"),
        "{m}"
    );
    has(&m, "    table_a_b[\"table: a.b\"]");
    has(&m, "    table_a_b_2[\"table: a_b\"]");
    has(&m, "[\"table: say #quot;hi#quot; #35;1\"]");
    has(&m, "    table_a_b -->|reads| table_a_b_2");
    has(&m, "    class table_a_b_2 focus");
}

#[test]
fn transformations_are_listed_and_describe_their_outputs() {
    let mut state = registry();
    let mut fields = state.feature_groups["cb"].def.schema.fields().to_vec();
    fields.push(Arc::new(Field::new("amount_z", DataType::Float64, true)));
    let schema = Schema::new(fields);
    apply(
        &mut state,
        "alice",
        Change::AddTransformation {
            group: "cb".into(),
            transformation: Transformation {
                feature: "amount".into(),
                output: "amount_z".into(),
                encoder: Encoder::Standard {
                    mean: 7.5,
                    std: 2.5,
                },
            },
            schema,
        },
    );
    let current = state.feature_groups["cb"].clone();
    apply(
        &mut state,
        "carol",
        Change::CreateFeatureSet(FeatureSetVersion {
            name: "fs".into(),
            version: 0,
            features: vec![FeatureRef {
                group: "cb".into(),
                feature: "amount_z".into(),
            }],
            groups: BTreeMap::from([(
                "cb".to_string(),
                PinnedGroup {
                    version: current.version,
                    def: current.def,
                },
            )]),
            metadata: BTreeMap::new(),
            tags: vec![],
            description: None,
            author: "carol".into(),
            created_at: 0,
        }),
    );
    let (files, summary) = render(&state);
    // A transformation's output takes no comment, so it is not "undocumented".
    assert_eq!(summary.undocumented, 2);
    let cb = &files["groups/cb.md"];
    has(
        cb,
        "| `amount_z` | `Float64` | `amount` | `standard` | mean 7.5, std 2.5 |",
    );
    has(
        cb,
        "| [`fs`](../sets/fs.md) | 1 | 2 (an earlier definition) | `amount` |",
    );
    has(
        cb,
        "| [`fs`](../sets/fs.md) | 3 | 11 (current) | `amount_z` |",
    );
    let fs = &files["sets/fs.md"];
    has(
        fs,
        "| `amount_z` | [`cb`](../groups/cb.md) | `Float64` |  | `standard` of `amount` |",
    );
}
