//! Demo credentials for rehearsals: the CLI fills them from the sandbox's scenario, so the
//! clients use them instead of the runbook's references without knowing the sandbox.

/// Credentials that replace the runbook's for `--sandbox`, per provider type.
#[derive(Debug, Clone, Default)]
pub struct Demo {
    pub venafi: Option<VenafiDemo>,
    pub digicert_api_key: Option<String>,
    pub vcf: Option<Login>,
    pub otc: Option<OtcDemo>,
    pub ncloud: Option<KeyPair>,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct VenafiDemo {
    pub client_id: Option<String>,
    pub login: Option<Login>,
}

#[derive(Debug, Clone)]
pub struct OtcDemo {
    pub login: Option<(Login, String)>,
    pub project: Option<(String, String)>,
    pub iam_url: String,
}

#[derive(Debug, Clone)]
pub struct KeyPair {
    pub access_key: String,
    pub secret_key: String,
}
