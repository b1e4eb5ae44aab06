//! `/v1/accounts`: the companies leads meet in, found by their domains and company name.
//! An account keeps its owner for routing and may own several domains.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller, Sent, Strict, ValidatedJson, not_found, path_id};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_core::account::Account;
use leadflow_core::{AccountId, FieldError, FieldErrorCode, Lead, LeadId};
use leadflow_store::AccountUpdate;
use serde::Deserialize;
use serde_json::Value;

const MAX_PAGE: usize = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Page after this account id.
    after: Option<AccountId>,
    /// Page size, at most 500; default 50.
    limit: Option<usize>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountLeadsQuery {
    /// Page after this lead id.
    after: Option<LeadId>,
    /// Page size, at most 500; default 50.
    limit: Option<usize>,
}

/// Accounts in creation order.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", operation_id = "list_accounts", params(AccountQuery),
    responses(
        (status = 200, description = "A page of accounts", body = Vec<Account>),
        doc::KeyProblems,
        doc::QueryProblems,
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> Result<Json<Vec<Account>>, ApiError> {
    caller.require_read()?;
    Ok(Json(app.store.list_accounts(q.after, q.limit.unwrap_or(50).clamp(1, MAX_PAGE)).await?))
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts", operation_id = "get_account", params(("id" = String, Path, description = "The account id")),
    responses(
        (status = 200, description = "The account", body = Account),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Account>, ApiError> {
    caller.require_read()?;
    let account_id: AccountId = path_id(&id, "account")?;
    Ok(Json(app.store.get_account(account_id).await?.ok_or_else(|| not_found(&id, "account"))?))
}

/// The account's leads in creation order.
#[utoipa::path(get, path = "/v1/accounts/{id}/leads", tag = "accounts", operation_id = "list_account_leads",
    params(("id" = String, Path, description = "The account id"), AccountLeadsQuery),
    responses(
        (status = 200, description = "A page of the account's leads", body = Vec<Lead>),
        doc::KeyProblems,
        doc::QueryProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn leads(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AccountLeadsQuery>,
) -> Result<Json<Vec<Lead>>, ApiError> {
    caller.require_read()?;
    let account_id: AccountId = path_id(&id, "account")?;
    if app.store.get_account(account_id).await?.is_none() {
        return Err(not_found(&id, "account"));
    }
    Ok(Json(app.store.account_leads(account_id, q.after, q.limit.unwrap_or(50).clamp(1, MAX_PAGE)).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AccountPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Sent,
    /// The owning rep; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    owner: Sent,
    /// Domains to add, e.g. a regional site; one owned by another account is a conflict.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    add_domains: Sent,
}

impl Strict<AccountPatch> {
    /// The update it asks for; every field error at once. A `null` owner clears the owner,
    /// a missing one leaves it.
    fn check(self) -> Result<AccountUpdate, ApiError> {
        let Strict { body: AccountPatch { name, owner, add_domains }, unknown } = self;
        let mut update = AccountUpdate::default();
        let mut errors = Vec::new();
        let invalid = |field: &str, message: &str| FieldError::new(field, FieldErrorCode::Invalid, message);
        let text = |v: &Value| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(v) = name.given() {
            match text(v) {
                Some(name) => update.name = Some(name),
                None => errors.push(invalid("name", "name must be a non-empty string")),
            }
        }
        match owner.given() {
            None => {}
            Some(Value::Null) => update.owner = Some(None),
            Some(v) => match text(v) {
                Some(owner) => update.owner = Some(Some(owner)),
                None => errors.push(invalid("owner", "owner must be a non-empty string or null")),
            },
        }
        match add_domains.given() {
            None => {}
            Some(Value::Array(list)) => {
                for d in list {
                    match d.as_str().and_then(leadflow_core::normalize::domain_of_url) {
                        Some(domain) => update.add_domains.push(domain),
                        None => errors.push(invalid("add_domains", "each domain must be a registrable domain name")),
                    }
                }
            }
            Some(_) => errors.push(invalid("add_domains", "add_domains must be a list of domain names")),
        }
        for (field, _) in unknown {
            errors.push(FieldError::new(field, FieldErrorCode::UnknownField, "unknown field"));
        }
        if errors.is_empty() { Ok(update) } else { Err(ApiError::Validation(errors)) }
    }
}

/// Rename an account, set or clear its owner, add domains.
#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts", operation_id = "update_account", request_body = AccountPatch,
    params(("id" = String, Path, description = "The account id")),
    responses(
        (status = 200, description = "The account as changed", body = Account),
        doc::KeyProblems,
        doc::BodyProblems,
        doc::NotFound,
        (status = 409, description = "A domain belongs to another account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ValidatedJson(patch): ValidatedJson<Strict<AccountPatch>>,
) -> Result<Json<Account>, ApiError> {
    caller.require_admin()?;
    let account_id: AccountId = path_id(&id, "account")?;
    let update = patch.check()?;
    Ok(Json(app.store.update_account(account_id, update).await?.ok_or_else(|| not_found(&id, "account"))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{field_errors, read_body_as};
    use serde_json::json;

    fn check(body: Value) -> Result<AccountUpdate, ApiError> {
        read_body_as::<Strict<AccountPatch>>(body).check()
    }

    #[test]
    fn a_null_owner_clears_it_and_a_missing_one_leaves_it() {
        assert_eq!(check(json!({"owner": null})).unwrap().owner, Some(None));
        let renamed = check(json!({"name": " Acme "})).unwrap();
        assert_eq!((renamed.name.as_deref(), renamed.owner), (Some("Acme"), None));
    }

    #[test]
    fn a_patch_lists_every_field_error() {
        let body = json!({"name": " ", "owner": 7, "add_domains": ["acme.com", "not a domain", 3], "colour": "red"});
        let expected = [
            ("name", FieldErrorCode::Invalid),
            ("owner", FieldErrorCode::Invalid),
            ("add_domains", FieldErrorCode::Invalid),
            ("add_domains", FieldErrorCode::Invalid),
            ("colour", FieldErrorCode::UnknownField),
        ];
        assert_eq!(field_errors(check(body).unwrap_err()), expected.map(|(f, c)| (f.to_owned(), c)));
    }
}
