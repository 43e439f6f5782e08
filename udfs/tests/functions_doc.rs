//! `docs/functions.md` is generated from the functions' own documentation
//! (`fstore_udfs::documentation_markdown()`); this test fails when the committed page is stale,
//! and rewrites it when run with `FSTORE_UPDATE_DOCS=1`.

use std::path::Path;

const FUNCTIONS_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/functions.md");
const REGENERATE: &str = "FSTORE_UPDATE_DOCS=1 cargo test -p fstore-udfs --test functions_doc";

#[test]
fn functions_md_is_generated_from_the_code() {
    let generated = fstore_udfs::documentation_markdown();
    assert!(
        generated.contains(REGENERATE),
        "the page must say how it is regenerated"
    );
    let path = Path::new(FUNCTIONS_MD);
    if std::env::var_os("FSTORE_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(path, &generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "docs/functions.md is stale: it differs from the functions' documentation from line \
             {line} on. Regenerate it with `{REGENERATE}` and commit the result."
        );
    }
}
