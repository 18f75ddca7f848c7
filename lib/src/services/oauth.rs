//! OAuth 2.1 authorization for MCP clients (and the REST API), protocol-neutral: clients
//! (dynamic registration, RFC 7591, or Client ID Metadata Documents), pending authorizations,
//! single-use authorization codes with PKCE S256, access and refresh tokens (rotated, with
//! reuse detection), revocation (RFC 7009), and resolving an access token to its tenant.
//!
//! Everything lives in the accounts table, so it works on DynamoDB and the embedded store
//! alike; secrets (codes, tokens, CSRF tokens) are stored only as SHA-256 hashes.
//!
//! A grant (one client authorized by one account) is stored as an entry of the account's
//! API-key listing, so `GET /api-keys` shows it and `DELETE /api-keys/{id}` revokes it: every
//! token of the grant checks that the entry still exists.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::domain::account::{ApiKeyRecord, Plans, Scope, Tenant, hash_key};
use crate::domain::oauth::{
    ACCESS_PREFIX, CLIENT_PREFIX, CODE_PREFIX, REFRESH_PREFIX, challenge_is_valid,
    check_client_id_url, check_redirect_uri, ct_eq, is_access_token, looks_like, parse_scope,
    pkce_matches, redirect_matches, scope_string, token_from_bytes,
};
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, MetadataFetcher, StoreError, Table, WriteOp};
use crate::schema;
use crate::services::{Deps, from_body, to_body};

/// Lifetime of an authorization code.
pub const CODE_TTL_SECS: i64 = 60;
/// Lifetime of an access token.
pub const ACCESS_TTL_SECS: i64 = 3600;
/// Lifetime of a refresh token (each use issues a new one).
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// How long a user has to sign in and decide on an authorization page.
pub const PENDING_TTL_SECS: i64 = 600;
/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest client name kept.
pub const MAX_CLIENT_NAME: usize = 200;
/// Prefix shown for grants in the API-key listing (never a real key prefix).
pub const GRANT_KEY_PREFIX: &str = "oauth";

/// An OAuth error as RFC 6749 names it (`error` code and a description for people).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `invalid_scope`, `invalid_target`,
    /// `unsupported_grant_type`, `invalid_redirect_uri`, `invalid_client_metadata`,
    /// `access_denied`, `unsupported_response_type`, `server_error`.
    pub error: &'static str,
    /// What went wrong.
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
        }
    }

    /// The HTTP status of this error at the token and registration endpoints.
    pub fn status(&self) -> u16 {
        match self.error {
            "invalid_client" => 401,
            "server_error" => 500,
            "temporarily_unavailable" => 503,
            _ => 400,
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        match e {
            Error::Unavailable(m) => OAuthError::new("temporarily_unavailable", m),
            Error::RateLimited { .. } => {
                OAuthError::new("temporarily_unavailable", "too many requests; retry later")
            }
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error in OAuth");
                OAuthError::new("server_error", "internal error")
            }
            other => OAuthError::new("server_error", other.public_message()),
        }
    }
}

/// A client as the authorization server knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthClient {
    /// `klcl_…` for registered clients, the document URL for metadata-document clients.
    pub client_id: String,
    /// Shown on the consent page.
    pub client_name: String,
    /// Where codes may be sent.
    pub redirect_uris: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// What a client sends to register (RFC 7591 §2); unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Registration {
    /// Human-readable name.
    #[serde(default)]
    pub client_name: Option<String>,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Only `none` (public clients with PKCE) is supported.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// Must include `authorization_code` when given.
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    /// Must be `["code"]` when given.
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
}

/// The parameters of an authorization request.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// Where to send the answer.
    pub redirect_uri: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Must be `S256`.
    pub code_challenge_method: Option<String>,
    /// Opaque value returned to the client.
    pub state: Option<String>,
    /// Requested scope.
    pub scope: Option<String>,
    /// RFC 8707 resource (the audience).
    pub resource: Option<String>,
}

/// Why an authorization request cannot proceed.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeFailure {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Page(String),
    /// Tell the client, at this URL (`redirect_uri?error=…&state=…`).
    Redirect(String),
}

impl From<Error> for AuthorizeFailure {
    fn from(e: Error) -> Self {
        if let Error::Internal(d) = &e {
            tracing::error!(error = %d, "internal error in OAuth authorize");
        }
        AuthorizeFailure::Page(e.public_message())
    }
}

/// A pending authorization: the validated request while the user signs in and decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Its id (in the page's form).
    pub id: String,
    /// The client.
    pub client_id: String,
    /// Its name, for the consent page.
    pub client_name: String,
    /// Validated redirect URI, as presented.
    pub redirect_uri: String,
    /// Client state.
    pub state: Option<String>,
    /// Granted key scope if allowed.
    pub scope: Scope,
    /// The audience.
    pub resource: String,
    /// PKCE challenge.
    pub code_challenge: String,
    /// SHA-256 of the CSRF token of the page.
    csrf_hash: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A started authorization: the pending request and the CSRF token for its form.
#[derive(Debug, Clone)]
pub struct Started {
    /// The pending authorization.
    pub pending: Pending,
    /// The raw CSRF token (only its hash is stored).
    pub csrf: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    resource: String,
    account_id: String,
    scope: Scope,
    code_challenge: String,
    expires_at: i64,
    /// Set when the code was exchanged: the grant it started (revoked if the code is replayed).
    #[serde(default)]
    used_by_grant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    grant_id: String,
    account_id: String,
    client_id: String,
    scope: Scope,
    resource: String,
    expires_at: i64,
    /// A refresh token that was already exchanged (a second use revokes the grant).
    #[serde(default)]
    used: bool,
}

/// The answer of the token endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenSet {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The next refresh token.
    pub refresh_token: String,
    /// Granted scope.
    pub scope: &'static str,
}

/// A token request (RFC 6749 §4.1.3, §6), form fields as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The code.
    pub code: Option<String>,
    /// Must equal the authorization request's.
    pub redirect_uri: Option<String>,
    /// The public client.
    pub client_id: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
    /// RFC 8707 resource; must match the authorization's when given.
    pub resource: Option<String>,
    /// A narrower scope on refresh (never wider).
    pub scope: Option<String>,
}

fn client_key(id: &str) -> Key {
    Key::new(format!("OAUTHCLIENT#{id}"), "#")
}
fn pending_key(id: &str) -> Key {
    Key::new(format!("OAUTHREQ#{id}"), "#")
}
fn code_key(code: &str) -> Key {
    Key::new(format!("OAUTHCODE#{}", hash_key(code)), "#")
}
fn access_key(token: &str) -> Key {
    Key::new(format!("OAUTHAT#{}", hash_key(token)), "#")
}
fn refresh_key(token: &str) -> Key {
    Key::new(format!("OAUTHRT#{}", hash_key(token)), "#")
}

/// The OAuth use cases.
#[derive(Clone)]
pub struct OAuthService {
    deps: Deps,
    plans: Plans,
    fetcher: Arc<dyn MetadataFetcher>,
    /// Hosts allowed over `http` for client id URLs (the webhook setting).
    http_hosts: Vec<String>,
    /// The public base URL (`KLOZEO_PUBLIC_URL`), or the address `klozeo serve` listens on.
    base: Arc<OnceLock<String>>,
}

impl OAuthService {
    /// Builds the service; `public_url` is `KLOZEO_PUBLIC_URL` when set.
    pub fn new(
        deps: Deps,
        plans: Plans,
        fetcher: Arc<dyn MetadataFetcher>,
        http_hosts: Vec<String>,
        public_url: Option<String>,
    ) -> Self {
        let base = Arc::new(OnceLock::new());
        if let Some(u) = public_url {
            let _ = base.set(u.trim().trim_end_matches('/').to_string());
        }
        OAuthService {
            deps,
            plans,
            fetcher,
            http_hosts,
            base,
        }
    }

    /// Sets the public base URL if none was configured (`klozeo serve` passes the address it
    /// listens on). A configured `KLOZEO_PUBLIC_URL` always wins.
    pub fn default_public_url(&self, url: &str) {
        let _ = self.base.set(url.trim_end_matches('/').to_string());
    }

    /// The public base URL (issuer), never taken from a request.
    pub fn base(&self) -> Result<&str> {
        self.base.get().map(String::as_str).ok_or_else(|| {
            Error::Unavailable(
                "OAuth is not configured on this server: set KLOZEO_PUBLIC_URL".into(),
            )
        })
    }

    /// The public base URL if known.
    pub fn base_opt(&self) -> Option<&str> {
        self.base.get().map(String::as_str)
    }

    /// The MCP endpoint's resource identifier (the default audience).
    pub fn mcp_resource(&self) -> Result<String> {
        Ok(format!("{}/mcp", self.base()?))
    }

    /// Every resource a token may be issued for: the MCP endpoint, the REST base, the server.
    pub fn resources(&self) -> Result<Vec<String>> {
        let b = self.base()?;
        Ok(vec![
            format!("{b}/mcp"),
            // The REST API's base path (the HTTP edge's `API_PREFIX`).
            format!("{b}/api/v1"),
            b.to_string(),
        ])
    }

    fn resource_ok(&self, r: &str) -> Result<bool> {
        let r = r.trim_end_matches('/');
        Ok(self.resources()?.iter().any(|x| x == r))
    }

    /// Registers a public client (RFC 7591): a client id for the given redirect URIs.
    pub async fn register_client(&self, reg: Registration) -> Result<OAuthClient, OAuthError> {
        let meta = |m: String| OAuthError::new("invalid_client_metadata", m);
        if reg.redirect_uris.is_empty() {
            return Err(OAuthError::new(
                "invalid_redirect_uri",
                "redirect_uris: at least one is required",
            ));
        }
        if reg.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(OAuthError::new(
                "invalid_redirect_uri",
                format!("redirect_uris: at most {MAX_REDIRECT_URIS}"),
            ));
        }
        for u in &reg.redirect_uris {
            check_redirect_uri(u).map_err(|why| {
                OAuthError::new("invalid_redirect_uri", format!("redirect_uri '{u}': {why}"))
            })?;
        }
        if let Some(m) = &reg.token_endpoint_auth_method
            && m != "none"
        {
            return Err(meta(format!(
                "token_endpoint_auth_method '{m}' is not supported (only 'none', with PKCE)"
            )));
        }
        if let Some(g) = &reg.grant_types
            && (!g.iter().any(|g| g == "authorization_code")
                || g.iter()
                    .any(|g| g != "authorization_code" && g != "refresh_token"))
        {
            return Err(meta(
                "grant_types: only authorization_code and refresh_token are supported".into(),
            ));
        }
        if let Some(r) = &reg.response_types
            && r.iter().any(|r| r != "code")
        {
            return Err(meta("response_types: only 'code' is supported".into()));
        }
        let name = reg
            .client_name
            .map(|n| n.trim().chars().take(MAX_CLIENT_NAME).collect::<String>())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Unnamed client".into());
        let client = OAuthClient {
            client_id: format!("{CLIENT_PREFIX}{}", self.deps.ids.random().simple()),
            client_name: name,
            redirect_uris: reg.redirect_uris,
            created_at: self.deps.clock.now_secs(),
        };
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item: Item::new(client_key(&client.client_id), to_body(&client)?),
                cond: Cond::NotExists,
            }])
            .await
            .map_err(Error::from)?;
        Ok(client)
    }

    /// Finds a client: a registered one, or one whose id is a metadata document URL (fetched
    /// each time, under the webhook SSRF rules). The text says why a client is refused.
    pub async fn client(&self, client_id: &str) -> Result<OAuthClient, String> {
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return self.metadata_client(client_id).await;
        }
        if client_id.is_empty() || client_id.len() > 100 {
            return Err("unknown client_id".into());
        }
        match self
            .deps
            .store
            .get(Table::Accounts, &client_key(client_id))
            .await
        {
            Ok(Some(item)) => from_body(&item.body).map_err(|e| e.public_message()),
            Ok(None) => Err(format!("unknown client_id '{client_id}'")),
            Err(e) => Err(e.public_message()),
        }
    }

    async fn metadata_client(&self, client_id: &str) -> Result<OAuthClient, String> {
        check_client_id_url(client_id, &self.http_hosts)
            .map_err(|why| format!("client_id URL: {why}"))?;
        let body = self
            .fetcher
            .fetch(client_id)
            .await
            .map_err(|why| format!("the client metadata document {client_id} {why}"))?;
        #[derive(Deserialize)]
        struct Doc {
            client_id: String,
            #[serde(default)]
            client_name: Option<String>,
            #[serde(default)]
            redirect_uris: Vec<String>,
        }
        let doc: Doc = serde_json::from_slice(&body)
            .map_err(|e| format!("the client metadata document is not valid: {e}"))?;
        if doc.client_id != client_id {
            return Err("the client metadata document names another client_id than its URL".into());
        }
        if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err("the client metadata document must list 1 to 10 redirect_uris".into());
        }
        for u in &doc.redirect_uris {
            check_redirect_uri(u).map_err(|why| format!("redirect_uri '{u}': {why}"))?;
        }
        let host = url::Url::parse(client_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let name: String = doc
            .client_name
            .unwrap_or_default()
            .trim()
            .chars()
            .take(MAX_CLIENT_NAME)
            .collect();
        Ok(OAuthClient {
            client_id: doc.client_id,
            // The host is part of the name so that a document cannot pass as another vendor.
            client_name: if name.is_empty() {
                host
            } else {
                format!("{name} ({host})")
            },
            redirect_uris: doc.redirect_uris,
            created_at: self.deps.clock.now_secs(),
        })
    }

    /// Validates an authorization request and records it as pending. A bad client or redirect
    /// URI is a page; anything else is reported to the client's redirect URI (RFC 6749 §4.1.2.1).
    pub async fn start(&self, req: AuthorizeRequest) -> Result<Started, AuthorizeFailure> {
        let client_id = req
            .client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AuthorizeFailure::Page("client_id is required".into()))?;
        let client = self
            .client(client_id)
            .await
            .map_err(AuthorizeFailure::Page)?;
        let redirect_uri = match req.redirect_uri.as_deref() {
            Some(r) => r.to_string(),
            // Optional only when exactly one is registered (RFC 6749 §3.1.2.3).
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => {
                return Err(AuthorizeFailure::Page(
                    "redirect_uri is required: this client registered several".into(),
                ));
            }
        };
        check_redirect_uri(&redirect_uri)
            .map_err(|why| AuthorizeFailure::Page(format!("redirect_uri: {why}")))?;
        if !client
            .redirect_uris
            .iter()
            .any(|r| redirect_matches(r, &redirect_uri))
        {
            return Err(AuthorizeFailure::Page(format!(
                "redirect_uri '{redirect_uri}' is not registered for this client"
            )));
        }
        let state = req.state.clone();
        let fail = |error: &str, description: &str| {
            AuthorizeFailure::Redirect(error_redirect(
                &redirect_uri,
                error,
                description,
                state.as_deref(),
                self.base_opt(),
            ))
        };
        match req.response_type.as_deref() {
            Some("code") => {}
            None => return Err(fail("invalid_request", "response_type is required")),
            Some(_) => {
                return Err(fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        let Some(challenge) = req.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
            return Err(fail(
                "invalid_request",
                "code_challenge is required (PKCE with S256)",
            ));
        };
        if req.code_challenge_method.as_deref() != Some("S256") {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not supported)",
            ));
        }
        if !challenge_is_valid(challenge) {
            return Err(fail(
                "invalid_request",
                "code_challenge is not an S256 challenge",
            ));
        }
        let scope = parse_scope(req.scope.as_deref()).map_err(|why| fail("invalid_scope", &why))?;
        let resource = match req.resource.as_deref() {
            None | Some("") => self.mcp_resource()?,
            Some(r) if self.resource_ok(r)? => r.trim_end_matches('/').to_string(),
            Some(_) => {
                return Err(fail(
                    "invalid_target",
                    "resource is not served by this authorization server",
                ));
            }
        };
        let csrf = token_from_bytes(
            "",
            self.deps.ids.secret_bytes(),
            self.deps.ids.secret_bytes(),
        );
        let pending = Pending {
            id: self.deps.ids.random().simple().to_string(),
            client_id: client.client_id,
            client_name: client.client_name,
            redirect_uri,
            state: req.state,
            scope,
            resource,
            code_challenge: challenge.to_string(),
            csrf_hash: hash_key(&csrf),
            expires_at: self.deps.clock.now_secs() + PENDING_TTL_SECS,
        };
        let mut item = Item::new(pending_key(&pending.id), to_body(&pending)?);
        item.expires_at = Some(pending.expires_at);
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item,
                cond: Cond::NotExists,
            }])
            .await
            .map_err(Error::from)?;
        Ok(Started { pending, csrf })
    }

    /// The pending authorization `id` if its CSRF token matches (constant time); a missing,
    /// expired or mismatched one is a page error (never a redirect: the request is not trusted).
    pub async fn pending(&self, id: &str, csrf: &str) -> Result<Pending, AuthorizeFailure> {
        let gone = || {
            AuthorizeFailure::Page(
                "This authorization request has expired or was already answered; start again \
                 from your application."
                    .into(),
            )
        };
        if id.is_empty() || id.len() > 64 {
            return Err(gone());
        }
        let item = self
            .deps
            .store
            .get(Table::Accounts, &pending_key(id))
            .await?
            .ok_or_else(gone)?;
        let p: Pending = from_body(&item.body)?;
        if p.expires_at <= self.deps.clock.now_secs() {
            return Err(gone());
        }
        if csrf.is_empty() || !ct_eq(&hash_key(csrf), &p.csrf_hash) {
            return Err(AuthorizeFailure::Page(
                "The form's security token is missing or wrong (CSRF); reload the page from \
                 your application."
                    .into(),
            ));
        }
        Ok(p)
    }

    /// Ends a pending authorization: with `account_id` it is allowed (a code is issued and the
    /// redirect carries it), without it denied. Either way the pending request is used up.
    pub async fn decide(
        &self,
        p: &Pending,
        account_id: Option<&str>,
    ) -> Result<String, AuthorizeFailure> {
        // Deleting the pending request first makes a double submit fail instead of minting two codes.
        self.deps
            .store
            .transact(vec![WriteOp::Delete {
                table: Table::Accounts,
                key: pending_key(&p.id),
                cond: Cond::Exists,
            }])
            .await
            .map_err(|e| match e {
                StoreError::ConditionFailed(_) => AuthorizeFailure::Page(
                    "This authorization request was already answered.".into(),
                ),
                StoreError::Other(e) => e.into(),
            })?;
        let Some(account_id) = account_id else {
            return Ok(error_redirect(
                &p.redirect_uri,
                "access_denied",
                "the user denied the request",
                p.state.as_deref(),
                self.base_opt(),
            ));
        };
        let code = token_from_bytes(
            CODE_PREFIX,
            self.deps.ids.secret_bytes(),
            self.deps.ids.secret_bytes(),
        );
        let rec = CodeRecord {
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            resource: p.resource.clone(),
            account_id: account_id.to_string(),
            scope: p.scope,
            code_challenge: p.code_challenge.clone(),
            expires_at: self.deps.clock.now_secs() + CODE_TTL_SECS,
            used_by_grant: None,
        };
        let mut item = Item::new(code_key(&code), to_body(&rec)?);
        // Kept a while after expiry so that a replay is recognised and revokes the grant.
        item.expires_at = Some(rec.expires_at + PENDING_TTL_SECS);
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item,
                cond: Cond::NotExists,
            }])
            .await
            .map_err(Error::from)?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = &p.state {
            pairs.push(("state", s));
        }
        if let Some(b) = self.base_opt() {
            pairs.push(("iss", b));
        }
        Ok(with_query(&p.redirect_uri, &pairs))
    }

    /// The token endpoint: exchanges a code or a refresh token.
    pub async fn token(&self, req: TokenRequest) -> Result<TokenSet, OAuthError> {
        match req.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(req).await,
            Some("refresh_token") => self.refresh(req).await,
            None => Err(OAuthError::new("invalid_request", "grant_type is required")),
            Some(g) => Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type '{g}' is not supported"),
            )),
        }
    }

    async fn exchange_code(&self, req: TokenRequest) -> Result<TokenSet, OAuthError> {
        let invalid = |m: &str| OAuthError::new("invalid_grant", m);
        let code = req
            .code
            .as_deref()
            .ok_or_else(|| OAuthError::new("invalid_request", "code is required"))?;
        let client_id = req
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthError::new("invalid_client", "client_id is required"))?;
        let verifier = req
            .code_verifier
            .as_deref()
            .ok_or_else(|| OAuthError::new("invalid_request", "code_verifier is required"))?;
        if !looks_like(CODE_PREFIX, code) {
            return Err(invalid("unknown or expired code"));
        }
        let key = code_key(code);
        let item = self
            .deps
            .store
            .get(Table::Accounts, &key)
            .await?
            .ok_or_else(|| invalid("unknown or expired code"))?;
        let rec: CodeRecord = from_body(&item.body)?;
        if let Some(grant) = &rec.used_by_grant {
            // A replayed code may be stolen: the tokens it produced are revoked (RFC 6749 §4.1.2).
            self.revoke_grant(&rec.account_id, grant).await?;
            return Err(invalid(
                "code was already used; the tokens it issued are revoked",
            ));
        }
        if rec.expires_at <= self.deps.clock.now_secs() {
            return Err(invalid("code has expired"));
        }
        if !ct_eq(&rec.client_id, client_id) {
            return Err(invalid("code was issued to another client"));
        }
        if req.redirect_uri.as_deref() != Some(rec.redirect_uri.as_str()) {
            return Err(invalid(
                "redirect_uri does not match the authorization request",
            ));
        }
        if let Some(r) = req.resource.as_deref()
            && r.trim_end_matches('/') != rec.resource
        {
            return Err(OAuthError::new(
                "invalid_target",
                "resource does not match the authorization request",
            ));
        }
        if !pkce_matches(verifier, &rec.code_challenge) {
            return Err(invalid("code_verifier does not match the code_challenge"));
        }
        let client = self
            .client(client_id)
            .await
            .map_err(|m| OAuthError::new("invalid_client", m))?;
        let grant_id = self.deps.ids.random().to_string();
        let now = self.deps.clock.now_secs();
        let mut used = rec.clone();
        used.used_by_grant = Some(grant_id.clone());
        let mut used_item = Item::new(key, to_body(&used)?);
        used_item.version = item.version + 1;
        used_item.expires_at = item.expires_at;
        let listing = ApiKeyRecord {
            id: grant_id.clone(),
            account_id: rec.account_id.clone(),
            prefix: GRANT_KEY_PREFIX.into(),
            // Not a key hash: no key item ever has this address.
            hash: format!("oauth-grant-{grant_id}"),
            name: Some(format!("OAuth: {}", client.client_name)),
            created_at: now,
            scope: rec.scope,
            last_used_at: None,
        };
        let mut ops = vec![
            // Single use: the exchange commits only against the version read.
            WriteOp::Put {
                table: Table::Accounts,
                item: used_item,
                cond: Cond::Version(item.version),
            },
            WriteOp::Put {
                table: Table::Accounts,
                item: Item::new(
                    schema::api_key_listing_key(&rec.account_id, &grant_id),
                    to_body(&listing)?,
                ),
                cond: Cond::NotExists,
            },
            WriteOp::Check {
                table: Table::Accounts,
                key: schema::account_key(&rec.account_id),
                cond: Cond::Exists,
            },
        ];
        let base = TokenRecord {
            grant_id,
            account_id: rec.account_id,
            client_id: rec.client_id,
            scope: rec.scope,
            resource: rec.resource,
            expires_at: 0,
            used: false,
        };
        let (set, writes) = self.mint(&base)?;
        ops.extend(writes);
        match self.deps.store.transact(ops).await {
            Ok(()) => Ok(set),
            Err(StoreError::ConditionFailed(0)) => Err(invalid("code was already used")),
            Err(StoreError::ConditionFailed(_)) => Err(invalid("the account no longer exists")),
            Err(StoreError::Other(e)) => Err(e.into()),
        }
    }

    /// A new access and refresh token of `base`'s grant, and the writes that store them.
    fn mint(&self, base: &TokenRecord) -> Result<(TokenSet, Vec<WriteOp>)> {
        let now = self.deps.clock.now_secs();
        let ids = &self.deps.ids;
        let access = token_from_bytes(ACCESS_PREFIX, ids.secret_bytes(), ids.secret_bytes());
        let refresh = token_from_bytes(REFRESH_PREFIX, ids.secret_bytes(), ids.secret_bytes());
        let mut at = base.clone();
        at.expires_at = now + ACCESS_TTL_SECS;
        at.used = false;
        let mut rt = base.clone();
        rt.expires_at = now + REFRESH_TTL_SECS;
        rt.used = false;
        let mut at_item = Item::new(access_key(&access), to_body(&at)?);
        at_item.expires_at = Some(at.expires_at);
        let mut rt_item = Item::new(refresh_key(&refresh), to_body(&rt)?);
        rt_item.expires_at = Some(rt.expires_at);
        let put = |item| WriteOp::Put {
            table: Table::Accounts,
            item,
            cond: Cond::NotExists,
        };
        Ok((
            TokenSet {
                access_token: access,
                token_type: "Bearer",
                expires_in: ACCESS_TTL_SECS,
                refresh_token: refresh,
                scope: scope_string(base.scope),
            },
            vec![put(at_item), put(rt_item)],
        ))
    }

    async fn refresh(&self, req: TokenRequest) -> Result<TokenSet, OAuthError> {
        let invalid = |m: &str| OAuthError::new("invalid_grant", m);
        let token = req
            .refresh_token
            .as_deref()
            .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required"))?;
        let client_id = req
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthError::new("invalid_client", "client_id is required"))?;
        if !looks_like(REFRESH_PREFIX, token) {
            return Err(invalid("unknown, expired or revoked refresh token"));
        }
        let key = refresh_key(token);
        let item = self
            .deps
            .store
            .get(Table::Accounts, &key)
            .await?
            .ok_or_else(|| invalid("unknown, expired or revoked refresh token"))?;
        let rec: TokenRecord = from_body(&item.body)?;
        if rec.used {
            // Reuse of a rotated token: someone else may hold the family. End it.
            self.revoke_grant(&rec.account_id, &rec.grant_id).await?;
            return Err(invalid(
                "refresh token was already used; the whole grant is revoked",
            ));
        }
        if rec.expires_at <= self.deps.clock.now_secs() {
            return Err(invalid("refresh token has expired"));
        }
        if !ct_eq(&rec.client_id, client_id) {
            return Err(invalid("refresh token was issued to another client"));
        }
        if let Some(r) = req.resource.as_deref()
            && r.trim_end_matches('/') != rec.resource
        {
            return Err(OAuthError::new(
                "invalid_target",
                "resource does not match the grant",
            ));
        }
        let mut next = rec.clone();
        if let Some(s) = req.scope.as_deref() {
            let asked = parse_scope(Some(s)).map_err(|m| OAuthError::new("invalid_scope", m))?;
            if !narrower_or_equal(asked, rec.scope) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "a refresh may not widen the scope",
                ));
            }
            next.scope = asked;
        }
        let mut used = rec.clone();
        used.used = true;
        let mut used_item = Item::new(key, to_body(&used)?);
        used_item.version = item.version + 1;
        used_item.expires_at = item.expires_at;
        let mut ops = vec![
            WriteOp::Put {
                table: Table::Accounts,
                item: used_item,
                cond: Cond::Version(item.version),
            },
            WriteOp::Check {
                table: Table::Accounts,
                key: schema::api_key_listing_key(&rec.account_id, &rec.grant_id),
                cond: Cond::Exists,
            },
        ];
        let (set, writes) = self.mint(&next)?;
        ops.extend(writes);
        match self.deps.store.transact(ops).await {
            Ok(()) => Ok(set),
            Err(StoreError::ConditionFailed(0)) => {
                // Two uses racing: the loser is a reuse.
                self.revoke_grant(&rec.account_id, &rec.grant_id).await?;
                Err(invalid(
                    "refresh token was already used; the whole grant is revoked",
                ))
            }
            Err(StoreError::ConditionFailed(_)) => Err(invalid("the grant was revoked")),
            Err(StoreError::Other(e)) => Err(e.into()),
        }
    }

    /// Removes a grant's listing entry: every token of the grant stops working at once.
    async fn revoke_grant(&self, account_id: &str, grant_id: &str) -> Result<()> {
        self.deps
            .store
            .transact(vec![WriteOp::Delete {
                table: Table::Accounts,
                key: schema::api_key_listing_key(account_id, grant_id),
                cond: Cond::Always,
            }])
            .await
            .map_err(Error::from)
    }

    /// Revocation (RFC 7009): a refresh token revokes its whole grant, an access token itself.
    /// Unknown tokens, and tokens of another client, are ignored (the endpoint answers 200).
    pub async fn revoke(&self, token: &str, client_id: Option<&str>) -> Result<()> {
        let token = token.trim();
        let key = if looks_like(REFRESH_PREFIX, token) {
            refresh_key(token)
        } else if is_access_token(token) {
            access_key(token)
        } else {
            return Ok(());
        };
        let Some(item) = self.deps.store.get(Table::Accounts, &key).await? else {
            return Ok(());
        };
        let rec: TokenRecord = from_body(&item.body)?;
        if client_id.is_some_and(|c| !ct_eq(c, &rec.client_id)) {
            return Ok(());
        }
        if looks_like(REFRESH_PREFIX, token) {
            self.revoke_grant(&rec.account_id, &rec.grant_id).await
        } else {
            self.deps
                .store
                .transact(vec![WriteOp::Delete {
                    table: Table::Accounts,
                    key,
                    cond: Cond::Always,
                }])
                .await
                .map_err(Error::from)
        }
    }

    /// Resolves an access token to its tenant: unexpired, issued for a resource of this server,
    /// its grant not revoked, its account present. Anything else is a 401.
    pub async fn authenticate(&self, token: &str) -> Result<Tenant> {
        let unknown = || Error::Unauthenticated("Invalid, expired or revoked access token".into());
        if !is_access_token(token) {
            return Err(unknown());
        }
        let item = self
            .deps
            .store
            .get(Table::Accounts, &access_key(token))
            .await?
            .ok_or_else(unknown)?;
        let rec: TokenRecord = from_body(&item.body)?;
        if rec.expires_at <= self.deps.clock.now_secs() || !self.resource_ok(&rec.resource)? {
            return Err(unknown());
        }
        let keys = [
            schema::api_key_listing_key(&rec.account_id, &rec.grant_id),
            schema::account_key(&rec.account_id),
        ];
        let found = self.deps.store.batch_get(Table::Accounts, &keys).await?;
        let account = found
            .iter()
            .find(|i| i.key == keys[1])
            .ok_or_else(unknown)?;
        if !found.iter().any(|i| i.key == keys[0]) {
            return Err(unknown());
        }
        let account_rev = crate::services::accounts::account_rev(account);
        let account: crate::domain::account::Account = from_body(&account.body)?;
        let limits = self.plans.get(&account.plan)?.clone();
        Ok(Tenant {
            account_id: account.id,
            plan: account.plan,
            limits,
            key_id: rec.grant_id,
            scope: rec.scope,
            account_rev: Some(account_rev),
        })
    }
}

fn narrower_or_equal(a: Scope, b: Scope) -> bool {
    let rank = |s| match s {
        Scope::Read => 0,
        Scope::Write => 1,
        Scope::Admin => 2,
    };
    rank(a) <= rank(b)
}

/// `uri` with `pairs` appended to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

/// The redirect that reports an error to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
fn error_redirect(
    uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    iss: Option<&str>,
) -> String {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    if let Some(i) = iss {
        pairs.push(("iss", i));
    }
    with_query(uri, &pairs)
}
