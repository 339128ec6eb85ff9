//! Task ids placed into URL paths: one segment each, whatever the id holds.

use super::Vcf;
use crate::providers::ProviderError;

impl Vcf {
    /// A task id as one path segment: percent-encoded, and never `.` or `..` (a URL parser
    /// would walk up the path, and a PATCH would reach another endpoint). Validate refuses them
    /// already; this holds for ids that come from anywhere else.
    pub(super) fn segment(&self, id: &str) -> Result<String, ProviderError> {
        segment(&self.name, id)
    }
}

/// See [`Vcf::segment`].
fn segment(provider: &str, id: &str) -> Result<String, ProviderError> {
    if id.is_empty() || id.trim_matches('.').is_empty() || id.to_ascii_lowercase().contains("%2e") {
        return Err(ProviderError::Config {
            provider: provider.to_owned(),
            detail: format!("`{id}` is not a task id (providers.md §3: task ids are UUIDs)"),
        });
    }
    Ok(id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_task_id_stays_one_path_segment() {
        let segment = |id| super::segment("sddc", id);
        assert_eq!(
            segment("5a1f4a2e-7c3b-4f0e-9d6a-2b8e41c7f903").expect("a uuid"),
            "5a1f4a2e-7c3b-4f0e-9d6a-2b8e41c7f903"
        );
        assert_eq!(
            segment("X/../../v1/tokens").expect("encoded"),
            "X%2F..%2F..%2Fv1%2Ftokens"
        );
        for bad in ["", ".", "..", "%2e%2E"] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }
}
