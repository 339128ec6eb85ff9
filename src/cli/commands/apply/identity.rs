//! The per-machine lock of a runbook's identity for apply (`state::identity`): a copy of the
//! runbook in another folder, with a journal of its own, waits for this apply to end.

use crate::manifest::runbook::Runbook;

/// Takes the lock of the runbook's identity (`state::identity`): its name and its providers'
/// rendered base URLs, or for a rehearsal its name and state directory.
pub(super) fn lock(
    rb: &Runbook,
    store: &crate::cli::commands::state::Chosen,
    sandbox: bool,
) -> Result<Box<dyn crate::state::Lock>, crate::state::StateError> {
    use crate::state::identity::{self, Identity};
    let name = &rb.manifest.name;
    let id = if let (true, Some(dir)) = (sandbox, store.dir()) {
        Identity::rehearsal(name, dir)
    } else {
        let cx = rb.context();
        let endpoints: Vec<String> = rb
            .manifest
            .providers
            .values()
            .map(|p| {
                let url = p.url.as_deref().map_or_else(
                    || "(default)".to_owned(),
                    |u| cx.render_text(u).unwrap_or_else(|_| u.to_owned()),
                );
                format!("{} {url}", p.kind.name())
            })
            .collect();
        Identity::of(name, &endpoints)
    };
    let holder = format!(
        "process {}, runbook {}, state {}, since {}",
        std::process::id(),
        std::fs::canonicalize(rb.path())
            .unwrap_or_else(|_| rb.path().to_owned())
            .display(),
        store.store().location(),
        jiff::Timestamp::now()
    );
    identity::lock(&id, &holder)
}
